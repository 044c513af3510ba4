//! The async listener.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

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
/// `accept` returns streams whose CLC handshake is done (as Linux's SMC
/// `accept` does): the listener drives the handshakes of the connections
/// it has taken, all at once, and hands each over when it settles, so a
/// slow client holds up nobody but itself. Past
/// 64 unfinished handshakes it hands the oldest over as it is; its
/// handshake then finishes on the stream's first use.
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
    /// Accepted connections whose handshake still runs, oldest first.
    pending: Mutex<VecDeque<(SmcStream, SocketAddr)>>,
    /// The tasks waiting in `accept`, and the waker that wakes them all:
    /// the listening socket and every pending handshake are polled with
    /// it, so any number of tasks may accept at once.
    waiting: Arc<Waiting>,
    waker: Waker,
}

/// Unfinished handshakes the listener keeps before it hands one over as is.
const MAX_PENDING: usize = 64;

#[derive(Debug, Default)]
struct Waiting(Mutex<Vec<Waker>>);

impl Waiting {
    fn add(&self, w: &Waker) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !list.iter().any(|x| x.will_wake(w)) {
            list.push(w.clone());
        }
    }
}

impl Wake for Waiting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let list = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        for w in list {
            w.wake();
        }
    }
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
        let waiting = Arc::new(Waiting::default());
        Ok(Self {
            io: register(listener, Interest::READABLE)?,
            pending: Mutex::new(VecDeque::new()),
            waker: Waker::from(Arc::clone(&waiting)),
            waiting,
        })
    }

    /// The std listener back, still in non-blocking mode (connections
    /// whose handshake was still running are closed).
    pub fn into_std(self) -> crate::SmcListener {
        self.io.into_inner()
    }

    /// Accept one connection, its handshake done (any number of tasks may
    /// wait here at once; dropping the future loses no connection).
    ///
    /// # Errors
    ///
    /// As `TcpListener::accept`.
    pub async fn accept(&self) -> io::Result<(SmcStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll for one connection (see [`accept`](Self::accept)).
    ///
    /// # Errors
    ///
    /// As `TcpListener::accept`.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(SmcStream, SocketAddr)>> {
        // Listed before looking: a change after the look wakes this task.
        self.waiting.add(cx.waker());
        let mut all = Context::from_waker(&self.waker);
        let cx = &mut all;
        let mut pending = self.pending();
        if let Some(i) = (0..pending.len()).find(|&i| pending[i].0.poll_transport(cx).is_ready()) {
            return Poll::Ready(Ok(pending.remove(i).unwrap_or_else(|| unreachable!())));
        }
        loop {
            if pending.len() >= MAX_PENDING {
                if let Some(oldest) = pending.pop_front() {
                    return Poll::Ready(Ok(oldest));
                }
            }
            let (std, peer) = match self.io.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(mut guard)) => match guard.try_io(|l| l.get_ref().accept()) {
                    Ok(Ok(got)) => got,
                    Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(Err(e)) => return Poll::Ready(Err(e)),
                    Err(_would_block) => continue,
                },
            };
            let stream = SmcStream::from_std(std)?;
            // A failed handshake is the stream's to report, as in std.
            if stream.poll_transport(cx).is_ready() {
                return Poll::Ready(Ok((stream, peer)));
            }
            pending.push_back((stream, peer));
        }
    }

    fn pending(&self) -> MutexGuard<'_, VecDeque<(SmcStream, SocketAddr)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
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
