//! The byte stream `smcd echo-client` sends and the checksum it verifies the
//! echo with (the same algorithms as `examples/src/payload.rs` and
//! `examples/src/checksum.rs`, so figures compare with `inproc_echo`).

/// Pool length: 4 MiB + 4093 bytes. Odd and not a multiple of any ring
/// size, so bytes from the wrong lap of a ring, or out of order, do not line
/// up with the expected stream.
const POOL_BYTES: usize = (4 << 20) + 4093;

/// A deterministic pseudo-random byte stream: byte `i` is
/// `pool[i % pool.len()]`, the pool being splitmix64 of a fixed seed.
#[derive(Debug)]
pub(crate) struct Pattern {
    pool: Vec<u8>,
}

impl Pattern {
    /// The stream of `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut pool = Vec::with_capacity(POOL_BYTES + 8);
        while pool.len() < POOL_BYTES {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            pool.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        pool.truncate(POOL_BYTES);
        Self { pool }
    }

    /// The stream's bytes from position `at`, at most `max` of them (fewer
    /// at the end of the pool; never empty for `max > 0`).
    pub(crate) fn at(&self, at: u64, max: usize) -> &[u8] {
        let len = self.pool.len() as u64;
        let start = usize::try_from(at % len).unwrap_or(0);
        let end = start + max.min(self.pool.len() - start);
        &self.pool[start..end]
    }

    /// The checksum of the stream's first `bytes` bytes.
    pub(crate) fn checksum(&self, bytes: u64) -> u64 {
        let mut c = Checksum::new();
        let mut pos = 0;
        while pos < bytes {
            let piece = self.at(pos, usize::try_from(bytes - pos).unwrap_or(usize::MAX));
            c.update(piece);
            pos += piece.len() as u64;
        }
        c.value()
    }
}

/// Lanes, and 64-bit words per block.
const LANES: usize = 8;
/// Bytes per block: one 64-bit word per lane.
const BLOCK_BYTES: usize = 8 * LANES;
/// Rotation of each lane after its multiply (all different, which keeps the
/// lanes in scalar registers: SSE2 has no 64-bit multiply).
const ROTATIONS: [u32; LANES] = [5, 13, 21, 29, 37, 45, 53, 61];
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

/// A running 64-bit checksum, the same whatever the chunking; sensitive to
/// every byte, its position, block order and length. Not cryptographic.
#[derive(Debug, Clone)]
pub(crate) struct Checksum {
    lanes: [u64; LANES],
    carry: [u8; BLOCK_BYTES],
    carry_len: usize,
    len: u64,
}

impl Checksum {
    /// The checksum of nothing yet.
    pub(crate) const fn new() -> Self {
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
    pub(crate) fn update(&mut self, mut data: &[u8]) {
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

    /// Bytes fed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The checksum of everything fed so far.
    pub(crate) fn value(&self) -> u64 {
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

    #[test]
    fn the_stream_checksum_matches_a_chunked_one() {
        let p = Pattern::new(7);
        let n = POOL_BYTES as u64 * 2 + 1001;
        let mut c = Checksum::new();
        let mut pos = 0;
        while pos < n {
            let piece = p.at(pos, usize::try_from((n - pos).min(777)).unwrap());
            c.update(piece);
            pos += piece.len() as u64;
        }
        assert_eq!(c.value(), p.checksum(n));
        assert_eq!(c.len(), n);
        assert_ne!(p.checksum(n), p.checksum(n - 1));
    }

    #[test]
    fn a_changed_byte_changes_the_checksum() {
        let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let of = |d: &[u8]| {
            let mut c = Checksum::new();
            c.update(d);
            c.value()
        };
        let base = of(&data);
        for i in 0..data.len() {
            let mut d = data.clone();
            d[i] ^= 1;
            assert_ne!(of(&d), base, "byte {i}");
        }
    }
}
