//! The images' random numbers for the loopback device (GID, DMB tokens).
//!
//! QEMU's bare machines offer no entropy source the images use, so the
//! scenario draws from xorshift64* with a fixed seed: reproducible runs,
//! tokens that are non-zero and distinct, but guessable. A real image must
//! seed the device from a hardware RNG, since unguessable tokens are part of
//! the security model.

use rand_core::RngCore;

/// xorshift64* (Vigna), a small non-cryptographic generator.
#[derive(Debug, Clone)]
pub(crate) struct XorShift64Star(u64);

impl XorShift64Star {
    /// A generator seeded with `seed` (0 is replaced: the state must not be 0).
    pub(crate) const fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }
}

impl RngCore for XorShift64Star {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_nonzero_and_distinct() {
        let mut r = XorShift64Star::new(0);
        let (a, b) = (r.next_u64(), r.next_u64());
        assert_ne!(a, 0);
        assert_ne!(a, b);
        let mut buf = [0u8; 13];
        r.fill_bytes(&mut buf);
        assert_ne!(buf, [0u8; 13]);
    }
}
