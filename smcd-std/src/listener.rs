//! [`SmcListener`]: a TCP listener that announces itself on the host-local
//! rendezvous, so that smcd clients speak CLC with it and everyone else gets
//! plain TCP.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smcd_core::endpoint::Endpoint;

use crate::clc_start;
use crate::config::{SmcConfig, default_config};
use crate::rendezvous::{Rendezvous, Trust};
use crate::stream::SmcStream;
use crate::tcp::TcpWire;
use crate::transport::TcpReason;
use crate::wait::now_ms;

/// How long `accept` drives a new connection's handshake itself.
const ACCEPT_HANDSHAKE: Duration = Duration::from_millis(100);

/// After a handshake that `accept` could not settle within
/// [`ACCEPT_HANDSHAKE`] (or a connection another user announced that sent
/// nothing CLC-like within it), how long `accept` leaves new handshakes to the
/// streams' first use: clients that announce themselves and then stay
/// silent cost the accept loop at most 100 ms a second, not 100 ms each.
const SETTLE_PAUSE_MS: u64 = 1_000;

#[derive(Debug)]
struct Inner {
    nonblocking: AtomicBool,
    /// `now_ms()` before which `accept` does not settle handshakes.
    settle_paused_until: AtomicU64,
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
/// finishes on the stream's first use, so it never holds up the listener
/// (and for a second after such a client, `accept` leaves every handshake
/// to the stream's first use).
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
            let host = self.host()?;
            let (place, policy) = (host.device().place().clone(), host.device().policy());
            match Rendezvous::bind(&place, local, policy) {
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
                settle_paused_until: AtomicU64::new(0),
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
        let trust = self
            .inner
            .rendezvous
            .as_ref()
            .filter(|_| same_host)
            .and_then(|r| {
                r.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take(peer.port())
            });
        let may_wait = self.may_wait();
        let announced = match trust {
            Some(Trust::Admitted) => true,
            Some(Trust::Foreign) => self.foreign_speaks_clc(&tcp, may_wait),
            None => false,
        };
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
        // slow client never holds up the listener (and after one that was
        // slow, settle none for a while: see SETTLE_PAUSE_MS).
        if may_wait && !stream.settle_within(ACCEPT_HANDSHAKE) {
            self.pause_settling();
        }
        Ok((stream, peer))
    }

    /// Whether `accept` may wait for a client now (blocking, not paused).
    fn may_wait(&self) -> bool {
        !self.nonblocking() && now_ms() >= self.inner.settle_paused_until.load(Ordering::Relaxed)
    }

    /// Another user's announcement may be a forgery for a plain client's
    /// port: speak CLC only if the connection's first bytes are CLC (an
    /// smcd client sends its Proposal at once), waiting for them only when
    /// `may_wait`.
    fn foreign_speaks_clc(&self, tcp: &std::net::TcpStream, may_wait: bool) -> bool {
        let wait = match may_wait {
            true => ACCEPT_HANDSHAKE,
            false => Duration::ZERO,
        };
        let clc = clc_start::starts_with_clc(tcp, wait);
        if !clc && may_wait {
            self.pause_settling();
        }
        clc
    }

    /// A client kept `accept` waiting in vain: wait for none for a while.
    fn pause_settling(&self) {
        self.inner
            .settle_paused_until
            .store(now_ms().saturating_add(SETTLE_PAUSE_MS), Ordering::Relaxed);
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
