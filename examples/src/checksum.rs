//! [`Checksum`]: a fast running 64-bit checksum of a byte stream, the same
//! whatever the chunking.
//!
//! Four independent 64-bit lanes each fold in one little-endian word of every
//! 32-byte block with an xor and a multiply (FNV style, with a 64-bit odd
//! constant); the tail and the length are folded in at the end. Fast enough
//! (several GB/s) not to hide the transport being measured, and sensitive to
//! every byte and its position within a block, to block order and to length.
//! Not cryptographic.

/// Bytes per block: one 64-bit word per lane.
const BLOCK_BYTES: usize = 32;
/// Odd multiplier (2⁶⁴ / golden ratio).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
/// Lane seeds (FNV-1a 64-bit offset basis, varied per lane).
const SEEDS: [u64; 4] = [
    0xcbf2_9ce4_8422_2325,
    0xcbf2_9ce4_8422_2325 ^ 1,
    0xcbf2_9ce4_8422_2325 ^ 2,
    0xcbf2_9ce4_8422_2325 ^ 3,
];

/// A running checksum.
#[derive(Debug, Clone)]
pub struct Checksum {
    lanes: [u64; 4],
    carry: [u8; BLOCK_BYTES],
    carry_len: usize,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    /// The checksum of nothing yet.
    pub const fn new() -> Self {
        Self {
            lanes: SEEDS,
            carry: [0; BLOCK_BYTES],
            carry_len: 0,
            len: 0,
        }
    }

    fn block(&mut self, block: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(block.chunks_exact(8)) {
            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
            *lane = (*lane ^ w).wrapping_mul(MULTIPLIER);
        }
    }

    /// Feed the next bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.carry_len > 0 {
            let take = (BLOCK_BYTES - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            self.carry_len += take;
            data = &data[take..];
            if self.carry_len < BLOCK_BYTES {
                return;
            }
            let carry = self.carry;
            self.block(&carry);
            self.carry_len = 0;
        }
        let blocks = data.chunks_exact(BLOCK_BYTES);
        let tail = blocks.remainder();
        for b in blocks {
            self.block(b);
        }
        self.carry[..tail.len()].copy_from_slice(tail);
        self.carry_len = tail.len();
    }

    /// The checksum of everything fed so far.
    pub fn value(&self) -> u64 {
        let mut h = self.len.wrapping_mul(MULTIPLIER);
        for &b in &self.carry[..self.carry_len] {
            h = (h ^ u64::from(b)).wrapping_mul(MULTIPLIER);
        }
        for lane in self.lanes {
            h = (h.rotate_left(23) ^ lane).wrapping_mul(MULTIPLIER);
        }
        h ^ (h >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(data: &[u8]) -> u64 {
        let mut c = Checksum::new();
        c.update(data);
        c.value()
    }

    #[test]
    fn chunking_does_not_matter() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        let whole = of(&data);
        for split in [1, 5, 31, 32, 33, 64, 999] {
            let mut c = Checksum::new();
            for piece in data.chunks(split) {
                c.update(piece);
            }
            assert_eq!(c.value(), whole, "split {split}");
        }
    }

    #[test]
    fn every_byte_position_order_and_length_count() {
        let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let base = of(&data);
        for i in [0, 7, 8, 31, 32, 150, 199] {
            let mut d = data.clone();
            d[i] ^= 1;
            assert_ne!(of(&d), base, "byte {i}");
        }
        let mut swapped = data.clone();
        swapped[..64].rotate_left(32); // two blocks exchanged
        assert_ne!(of(&swapped), base);
        assert_ne!(of(&data[..199]), base);
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(of(&longer), base);
    }
}
