//! Hostile shared memory across processes (issue 12, item 1).
//!
//! This test binary plays both processes. Run normally, it is the victim:
//! an `SmcListener` whose streams are attacked, one attack per connection,
//! while one healthy connection to the same peer process carries checked
//! bytes both ways the whole time. Re-executed with `SMCD_HOSTILE_PEER` set
//! to the victim's address, it is the hostile peer: it completes real SMC-D
//! handshakes with smcd-std, so it holds our DMB mapped exactly as a real
//! peer does, then writes adversarial values into our header and ring
//! through that mapping (`SmcStream::__peer_tap`, feature `hostile-peer`).
//!
//! For every attack the victim's calls must each return within a bound, the
//! connection must end with the expected typed reason (or, for values that
//! are valid-looking but wrong, keep working — see `Attack::expect`), no
//! byte may be delivered that the peer did not announce with a valid header
//! (or after its end), and the healthy connection's bytes must be intact.
//!
//! `SMCD_HOSTILE_ITERS` (default 1) repeats the randomised attacks (torn
//! headers, random writes) with fresh seeds.

mod attack;
mod peer;
mod victim;

/// Bytes of every DMB of the test (the smallest size: wrap-around comes
/// quickly).
const DMB: usize = 16 * 1024;

/// Ring bytes of a DMB.
const RING: u32 = (DMB - 32) as u32;

/// The byte at stream position `at` of the data stream seeded `seed`.
fn pattern_byte(seed: u64, at: u64) -> u8 {
    (at.wrapping_mul(13) ^ (at >> 8) ^ seed) as u8
}

/// `len` stream bytes from position `at`.
fn pattern(seed: u64, at: u64, len: usize) -> Vec<u8> {
    (at..at + len as u64)
        .map(|p| pattern_byte(seed, p))
        .collect()
}

/// A small xorshift generator (deterministic per seed).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() {
    match std::env::var("SMCD_HOSTILE_PEER") {
        Ok(addr) => peer::run(&addr),
        Err(_) => victim::run(),
    }
}
