//! [`Checksum`]: a fast running 64-bit checksum of a byte stream, the same
//! whatever the chunking.
//!
//! Eight independent 64-bit lanes each fold in one little-endian word of
//! every 64-byte block with an xor, a multiply by a 64-bit odd constant and a
//! rotation by a lane-specific amount; the tail and the length are folded in
//! at the end. Sensitive to every byte and its position within a block, to
//! block order and to length. Not cryptographic.
//!
//! Speed matters: both receiving sides checksum every byte, so a slow
//! checksum hides the transport being measured. The rotations differ per
//! lane so that the compiler keeps the lanes in scalar registers (one
//! multiply each) instead of vectorizing them with baseline SSE2, which has
//! no 64-bit multiply and emulates it three times slower (≈ 28 vs 10 GB/s on
//! cached data here).

/// Lanes, and 64-bit words per block.
const LANES: usize = 8;
/// Bytes per block: one 64-bit word per lane.
const BLOCK_BYTES: usize = 8 * LANES;
/// Rotation of each lane after its multiply (all different).
const ROTATIONS: [u32; LANES] = [5, 13, 21, 29, 37, 45, 53, 61];
/// Piece size of [`Checksum::update_copy`]: well inside a 32 KiB L1 cache.
const COPY_PIECE_BYTES: usize = 4096;
/// Odd multiplier (2⁶⁴ / golden ratio).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
/// Lane seeds (FNV-1a 64-bit offset basis, varied per lane).
const SEEDS: [u64; LANES] = {
    let mut seeds = [0xcbf2_9ce4_8422_2325; LANES];
    let mut i = 0;
    while i < LANES {
        seeds[i] ^= i as u64;
        i += 1;
    }
    seeds
};

/// A running checksum.
#[derive(Debug, Clone)]
pub struct Checksum {
    lanes: [u64; LANES],
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
        for ((lane, word), rot) in self
            .lanes
            .iter_mut()
            .zip(block.chunks_exact(8))
            .zip(ROTATIONS)
        {
            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
            *lane = (*lane ^ w).wrapping_mul(MULTIPLIER).rotate_left(rot);
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

    /// Copy `src` into `dst` and feed it, in one pass over `src`: it is
    /// copied in L1-sized pieces, each checksummed while still in cache.
    /// Only the common length of the two is copied and fed; returns it.
    pub fn update_copy(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        let n = src.len().min(dst.len());
        for (s, d) in src[..n]
            .chunks(COPY_PIECE_BYTES)
            .zip(dst[..n].chunks_mut(COPY_PIECE_BYTES))
        {
            d.copy_from_slice(s);
            self.update(d);
        }
        n
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksum of every byte fed so far.
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
        for split in [1, 5, 31, 32, 33, 63, 64, 65, 999] {
            let mut c = Checksum::new();
            for piece in data.chunks(split) {
                c.update(piece);
            }
            assert_eq!(c.value(), whole, "split {split}");
        }
    }

    #[test]
    fn update_copy_copies_and_feeds_the_common_length() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut dst = vec![0u8; 9_000];
        let mut c = Checksum::new();
        c.update(&data[..5]);
        assert_eq!(c.update_copy(&data[5..], &mut dst), 9_000);
        assert_eq!(dst, data[5..9_005]);
        assert_eq!(c.value(), of(&data[..9_005]));
    }

    #[test]
    fn every_byte_position_order_and_length_count() {
        let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let base = of(&data);
        for i in 0..data.len() {
            let mut d = data.clone();
            d[i] ^= 1;
            assert_ne!(of(&d), base, "byte {i}");
        }
        let mut swapped = data.clone();
        swapped[..2 * BLOCK_BYTES].rotate_left(BLOCK_BYTES); // two blocks exchanged
        assert_ne!(of(&swapped), base);
        let mut swapped = data.clone();
        swapped[..16].rotate_left(8); // two words of a block exchanged
        assert_ne!(of(&swapped), base);
        assert_ne!(of(&data[..199]), base);
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(of(&longer), base);
    }
}
