//! [`DmbMem`]: the only handle through which smcd touches DMB memory.
//!
//! DMB memory is shared with the peer, which may be buggy, hostile or dead.
//! This module is the audited home of the `unsafe` needed to reach it: every
//! access is bounds-checked against the DMB length, bytes are moved with
//! relaxed atomic loads and stores (single bytes up to a word boundary, native
//! words in between, `shared_copy`), so that a concurrent writer is never a
//! data race, and the two cursor words of the CDC header are read and written
//! as aligned 64-bit atomics (`docs/protocol/cdc.md` §2).
//!
//! The memory is owned by a device (see [`crate::ops::SmcdOps`]); a `DmbMem`
//! is a borrowed view that stays valid while the device keeps the DMB
//! registered or attached.
//!
//! # Under loom (`cfg(smcd_loom)`)
//!
//! loom cannot track accesses through raw pointers, so `DmbMem::loom_new`
//! builds a loom-tracked DMB instead: one `loom::cell::UnsafeCell<u8>` per
//! byte and one loom `AtomicU64` per 8-byte-aligned word. The public API is
//! the same, with one rule: **the atomic words are separate storage**. A word
//! written with [`store_u64`](DmbMem::store_u64) is seen only by
//! [`load_u64`](DmbMem::load_u64) at the same offset, never by
//! [`read`](DmbMem::read) or the slice accessors, and vice versa. The CDC
//! header follows that rule anyway: bytes 8–15 and 16–23 are only ever
//! accessed as atomics. `with_slice(_mut)` run their closure on a temporary
//! copy. Views made by [`from_region`](DmbMem::from_region) of a raw region keep working
//! under loom but are outside the model (untracked).
#![allow(unsafe_code)]

use core::fmt;
use core::ptr::NonNull;

use crate::sync::Ordering;

mod shared_copy;
#[cfg(smcd_loom)]
mod tracked;

/// The atomic type of raw DMB words. Under loom, raw views are outside the
/// model and use the real atomic; loom's type cannot sit on a raw pointer.
#[cfg(not(smcd_loom))]
use crate::sync::AtomicU64 as RawWord;
#[cfg(smcd_loom)]
use portable_atomic::AtomicU64 as RawWord;

/// Alignment every DMB base address must have (the cursor words are 64-bit atomics).
pub const DMB_ALIGN_BYTES: usize = 8;

/// Bytes of one atomic word ([`DmbMem::load_u64`] / [`DmbMem::store_u64`]).
const WORD_BYTES: usize = 8;

/// An access outside a DMB or with a bad alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemError {
    /// `offset + len` exceeds the DMB length (or overflows).
    OutOfBounds {
        /// Requested start offset.
        offset: usize,
        /// Requested length.
        len: usize,
        /// Length of the DMB.
        dmb_len: usize,
    },
    /// The base pointer or a 64-bit word offset is not 8-byte aligned.
    Misaligned,
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemError::OutOfBounds {
                offset,
                len,
                dmb_len,
            } => write!(
                f,
                "access of {len} bytes at offset {offset} is outside the {dmb_len}-byte DMB"
            ),
            MemError::Misaligned => f.write_str("DMB address or word offset is not 8-byte aligned"),
        }
    }
}

impl core::error::Error for MemError {}

/// Where one DMB lies: its base and length, without any access to it.
///
/// A region is what devices and memory providers pass around to describe
/// DMB memory (a table entry, a block to free). It is `Copy` and carries no
/// right to touch the bytes: reading or writing takes a [`DmbMem`], which
/// only `unsafe` code (or [`DmbMem::from_static`]) can make from a region.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DmbRegion {
    store: Store,
    len: usize,
}

/// Where the bytes of a [`DmbRegion`] live.
#[derive(Clone, Copy)]
enum Store {
    /// Plain memory at a raw pointer (every real DMB).
    Raw(NonNull<u8>),
    /// loom-tracked cells starting at a byte offset (models only).
    #[cfg(smcd_loom)]
    Tracked(&'static tracked::Tracked, usize),
}

impl PartialEq for Store {
    /// The same memory: the same address (and, under loom, the same cells).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Store::Raw(a), Store::Raw(b)) => a == b,
            #[cfg(smcd_loom)]
            (Store::Tracked(a, x), Store::Tracked(b, y)) => core::ptr::eq(*a, *b) && x == y,
            #[cfg(smcd_loom)]
            _ => false,
        }
    }
}

impl Eq for Store {}

// SAFETY: a region is an address and a length; it grants no access, so it
// may be sent and shared freely.
unsafe impl Send for DmbRegion {}
// SAFETY: as above.
unsafe impl Sync for DmbRegion {}

impl fmt::Debug for DmbRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmbRegion")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DmbRegion {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "DmbRegion {{ ptr: {=usize:#x}, len: {=usize} }}",
            self.as_ptr() as usize,
            self.len
        );
    }
}

impl DmbRegion {
    /// The region of `len` bytes at `ptr`.
    ///
    /// # Errors
    ///
    /// [`MemError::Misaligned`] if `ptr` is not [`DMB_ALIGN_BYTES`]-aligned.
    pub fn new(ptr: NonNull<u8>, len: usize) -> Result<Self, MemError> {
        if (ptr.as_ptr() as usize) % DMB_ALIGN_BYTES != 0 {
            return Err(MemError::Misaligned);
        }
        Ok(Self {
            store: Store::Raw(ptr),
            len,
        })
    }

    /// A loom-tracked region of `len` zeroed bytes, for loom models.
    ///
    /// The storage is leaked (a few dozen bytes per DMB byte), so models keep
    /// their DMBs small. See the module docs for the separate-words rule.
    #[cfg(smcd_loom)]
    pub fn loom_new(len: usize) -> Self {
        Self {
            store: Store::Tracked(tracked::Tracked::leak(len), 0),
            len,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base address, for identity checks and diagnostics only.
    pub fn as_ptr(&self) -> *const u8 {
        match self.store {
            Store::Raw(ptr) => ptr.as_ptr(),
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.as_ptr().wrapping_add(base),
        }
    }

    /// The part of the region from byte `offset` on (e.g. the data ring
    /// behind a DMB's CDC header); `None` unless `offset` is a multiple of
    /// [`DMB_ALIGN_BYTES`] within the region.
    pub fn tail(self, offset: usize) -> Option<Self> {
        if offset > self.len || offset % DMB_ALIGN_BYTES != 0 {
            return None;
        }
        let store = match self.store {
            // SAFETY: `offset <= len`, so the result stays inside (or one
            // past the end of) the region and is not null.
            Store::Raw(ptr) => Store::Raw(unsafe { ptr.add(offset) }),
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => Store::Tracked(t, base + offset),
        };
        Some(Self {
            store,
            len: self.len - offset,
        })
    }
}

/// Access to one DMB's bytes: bounds-checked copies and aligned atomic words.
///
/// A `DmbMem` is neither `Copy` nor `Clone`. It lives inside the handle a
/// device hands out ([`Dmb`](crate::ops::Dmb), [`PeerDmb`](crate::ops::PeerDmb)),
/// and every use borrows from that handle; giving the handle back to the
/// device consumes it, so no view outlives the memory.
pub struct DmbMem {
    region: DmbRegion,
}

impl fmt::Debug for DmbMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DmbMem").field(&self.region).finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DmbMem {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "DmbMem({})", self.region);
    }
}

impl DmbMem {
    /// Access to the memory of `region`.
    ///
    /// # Safety
    ///
    /// The region must be valid for reads and writes for as long as this
    /// view exists, and must not be accessed through Rust references
    /// (`&`/`&mut`) by anyone else meanwhile — only through `DmbMem` views or
    /// raw pointers (another process's mapping counts as raw).
    pub unsafe fn from_region(region: DmbRegion) -> Self {
        Self { region }
    }

    /// Access to memory that is handed over for good (e.g. a leaked buffer or
    /// a `static` region): the safe counterpart of
    /// [`from_region`](Self::from_region).
    ///
    /// ```
    /// use smcd_core::mem::DmbMem;
    ///
    /// // `u64`s for the alignment, viewed as bytes.
    /// let words: &'static mut [u64] = Box::leak(vec![0u64; 8].into_boxed_slice());
    /// let bytes = zerocopy::IntoBytes::as_mut_bytes(words);
    /// let mem = DmbMem::from_static(bytes).unwrap();
    /// mem.write(60, &[1, 2, 3, 4]).unwrap();
    /// assert_eq!(mem.len(), 64);
    /// ```
    ///
    /// # Errors
    ///
    /// [`MemError::Misaligned`] if the slice is not 8-byte aligned.
    pub fn from_static(buf: &'static mut [u8]) -> Result<Self, MemError> {
        let region = DmbRegion::new(NonNull::from(&mut *buf).cast(), buf.len())?;
        // SAFETY: the exclusive `'static` borrow is consumed here, so the
        // memory is valid forever and reachable only through this view.
        Ok(unsafe { Self::from_region(region) })
    }

    /// A loom-tracked DMB of `len` zeroed bytes, for loom models (leaked, so
    /// always valid).
    #[cfg(smcd_loom)]
    pub fn loom_new(len: usize) -> Self {
        Self {
            region: DmbRegion::loom_new(len),
        }
    }

    /// Where this memory lies (for a device's table and identity checks).
    pub fn region(&self) -> DmbRegion {
        self.region
    }

    /// Length of the DMB in bytes.
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Whether the DMB has no bytes.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }

    /// The base address, for identity checks and diagnostics only.
    pub fn as_ptr(&self) -> *const u8 {
        self.region.as_ptr()
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), MemError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.region.len => Ok(()),
            _ => Err(MemError::OutOfBounds {
                offset,
                len,
                dmb_len: self.region.len,
            }),
        }
    }

    /// Copy `src` into the DMB at `offset`.
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] if the range does not fit; nothing is written then.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), MemError> {
        self.check(offset, src.len())?;
        match self.region.store {
            // SAFETY: the range lies inside the DMB (checked above), which is
            // valid for reads and writes per the constructor's contract and
            // reached by others only through `DmbMem` (atomic copies and
            // words) or from another address space. `src` cannot overlap it:
            // other memory is a Rust slice elsewhere, and a slice of this DMB
            // (`with_slice`) bars writes to its range while it lives.
            Store::Raw(ptr) => unsafe {
                shared_copy::copy_to_shared(ptr.as_ptr().add(offset), src);
            },
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.write(base + offset, src),
        }
        Ok(())
    }

    /// Copy bytes of the DMB at `offset` into `dst`.
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] if the range does not fit; `dst` is untouched then.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), MemError> {
        self.check(offset, dst.len())?;
        match self.region.store {
            // SAFETY: the range lies inside the DMB (checked above), valid for
            // reads and writes per the constructor's contract and reached by
            // others only through `DmbMem` (atomic copies and words) or from
            // another address space. `dst` cannot overlap it: other memory is
            // a Rust slice elsewhere, and a slice of this DMB
            // (`with_slice_mut`) bars reads of its range while it lives.
            Store::Raw(ptr) => unsafe {
                shared_copy::copy_from_shared(ptr.as_ptr().add(offset), dst);
            },
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.read(base + offset, dst),
        }
        Ok(())
    }

    /// Set `len` bytes at `offset` to zero.
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] if the range does not fit.
    pub fn zero(&self, offset: usize, len: usize) -> Result<(), MemError> {
        self.check(offset, len)?;
        match self.region.store {
            // SAFETY: in bounds (checked above), valid for reads and writes
            // per the constructor's contract and reached by others only
            // through `DmbMem` (atomic copies and words) or from another
            // address space.
            Store::Raw(ptr) => unsafe {
                shared_copy::zero_shared(ptr.as_ptr().add(offset), len);
            },
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.zero(base + offset, len),
        }
        Ok(())
    }

    /// Check that a word access at `offset` is in bounds and aligned.
    fn check_word(&self, offset: usize) -> Result<(), MemError> {
        self.check(offset, WORD_BYTES)?;
        if offset % WORD_BYTES != 0 {
            return Err(MemError::Misaligned);
        }
        Ok(())
    }

    /// The raw atomic word at an `offset` that passed [`check_word`](Self::check_word).
    fn raw_word(&self, ptr: NonNull<u8>, offset: usize) -> &RawWord {
        // SAFETY: `ptr` is this view's base; `check_word` verified that the 8
        // bytes at `offset` are in bounds and 8-byte aligned (base aligned by
        // construction); they stay valid while `&self` is used per the
        // constructor's contract, and are only ever accessed atomically or by
        // raw copies that the CDC protocol orders.
        unsafe { RawWord::from_ptr(ptr.as_ptr().add(offset).cast::<u64>()) }
    }

    /// Atomically load the 64-bit word at `offset` (must be 8-aligned).
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] or [`MemError::Misaligned`].
    pub fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, MemError> {
        self.check_word(offset)?;
        Ok(match self.region.store {
            Store::Raw(ptr) => self.raw_word(ptr, offset).load(order),
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.load_u64((base + offset) / WORD_BYTES, order),
        })
    }

    /// Atomically store the 64-bit word at `offset` (must be 8-aligned).
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] or [`MemError::Misaligned`].
    pub fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), MemError> {
        self.check_word(offset)?;
        match self.region.store {
            Store::Raw(ptr) => self.raw_word(ptr, offset).store(value, order),
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.store_u64((base + offset) / WORD_BYTES, value, order),
        }
        Ok(())
    }

    /// Run `f` on a shared slice of `len` bytes at `offset` (zero-copy receive).
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] if the range does not fit; `f` is not called then.
    ///
    /// # Safety
    ///
    /// Nobody in this address space may write the range while `f` runs (the
    /// CDC cursors guarantee it for ring bytes the peer has produced and we
    /// have not yet consumed). A hostile peer in another address space may
    /// still change the bytes: `f` must treat them as untrusted data.
    pub unsafe fn with_slice<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, MemError> {
        self.check(offset, len)?;
        Ok(match self.region.store {
            Store::Raw(ptr) => {
                // SAFETY: in bounds (checked above), valid per the
                // constructor's contract; no local writer exists for the
                // duration per this function's contract.
                f(unsafe { core::slice::from_raw_parts(ptr.as_ptr().add(offset), len) })
            }
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.with_copy(base + offset, len, f),
        })
    }

    /// Run `f` on a mutable slice of `len` bytes at `offset` (zero-copy send).
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] if the range does not fit; `f` is not called then.
    ///
    /// # Safety
    ///
    /// Nobody else in this address space may read or write the range while
    /// `f` runs (the CDC cursors guarantee it for free ring space the peer
    /// has consumed).
    pub unsafe fn with_slice_mut<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, MemError> {
        self.check(offset, len)?;
        Ok(match self.region.store {
            Store::Raw(ptr) => {
                // SAFETY: in bounds (checked above), valid per the
                // constructor's contract; exclusive for the duration per this
                // function's contract.
                f(unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr().add(offset), len) })
            }
            #[cfg(smcd_loom)]
            Store::Tracked(t, base) => t.with_copy_mut(base + offset, len, f),
        })
    }
}

/// `len` zeroed bytes that stay valid forever (leaked), for unit tests.
#[cfg(test)]
pub(crate) fn leaked(len: usize) -> DmbMem {
    let words: &'static mut [u64] =
        std::boxed::Box::leak(std::vec![0u64; len.div_ceil(WORD_BYTES)].into_boxed_slice());
    let bytes = zerocopy::IntoBytes::as_mut_bytes(words);
    let bytes = bytes.get_mut(..len).unwrap_or_default();
    match DmbMem::from_static(bytes) {
        Ok(mem) => mem,
        // A `u64` buffer is always 8-aligned.
        Err(_) => unreachable!("u64 buffers are 8-aligned"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(8))]
    struct Buf([u8; 64]);

    fn view(buf: &mut Buf) -> DmbMem {
        // SAFETY: `buf` outlives every use in the test and is only accessed
        // through the view.
        unsafe {
            DmbMem::from_region(DmbRegion::new(NonNull::from(&mut buf.0).cast(), 64).unwrap())
        }
    }

    #[test]
    fn bounds_are_checked() {
        let mut b = Buf([0; 64]);
        let m = view(&mut b);
        assert!(m.write(60, &[1, 2, 3, 4]).is_ok());
        assert_eq!(
            m.write(61, &[1, 2, 3, 4]),
            Err(MemError::OutOfBounds {
                offset: 61,
                len: 4,
                dmb_len: 64
            })
        );
        assert!(m.write(usize::MAX, &[1]).is_err());
        let mut out = [0u8; 4];
        m.read(60, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(m.read(64, &mut [0u8; 1]).is_err());
    }

    #[test]
    fn words_are_aligned_and_in_bounds() {
        let mut b = Buf([0; 64]);
        let m = view(&mut b);
        m.store_u64(8, 0x1122_3344_5566_7788, Ordering::Release)
            .unwrap();
        assert_eq!(
            m.load_u64(8, Ordering::Acquire).unwrap(),
            0x1122_3344_5566_7788
        );
        assert_eq!(m.load_u64(4, Ordering::Acquire), Err(MemError::Misaligned));
        assert!(m.load_u64(64, Ordering::Acquire).is_err());
        let mut raw = [0u8; 8];
        m.read(8, &mut raw).unwrap();
        assert_eq!(u64::from_ne_bytes(raw), 0x1122_3344_5566_7788);
    }

    #[test]
    fn misaligned_base_is_rejected() {
        let mut b = Buf([0; 64]);
        let p = NonNull::from(&mut b.0[1]);
        assert_eq!(DmbRegion::new(p, 8).unwrap_err(), MemError::Misaligned);
    }

    #[test]
    fn tail_is_an_aligned_suffix() {
        let mut b = Buf([0; 64]);
        let m = view(&mut b);
        let ring = m.region().tail(32).unwrap();
        assert_eq!(ring.len(), 32);
        assert_eq!(ring.as_ptr(), m.as_ptr().wrapping_add(32));
        assert!(m.region().tail(4).is_none());
        assert!(m.region().tail(72).is_none());
        assert_eq!(m.region().tail(64).map(|r| r.len()), Some(0));
    }
}
