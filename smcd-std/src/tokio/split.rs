//! The halves of an async stream: borrowed ([`ReadHalf`], [`WriteHalf`])
//! and owned ([`OwnedReadHalf`], [`OwnedWriteHalf`]).

use std::error::Error;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stream::{Shared, SmcStream};

pub(crate) fn borrowed(shared: &Shared) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf(shared), WriteHalf(shared))
}

pub(crate) fn owned(shared: Arc<Shared>) -> (OwnedReadHalf, OwnedWriteHalf) {
    (
        OwnedReadHalf {
            shared: Arc::clone(&shared),
        },
        OwnedWriteHalf {
            shared,
            shutdown_on_drop: true,
        },
    )
}

/// The read half of a borrowed [`SmcStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a Shared);

/// The write half of a borrowed [`SmcStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a Shared);

/// The read half of [`SmcStream::into_split`]: [`AsyncRead`], for one task
/// while another owns the [`OwnedWriteHalf`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    shared: Arc<Shared>,
}

/// The write half of [`SmcStream::into_split`]: [`AsyncWrite`].
///
/// Dropping it shuts the write side down, as `poll_shutdown` would (but
/// without waiting: while a handshake still runs the shutdown may be
/// lost); [`forget`](Self::forget) drops it without.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    shared: Arc<Shared>,
    shutdown_on_drop: bool,
}

/// Two halves that were not split from the same stream, given back.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl Error for ReuniteError {}

impl OwnedReadHalf {
    /// The stream again, from this half and `other`.
    ///
    /// # Errors
    ///
    /// `other` belongs to another stream: both halves come back.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<SmcStream, ReuniteError> {
        if !Arc::ptr_eq(&self.shared, &other.shared) {
            return Err(ReuniteError(self, other));
        }
        let mut other = other;
        other.shutdown_on_drop = false;
        drop(other);
        Ok(SmcStream::from_shared(self.shared))
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::peer_addr`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared.std().peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.std().local_addr()
    }
}

impl OwnedWriteHalf {
    /// The stream again, from this half and `other`.
    ///
    /// # Errors
    ///
    /// `other` belongs to another stream: both halves come back.
    pub fn reunite(self, other: OwnedReadHalf) -> Result<SmcStream, ReuniteError> {
        other.reunite(self)
    }

    /// Drop this half without shutting the write side down.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::peer_addr`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared.std().peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.std().local_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.shared.std().shutdown(Shutdown::Write);
        }
    }
}

macro_rules! read_half {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.shared().poll_read(cx, buf)
            }
        }
    };
}

macro_rules! write_half {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.shared().poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.shared().poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.shared().is_write_vectored()
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.shared().poll_shutdown(cx)
            }
        }
    };
}

/// The shared registrations behind a half.
trait Half {
    fn shared(&self) -> &Shared;
}

impl Half for ReadHalf<'_> {
    fn shared(&self) -> &Shared {
        self.0
    }
}

impl Half for WriteHalf<'_> {
    fn shared(&self) -> &Shared {
        self.0
    }
}

impl Half for OwnedReadHalf {
    fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Half for OwnedWriteHalf {
    fn shared(&self) -> &Shared {
        &self.shared
    }
}

read_half!(ReadHalf<'_>);
read_half!(OwnedReadHalf);
write_half!(WriteHalf<'_>);
write_half!(OwnedWriteHalf);
