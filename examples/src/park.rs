//! Spin briefly, then park, and wake on the doorbell (`docs/design-notes.md`, waiting).
//!
//! * [`Bell`]: a "something happened" flag owned by one thread; ringing it
//!   unparks that thread.
//! * [`ParkDoorbell`]: a loopback-device [`Doorbell`] that maps the rung DMB
//!   token to the bell of the thread that owns the DMB.
//! * [`BellWake`] / [`ParkPause`]: a [`Pause`](smcd_core::blocking::Pause)
//!   for the blocking driver that spins for short pauses and parks for long
//!   ones; a ring ends either at once.
//!
//! Why both: on a VM whose idle vCPU halts, waking a parked thread costs tens
//! of microseconds (an IPI and a vCPU wake-up), longer than a peer that is
//! busy copying usually takes to answer; spinning through the first
//! microseconds avoids that cost, parking keeps an idle thread off the CPU.
//! The driver's doubling back-off does the rest: its first pauses are below
//! [`ParkPause`]'s spin limit, the later ones park.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use examples::park::{ParkDoorbell, ParkPause};
//! use smcd_core::blocking::Pause;
//! use smcd_core::dmb::DmbToken;
//! use smcd_lo::Doorbell;
//!
//! let doorbell = Arc::new(ParkDoorbell::new());
//! let mut pause = ParkPause::parking(Duration::from_micros(20));
//! doorbell.register(DmbToken(7), pause.bell());
//! let d = Arc::clone(&doorbell);
//! let ringer = std::thread::spawn(move || d.ring(DmbToken(7)));
//! // Parks for up to ~4.3 s, but the ring ends the pause early.
//! assert!(pause.pause_ns(u32::MAX) < u32::MAX);
//! ringer.join().unwrap();
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::{self, Thread};
use std::time::Duration;

use smcd_core::dmb::DmbToken;
use smcd_lo::Doorbell;

use crate::wait::{SpinThenBlock, Wake};

/// A wake-up flag for one thread.
#[derive(Debug)]
pub struct Bell {
    rung: AtomicBool,
    thread: Thread,
}

impl Bell {
    /// A bell that wakes the calling thread.
    pub fn for_current_thread() -> Arc<Self> {
        Arc::new(Self {
            rung: AtomicBool::new(false),
            thread: thread::current(),
        })
    }

    /// Something happened: set the flag and unpark the thread. Only the ring
    /// that sets the flag unparks (the others find it set: that ring's
    /// unpark is done or under way).
    pub fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }

    /// Whether the bell rang since the last call (clears the flag).
    pub fn take(&self) -> bool {
        self.rung.swap(false, Ordering::AcqRel)
    }
}

/// A [`Doorbell`] that rings the bell registered for the DMB token.
#[derive(Debug, Default)]
pub struct ParkDoorbell {
    owners: RwLock<Vec<(DmbToken, Arc<Bell>)>>,
}

impl ParkDoorbell {
    /// No owners yet: rings go nowhere.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ring `bell` whenever DMB `token` gets a CDC header.
    pub fn register(&self, token: DmbToken, bell: Arc<Bell>) {
        let mut owners = self.owners.write().unwrap_or_else(PoisonError::into_inner);
        owners.retain(|(t, _)| *t != token);
        owners.push((token, bell));
    }

    /// Stop ringing anyone for `token`.
    pub fn unregister(&self, token: DmbToken) {
        self.owners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(t, _)| *t != token);
    }
}

impl Doorbell for ParkDoorbell {
    fn ring(&self, token: DmbToken) {
        let owners = self.owners.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, bell)) = owners.iter().find(|(t, _)| *t == token) {
            bell.ring();
        }
    }
}

/// Waits for a [`Bell`] of the calling thread: taking its flag while
/// spinning, parking while blocking. It parks the thread that created it, so
/// it stays on that thread (it is not `Send`).
#[derive(Debug)]
pub struct BellWake {
    bell: Arc<Bell>,
    /// Parking acts on the creating thread.
    _not_send: PhantomData<*const ()>,
}

impl BellWake {
    /// Waits for a new bell of the calling thread.
    pub fn new() -> Self {
        Self {
            bell: Bell::for_current_thread(),
            _not_send: PhantomData,
        }
    }

    /// The bell (register it with a [`ParkDoorbell`]).
    pub fn bell(&self) -> Arc<Bell> {
        Arc::clone(&self.bell)
    }
}

impl Default for BellWake {
    fn default() -> Self {
        Self::new()
    }
}

impl Wake for BellWake {
    fn take(&mut self) -> bool {
        self.bell.take()
    }

    fn block(&mut self, timeout: Duration) -> bool {
        // Ends early on a ring, or spuriously (the flag tells).
        thread::park_timeout(timeout);
        self.bell.take()
    }
}

/// The blocking driver's pause for the calling thread: spin up to a limit,
/// park beyond it, and a ring of its bell ends either.
pub type ParkPause = SpinThenBlock<BellWake>;

impl ParkPause {
    /// A pause for the calling thread that spins for pauses up to
    /// `spin_limit` and parks for longer ones.
    pub fn parking(spin_limit: Duration) -> Self {
        SpinThenBlock::new(BellWake::new(), spin_limit)
    }

    /// The bell that ends this pause (register it with a [`ParkDoorbell`]).
    pub fn bell(&self) -> Arc<Bell> {
        self.wake().bell()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smcd_core::blocking::Pause;

    #[test]
    fn rings_reach_only_the_registered_owner() {
        let doorbell = ParkDoorbell::new();
        let (a, b) = (Bell::for_current_thread(), Bell::for_current_thread());
        doorbell.register(DmbToken(1), Arc::clone(&a));
        doorbell.register(DmbToken(2), Arc::clone(&b));
        doorbell.ring(DmbToken(1));
        assert!(a.take() && !b.take());
        assert!(!a.take(), "take clears the flag");
        doorbell.unregister(DmbToken(1));
        doorbell.ring(DmbToken(1));
        doorbell.ring(DmbToken(3));
        assert!(!a.take() && !b.take());
    }

    #[test]
    fn a_ring_from_another_thread_unparks_the_owner() {
        let doorbell = ParkDoorbell::new();
        let mut pause = ParkPause::parking(Duration::ZERO);
        doorbell.register(DmbToken(5), pause.bell());
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                doorbell.ring(DmbToken(5));
            });
            // Parks for up to ~4.3 s; the ring ends it.
            assert!(pause.pause_ns(u32::MAX) < u32::MAX);
        });
    }
}
