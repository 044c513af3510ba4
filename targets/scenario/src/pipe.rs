//! The in-image "TCP connection": one byte pipe per direction that carries
//! the CLC messages and, after a fallback, the application's bytes.

/// Capacity of one direction: room for the largest CLC message and more.
pub(crate) const PIPE_BYTES: usize = 2048;

/// A fixed-capacity FIFO of bytes (one direction of the stream).
#[derive(Debug)]
pub(crate) struct Pipe {
    buf: [u8; PIPE_BYTES],
    start: usize,
    end: usize,
}

impl Pipe {
    /// An empty pipe.
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; PIPE_BYTES],
            start: 0,
            end: 0,
        }
    }

    /// Append as much of `data` as fits; returns how much did.
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = data.len().min(PIPE_BYTES - self.end);
        self.buf[self.end..self.end + n].copy_from_slice(&data[..n]);
        self.end += n;
        n
    }

    /// The bytes waiting to be read, oldest first.
    pub(crate) fn readable(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drop the first `n` readable bytes (at most all of them).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_across_compaction() {
        let mut p = Pipe::new();
        assert_eq!(p.write(b"hello "), 6);
        p.consume(2);
        assert_eq!(p.write(b"world"), 5);
        assert_eq!(p.readable(), b"llo world");
        p.consume(100);
        assert!(p.readable().is_empty());
    }

    #[test]
    fn write_stops_at_capacity() {
        let mut p = Pipe::new();
        assert_eq!(p.write(&[7; PIPE_BYTES + 10]), PIPE_BYTES);
        assert_eq!(p.write(b"x"), 0);
        p.consume(1);
        assert_eq!(p.write(b"xy"), 1);
    }
}
