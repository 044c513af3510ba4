//! Feature `mio`: [`mio::event::Source`] for [`SmcStream`] and
//! [`SmcListener`].
//!
//! Both register their readiness fd ([`AsFd`](std::os::fd::AsFd)) with a
//! [`SourceFd`]. For a listener and a plain TCP stream that is the socket,
//! with the usual meaning of readable and writable. For an SMC stream it is
//! an epoll set that reports **readable** whenever a read *or a write* may
//! have something new — bytes, EOF, room in the peer's ring, an error, a
//! handshake step — and never writable: registering one always adds
//! [`Interest::READABLE`], and on every event of its token retry both the
//! reads and the writes that reported `WouldBlock`.
//!
//! mio's registrations are edge-triggered: after an event, call until
//! `WouldBlock` (or until there is nothing left to do) before polling
//! again. The stream must be in non-blocking mode
//! ([`SmcStream::set_nonblocking`]), like every mio source; so must the
//! listener, whose `accept` then returns at once and leaves the CLC
//! handshake to the stream's first read or write.

use std::io;
use std::os::fd::AsRawFd;

use ::mio::event::Source;
use ::mio::unix::SourceFd;
use ::mio::{Interest, Registry, Token};

use crate::{SmcListener, SmcStream};

impl SmcStream {
    /// The interests to register the readiness fd with.
    fn mio_interests(&self, interests: Interest) -> Interest {
        if self.is_plain() {
            interests
        } else {
            interests.add(Interest::READABLE)
        }
    }
}

/// Registers the stream's readiness fd (see [feature `mio`](crate#feature-mio)): an
/// SMC stream's event is always "readable" and means "retry reads and
/// writes". The stream must be non-blocking.
///
/// ```no_run
/// use std::io::{ErrorKind, Read, Write};
/// use mio::{Events, Interest, Poll, Token};
///
/// let mut s = smcd_std::SmcStream::connect("127.0.0.1:7000")?;
/// s.set_nonblocking(true)?;
/// let mut poll = Poll::new()?;
/// poll.registry()
///     .register(&mut s, Token(0), Interest::READABLE | Interest::WRITABLE)?;
/// let mut events = Events::with_capacity(8);
/// let (mut out, mut buf) = (&b"ping"[..], [0u8; 4]);
/// loop {
///     // Every event: retry the write and the read until WouldBlock.
///     while !out.is_empty() {
///         match s.write(out) {
///             Ok(n) => out = &out[n..],
///             Err(e) if e.kind() == ErrorKind::WouldBlock => break,
///             Err(e) => return Err(e),
///         }
///     }
///     match s.read(&mut buf) {
///         Ok(n) => break println!("{n} bytes back"),
///         Err(e) if e.kind() == ErrorKind::WouldBlock => {}
///         Err(e) => return Err(e),
///     }
///     poll.poll(&mut events, None)?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
impl Source for SmcStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        let fd = self.ready_fd()?.as_raw_fd();
        // mio is edge-triggered: leave the doorbell undrained from now on.
        self.set_edge_triggered();
        SourceFd(&fd).register(registry, token, self.mio_interests(interests))
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        let fd = self.ready_fd()?.as_raw_fd();
        SourceFd(&fd).reregister(registry, token, self.mio_interests(interests))
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        let fd = self.ready_fd()?.as_raw_fd();
        SourceFd(&fd).deregister(registry)
    }
}

/// Registers the listening socket: readable when `accept` (non-blocking)
/// may return a connection.
///
/// ```no_run
/// use mio::{Events, Interest, Poll, Token};
///
/// let mut listener = smcd_std::SmcListener::bind("127.0.0.1:7000")?;
/// listener.set_nonblocking(true)?;
/// let mut poll = Poll::new()?;
/// poll.registry()
///     .register(&mut listener, Token(0), Interest::READABLE)?;
/// let mut events = Events::with_capacity(8);
/// poll.poll(&mut events, None)?;
/// let (stream, peer) = listener.accept()?;
/// stream.set_nonblocking(true)?;
/// # Ok::<(), std::io::Error>(())
/// ```
impl Source for SmcListener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.as_raw_fd()).deregister(registry)
    }
}
