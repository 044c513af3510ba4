//! # smcd-core
//!
//! The `no_std`, allocation-free heart of smcd, an SMC-D (Shared Memory
//! Communications – Direct) implementation with a loopback device.
//!
//! ## Layering
//!
//! ```text
//!   blocking a blocking driver over `endpoint` for unikernels (embedded-hal `DelayNs` or a wakeable `Pause`)
//!   endpoint one socket-like endpoint: handshake, then SMC-D or TCP fallback on a byte stream
//!   clc      sans-IO CLC handshake engine (Proposal / Accept / Confirm / Decline)
//!   conn     one established connection: send / recv over two DMBs, close state machine
//!   ops      the device seam (`SmcdOps`), mirroring Linux `smcd_ops`
//!   dmb      identifiers (token, GID, CHID) and the DMB table
//!   mem      `DmbMem`: the only place that touches shared DMB memory (audited `unsafe`)
//!   cursor   CDC cursor arithmetic
//!   wire     CLC messages and the SMC-D CDC header, parse / emit
//!   sync     the atomics facade (core, portable-atomic or loom)
//!   stats    `Copy` counter snapshots
//! ```
//!
//! ## What this crate does not do
//!
//! It knows no clock, no I/O, no allocator and no operating system. Time is a
//! caller-supplied `u64` of milliseconds, bytes come in and go out through
//! slices, and device memory is reached only through [`ops::SmcdOps`].
//!
//! ## Contract on hostile input
//!
//! Nothing reachable from bytes off the wire or from peer-written shared memory
//! panics: every parser returns a typed error, every cursor read from a DMB is
//! validated before use.
#![no_std]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(any(test, feature = "test-util"))]
extern crate std;

pub mod blocking;
pub mod clc;
pub mod conn;
pub mod cursor;
pub mod dmb;
pub mod endpoint;
pub mod mem;
pub mod ops;
pub mod stats;
pub mod sync;
pub mod wire;
