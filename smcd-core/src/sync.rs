//! The single facade for atomics: `portable-atomic` normally (native atomics
//! where the target has them, a fallback elsewhere), `loom` under
//! `cfg(smcd_loom)`.
//!
//! Every other module takes its atomic types from here so that the loom
//! models in `loom-tests` exercise the real code.

#[cfg(not(smcd_loom))]
pub use portable_atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(smcd_loom)]
pub use loom::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
