//! [`ByteStream`]: the TCP-like connection an [`Endpoint`](super::Endpoint)
//! runs its CLC handshake on, and the application data on after a fallback.
//!
//! The trait is deliberately small and non-blocking, shaped after a
//! non-blocking `std::net::TcpStream`: reads and writes return at once,
//! "nothing now" is an error of kind [`StreamErrorKind::WouldBlock`], and a
//! read of `Ok(0)` into a non-empty buffer is end of stream. A unikernel
//! implements it on its TCP socket (e.g. a smoltcp socket), the std adapter
//! on a non-blocking `TcpStream`, tests and in-process pairs on
//! [`Pipe`](super::Pipe).

use core::fmt;

/// Generic classes of stream errors (embedded-hal style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StreamErrorKind {
    /// Nothing can be read or written right now; try again later.
    WouldBlock,
    /// Writing after our own [`shutdown`](ByteStream::shutdown).
    WriteShutdown,
    /// The connection was reset or broke.
    Reset,
    /// Anything else.
    Other,
}

impl fmt::Display for StreamErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WouldBlock => "operation would block",
            Self::WriteShutdown => "write side already shut down",
            Self::Reset => "connection reset",
            Self::Other => "stream error",
        })
    }
}

impl core::error::Error for StreamErrorKind {}

/// A stream error: anything with a [`kind`](StreamError::kind).
pub trait StreamError: fmt::Debug {
    /// The generic class of this error.
    fn kind(&self) -> StreamErrorKind;
}

impl StreamError for StreamErrorKind {
    fn kind(&self) -> StreamErrorKind {
        *self
    }
}

/// A reliable, ordered, non-blocking byte stream (the TCP connection).
pub trait ByteStream {
    /// The error of every operation.
    type Error: StreamError;

    /// Read available bytes into `buf` without blocking.
    ///
    /// Returns the number of bytes read; `Ok(0)` for a non-empty `buf` means
    /// the peer shut down its write side and every byte was read (EOF).
    ///
    /// # Errors
    ///
    /// Kind [`StreamErrorKind::WouldBlock`] when no byte is there yet; other
    /// kinds when the stream is broken.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;

    /// Write as many bytes of `data` as fit now, without blocking.
    ///
    /// Returns the number of bytes accepted (at least 1 for non-empty `data`).
    ///
    /// # Errors
    ///
    /// Kind [`StreamErrorKind::WouldBlock`] when nothing fits now;
    /// [`StreamErrorKind::WriteShutdown`] after [`shutdown`](Self::shutdown);
    /// other kinds when the stream is broken.
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error>;

    /// Shut down our write side (TCP FIN): the peer reads EOF after the bytes
    /// already written. Calling it again is harmless.
    ///
    /// # Errors
    ///
    /// When the stream is broken.
    fn shutdown(&mut self) -> Result<(), Self::Error>;
}

impl<T: ByteStream + ?Sized> ByteStream for &mut T {
    type Error = T::Error;

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        (**self).read(buf)
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        (**self).write(data)
    }

    fn shutdown(&mut self) -> Result<(), Self::Error> {
        (**self).shutdown()
    }
}
