//! The async stream: the std stream in non-blocking mode, registered with
//! the runtime's reactor.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use ::tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use ::tokio::net::ToSocketAddrs;

use super::register::{Ready, register};
use super::split::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::config::{SmcConfig, default_config};
use crate::transport::Transport;

/// The registrations of one stream, shared by its halves.
///
/// Reads wait on `io`. An SMC stream's readiness fd only ever reports
/// readable, and tokio keeps one waker per direction of a registration:
/// writes therefore wait on a second registration of the same epoll set (a
/// duplicate fd), so that a reader and a writer in two tasks each keep
/// their own waker. A plain TCP stream's writes wait on `io`'s writability.
pub(crate) struct Shared {
    io: AsyncFd<Ready>,
    write: Option<AsyncFd<OwnedFd>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}

/// What one attempt of a non-blocking call gave.
enum Try<T> {
    Done(io::Result<T>),
    WouldBlock,
}

/// Run a non-blocking call, again at once when a signal interrupted it.
fn attempt<T>(mut op: impl FnMut() -> io::Result<T>) -> Try<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Try::WouldBlock,
            r => return Try::Done(r),
        }
    }
}

impl Shared {
    fn new(std: crate::SmcStream) -> io::Result<Self> {
        std.set_nonblocking(true)?;
        std.set_edge_triggered();
        let write = if std.is_plain() {
            None
        } else {
            let dup = rustix::io::fcntl_dupfd_cloexec(std.ready_fd()?, 0)?;
            Some(register(dup, Interest::READABLE)?)
        };
        let interest = if write.is_some() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        Ok(Self {
            io: register(Ready::new(std)?, interest)?,
            write,
        })
    }

    pub(crate) fn std(&self) -> &crate::SmcStream {
        self.io.get_ref().stream()
    }

    /// Run `op` until it does not report `WouldBlock`, waiting on `ready`.
    ///
    /// `op` is tried even when the registration is not ready: the
    /// readiness fd of an SMC stream promises an event for every change
    /// *after* a call reported `WouldBlock`, not that it is readable when
    /// registered.
    fn poll_op<'a, F: AsRawFd + 'a, T>(
        cx: &mut Context<'_>,
        mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<AsyncFdReadyGuard<'a, F>>>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            // Registers the waker before the attempt when not ready, so a
            // change after the attempt's last look wakes this task.
            let guard = match ready(cx) {
                Poll::Ready(g) => Some(g?),
                Poll::Pending => None,
            };
            match attempt(&mut op) {
                Try::Done(r) => return Poll::Ready(r),
                Try::WouldBlock => match guard {
                    // Readiness that this attempt used up: clear it (unless
                    // an event came meanwhile) and look again.
                    Some(mut g) => g.clear_ready(),
                    None => return Poll::Pending,
                },
            }
        }
    }

    pub(crate) fn poll_read_op<T>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&crate::SmcStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let std = self.std();
        Self::poll_op(cx, |cx| self.io.poll_read_ready(cx), || op(std))
    }

    pub(crate) fn poll_write_op<T>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&crate::SmcStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let std = self.std();
        match &self.write {
            Some(dup) => Self::poll_op(cx, |cx| dup.poll_read_ready(cx), || op(std)),
            None => Self::poll_op(cx, |cx| self.io.poll_write_ready(cx), || op(std)),
        }
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let n = ready!(self.poll_read_op(cx, |mut s| s.read(buf.initialize_unfilled())))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_write_op(cx, |mut s| s.write(data))
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        self.poll_write_op(cx, |mut s| s.write_vectored(bufs))
    }

    /// Plain TCP writes whole vectors; an SMC stream writes the first
    /// non-empty slice.
    pub(crate) fn is_write_vectored(&self) -> bool {
        self.std().is_plain()
    }

    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_op(cx, |s| s.shutdown(Shutdown::Write))
    }
}

/// An async [`SmcStream`](crate::SmcStream): SMC-D between smcd ends of
/// this host, TCP otherwise; shaped like `tokio::net::TcpStream`.
///
/// Reading and writing are [`AsyncRead`] and [`AsyncWrite`];
/// [`poll_shutdown`](AsyncWrite::poll_shutdown) (`AsyncWriteExt::shutdown`)
/// shuts the write side down, so the peer reads EOF after the last byte.
/// For a reader and a writer in two tasks, [`into_split`](Self::into_split).
///
/// ```no_run
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn demo() -> std::io::Result<()> {
/// let mut s = smcd_std::tokio::SmcStream::connect("127.0.0.1:7000").await?;
/// println!("transport: {}", s.transport().await?);
/// s.write_all(b"ping").await?;
/// s.shutdown().await?;
/// let mut reply = Vec::new();
/// s.read_to_end(&mut reply).await?;
/// # Ok(())
/// # }
/// ```
pub struct SmcStream {
    shared: Arc<Shared>,
}

impl fmt::Debug for SmcStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl SmcStream {
    /// Connect to `addr` (each resolved address in turn) with the
    /// environment's configuration, without blocking the runtime: TCP
    /// connect, rendezvous and CLC handshake all run on the reactor.
    ///
    /// # Errors
    ///
    /// As [`crate::SmcStream::connect`].
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<Self> {
        super::connect::connect(default_config(), addr).await
    }

    /// Connect to `addr` with `config` (see [`connect`](Self::connect)).
    ///
    /// # Errors
    ///
    /// As [`crate::SmcStream::connect`].
    pub async fn connect_with<A: ToSocketAddrs>(config: &SmcConfig, addr: A) -> io::Result<Self> {
        super::connect::connect(config, addr).await
    }

    /// Take over a std stream: it is switched to non-blocking mode and its
    /// readiness fd registered with the current runtime. A handshake still
    /// running (a std listener's in non-blocking mode) finishes on the
    /// stream's first use; finish it with [`transport`](Self::transport)
    /// before the halves of a split wait in two tasks.
    ///
    /// # Errors
    ///
    /// No readiness fd (out of fds), or no runtime with an IO driver.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::io::unix::AsyncFd::new`.
    pub fn from_std(stream: crate::SmcStream) -> io::Result<Self> {
        Ok(Self {
            shared: Arc::new(Shared::new(stream)?),
        })
    }

    /// The std stream back, still in non-blocking mode (as
    /// `tokio::net::TcpStream::into_std`).
    ///
    /// # Errors
    ///
    /// Deregistering failed.
    pub fn into_std(self) -> io::Result<crate::SmcStream> {
        let shared = Arc::try_unwrap(self.shared)
            .map_err(|_| io::Error::other("the stream is still shared by split halves"))?;
        drop(shared.write);
        Ok(shared.io.into_inner().into_stream())
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The std stream (non-blocking), e.g. for its socket options. Its
    /// reads and writes report `WouldBlock` instead of waiting.
    pub fn get_ref(&self) -> &crate::SmcStream {
        self.shared.std()
    }

    /// Which path the bytes take, once the handshake is done (an accepted
    /// stream's may still be running; it is driven here).
    ///
    /// # Errors
    ///
    /// The handshake failed (see [`connect`](Self::connect)).
    pub async fn transport(&self) -> io::Result<Transport> {
        std::future::poll_fn(|cx| self.poll_transport(cx)).await
    }

    /// Drive the handshake; ready once the transport is settled.
    pub(crate) fn poll_transport(&self, cx: &mut Context<'_>) -> Poll<io::Result<Transport>> {
        self.shared.poll_read_op(cx, crate::SmcStream::transport)
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::peer_addr`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().local_addr()
    }

    /// `TCP_NODELAY` on the TCP connection.
    ///
    /// # Errors
    ///
    /// As `TcpStream::set_nodelay`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.get_ref().set_nodelay(on)
    }

    /// `TCP_NODELAY` of the TCP connection.
    ///
    /// # Errors
    ///
    /// As `TcpStream::nodelay`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.get_ref().nodelay()
    }

    /// Borrowed halves for a reader and a writer in one task (e.g.
    /// `tokio::io::copy(&mut r, &mut w)`).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split::borrowed(&self.shared)
    }

    /// Owned halves that two tasks can drive at once; dropping the write
    /// half shuts the write side down (unless
    /// [`forget`](OwnedWriteHalf::forget)), and
    /// [`reunite`](OwnedReadHalf::reunite) puts them back together.
    ///
    /// ```no_run
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # async fn demo() -> std::io::Result<()> {
    /// let s = smcd_std::tokio::SmcStream::connect("127.0.0.1:7000").await?;
    /// let (mut r, mut w) = s.into_split();
    /// let writer = tokio::spawn(async move {
    ///     w.write_all(&[7u8; 1 << 20]).await?;
    ///     w.shutdown().await
    /// });
    /// let mut back = Vec::new();
    /// r.read_to_end(&mut back).await?;
    /// writer.await??;
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::owned(self.shared)
    }
}

impl AsyncRead for SmcStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.shared.poll_read(cx, buf)
    }
}

impl AsyncWrite for SmcStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.shared.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.shared.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.shared.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared.poll_shutdown(cx)
    }
}
