//! # smcd-lo — the loopback device
//!
//! An SMC-D "ISM device" for two endpoints in one address space (Linux's
//! loopback-ism, `spec/loopback.md`): [`LoopbackDevice`] implements
//! [`smcd_core::ops::SmcdOps`], registers DMBs under random tokens, copies
//! data into a peer's DMB and publishes CDC headers with a signal, and — in
//! nocopy mode — lets a sender attach the peer's DMB and write into it
//! directly.
//!
//! | piece | what it is |
//! |---|---|
//! | [`LoopbackDevice`] | the device: GID, CHID 0xFFFF, DMB table, `move_data`, nocopy attach/detach |
//! | [`DmbMemory`] | where DMB memory comes from: [`StaticArena`] (no_std) or [`HeapMemory`] (feature `alloc`) |
//! | [`Doorbell`] | how a header write is signalled: [`NoDoorbell`], [`CountingDoorbell`], any `Fn(DmbToken)` |
//! | [`FaultInjector`] | a wrapper around any device that drops signals and fails calls, for tests |
//!
//! The crate is `no_std` and needs no allocator unless the `alloc` feature
//! (for [`HeapMemory`]) is on. On targets without compare-and-swap
//! (thumbv6m) enable `smcd-core/critical-section`.
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

mod device;
mod doorbell;
mod fault;
mod memory;
pub mod nocopy_switch;

pub use device::{DEFAULT_MAX_DMBS, LoError, LoopbackDevice, MAX_DMBS};
pub use doorbell::{CountingDoorbell, Doorbell, NoDoorbell};
pub use fault::{CallCounts, FaultError, FaultInjector, Op};
#[cfg(any(test, feature = "alloc"))]
pub use memory::HeapMemory;
pub use memory::{DmbMemory, StaticArena};
