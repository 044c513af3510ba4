//! [`Pipe`]: an in-memory, fixed-capacity [`ByteStream`] pair that stands in
//! for a TCP connection between two endpoints of one address space.
//!
//! No allocation; the pipe can live in a `static` or on the stack, and its
//! two [`PipeEnd`]s can be used from two threads.
//!
//! ```
//! use smcd_core::endpoint::{ByteStream, Pipe, StreamErrorKind};
//!
//! let pipe = Pipe::<8>::new();
//! let (mut a, mut b) = pipe.ends();
//! assert_eq!(a.write(b"hello, world")?, 8); // capacity 8
//! let mut buf = [0u8; 16];
//! assert_eq!(b.read(&mut buf)?, 8);
//! assert_eq!(&buf[..8], b"hello, w");
//! assert_eq!(b.read(&mut buf), Err(StreamErrorKind::WouldBlock));
//! a.shutdown()?;
//! assert_eq!(b.read(&mut buf)?, 0); // EOF
//! # Ok::<(), StreamErrorKind>(())
//! ```

use crate::sync::SpinLock;
use heapless::Deque;

use super::stream::{ByteStream, StreamErrorKind};

/// One direction: queued bytes and whether the writer shut down.
#[derive(Debug)]
struct Direction<const N: usize> {
    bytes: Deque<u8, N>,
    shut_down: bool,
}

impl<const N: usize> Direction<N> {
    const fn new() -> Self {
        Self {
            bytes: Deque::new(),
            shut_down: false,
        }
    }
}

/// Two byte queues of capacity `N`, one per direction.
#[derive(Debug)]
pub struct Pipe<const N: usize> {
    /// Index 0 carries bytes from end 0 to end 1, index 1 the other way.
    dirs: [SpinLock<Direction<N>>; 2],
}

impl<const N: usize> Default for Pipe<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Pipe<N> {
    crate::sync::const_unless_loom! {
        /// An empty pipe.
        pub fn new() -> Self {
            Self {
                dirs: [
                    SpinLock::new(Direction::new()),
                    SpinLock::new(Direction::new()),
                ],
            }
        }
    }

    /// The two ends: conventionally the client's first, the server's second.
    /// Each end may be taken several times (all views of the same end share
    /// its queues).
    pub fn ends(&self) -> (PipeEnd<'_, N>, PipeEnd<'_, N>) {
        (
            PipeEnd {
                pipe: self,
                side: 0,
            },
            PipeEnd {
                pipe: self,
                side: 1,
            },
        )
    }

    fn dir(&self, index: usize) -> Option<&SpinLock<Direction<N>>> {
        self.dirs.get(index)
    }
}

/// One end of a [`Pipe`]: reads what the other end wrote.
#[derive(Debug, Clone, Copy)]
pub struct PipeEnd<'a, const N: usize> {
    pipe: &'a Pipe<N>,
    side: usize,
}

impl<const N: usize> PipeEnd<'_, N> {
    /// Bytes written by this end that the other end has not read yet.
    pub fn unread(&self) -> usize {
        self.pipe
            .dir(self.side)
            .map_or(0, |d| d.with(|d| d.bytes.len()))
    }
}

impl<const N: usize> ByteStream for PipeEnd<'_, N> {
    type Error = StreamErrorKind;

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamErrorKind> {
        let dir = self.pipe.dir(1 - self.side).ok_or(StreamErrorKind::Other)?;
        dir.with(|d| {
            if buf.is_empty() {
                return Ok(0);
            }
            let mut n = 0;
            for slot in buf.iter_mut() {
                match d.bytes.pop_front() {
                    Some(b) => {
                        *slot = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 && !d.shut_down {
                return Err(StreamErrorKind::WouldBlock);
            }
            Ok(n)
        })
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, StreamErrorKind> {
        let dir = self.pipe.dir(self.side).ok_or(StreamErrorKind::Other)?;
        dir.with(|d| {
            if d.shut_down {
                return Err(StreamErrorKind::WriteShutdown);
            }
            let mut n = 0;
            for &b in data {
                if d.bytes.push_back(b).is_err() {
                    break;
                }
                n += 1;
            }
            if n == 0 && !data.is_empty() {
                return Err(StreamErrorKind::WouldBlock);
            }
            Ok(n)
        })
    }

    fn shutdown(&mut self) -> Result<(), StreamErrorKind> {
        let dir = self.pipe.dir(self.side).ok_or(StreamErrorKind::Other)?;
        dir.with(|d| d.shut_down = true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_are_independent() {
        let pipe = Pipe::<4>::new();
        let (mut a, mut b) = pipe.ends();
        assert_eq!(a.write(b"ab"), Ok(2));
        assert_eq!(b.write(b"xyz12"), Ok(4));
        assert_eq!(b.write(b"!"), Err(StreamErrorKind::WouldBlock));
        assert_eq!((a.unread(), b.unread()), (2, 4));
        let mut buf = [0u8; 8];
        assert_eq!(a.read(&mut buf), Ok(4));
        assert_eq!(&buf[..4], b"xyz1");
        assert_eq!(b.read(&mut buf[..1]), Ok(1));
        assert_eq!(b.read(&mut buf), Ok(1));
        assert_eq!(buf[0], b'b');
        assert_eq!(b.read(&mut buf), Err(StreamErrorKind::WouldBlock));
    }

    #[test]
    fn shutdown_is_eof_after_the_queued_bytes() {
        let pipe = Pipe::<4>::new();
        let (mut a, mut b) = pipe.ends();
        a.write(b"x").unwrap();
        a.shutdown().unwrap();
        assert_eq!(a.write(b"y"), Err(StreamErrorKind::WriteShutdown));
        let mut buf = [0u8; 4];
        assert_eq!(b.read(&mut buf), Ok(1));
        assert_eq!(b.read(&mut buf), Ok(0));
        // The other direction is still open.
        assert_eq!(b.write(b"z"), Ok(1));
        assert_eq!(b.read(&mut []), Ok(0));
    }
}
