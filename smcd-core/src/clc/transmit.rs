//! Outgoing CLC bytes, handed to the caller in pieces of any size.

/// Room for the longest message this engine emits: a Proposal with 4 UEIDs
/// and 8 GID/CHID entries is 80 + 40 + 4·32 + 48 + 8·10 + 4 = 380 bytes.
pub(crate) const TX_BUF_BYTES: usize = 384;

/// One emitted message waiting to be written to the TCP stream.
#[derive(Debug)]
pub(crate) struct Transmit {
    buf: [u8; TX_BUF_BYTES],
    len: usize,
    sent: usize,
}

impl Transmit {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; TX_BUF_BYTES],
            len: 0,
            sent: 0,
        }
    }

    /// Queue a message written by `emit` into a zeroed buffer; `emit`
    /// returns the message length, or `None` if it could not write it.
    pub(crate) fn queue(&mut self, emit: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        self.buf = [0; TX_BUF_BYTES];
        self.sent = 0;
        self.len = emit(&mut self.buf).unwrap_or(0).min(TX_BUF_BYTES);
        self.len > 0
    }

    /// Copy as many pending bytes as fit into `out`.
    pub(crate) fn poll(&mut self, out: &mut [u8]) -> Option<usize> {
        let pending = self.buf.get(self.sent..self.len).unwrap_or_default();
        let n = pending.len().min(out.len());
        if n == 0 {
            return None;
        }
        if let (Some(dst), Some(src)) = (out.get_mut(..n), pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.sent += n;
        Some(n)
    }

    /// Whether bytes are waiting for [`poll`](Self::poll).
    pub(crate) fn is_pending(&self) -> bool {
        self.sent < self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_caller_sized_pieces() {
        let mut t = Transmit::new();
        assert!(t.queue(|b| {
            b[..5].copy_from_slice(b"hello");
            Some(5)
        }));
        let mut out = [0u8; 2];
        assert_eq!(t.poll(&mut out), Some(2));
        assert_eq!(&out, b"he");
        assert_eq!(t.poll(&mut []), None);
        assert!(t.is_pending());
        assert_eq!(t.poll(&mut out), Some(2));
        assert_eq!(t.poll(&mut out), Some(1));
        assert_eq!(out[0], b'o');
        assert_eq!(t.poll(&mut out), None);
        assert!(!t.is_pending());
    }

    #[test]
    fn failed_emit_queues_nothing() {
        let mut t = Transmit::new();
        assert!(!t.queue(|_| None));
        assert_eq!(t.poll(&mut [0; 8]), None);
    }
}
