//! [`Staged`]: a small fixed buffer of bytes waiting to go somewhere — CLC
//! bytes the stream did not take yet, or application bytes that arrived in
//! the same read as the last CLC message.

/// Capacity of a staging buffer; more than the longest CLC message this
/// engine emits (384 bytes), and the size of one handshake read.
pub(crate) const STAGE_BYTES: usize = 512;

/// Bytes `buf[start..end]` are waiting.
#[derive(Debug)]
pub(crate) struct Staged {
    buf: [u8; STAGE_BYTES],
    start: usize,
    end: usize,
}

impl Staged {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; STAGE_BYTES],
            start: 0,
            end: 0,
        }
    }

    /// The waiting bytes.
    pub(crate) fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// `n` waiting bytes went out.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Let `fill` write into the free tail; it returns how many bytes it wrote.
    pub(crate) fn fill(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let free = self.buf.get_mut(self.end..).unwrap_or_default();
        let n = fill(free).min(free.len());
        self.end += n;
        n
    }

    /// Copy waiting bytes into `out`; returns how many.
    pub(crate) fn take_into(&mut self, out: &mut [u8]) -> usize {
        let pending = self.pending();
        let n = pending.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_consume_take() {
        let mut s = Staged::new();
        assert!(s.is_empty());
        assert_eq!(
            s.fill(|b| {
                b[..3].copy_from_slice(b"abc");
                3
            }),
            3
        );
        assert_eq!(s.fill(|b| b.len() + 10), STAGE_BYTES - 3);
        assert_eq!(&s.pending()[..3], b"abc");
        s.consume(3);
        assert_eq!(s.pending().len(), STAGE_BYTES - 3);
        s.consume(usize::MAX);
        assert!(s.is_empty());
        s.fill(|b| {
            b[..3].copy_from_slice(b"xyz");
            3
        });
        let mut out = [0u8; 2];
        assert_eq!(s.take_into(&mut out), 2);
        assert_eq!(&out, b"xy");
        assert_eq!(s.pending(), b"z");
        assert_eq!(s.take_into(&mut out), 1);
        assert!(s.is_empty());
    }
}
