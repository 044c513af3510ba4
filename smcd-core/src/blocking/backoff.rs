//! [`Backoff`]: how a blocking driver waits for something to change — spin a
//! few rounds, then sleep with exponentially growing, capped delays.

use embedded_hal::delay::DelayNs;

/// Rounds of busy spinning (with a spin-loop hint) before the first delay:
/// a peer in the same address space usually answers within them.
pub const SPIN_ROUNDS: u32 = 16;

/// The first delay after spinning: 1 µs.
pub const BACKOFF_MIN_NS: u32 = 1_000;

/// The longest single delay: 1 ms (also the worst added latency once idle).
pub const BACKOFF_MAX_NS: u32 = 1_000_000;

/// Spin, then delay 1 µs, 2 µs, 4 µs, … up to 1 ms per round; [`reset`](Self::reset)
/// whenever something happened.
///
/// ```
/// use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction};
/// use smcd_core::blocking::{Backoff, SPIN_ROUNDS};
///
/// let mut delay = CheckedDelay::new(&[
///     Transaction::delay_ns(1_000),
///     Transaction::delay_ns(2_000),
///     Transaction::delay_ns(1_000),
/// ]);
/// let mut backoff = Backoff::new();
/// for _ in 0..SPIN_ROUNDS {
///     assert_eq!(backoff.snooze(&mut delay), 0); // spinning
/// }
/// assert_eq!(backoff.snooze(&mut delay), 1_000);
/// assert_eq!(backoff.snooze(&mut delay), 2_000);
/// backoff.reset(); // progress: spin again, then start over at 1 µs
/// for _ in 0..SPIN_ROUNDS {
///     backoff.snooze(&mut delay);
/// }
/// assert_eq!(backoff.snooze(&mut delay), 1_000);
/// delay.done();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    spins: u32,
    next_ns: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// Fresh: spin first.
    pub const fn new() -> Self {
        Self {
            spins: 0,
            next_ns: BACKOFF_MIN_NS,
        }
    }

    /// Something happened: start over with spinning.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Wait one round: spin while spin rounds remain, else delay and double
    /// the next delay (capped). Returns the nanoseconds delayed (0 when
    /// spinning).
    pub fn snooze(&mut self, delay: &mut impl DelayNs) -> u32 {
        if self.spins < SPIN_ROUNDS {
            self.spins += 1;
            crate::sync::spin_loop();
            return 0;
        }
        let ns = self.next_ns;
        delay.delay_ns(ns);
        self.next_ns = ns.saturating_mul(2).min(BACKOFF_MAX_NS);
        ns
    }
}
