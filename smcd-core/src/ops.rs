//! The device seam: [`SmcdOps`], mirroring Linux `smcd_ops`
//! (`include/net/smc.h`, v6.10–6.17; `docs/protocol/loopback.md` §5).
//!
//! A device registers DMBs (receive buffers the peer writes into), moves data
//! into a peer's DMB, and — if it supports *nocopy* — lets a sender map the
//! peer's DMB and write into it directly. DMBs leave a device only inside
//! the linear handles [`Dmb`] and [`PeerDmb`]. Errors follow the embedded-hal
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
//! use smcd_core::ops::{Dmb, Error, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
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
//!     fn unregister_dmb(&self, _dmb: Dmb) -> Result<(), NoDmbs> { Err(NoDmbs) }
//!     fn move_data(&self, _t: DmbToken, _off: usize, _data: &[u8], _signal: bool)
//!         -> Result<(), NoDmbs> { Err(NoDmbs) }
//!     fn signal_dmb(&self, _token: DmbToken) -> Result<(), NoDmbs> { Err(NoDmbs) }
//!     fn attach_dmb(&self, _own: &Dmb, _peer: PeerDmbId, _map: bool)
//!         -> Result<PeerDmb, NoDmbs> { Err(NoDmbs) }
//!     fn detach_dmb(&self, _peer: PeerDmb) -> Result<(), NoDmbs> { Err(NoDmbs) }
//! }
//!
//! let dev = Null;
//! assert!(dev.query_remote_gid(Gid::new(1, 2)).is_ok());
//! assert_eq!(dev.register_dmb(16 * 1024).unwrap_err().kind(), ErrorKind::NoSpace);
//! assert!(!dev.supports_nocopy());
//! ```

use core::fmt;

use crate::dmb::{CDC_HEADER_LEN_BYTES, Chid, DMB_MAX_SIZE_BYTES, DmbToken, Gid};
use crate::mem::DmbMem;

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

/// Why a DMB handle could not be made from a token and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandleError {
    /// The DMB length is not a DMB size (16 KiB … 1 MiB; smaller under
    /// `cfg(smcd_loom)`, see [`MIN_DMB_LEN_BYTES`]).
    DmbSize(usize),
    /// A mapped peer ring is not exactly the DMB minus its CDC header.
    RingSize {
        /// The peer DMB's length.
        dmb: usize,
        /// The mapped ring's length.
        ring: usize,
    },
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DmbSize(n) => write!(f, "{n} bytes is not a DMB size (16 KiB … 1 MiB)"),
            Self::RingSize { dmb, ring } => write!(
                f,
                "a mapped ring of {ring} bytes does not fit a {dmb}-byte DMB"
            ),
        }
    }
}

impl core::error::Error for HandleError {}

/// Smallest DMB a handle accepts: 16 KiB (`docs/protocol/cdc.md` §1).
#[cfg(not(smcd_loom))]
pub const MIN_DMB_LEN_BYTES: usize = crate::dmb::DMB_MIN_SIZE_BYTES;
/// Smallest DMB a handle accepts: under `cfg(smcd_loom)` a header plus a
/// 4-byte ring, so that loom models stay small.
#[cfg(smcd_loom)]
pub const MIN_DMB_LEN_BYTES: usize = CDC_HEADER_LEN_BYTES + 4;

fn dmb_len(len: usize) -> Result<usize, HandleError> {
    if (MIN_DMB_LEN_BYTES..=DMB_MAX_SIZE_BYTES).contains(&len) {
        Ok(len)
    } else {
        Err(HandleError::DmbSize(len))
    }
}

/// One of our own DMBs, registered by [`SmcdOps::register_dmb`]: the
/// receive buffer the peer writes into.
///
/// The handle is linear: not `Copy`, not `Clone`, and the only way to give
/// the DMB back is [`SmcdOps::unregister_dmb`], which consumes it. Its memory
/// is reached only through [`mem`](Self::mem), which borrows from the handle,
/// so no view of the memory outlives the registration. Dropping a handle
/// without unregistering it leaks the DMB (it stays registered and mapped);
/// it never frees memory that is still in use.
///
/// Using a DMB after giving it back does not compile (E0382, use of a
/// moved value):
///
/// ```compile_fail,E0382
/// # use smcd_core::ops::SmcdOps;
/// # fn f<D: SmcdOps>(dev: &D) -> Result<(), D::Error> {
/// let d = dev.register_dmb(16384)?;
/// dev.unregister_dmb(d)?;
/// d.mem().write(100, b"x"); // error: `d` was moved into unregister_dmb
/// # Ok(()) }
/// ```
///
/// nor does keeping a view of its memory across the unregister (E0505,
/// move out of a borrowed value):
///
/// ```compile_fail,E0505
/// # use smcd_core::ops::SmcdOps;
/// # fn f<D: SmcdOps>(dev: &D) -> Result<(), D::Error> {
/// let d = dev.register_dmb(16384)?;
/// let mem = d.mem();
/// dev.unregister_dmb(d)?; // error: `d` is borrowed by `mem`
/// mem.write(100, b"x").unwrap();
/// # Ok(()) }
/// ```
///
/// and the original use-after-free — unregister by token, keep the copied
/// memory handle — cannot even be written: the handle's fields are private
/// (E0616) and `unregister_dmb` takes the handle, not a token.
///
/// ```compile_fail,E0616
/// # use smcd_core::ops::SmcdOps;
/// # fn f<D: SmcdOps>(dev: &D) -> Result<(), D::Error> {
/// let d = dev.register_dmb(16384)?;
/// dev.unregister_dmb(d.token)?; // error: field `token` is private
/// d.mem.write(100, b"x").unwrap(); // error: field `mem` is private
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a DMB goes back to its device through SmcdOps::unregister_dmb"]
pub struct Dmb {
    token: DmbToken,
    mem: DmbMem,
}

impl Dmb {
    /// The handle of the DMB `token` over `mem` (for device implementations).
    ///
    /// # Errors
    ///
    /// [`HandleError::DmbSize`] unless `mem` is 16 KiB … 1 MiB long.
    pub fn new(token: DmbToken, mem: DmbMem) -> Result<Self, HandleError> {
        dmb_len(mem.len())?;
        Ok(Self { token, mem })
    }

    /// The DMB's token (sent to the peer in Accept / Confirm).
    pub fn token(&self) -> DmbToken {
        self.token
    }

    /// The DMB's memory (CDC header at offset 0, then the ring).
    pub fn mem(&self) -> &DmbMem {
        &self.mem
    }

    /// Length in bytes, CDC header included.
    pub fn len(&self) -> usize {
        self.mem.len()
    }

    /// Always `false`: a DMB holds at least a header and a ring.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The peer's DMB as one of our DMBs sends into it, from
/// [`SmcdOps::attach_dmb`]: its token and length, and — in nocopy mode —
/// access to its data ring.
///
/// Linear like [`Dmb`]: given back only by [`SmcdOps::detach_dmb`], which
/// consumes it. The mapped [`ring`](Self::ring) covers the bytes behind the
/// peer's CDC header and nothing else: the header is written only through
/// [`SmcdOps::move_data`] with `signal`.
#[derive(Debug)]
#[must_use = "a peer DMB goes back to its device through SmcdOps::detach_dmb"]
pub struct PeerDmb {
    own: DmbToken,
    token: DmbToken,
    len: usize,
    ring: Option<DmbMem>,
}

impl PeerDmb {
    /// The peer DMB `token` of `len` bytes, bound to our DMB `own`, with its
    /// ring mapped (`Some`, nocopy) or not (for device implementations).
    ///
    /// # Errors
    ///
    /// [`HandleError::DmbSize`] unless `len` is a DMB size;
    /// [`HandleError::RingSize`] unless a mapped ring is `len` minus the
    /// 32-byte CDC header.
    pub fn new(
        own: DmbToken,
        token: DmbToken,
        len: usize,
        ring: Option<DmbMem>,
    ) -> Result<Self, HandleError> {
        dmb_len(len)?;
        if let Some(r) = &ring {
            if r.len() != len - CDC_HEADER_LEN_BYTES {
                return Err(HandleError::RingSize {
                    dmb: len,
                    ring: r.len(),
                });
            }
        }
        Ok(Self {
            own,
            token,
            len,
            ring,
        })
    }

    /// The peer DMB's token (the target of our `move_data` calls).
    pub fn token(&self) -> DmbToken {
        self.token
    }

    /// The token of our DMB this binding belongs to.
    pub fn own_token(&self) -> DmbToken {
        self.own
    }

    /// The peer DMB's length, CDC header included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a DMB holds at least a header and a ring.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The peer's data ring (DMB bytes 32…), when mapped for nocopy.
    pub fn ring(&self) -> Option<&DmbMem> {
        self.ring.as_ref()
    }
}

/// The peer's DMB as its Accept or Confirm names it: the peer device's GID,
/// the token and the length (decoded `dmbe_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerDmbId {
    /// GID of the peer's device (where the DMB lives).
    pub gid: Gid,
    /// The DMB's token.
    pub token: DmbToken,
    /// The DMB's length in bytes, CDC header included.
    pub len: usize,
}

/// An SMC-D device (ISM, or the loopback device of `smcd-lo`).
///
/// # Handles
///
/// DMB memory leaves a device only inside linear handles: [`Dmb`] for our
/// own DMBs, [`PeerDmb`] for a peer's DMB we send into. A device must refuse
/// (with [`ErrorKind::InvalidToken`]) a handle it did not hand out — compare
/// token *and* [`DmbMem::region`] — and must keep the memory behind a handle
/// valid until the handle comes back.
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
    /// # Errors
    ///
    /// [`ErrorKind::NoSpace`] at the device's DMB limit, [`ErrorKind::NoMemory`]
    /// if memory of that size is unavailable.
    fn register_dmb(&self, size: usize) -> Result<Dmb, Self::Error>;

    /// Give one of our DMBs back (`unregister_dmb`). Its memory is freed
    /// once no peer has it attached any more.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`] for a handle this device did not hand out
    /// (the handle is dropped; nothing is freed).
    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), Self::Error>;

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

    /// Whether a sender may map the peer's DMB and write into it directly
    /// (`support_dmb_nocopy`). Default: no.
    fn supports_nocopy(&self) -> bool {
        false
    }

    /// Bind the **peer's** DMB `peer` (as its Accept or Confirm named it)
    /// as the send target of our DMB `own`, and with `map` (nocopy, only
    /// when [`supports_nocopy`](Self::supports_nocopy)) map its ring as our
    /// send buffer (`attach_dmb`).
    ///
    /// Every connection binds its peer DMB, in copy mode too: this is where
    /// a device refuses a peer DMB the connection must not write into — one
    /// of our own DMBs, a DMB another connection already sends into, or a
    /// length that is not the DMB's.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`] for an unknown, dying, foreign or already
    /// bound DMB; [`ErrorKind::Unsupported`] for `map` on a device without
    /// nocopy.
    fn attach_dmb(&self, own: &Dmb, peer: PeerDmbId, map: bool) -> Result<PeerDmb, Self::Error>;

    /// Undo [`attach_dmb`](Self::attach_dmb) (`detach_dmb`), consuming the
    /// handle. Call it before unregistering the own DMB it belongs to.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidToken`] for a handle this device did not hand out.
    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), Self::Error>;
}

/// Give a connection's handles back to `dev`: first detach the peer's DMB,
/// then unregister our own — the one release path of every handshake,
/// connection and endpoint. Both steps are attempted; the first failure is
/// returned (nothing more can be done about a device that refuses its own
/// handle back).
///
/// # Errors
///
/// The device's first error.
pub fn give_back<D: SmcdOps + ?Sized>(
    dev: &D,
    own: Option<Dmb>,
    peer: Option<PeerDmb>,
) -> Result<(), D::Error> {
    let detached = peer.map_or(Ok(()), |p| dev.detach_dmb(p));
    let unregistered = own.map_or(Ok(()), |d| dev.unregister_dmb(d));
    detached.and(unregistered)
}

impl<T: ErrorType + ?Sized> ErrorType for &T {
    type Error = T::Error;
}

/// A reference to a device is the device: `Host<&Device>` shares one device
/// between hosts, and a stack-local device needs no `'static`.
impl<T: SmcdOps + ?Sized> SmcdOps for &T {
    #[inline]
    fn local_gid(&self) -> Gid {
        (**self).local_gid()
    }
    #[inline]
    fn chid(&self) -> Chid {
        (**self).chid()
    }
    #[inline]
    fn supports_v2(&self) -> bool {
        (**self).supports_v2()
    }
    #[inline]
    fn query_remote_gid(&self, gid: Gid) -> Result<(), Self::Error> {
        (**self).query_remote_gid(gid)
    }
    #[inline]
    fn register_dmb(&self, size: usize) -> Result<Dmb, Self::Error> {
        (**self).register_dmb(size)
    }
    #[inline]
    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), Self::Error> {
        (**self).unregister_dmb(dmb)
    }
    #[inline]
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), Self::Error> {
        (**self).move_data(token, offset, data, signal)
    }
    #[inline]
    fn signal_dmb(&self, token: DmbToken) -> Result<(), Self::Error> {
        (**self).signal_dmb(token)
    }
    #[inline]
    fn supports_nocopy(&self) -> bool {
        (**self).supports_nocopy()
    }
    #[inline]
    fn attach_dmb(&self, own: &Dmb, peer: PeerDmbId, map: bool) -> Result<PeerDmb, Self::Error> {
        (**self).attach_dmb(own, peer, map)
    }
    #[inline]
    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), Self::Error> {
        (**self).detach_dmb(peer)
    }
}
