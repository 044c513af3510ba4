//! loom models of the lock-free protocols of `smcd-core`.
//!
//! The models live in `tests/` and compile only with
//! `RUSTFLAGS="--cfg smcd_loom"` (every file starts with `#![cfg(smcd_loom)]`,
//! so a normal `cargo test` builds nothing); `scripts/test loom`
//! (`scripts/sections/loom.sh`) runs them with `--release` and
//! `LOOM_MAX_PREEMPTIONS=2`.
//!
//! Under the cfg, `smcd_core::sync` hands out loom's atomics and cells and
//! `smcd_core::mem::DmbMem::loom_new` builds a DMB whose every byte is a loom
//! cell, so a missing happens-before edge between writing DMB bytes and
//! reading them is reported as a causality violation. smcd-lo's device takes
//! its locks and counters from the same facade, so the connection models run
//! over the real `LoopbackDevice` (its DMB table, memory lock, `move_data`
//! and signal path), with loom-tracked DMB memory from a test provider.
//!
//! | file | model |
//! |---|---|
//! | `dmb_mem.rs` | the tracked DMB backend itself: release/acquire publication passes, a `Relaxed` one is reported |
//! | `dmb_refcount.rs` | a nocopy mapping (attach/detach) and a pin racing with unregister: no use after free, freed exactly once |
//! | `dmb_table.rs` | `DmbTable` register and unregister from two threads |
//! | `ring_wrap.rs` | (a) producer and consumer `Connection`s through a 4-byte ring across its end, copy and nocopy |
//! | `window_reopen.rs` | (b) consumer-cursor updates re-opening a full window while the producer waits; the producer's window checked against the consumer cursor the consumer published |
//! | `close_race.rs` | (c) close and abort flags racing with data: no byte sent before close is lost |
//! | `ring_util/` | smcd-lo's production `LoopbackDevice` over loom-tracked memory, and the pair helpers shared by the three above |
