//! Reassembly of CLC messages from a TCP byte stream split anywhere.
//!
//! Linux reads a CLC message in three steps (`docs/protocol/clc.md` §6): peek the
//! 8-byte header, check it, then read `length` bytes into a receive buffer of
//! fixed size (652 bytes for Proposal and Confirm, 160 for Accept). Bytes of a
//! longer message beyond the buffer are read and discarded, so the stream
//! stays aligned on the next message.
//!
//! [`Reader`] does the same incrementally: it consumes exactly one message
//! and never a byte more, so whatever follows the last CLC message (the
//! application data after a Decline) stays with the caller.

use crate::wire::clc::{CLC_HEADER_LEN, PROPOSAL_RCVBUF_BYTES};

/// Largest receive buffer Linux uses for a CLC message (Proposal, Confirm).
const RX_BUF_BYTES: usize = PROPOSAL_RCVBUF_BYTES;

/// Progress of one message.
#[derive(Debug)]
pub(crate) enum Read<'r, E> {
    /// More bytes are needed.
    Incomplete,
    /// The header check failed; the header bytes were consumed.
    BadHeader(E),
    /// A whole message: the first `min(length, cap)` bytes of it.
    Message(&'r [u8]),
}

/// Incremental reader of one CLC message at a time.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: [u8; RX_BUF_BYTES],
    /// Bytes of the current message consumed so far.
    received: usize,
    /// Total length from the checked header.
    total: Option<usize>,
    /// Bytes of the current message kept (the receive-buffer size).
    cap: usize,
}

impl Reader {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; RX_BUF_BYTES],
            received: 0,
            total: None,
            cap: RX_BUF_BYTES,
        }
    }

    /// Forget any partial message.
    pub(crate) fn reset(&mut self) {
        self.received = 0;
        self.total = None;
        self.cap = RX_BUF_BYTES;
    }

    /// Consume bytes of `data` up to the end of the current message.
    ///
    /// `check` sees the 8 header bytes once and returns the message length
    /// (values below the header length count as the header alone) and the
    /// receive-buffer size for it: that many bytes (at most 652) of the
    /// message are kept. Returns the number of bytes consumed and the
    /// progress; after [`Read::Message`] or [`Read::BadHeader`] the next call
    /// starts a new message.
    pub(crate) fn feed<E>(
        &mut self,
        data: &[u8],
        check: impl FnOnce(&[u8]) -> Result<(usize, usize), E>,
    ) -> (usize, Read<'_, E>) {
        if self.total.is_some_and(|t| self.received >= t) {
            self.reset();
        }
        let mut used = 0;
        if self.total.is_none() {
            let want = CLC_HEADER_LEN.saturating_sub(self.received);
            let take = want.min(data.len());
            used = self.store(data.get(..take).unwrap_or_default());
            if self.received < CLC_HEADER_LEN {
                return (used, Read::Incomplete);
            }
            let header = self.buf.get(..CLC_HEADER_LEN).unwrap_or_default();
            match check(header) {
                Ok((len, cap)) => {
                    self.total = Some(len.max(CLC_HEADER_LEN));
                    self.cap = cap.clamp(CLC_HEADER_LEN, RX_BUF_BYTES);
                }
                Err(e) => {
                    self.reset();
                    return (used, Read::BadHeader(e));
                }
            }
        }
        let total = self.total.unwrap_or(CLC_HEADER_LEN);
        let rest = data.get(used..).unwrap_or_default();
        let take = total.saturating_sub(self.received).min(rest.len());
        used += self.store(rest.get(..take).unwrap_or_default());
        if self.received < total {
            return (used, Read::Incomplete);
        }
        let kept = total.min(self.cap);
        (
            used,
            Read::Message(self.buf.get(..kept).unwrap_or_default()),
        )
    }

    /// Append `bytes` to the message, keeping what fits in the buffer.
    fn store(&mut self, bytes: &[u8]) -> usize {
        let room = self.cap.saturating_sub(self.received);
        let keep = room.min(bytes.len());
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.received..self.received + keep),
            bytes.get(..keep),
        ) {
            dst.copy_from_slice(src);
        }
        self.received = self.received.saturating_add(bytes.len());
        bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Length from bytes 5–6 of an `X…` header, receive buffer from byte 1.
    fn len_from_header(h: &[u8]) -> Result<(usize, usize), ()> {
        match h {
            [b'X', cap, _, _, _, hi, lo, _] => Ok((
                usize::from(u16::from_be_bytes([*hi, *lo])),
                if *cap == 1 { 160 } else { 652 },
            )),
            _ => Err(()),
        }
    }

    fn message(len: u16, fill: u8) -> std::vec::Vec<u8> {
        let mut m = std::vec![fill; usize::from(len)];
        m[0] = b'X';
        m[5..7].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn one_byte_at_a_time_stops_at_message_end() {
        let mut stream = message(20, 7);
        stream.extend_from_slice(b"app data");
        let mut r = Reader::new();
        let mut got = None;
        for (i, b) in stream.iter().enumerate() {
            let (used, read) = r.feed(core::slice::from_ref(b), len_from_header);
            assert_eq!(used, 1);
            if let Read::Message(m) = read {
                got = Some((i, m.to_vec()));
                break;
            }
        }
        let (end, m) = got.unwrap();
        assert_eq!(end, 19);
        assert_eq!(m, message(20, 7));
    }

    #[test]
    fn whole_stream_at_once_leaves_trailing_bytes() {
        let mut stream = message(12, 1);
        stream.extend_from_slice(b"rest");
        let mut r = Reader::new();
        let (used, read) = r.feed(&stream, len_from_header);
        assert_eq!(used, 12);
        assert!(matches!(read, Read::Message(m) if m.len() == 12));
        // The next call starts a new message.
        let (used, read) = r.feed(&message(9, 2), len_from_header);
        assert_eq!(used, 9);
        assert!(matches!(read, Read::Message(m) if m.len() == 9));
    }

    #[test]
    fn long_message_is_truncated_to_cap_but_fully_consumed() {
        let mut stream = message(300, 3);
        stream[1] = 1;
        let mut r = Reader::new();
        let (used, read) = r.feed(&stream[..100], len_from_header);
        assert_eq!(used, 100);
        assert!(matches!(read, Read::Incomplete));
        let (used, read) = r.feed(&stream[100..], len_from_header);
        assert_eq!(used, 200);
        assert!(matches!(read, Read::Message(m) if m == &stream[..160]));
    }

    #[test]
    fn bad_header_consumes_only_the_header() {
        let mut r = Reader::new();
        let (used, read) = r.feed(b"YYYYYYYYYYYY", len_from_header);
        assert_eq!(used, 8);
        assert!(matches!(read, Read::BadHeader(())));
    }

    #[test]
    fn short_length_counts_as_header_only() {
        let mut r = Reader::new();
        let (used, read) = r.feed(&message(8, 0)[..8], |_| Ok::<_, ()>((3, 652)));
        assert_eq!(used, 8);
        assert!(matches!(read, Read::Message(m) if m.len() == 8));
    }
}
