//! [`Doorbell`]: how the loopback device tells a DMB's owner that a CDC
//! header arrived (Linux schedules the receiver's CDC processing).
//!
//! The device rings with the token of the DMB that was written; the doorbell
//! maps it to whatever wakes the owner — a waker, a callback, a futex, an
//! unparked thread (the `examples` crate's `ParkDoorbell`, which ends the
//! blocking driver's pause early). Any `Fn(DmbToken)` closure is a doorbell.

use smcd_core::dmb::DmbToken;
use smcd_core::sync::{AtomicU32, AtomicU64, Ordering};

/// Receives the device's signals.
pub trait Doorbell {
    /// The DMB named by `token` got a new CDC header (or a bare signal).
    fn ring(&self, token: DmbToken);
}

impl<F: Fn(DmbToken)> Doorbell for F {
    fn ring(&self, token: DmbToken) {
        self(token);
    }
}

/// A doorbell that does nothing: the owners poll their DMBs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoDoorbell;

impl Doorbell for NoDoorbell {
    fn ring(&self, _token: DmbToken) {}
}

/// A doorbell that counts rings and remembers the last token (for tests and
/// polling loops that only need "something happened").
///
/// ```
/// use smcd_core::dmb::DmbToken;
/// use smcd_lo::{CountingDoorbell, Doorbell};
///
/// let bell = CountingDoorbell::new();
/// bell.ring(DmbToken(9));
/// assert_eq!((bell.count(), bell.last()), (1, Some(DmbToken(9))));
/// ```
#[derive(Debug, Default)]
pub struct CountingDoorbell {
    rings: AtomicU32,
    last: AtomicU64,
}

impl CountingDoorbell {
    /// A doorbell that has not rung.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rings so far (wrapping).
    pub fn count(&self) -> u32 {
        self.rings.load(Ordering::Acquire)
    }

    /// The token of the last ring (tokens are never 0).
    pub fn last(&self) -> Option<DmbToken> {
        match self.last.load(Ordering::Acquire) {
            0 => None,
            t => Some(DmbToken(t)),
        }
    }
}

impl Doorbell for CountingDoorbell {
    fn ring(&self, token: DmbToken) {
        self.last.store(token.0, Ordering::Release);
        self.rings.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    #[test]
    fn closures_and_counters_ring() {
        let seen = Cell::new(DmbToken(0));
        let bell = |t| seen.set(t);
        bell.ring(DmbToken(3));
        assert_eq!(seen.get(), DmbToken(3));

        let counting = CountingDoorbell::new();
        assert_eq!((counting.count(), counting.last()), (0, None));
        counting.ring(DmbToken(4));
        counting.ring(DmbToken(5));
        assert_eq!((counting.count(), counting.last()), (2, Some(DmbToken(5))));
        NoDoorbell.ring(DmbToken(6));
    }
}
