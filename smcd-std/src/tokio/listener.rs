//! The async listener.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, ready};

use ::tokio::io::Interest;
use ::tokio::io::unix::AsyncFd;
use ::tokio::net::{ToSocketAddrs, lookup_host};

use super::register::register;
use super::stream::SmcStream;
use crate::config::{SmcConfig, default_config};

/// An async [`SmcListener`](crate::SmcListener), shaped like
/// `tokio::net::TcpListener`: smcd clients of this host get SMC-D, everyone
/// else plain TCP.
///
/// `accept` returns as soon as the TCP connection is there; the CLC
/// handshake of an smcd client then finishes on the stream's first read,
/// write or [`transport`](SmcStream::transport), so a slow client never
/// holds up the accept loop.
///
/// ```no_run
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn demo() -> std::io::Result<()> {
/// let listener = smcd_std::tokio::SmcListener::bind("127.0.0.1:7000").await?;
/// loop {
///     let (mut s, peer) = listener.accept().await?;
///     tokio::spawn(async move {
///         let mut buf = vec![0u8; 64 * 1024];
///         while let Ok(n @ 1..) = s.read(&mut buf).await {
///             if s.write_all(&buf[..n]).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # }
/// ```
pub struct SmcListener {
    io: AsyncFd<crate::SmcListener>,
}

impl fmt::Debug for SmcListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}

impl SmcListener {
    /// A listener on `addr` (the first resolved address that binds) with
    /// the environment's configuration.
    ///
    /// # Errors
    ///
    /// As `TcpListener::bind`.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<Self> {
        Self::bind_with(default_config(), addr).await
    }

    /// A listener on `addr` with `config`.
    ///
    /// # Errors
    ///
    /// As `TcpListener::bind`.
    pub async fn bind_with<A: ToSocketAddrs>(config: &SmcConfig, addr: A) -> io::Result<Self> {
        let mut last = None;
        for a in lookup_host(addr).await? {
            match config.bind(a).and_then(Self::from_std) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            )
        }))
    }

    /// Take over a std listener: switched to non-blocking mode and
    /// registered with the current runtime.
    ///
    /// # Errors
    ///
    /// No runtime with an IO driver.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::io::unix::AsyncFd::new`.
    pub fn from_std(listener: crate::SmcListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            io: register(listener, Interest::READABLE)?,
        })
    }

    /// The std listener back, still in non-blocking mode.
    pub fn into_std(self) -> crate::SmcListener {
        self.io.into_inner()
    }

    /// Accept one connection (any number of tasks may wait here at once).
    ///
    /// # Errors
    ///
    /// As `TcpListener::accept`.
    pub async fn accept(&self) -> io::Result<(SmcStream, SocketAddr)> {
        loop {
            let mut guard = self.io.readable().await?;
            match guard.try_io(|l| l.get_ref().accept()) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => return r.and_then(|(s, peer)| Ok((SmcStream::from_std(s)?, peer))),
                Err(_would_block) => {}
            }
        }
    }

    /// Poll for one connection (for one task at a time, like
    /// `tokio::net::TcpListener::poll_accept`).
    ///
    /// # Errors
    ///
    /// As `TcpListener::accept`.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(SmcStream, SocketAddr)>> {
        loop {
            let mut guard = ready!(self.io.poll_read_ready(cx))?;
            match guard.try_io(|l| l.get_ref().accept()) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => {
                    return Poll::Ready(r.and_then(|(s, peer)| Ok((SmcStream::from_std(s)?, peer))));
                }
                Err(_would_block) => {}
            }
        }
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The std listener (non-blocking).
    pub fn get_ref(&self) -> &crate::SmcListener {
        self.io.get_ref()
    }
}
