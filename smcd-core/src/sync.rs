//! The single facade for atomics and interior mutability: `portable-atomic`
//! normally (native atomics where the target has them, a fallback elsewhere),
//! `loom` under `cfg(smcd_loom)`.
//!
//! Every other module takes its atomic types, its spin hint and its
//! [`UnsafeCell`] from here so that the loom models in `loom-tests` exercise
//! the real code.
//!
//! Targets without compare-and-swap (thumbv6m) need smcd-core's
//! `critical-section` feature, which forwards to portable-atomic's backend; the
//! final binary then provides a `critical-section` implementation.

/// Declares a function `const` except under `cfg(smcd_loom)`, where the
/// loom types it builds have no `const` constructors.
macro_rules! const_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $name:ident $args:tt $(-> $ret:ty)? $body:block) => {
        #[cfg(not(smcd_loom))]
        $(#[$meta])* $vis const fn $name $args $(-> $ret)? $body
        #[cfg(smcd_loom)]
        $(#[$meta])* $vis fn $name $args $(-> $ret)? $body
    };
}
pub(crate) use const_unless_loom;

mod spin_lock;

pub use spin_lock::SpinLock;

#[cfg(not(smcd_loom))]
pub use core::hint::spin_loop;
#[cfg(not(smcd_loom))]
pub use portable_atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// Atomics for copies to and from shared DMB memory (`mem::shared_copy`):
/// `core`'s, in every build.
///
/// The bytes they reach are only ever loaded and stored, never
/// read-modify-written, and every supported target (thumbv6m included) loads
/// and stores bytes and native words atomically with plain instructions,
/// which `core` uses. portable-atomic's `critical-section` backend (thumbv6m)
/// would instead wrap each load and store in a critical section; on targets
/// with compare-and-swap it is `core`'s types anyway. Under loom they are
/// `core`'s too: raw DMB views are outside the model, and loom's types
/// cannot sit on a raw pointer.
pub(crate) use core::sync::atomic::{AtomicU8 as SharedU8, AtomicUsize as SharedUsize};

#[cfg(smcd_loom)]
pub use loom::cell::UnsafeCell;
#[cfg(smcd_loom)]
pub use loom::hint::spin_loop;
#[cfg(smcd_loom)]
pub use loom::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// `core::cell::UnsafeCell` with loom's closure-shaped access API.
///
/// [`with`](Self::with) and [`with_mut`](Self::with_mut) bracket every access
/// so that, under `cfg(smcd_loom)`, loom's cell of the same shape can check
/// that no two threads access the value concurrently without ordering. In
/// normal builds both simply hand the raw pointer to the closure.
///
/// ```
/// use smcd_core::sync::UnsafeCell;
///
/// let cell = UnsafeCell::new(1u32);
/// // SAFETY: no other access to `cell` exists during the closure.
/// cell.with_mut(|p| unsafe { *p += 1 });
/// // SAFETY: as above.
/// assert_eq!(cell.with(|p| unsafe { *p }), 2);
/// ```
#[cfg(not(smcd_loom))]
#[derive(Debug, Default)]
pub struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

#[cfg(not(smcd_loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `data`.
    pub const fn new(data: T) -> Self {
        Self(core::cell::UnsafeCell::new(data))
    }

    /// The value, consuming the cell.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(smcd_loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Run `f` with a shared pointer to the value (a read access).
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Run `f` with a mutable pointer to the value (a write access).
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(all(test, not(smcd_loom)))]
#[allow(unsafe_code)] // test fixtures over local buffers
mod tests {
    use super::*;

    #[test]
    fn cell_reads_what_was_written() {
        let cell = UnsafeCell::new([0u8; 4]);
        // SAFETY: single-threaded test, no overlapping access.
        cell.with_mut(|p| unsafe { (*p)[2] = 7 });
        // SAFETY: as above.
        assert_eq!(cell.with(|p| unsafe { *p }), [0, 0, 7, 0]);
        assert_eq!(cell.into_inner(), [0, 0, 7, 0]);
    }
}
