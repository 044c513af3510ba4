//! loom models of the lock-free protocols of `smcd-core`.
//!
//! The models live in `tests/` and compile only with
//! `RUSTFLAGS="--cfg smcd_loom"`; `scripts/test loom` runs them.
