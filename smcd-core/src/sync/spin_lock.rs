//! [`SpinLock`]: the one lock of smcd (no_std, no OS), built on the
//! [`crate::sync`] primitives so that loom sees every acquisition and every
//! access to the protected value. The DMB table, the link-group table and
//! the loopback device all use it.
//!
//! Critical sections are short (a table lookup or update) and never call out
//! to foreign code, so spinning is cheap and a panic inside one cannot happen
//! (the crate denies panicking constructs); there is no poisoning.
//!
//! Under loom the spin hint is `yield_now`. With three or more threads
//! contending, loom also explores schedules in which the waiters keep
//! yielding to each other and never to the holder, and gives up ("exceeded
//! maximum number of branches"); the models therefore use two threads.
#![allow(unsafe_code)]

use super::{AtomicBool, Ordering, UnsafeCell, spin_loop};

/// A value behind a test-and-set spin lock.
///
/// ```
/// use smcd_core::sync::SpinLock;
///
/// static COUNT: SpinLock<u32> = SpinLock::new(0);
/// COUNT.with(|n| *n += 1);
/// assert_eq!(COUNT.with(|n| *n), 1);
/// ```
#[derive(Debug)]
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one thread at a time (acquire on
// lock, release on unlock), which is what `T: Send` permits.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    super::const_unless_loom! {
        /// An unlocked lock holding `value`.
        pub fn new(value: T) -> Self {
            Self {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }
    }

    /// Run `f` with exclusive access to the value.
    ///
    /// Inlined, so that each critical section is compiled into its caller
    /// around one shared, non-generic `acquire` (one copy of the lock loop
    /// per image, not one per closure).
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        acquire(&self.locked);
        // SAFETY: `acquire` returned after a successful acquire-CAS, which
        // makes this thread the only holder until the release store below;
        // the pointer comes from the cell and lives as long as `&self`.
        let r = self.value.with_mut(|p| f(unsafe { &mut *p }));
        self.locked.store(false, Ordering::Release);
        r
    }
}

/// Take the lock flag `locked`: spin until it flips from `false` to `true`
/// (acquire ordering).
#[inline(never)]
fn acquire(locked: &AtomicBool) {
    while locked
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        // A plain CAS loop rather than test-and-test-and-set: a
        // read-modify-write always sees the latest value, so loom does not
        // explore stale reads of `locked`, and sections are tiny anyway.
        spin_loop();
    }
}
