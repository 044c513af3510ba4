//! # smcd-lo — the loopback device
//!
//! An SMC-D "ISM device" for two endpoints in one address space (Linux's
//! loopback-ism, `docs/protocol/loopback.md`): [`LoopbackDevice`] implements
//! [`smcd_core::ops::SmcdOps`], registers DMBs under random tokens, copies
//! data into a peer's DMB and publishes CDC headers with a signal, and — in
//! nocopy mode — lets a sender attach the peer's DMB and write into it
//! directly.
//!
//! | piece | what it is |
//! |---|---|
//! | [`LoopbackDevice`] | the device: GID, CHID 0xFFFF, DMB table with pairing, `move_data`, nocopy mapping |
//! | [`DmbMemory`] | where DMB memory comes from: [`StaticArena`] (no_std) or [`HeapMemory`] (feature `alloc`) |
//! | [`Doorbell`] | how a header write is signalled: [`NoDoorbell`], [`CountingDoorbell`], any `Fn(DmbToken)` |
//! | [`FaultInjector`] | a wrapper around any device that drops signals and fails calls, for tests |
//!
//! # Example: two endpoints of one host over SMC-D
//!
//! ```
//! use rand::{SeedableRng, rngs::SmallRng};
//! use smcd_core::endpoint::{Host, Pipe, pair};
//! use smcd_lo::{LoopbackDevice, NoDoorbell, StaticArena};
//!
//! let memory: &'static mut [u8] = Box::leak(vec![0; 256 * 1024].into_boxed_slice());
//! let arena = StaticArena::<32>::new(memory);
//! let device: LoopbackDevice<_, _> = LoopbackDevice::new(arena, SmallRng::seed_from_u64(7), NoDoorbell);
//! let host: Host<_> = Host::new(device); // the default UEID: SMC-Dv2 out of the box
//! let pipe = Pipe::<1024>::new(); // stands in for the TCP connection
//! let (mut client, mut server) = pair(&host, &host, &pipe, 0)?;
//! assert!(client.transport().is_smcd() && server.transport().is_smcd());
//!
//! assert_eq!(client.send(b"ping")?, 4); // straight into the server's DMB
//! server.poll(0)?; // what the doorbell would trigger
//! let mut buf = [0u8; 8];
//! assert_eq!(server.recv(&mut buf)?, 4);
//! assert_eq!(&buf[..4], b"ping");
//!
//! client.close()?;
//! server.poll(0)?;
//! server.close()?;
//! client.poll(0)?;
//! assert!(client.is_closed() && server.is_closed());
//! drop((client, server));
//! assert_eq!(host.device().stats().dmbs_in_use, 0); // every DMB given back
//! # Ok::<(), smcd_core::endpoint::EndpointError>(())
//! ```
//!
//! The crate is `no_std` and needs no allocator unless the `alloc` feature
//! (for [`HeapMemory`]) is on. On targets without compare-and-swap
//! (thumbv6m) enable `smcd-core/critical-section`.
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

/// `docs/embedding.md`, whose code is compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../docs/embedding.md")]
mod embedding_guide {}

mod device;
mod doorbell;
mod fault;
mod memory;

pub use device::{DEFAULT_MAX_DMBS, LoError, LoopbackDevice, MAX_DMBS};
pub use doorbell::{CountingDoorbell, Doorbell, NoDoorbell};
pub use fault::{CallCounts, FaultError, FaultInjector, Op};
#[cfg(any(test, feature = "alloc"))]
pub use memory::HeapMemory;
pub use memory::{DmbMemory, StaticArena};
