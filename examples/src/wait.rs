//! [`SpinThenBlock`]: a [`Pause`] that spins through short pauses and blocks
//! through long ones, ended early by whatever [`Wake`] watches.
//!
//! The blocking driver's back-off asks for pauses that double from 1 µs, so
//! with a spin limit of a few tens of microseconds its first pauses spin and
//! the later ones block: "spin briefly, then park" (`docs/design-notes.md`, waiting). On a
//! VM whose idle vCPU halts, a blocked thread takes tens of microseconds to
//! wake; spinning first avoids that while the peer is busy and answers soon.
//!
//! The spinning yields the CPU (`sched_yield`) between checks instead of
//! busy-looping: on an idle core a yield returns at once, but on a shared
//! machine it lets the peer — or anyone else — run instead of burning the
//! time slice. With one of the two cores taken by another job, yielding
//! spins moved 2.2–2.6 GB/s in `inproc_echo` where plain spin-loop hints
//! moved 0.9–1.6 GB/s (the more spinning, the worse).

use std::time::{Duration, Instant};

use smcd_core::blocking::{BackoffPolicy, Pause};

/// How every transport of a comparison waits: the driver's back-off shape,
/// and up to which pause length [`SpinThenBlock`] spins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Spin rounds and pause lengths of the back-off.
    pub policy: BackoffPolicy,
    /// Pauses up to this long spin; longer ones block.
    pub spin_limit: Duration,
}

/// What ends a pause early.
pub trait Wake {
    /// Whether a wake-up is pending (consumes it). Called while spinning.
    fn take(&mut self) -> bool;

    /// Block for at most `timeout`; returns whether a wake-up ended it.
    fn block(&mut self, timeout: Duration) -> bool;
}

/// Spin (yielding, and checking [`Wake::take`]) through pauses up to
/// `spin_limit`, block ([`Wake::block`]) through longer ones. Reports the time measured, so the
/// driver's clock stays a lower bound of real time.
#[derive(Debug)]
pub struct SpinThenBlock<W> {
    wake: W,
    spin_limit: Duration,
}

impl<W: Wake> SpinThenBlock<W> {
    /// Pauses up to `spin_limit` spin, longer ones block on `wake`.
    pub fn new(wake: W, spin_limit: Duration) -> Self {
        Self { wake, spin_limit }
    }

    /// The wake source.
    pub fn wake(&self) -> &W {
        &self.wake
    }

    /// The wake source, to adjust what it waits for.
    pub fn wake_mut(&mut self) -> &mut W {
        &mut self.wake
    }
}

impl<W: Wake> Pause for SpinThenBlock<W> {
    fn pause_ns(&mut self, ns: u32) -> u32 {
        let start = Instant::now();
        let limit = Duration::from_nanos(ns.into());
        let block = limit > self.spin_limit;
        if !self.wake.take() {
            loop {
                let waited = start.elapsed();
                if waited >= limit {
                    break;
                }
                let woken = if block {
                    self.wake.block(limit - waited)
                } else {
                    std::thread::yield_now();
                    self.wake.take()
                };
                if woken {
                    break;
                }
            }
        }
        u32::try_from(start.elapsed().as_nanos()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts calls; a wake-up is pending after `wake_after` calls of either.
    #[derive(Default)]
    struct Script {
        takes: u32,
        blocks: u32,
        wake_after: u32,
    }

    impl Wake for Script {
        fn take(&mut self) -> bool {
            self.takes += 1;
            self.takes + self.blocks > self.wake_after
        }
        fn block(&mut self, timeout: Duration) -> bool {
            self.blocks += 1;
            std::thread::sleep(timeout.min(Duration::from_micros(100)));
            self.takes + self.blocks > self.wake_after
        }
    }

    fn pause(spin_limit: Duration, wake_after: u32) -> SpinThenBlock<Script> {
        SpinThenBlock::new(
            Script {
                wake_after,
                ..Script::default()
            },
            spin_limit,
        )
    }

    #[test]
    fn short_pauses_spin_and_long_ones_block() {
        // Never woken: a spinning pause lasts what was asked, never blocks.
        let mut p = pause(Duration::from_micros(50), u32::MAX);
        assert!(p.pause_ns(20_000) >= 20_000);
        assert_eq!(p.wake().blocks, 0);
        // Above the limit the pause blocks at once (woken by that block).
        let mut p = pause(Duration::from_micros(50), 1);
        p.pause_ns(u32::MAX);
        assert_eq!((p.wake().takes, p.wake().blocks), (1, 1));
    }

    #[test]
    fn a_wake_up_ends_the_pause() {
        // Pending before the pause: no spinning, no blocking.
        let mut p = pause(Duration::from_micros(50), 0);
        let measured = Instant::now();
        let reported = p.pause_ns(u32::MAX);
        assert!(u128::from(reported) <= measured.elapsed().as_nanos());
        assert_eq!((p.wake().takes, p.wake().blocks), (1, 0));
        // Woken while spinning.
        let mut p = pause(Duration::from_secs(10), 3);
        p.pause_ns(u32::MAX);
        assert_eq!((p.wake().takes, p.wake().blocks), (4, 0));
    }
}
