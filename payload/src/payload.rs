//! [`Payload`]: a deterministic pseudo-random byte stream, served from a
//! pre-generated pool so that producing it costs no more than a copy.
//!
//! Stream byte `i` is `pool[i % pool.len()]`. The pool length is odd and not a
//! multiple of any ring size, so bytes delivered from the wrong lap of a ring
//! or out of order do not line up with the expected stream.

use crate::checksum::Checksum;

/// Default pool length: 4 MiB + 4093 bytes.
pub const POOL_BYTES: usize = (4 << 20) + 4093;

/// A pool of pseudo-random bytes (splitmix64 of a seed).
#[derive(Debug, Clone)]
pub struct Payload {
    pool: Vec<u8>,
}

impl Payload {
    /// A pool of `len` bytes from `seed`.
    pub fn new(seed: u64, len: usize) -> Self {
        let mut state = seed;
        let mut pool = Vec::with_capacity(len + 8);
        while pool.len() < len {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            pool.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        pool.truncate(len);
        Self { pool }
    }

    /// The stream's bytes from position `at`, at most `max` of them (fewer at
    /// the end of the pool; never empty for `max > 0`).
    pub fn at(&self, at: u64, max: usize) -> &[u8] {
        let start = (at % self.pool.len() as u64) as usize;
        let end = start + max.min(self.pool.len() - start);
        &self.pool[start..end]
    }
}

impl Payload {
    /// The checksum of the stream's first `bytes` bytes.
    pub fn checksum(&self, bytes: u64) -> u64 {
        let mut sum = Checksum::new();
        let mut at = 0;
        while at < bytes {
            let piece = self.at(at, usize::try_from(bytes - at).unwrap_or(usize::MAX));
            sum.update(piece);
            at += piece.len() as u64;
        }
        sum.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_repeats_the_pool() {
        let p = Payload::new(1, 11);
        assert_eq!(p.at(0, 100).len(), 11);
        assert_eq!(p.at(3, 4), &p.at(0, 11)[3..7]);
        assert_eq!(p.at(11 + 3, 4), p.at(3, 4));
        assert_ne!(Payload::new(2, 11).at(0, 11), p.at(0, 11));
    }
}
