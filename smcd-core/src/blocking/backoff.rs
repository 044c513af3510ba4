//! [`Backoff`]: how a blocking driver waits for something to change — spin a
//! few rounds, then pause with exponentially growing, capped pauses — shaped
//! by a [`BackoffPolicy`].

use super::pause::Pause;

/// Default rounds of busy spinning (with a spin-loop hint) before the first
/// pause: a peer in the same address space often answers within them.
pub const SPIN_ROUNDS: u32 = 16;

/// Default first pause after spinning: 1 µs.
pub const BACKOFF_MIN_NS: u32 = 1_000;

/// Default longest single pause: 1 ms (also the worst added latency once
/// idle, unless the [`Pause`] is woken earlier).
pub const BACKOFF_MAX_NS: u32 = 1_000_000;

/// The shape of a [`Backoff`]: `spin_rounds` rounds of spinning, then pauses
/// of `min_ns`, doubling up to `max_ns`.
///
/// The defaults ([`SPIN_ROUNDS`], [`BACKOFF_MIN_NS`], [`BACKOFF_MAX_NS`])
/// suit a plain delay (a timer, a sleep). A [`Pause`] that a doorbell ends
/// early may afford a larger cap; one that spins for short pauses and
/// parks for long ones turns the doubling sequence into "spin briefly, then
/// park".
///
/// ```
/// use smcd_core::blocking::BackoffPolicy;
///
/// let p = BackoffPolicy::DEFAULT.with_spin_rounds(64).with_max_ns(100_000);
/// assert_eq!((p.spin_rounds, p.min_ns, p.max_ns), (64, 1_000, 100_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BackoffPolicy {
    /// Rounds of spinning before the first pause.
    pub spin_rounds: u32,
    /// The first pause, in nanoseconds (0 is taken as 1).
    pub min_ns: u32,
    /// The longest pause, in nanoseconds (never below `min_ns`).
    pub max_ns: u32,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl BackoffPolicy {
    /// 16 spin rounds, then 1 µs doubling up to 1 ms.
    pub const DEFAULT: Self = Self {
        spin_rounds: SPIN_ROUNDS,
        min_ns: BACKOFF_MIN_NS,
        max_ns: BACKOFF_MAX_NS,
    };

    /// This policy with `rounds` spin rounds.
    pub const fn with_spin_rounds(self, rounds: u32) -> Self {
        Self {
            spin_rounds: rounds,
            ..self
        }
    }

    /// This policy with a first pause of `ns`.
    pub const fn with_min_ns(self, ns: u32) -> Self {
        Self { min_ns: ns, ..self }
    }

    /// This policy with a longest pause of `ns`.
    pub const fn with_max_ns(self, ns: u32) -> Self {
        Self { max_ns: ns, ..self }
    }

    const fn first_ns(&self) -> u32 {
        if self.min_ns == 0 { 1 } else { self.min_ns }
    }

    const fn cap_ns(&self) -> u32 {
        if self.max_ns < self.first_ns() {
            self.first_ns()
        } else {
            self.max_ns
        }
    }
}

/// Spin, then pause 1 µs, 2 µs, 4 µs, … up to 1 ms per round (by default);
/// [`reset`](Self::reset) whenever something happened.
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
    policy: BackoffPolicy,
    spins: u32,
    next_ns: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// Fresh, with [`BackoffPolicy::DEFAULT`]: spin first.
    pub const fn new() -> Self {
        Self::with_policy(BackoffPolicy::DEFAULT)
    }

    /// Fresh, shaped by `policy`: spin first.
    pub const fn with_policy(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            spins: 0,
            next_ns: policy.first_ns(),
        }
    }

    /// The policy in use.
    pub fn policy(&self) -> BackoffPolicy {
        self.policy
    }

    /// Something happened: start over with spinning.
    pub fn reset(&mut self) {
        *self = Self::with_policy(self.policy);
    }

    /// Wait one round: spin while spin rounds remain, else pause and double
    /// the next pause (capped). Returns the nanoseconds the pause reports
    /// (what was asked for, for a [`DelayNs`](embedded_hal::delay::DelayNs);
    /// 0 when spinning).
    pub fn snooze(&mut self, pause: &mut impl Pause) -> u32 {
        if self.spins < self.policy.spin_rounds {
            self.spins += 1;
            crate::sync::spin_loop();
            return 0;
        }
        let ns = self.next_ns;
        self.next_ns = ns.saturating_mul(2).min(self.policy.cap_ns());
        pause.pause_ns(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what was asked; reports a fixed share of it.
    struct Recorder {
        asked: std::vec::Vec<u32>,
    }

    impl Pause for Recorder {
        fn pause_ns(&mut self, ns: u32) -> u32 {
            self.asked.push(ns);
            ns / 2
        }
    }

    #[test]
    fn policy_shapes_the_sequence_and_reset_keeps_it() {
        let policy = BackoffPolicy::DEFAULT
            .with_spin_rounds(2)
            .with_min_ns(300)
            .with_max_ns(1_000);
        let mut b = Backoff::with_policy(policy);
        let mut p = Recorder {
            asked: std::vec::Vec::new(),
        };
        let reported: std::vec::Vec<u32> = (0..7).map(|_| b.snooze(&mut p)).collect();
        assert_eq!(reported, [0, 0, 150, 300, 500, 500, 500]);
        assert_eq!(p.asked, [300, 600, 1_000, 1_000, 1_000]);
        b.reset();
        assert_eq!(b.policy(), policy);
        assert_eq!((b.snooze(&mut p), b.snooze(&mut p)), (0, 0));
        assert_eq!(b.snooze(&mut p), 150);
    }

    #[test]
    fn degenerate_policies_still_pause() {
        let mut p = Recorder {
            asked: std::vec::Vec::new(),
        };
        let zero = BackoffPolicy {
            spin_rounds: 0,
            min_ns: 0,
            max_ns: 0,
        };
        let mut b = Backoff::with_policy(zero);
        b.snooze(&mut p);
        b.snooze(&mut p);
        let mut b = Backoff::with_policy(zero.with_min_ns(5_000).with_max_ns(10));
        b.snooze(&mut p);
        b.snooze(&mut p);
        assert_eq!(p.asked, [1, 1, 5_000, 5_000]);
    }
}
