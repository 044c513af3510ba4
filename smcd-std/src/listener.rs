//! [`SmcListener`]: a TCP listener that announces itself on the host-local
//! rendezvous, so that smcd clients speak CLC with it and everyone else gets
//! plain TCP.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smcd_core::endpoint::Endpoint;

use crate::config::{SmcConfig, default_config};
use crate::rendezvous::Rendezvous;
use crate::stream::SmcStream;
use crate::tcp::TcpWire;
use crate::transport::TcpReason;
use crate::wait::now_ms;

/// How long `accept` drives a new connection's handshake itself.
const ACCEPT_HANDSHAKE: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Inner {
    nonblocking: AtomicBool,
    tcp: TcpListener,
    rendezvous: Option<Mutex<Rendezvous>>,
    config: SmcConfig,
}

/// A listener shaped like [`std::net::TcpListener`].
///
/// Accepted streams speak SMC-D with smcd clients of this host, and plain
/// TCP with everyone else — no CLC byte is ever sent to a client that did
/// not announce itself. `accept` runs the CLC handshake for at most 100 ms
/// (an smcd client answers in microseconds); a slower client's handshake
/// finishes on the stream's first use, so it never holds up the listener.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use smcd_std::SmcListener;
///
/// let listener = SmcListener::bind("127.0.0.1:7000")?;
/// for stream in listener.incoming() {
///     let mut s = stream?;
///     let mut buf = [0u8; 4096];
///     let n = s.read(&mut buf)?;
///     s.write_all(&buf[..n])?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct SmcListener {
    inner: Arc<Inner>,
}

impl fmt::Debug for SmcListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmcListener")
            .field("local", &self.inner.tcp.local_addr().ok())
            .field("rendezvous", &self.inner.rendezvous.is_some())
            .finish()
    }
}

impl SmcConfig {
    /// A listener on `addr` with this configuration.
    ///
    /// # Errors
    ///
    /// As `TcpListener::bind`.
    pub fn bind<A: ToSocketAddrs>(&self, addr: A) -> io::Result<SmcListener> {
        let tcp = TcpListener::bind(addr)?;
        let local = tcp.local_addr()?;
        let rendezvous = if self.disabled {
            None
        } else {
            let place = self.host()?.device().place().clone();
            match Rendezvous::bind(&place, local) {
                Ok(r) => Some(Mutex::new(r)),
                Err(e) => {
                    tracing::warn!(%local, error = %e, "no rendezvous: this listener serves plain TCP only");
                    None
                }
            }
        };
        Ok(SmcListener {
            inner: Arc::new(Inner {
                nonblocking: AtomicBool::new(false),
                tcp,
                rendezvous,
                config: self.clone(),
            }),
        })
    }
}

impl SmcListener {
    /// A listener on `addr` with the environment's configuration.
    ///
    /// # Errors
    ///
    /// As `TcpListener::bind`.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<Self> {
        default_config().bind(addr)
    }

    /// Accept one connection.
    ///
    /// # Errors
    ///
    /// As `TcpListener::accept`.
    pub fn accept(&self) -> io::Result<(SmcStream, SocketAddr)> {
        let (tcp, peer) = self.inner.tcp.accept()?;
        let local = tcp.local_addr()?;
        let same_host = peer.ip().is_loopback() || peer.ip() == local.ip();
        let announced = same_host
            && self.inner.rendezvous.as_ref().is_some_and(|r| {
                r.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take(peer.port())
            });
        let config = &self.inner.config;
        if !announced || !config.allows(peer) {
            let why = if announced {
                TcpReason::Disabled
            } else {
                TcpReason::PlainClient
            };
            tcp.set_nonblocking(false)?;
            return Ok((SmcStream::plain(tcp, why), peer));
        }
        let wire = TcpWire::new(tcp.try_clone()?)?;
        let ep = Endpoint::server(config.host()?, wire, now_ms());
        let stream = SmcStream::smc(tcp, ep, config);
        // An smcd client answers within microseconds: settle the handshake
        // here when it is that quick (as Linux's accept returns negotiated
        // sockets), else leave the rest to the stream's first use so that a
        // slow client never holds up the listener.
        if !self.nonblocking() {
            stream.settle_within(ACCEPT_HANDSHAKE);
        }
        Ok((stream, peer))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<SmcStream>> + '_ {
        std::iter::repeat_with(|| self.accept().map(|(s, _)| s))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.tcp.local_addr()
    }

    /// Non-blocking `accept`.
    ///
    /// # Errors
    ///
    /// As `TcpListener::set_nonblocking`.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.tcp.set_nonblocking(on)?;
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    fn nonblocking(&self) -> bool {
        self.inner.nonblocking.load(Ordering::Relaxed)
    }

    /// A second handle to the same listener.
    ///
    /// # Errors
    ///
    /// Never; mirrors `TcpListener::try_clone`.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }

    /// The pending error of the socket (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// As `TcpListener::take_error`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.tcp.take_error()
    }
}

/// The readiness fd: the TCP listening socket (readable when a connection
/// waits to be accepted).
impl AsFd for SmcListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.tcp.as_fd()
    }
}

impl AsRawFd for SmcListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.tcp.as_raw_fd()
    }
}
