//! [`Pause`]: how the blocking driver lets time pass while nothing happens.

use embedded_hal::delay::DelayNs;

/// Pause for up to `ns` nanoseconds, possibly less when something wakes the
/// caller (a doorbell, an interrupt), and report how long the pause lasted.
///
/// The driver's clock is the sum of the reported nanoseconds, so a pause
/// must never report more than really passed: report what was measured, or
/// the full `ns` only when the pause lasted at least that long. Every
/// embedded-hal [`DelayNs`] is a `Pause` that always waits the full `ns`
/// (its contract) and reports it; implement `Pause` directly for a wait
/// that a wake-up may end early.
///
/// ```
/// use core::sync::atomic::{AtomicBool, Ordering};
/// use embedded_hal::delay::DelayNs;
/// use embedded_hal_mock::eh1::delay::NoopDelay;
/// use smcd_core::blocking::Pause;
///
/// /// Set by the doorbell's interrupt handler.
/// static RUNG: AtomicBool = AtomicBool::new(false);
///
/// /// Waits in 1 µs timer steps until the doorbell rang or the time is up.
/// struct RungOrTimer<D>(D);
///
/// impl<D: DelayNs> Pause for RungOrTimer<D> {
///     fn pause_ns(&mut self, ns: u32) -> u32 {
///         let mut waited = 0;
///         while waited < ns && !RUNG.swap(false, Ordering::AcqRel) {
///             self.0.delay_us(1);
///             waited += 1_000;
///         }
///         waited
///     }
/// }
///
/// let mut pause = RungOrTimer(NoopDelay::new());
/// assert_eq!(pause.pause_ns(3_000), 3_000);
/// RUNG.store(true, Ordering::Release);
/// assert_eq!(pause.pause_ns(1_000_000), 0); // ended at once, no time counted
/// ```
pub trait Pause {
    /// Pause for at most about `ns` nanoseconds (sooner if woken); returns
    /// the nanoseconds that certainly passed.
    fn pause_ns(&mut self, ns: u32) -> u32;
}

impl<T: DelayNs> Pause for T {
    /// Delay the full `ns` and report it.
    fn pause_ns(&mut self, ns: u32) -> u32 {
        self.delay_ns(ns);
        ns
    }
}
