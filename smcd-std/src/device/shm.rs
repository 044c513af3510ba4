//! Shared memory of one DMB: a sealed memfd, mapped shared, with a control
//! page behind the DMB for the doorbell's "armed" flag.
//!
//! Layout of the memfd: bytes `0..len` are the DMB (CDC header, then ring);
//! the page after it holds the receiver's [`Control`] word. The owner creates
//! and seals the memfd (no grow, no shrink, no further seals), so neither
//! side can make the other's mapping fault; a peer's memfd is mapped only
//! after its seals and size were checked.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use smcd_core::mem::{DmbMem, DmbRegion};

/// Bytes of the control area behind every DMB (one page).
pub(crate) const CONTROL_BYTES: usize = 4096;

/// The seals every DMB memfd carries before it is handed to a peer.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// A shared mapping of a DMB memfd (DMB plus control page), unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    base: NonNull<u8>,
    dmb_len: usize,
}

// SAFETY: the mapping is shared memory by design; every access to it goes
// through `DmbMem` (atomic copies and words) or the control word's atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Map `fd` (a DMB of `dmb_len` bytes plus its control page) shared.
    fn map(fd: &OwnedFd, dmb_len: usize) -> io::Result<Self> {
        let total = dmb_len + CONTROL_BYTES;
        // SAFETY: a fresh shared mapping of a sealed file of `total` bytes;
        // nothing else in this process refers to the new address range.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                total,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        let base = NonNull::new(ptr.cast::<u8>()).ok_or(io::ErrorKind::OutOfMemory)?;
        Ok(Self { base, dmb_len })
    }

    /// Where the DMB lies (the control page excluded).
    pub(crate) fn region(&self) -> DmbRegion {
        // Page-aligned, so the alignment check cannot fail.
        DmbRegion::new(self.base, self.dmb_len).unwrap_or_else(|_| unreachable!("page aligned"))
    }

    /// A view of the DMB.
    ///
    /// # Safety
    ///
    /// The view must not outlive this mapping.
    pub(crate) unsafe fn view(&self) -> DmbMem {
        // SAFETY: the mapping is valid for reads and writes until dropped,
        // which the caller's contract puts after the view; it is only ever
        // reached through `DmbMem` views and the control atomics.
        unsafe { DmbMem::from_region(self.region()) }
    }

    /// The receiver's doorbell control word.
    pub(crate) fn control(&self) -> &Control {
        // SAFETY: the control page lies right behind the DMB inside the
        // mapping, page-aligned, and lives as long as `&self`; `Control` is
        // a `repr(C)` pair of atomics, valid for any bit pattern.
        unsafe { &*self.base.as_ptr().add(self.dmb_len).cast::<Control>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range was mapped by `map` and no view of it is left
        // (views borrow from handles that are back before their mapping
        // goes, see the device).
        let _ =
            unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.dmb_len + CONTROL_BYTES) };
    }
}

/// The control page of a DMB: written by its receiver, read by its sender.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    /// Non-zero while the receiver waits on its doorbell eventfd: the sender
    /// then writes the eventfd after publishing a header.
    pub(crate) armed: AtomicU32,
}

/// A DMB memfd of our own, created, sized, sealed and mapped.
#[derive(Debug)]
pub(crate) struct OwnShm {
    pub(crate) fd: OwnedFd,
    pub(crate) map: Mapping,
}

impl OwnShm {
    /// A zeroed DMB of `len` bytes (memfds start zeroed).
    pub(crate) fn create(len: usize) -> io::Result<Self> {
        let fd = crate::fdfloor::lift(rustix::fs::memfd_create(
            c"smcd-dmb",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?);
        rustix::fs::ftruncate(&fd, (len + CONTROL_BYTES) as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SEALS)?;
        let map = Mapping::map(&fd, len)?;
        Ok(Self { fd, map })
    }
}

/// Why a peer's memfd is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerShmError {
    /// Not sealed against shrinking and growing: the peer could truncate it
    /// and make our accesses fault (SIGBUS).
    Unsealed,
    /// Its size is not the announced DMB plus the control page.
    Size,
}

impl PeerShmError {
    /// A sentence for the device error.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Unsealed => "peer memfd not sealed against resizing",
            Self::Size => "peer memfd size differs from its DMB",
        }
    }
}

/// Map a peer's DMB memfd after checking it cannot fault under us.
pub(crate) fn map_peer(fd: &OwnedFd, len: usize) -> io::Result<Result<Mapping, PeerShmError>> {
    let seals = rustix::fs::fcntl_get_seals(fd)?;
    if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
        return Ok(Err(PeerShmError::Unsealed));
    }
    let size = rustix::fs::fstat(fd)?.st_size;
    if usize::try_from(size).ok() != Some(len + CONTROL_BYTES) {
        return Ok(Err(PeerShmError::Size));
    }
    Mapping::map(fd, len).map(Ok)
}

/// The (device, inode) identity of a file, to recognise our own memfds.
pub(crate) fn identity(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}
