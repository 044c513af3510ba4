//! The device seam: [`SmcdOps`], mirroring Linux `smcd_ops`
//! (`include/net/smc.h`, v6.10–6.17; `spec/loopback.md` §5).
//!
//! A device registers DMBs (receive buffers the peer writes into), moves data
//! into a peer's DMB, and — if it supports *nocopy* — lets a sender attach the
//! peer's DMB and write into it directly. Errors follow the embedded-hal
//! pattern: an associated error type whose [`Error::kind`] maps onto the
//! generic [`ErrorKind`] the protocol layers act on.
//!
//! All methods take `&self`: a device is shared by every connection that uses
//! it (and, in the std adapter, by several threads), so implementations keep
//! their state behind interior mutability.
//!
//! # Implementing a device
//!
//! ```
//! use smcd_core::dmb::{Chid, DmbToken, Gid};
//! use smcd_core::ops::{Dmb, Error, ErrorKind, ErrorType, SmcdOps};
//!
//! #[derive(Debug)]
//! struct NoDmbs;
//! impl Error for NoDmbs {
//!     fn kind(&self) -> ErrorKind { ErrorKind::NoSpace }
//! }
//!
//! /// A device that can reach nobody and holds no DMBs.
//! struct Null;
//! impl ErrorType for Null { type Error = NoDmbs; }
//! impl SmcdOps for Null {
//!     fn local_gid(&self) -> Gid { Gid::new(1, 2) }
//!     fn chid(&self) -> Chid { Chid(0xFF01) }
//!     fn supports_v2(&self) -> bool { true }
//!     fn query_remote_gid(&self, gid: Gid) -> Result<(), NoDmbs> {
//!         if gid == self.local_gid() { Ok(()) } else { Err(NoDmbs) }
//!     }
//!     fn register_dmb(&self, _size: usize) -> Result<Dmb, NoDmbs> { Err(NoDmbs) }
//!     fn unregister_dmb(&self, _token: DmbToken) -> Result<(), NoDmbs> { Err(NoDmbs) }
//!     fn move_data(&self, _t: DmbToken, _off: usize, _data: &[u8], _signal: bool)
//!         -> Result<(), NoDmbs> { Err(NoDmbs) }
//!     fn signal_dmb(&self, _token: DmbToken) -> Result<(), NoDmbs> { Err(NoDmbs) }
//!     fn attach_dmb(&self, _token: DmbToken) -> Result<Dmb, NoDmbs> { Err(NoDmbs) }
//!     fn detach_dmb(&self, _token: DmbToken) -> Result<(), NoDmbs> { Err(NoDmbs) }
//! }
//!
//! let dev = Null;
//! assert!(dev.query_remote_gid(Gid::new(1, 2)).is_ok());
//! assert_eq!(dev.register_dmb(16 * 1024).unwrap_err().kind(), ErrorKind::NoSpace);
//! assert!(!dev.supports_nocopy());
//! ```
//!
//! For tests of code that drives a device, `mock::MockSmcd` (feature
//! `test-util`) checks the calls against a list of expectations.

use core::fmt;

use crate::dmb::{Chid, DmbToken, Gid};
use crate::mem::DmbMem;

#[cfg(any(test, feature = "test-util"))]
pub mod mock;

/// Generic classes of device errors, which the protocol layers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The device's DMB limit is reached (Linux ENOSPC ⇒ Decline MAX_DMB).
    NoSpace,
    /// Memory for a DMB of the requested size is not available (Linux
    /// ENOMEM ⇒ retry smaller, then Decline MEM).
    NoMemory,
    /// Unknown token, or a DMB that is being freed (Linux EINVAL).
    InvalidToken,
    /// The access does not fit in the DMB (Linux EINVAL on the bounds check).
    OutOfBounds,
    /// The device cannot reach that GID (Linux ENETUNREACH).
    Unreachable,
    /// No connection is bound to the target DMB any more (Linux EPIPE).
    PeerGone,
    /// The device does not implement this operation.
    Unsupported,
    /// Anything else.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NoSpace => "device DMB limit reached",
            ErrorKind::NoMemory => "no memory for the DMB",
            ErrorKind::InvalidToken => "unknown or dying DMB token",
            ErrorKind::OutOfBounds => "access outside the DMB",
            ErrorKind::Unreachable => "GID not reachable through this device",
            ErrorKind::PeerGone => "no connection bound to the DMB",
            ErrorKind::Unsupported => "operation not supported by the device",
            ErrorKind::Other => "device error",
        })
    }
}

/// A device error: anything with a [`kind`](Error::kind).
pub trait Error: fmt::Debug {
    /// The generic class of this error.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

impl Error for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// Declares a device's error type.
pub trait ErrorType {
    /// The error type of every fallible operation.
    type Error: Error;
}

/// A DMB handed out by [`SmcdOps::register_dmb`] or [`SmcdOps::attach_dmb`].
#[derive(Debug, Clone, Copy)]
pub struct Dmb {
    /// The DMB's token.
    pub token: DmbToken,
    /// The DMB's memory (whole DMB, CDC header included).
    pub mem: DmbMem,
}

/// An SMC-D device (ISM, or the loopback device of `smcd-lo`).
pub trait SmcdOps: ErrorType {
    /// This device's GID (`get_local_gid`). Native ISM: `gid_ext` = 0.
    fn local_gid(&self) -> Gid;

    /// This device's CHID (`get_chid`); 0xFFFF for loopback.
    fn chid(&self) -> Chid;

    /// Whether the device can do SMC-Dv2 (`supports_v2`).
    fn supports_v2(&self) -> bool;

    /// `Ok` if the device can reach a peer with this GID (`query_remote_gid`).
    ///
    /// # Errors
    ///
    /// Kind [`ErrorKind::Unreachable`] if it cannot.
    fn query_remote_gid(&self, gid: Gid) -> Result<(), Self::Error>;

    /// Register a zeroed DMB of `size` bytes (`register_dmb`).
    ///
    /// The returned memory stays valid until [`unregister_dmb`](Self::unregister_dmb)
    /// and the last [`detach_dmb`](Self::detach_dmb) of it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoSpace`] at the device's DMB limit, [`ErrorKind::NoMemory`]
    /// if memory of that size is unavailable.
    fn register_dmb(&self, size: usize) -> Result<Dmb, Self::Error>;

    /// Drop the owner's reference to a DMB (`unregister_dmb`). The DMB is freed
    /// when no attacher holds it any more.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`] for an unknown token.
    fn unregister_dmb(&self, token: DmbToken) -> Result<(), Self::Error>;

    /// Write `data` at `offset` of the DMB named by `token` (`move_data`).
    ///
    /// `signal = true` marks the write of the 32-byte CDC header at offset 0
    /// (Linux `sf = 1`): the device must store bytes 8–15 and 16–23 as 64-bit
    /// atomics with release ordering (see `wire::cdc`), after which it rings
    /// the owner's doorbell. A device may skip data writes (`signal = false`)
    /// when the sender writes in place (nocopy).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`], [`ErrorKind::OutOfBounds`], or
    /// [`ErrorKind::PeerGone`] when nobody owns the DMB any more.
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), Self::Error>;

    /// Ring the owner's doorbell of a DMB without writing (`signal_dmb`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`] for an unknown token.
    fn signal_dmb(&self, token: DmbToken) -> Result<(), Self::Error>;

    /// Whether a sender may attach the peer's DMB and write into it directly
    /// (`support_dmb_nocopy`). Default: no.
    fn supports_nocopy(&self) -> bool {
        false
    }

    /// Take a reference to the **peer's** DMB to use it as our send buffer
    /// (`attach_dmb`). Only called when [`supports_nocopy`](Self::supports_nocopy)
    /// is true.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`] for an unknown or dying DMB;
    /// [`ErrorKind::Unsupported`] from devices without nocopy.
    fn attach_dmb(&self, token: DmbToken) -> Result<Dmb, Self::Error>;

    /// Drop a reference taken by [`attach_dmb`](Self::attach_dmb) (`detach_dmb`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`] for an unknown token;
    /// [`ErrorKind::Unsupported`] from devices without nocopy.
    fn detach_dmb(&self, token: DmbToken) -> Result<(), Self::Error>;
}
