//! [`DmbMem`]: the only handle through which smcd touches DMB memory.
//!
//! DMB memory is shared with the peer, which may be buggy, hostile or dead.
//! This module is the audited home of the `unsafe` needed to reach it: every
//! access is bounds-checked against the DMB length, bytes are moved with
//! relaxed atomic loads and stores (single bytes up to a word boundary, native
//! words in between, `shared_copy`), so that a concurrent writer is never a
//! data race, and the two cursor words of the CDC header are read and written
//! as aligned 64-bit atomics (`spec/cdc.md` §2).
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
//! copy. Views made by [`from_raw_parts`](DmbMem::from_raw_parts) keep working
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

/// A bounds-checked view of one DMB: base pointer and length.
///
/// Cheap to copy. Validity is guaranteed by the device that handed it out:
/// the memory stays mapped until the DMB is unregistered (owner) or detached
/// (nocopy attacher), whichever is last.
#[derive(Clone, Copy)]
pub struct DmbMem {
    store: Store,
    len: usize,
}

/// Where the bytes of a [`DmbMem`] live.
#[derive(Clone, Copy)]
enum Store {
    /// Plain memory at a raw pointer (every real DMB).
    Raw(NonNull<u8>),
    /// loom-tracked cells (models only).
    #[cfg(smcd_loom)]
    Tracked(&'static tracked::Tracked),
}

// SAFETY: `DmbMem` is a view of memory that is by design shared between
// threads (and processes); every access goes through bounds-checked copies or
// atomics, so moving the handle to another thread adds no new hazard.
unsafe impl Send for DmbMem {}
// SAFETY: as above; `&DmbMem` only offers the same bounds-checked accesses.
unsafe impl Sync for DmbMem {}

impl fmt::Debug for DmbMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmbMem")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DmbMem {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "DmbMem {{ ptr: {=usize:#x}, len: {=usize} }}",
            self.as_ptr() as usize,
            self.len
        );
    }
}

impl DmbMem {
    /// A view of `len` bytes at `ptr`.
    ///
    /// # Errors
    ///
    /// [`MemError::Misaligned`] if `ptr` is not 8-byte aligned.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes of `len` bytes for as long as
    /// this view or any copy of it is used, and must not be accessed through
    /// Rust references (`&`/`&mut`) by anyone else meanwhile — only through
    /// `DmbMem` views or raw pointers (another process's mapping counts as raw).
    pub unsafe fn from_raw_parts(ptr: NonNull<u8>, len: usize) -> Result<Self, MemError> {
        if (ptr.as_ptr() as usize) % DMB_ALIGN_BYTES != 0 {
            return Err(MemError::Misaligned);
        }
        Ok(Self {
            store: Store::Raw(ptr),
            len,
        })
    }

    /// A view of memory that is handed over for good (e.g. a leaked buffer or
    /// a `static` region): the safe counterpart of
    /// [`from_raw_parts`](Self::from_raw_parts).
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
        let len = buf.len();
        // SAFETY: the exclusive `'static` borrow is consumed here, so the
        // memory is valid forever and reachable only through this view.
        unsafe { Self::from_raw_parts(NonNull::from(buf).cast(), len) }
    }

    /// A loom-tracked DMB of `len` zeroed bytes, for loom models.
    ///
    /// The storage is leaked (a few dozen bytes per DMB byte), so models keep
    /// their DMBs small. See the module docs for the separate-words rule.
    #[cfg(smcd_loom)]
    pub fn loom_new(len: usize) -> Self {
        Self {
            store: Store::Tracked(tracked::Tracked::leak(len)),
            len,
        }
    }

    /// Length of the DMB in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the DMB has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base address, for identity checks and diagnostics only.
    pub fn as_ptr(&self) -> *const u8 {
        match self.store {
            Store::Raw(ptr) => ptr.as_ptr(),
            #[cfg(smcd_loom)]
            Store::Tracked(t) => t.as_ptr(),
        }
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), MemError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(MemError::OutOfBounds {
                offset,
                len,
                dmb_len: self.len,
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
        match self.store {
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
            Store::Tracked(t) => t.write(offset, src),
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
        match self.store {
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
            Store::Tracked(t) => t.read(offset, dst),
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
        match self.store {
            // SAFETY: in bounds (checked above), valid for reads and writes
            // per the constructor's contract and reached by others only
            // through `DmbMem` (atomic copies and words) or from another
            // address space.
            Store::Raw(ptr) => unsafe {
                shared_copy::zero_shared(ptr.as_ptr().add(offset), len);
            },
            #[cfg(smcd_loom)]
            Store::Tracked(t) => t.zero(offset, len),
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
        Ok(match self.store {
            Store::Raw(ptr) => self.raw_word(ptr, offset).load(order),
            #[cfg(smcd_loom)]
            Store::Tracked(t) => t.load_u64(offset / WORD_BYTES, order),
        })
    }

    /// Atomically store the 64-bit word at `offset` (must be 8-aligned).
    ///
    /// # Errors
    ///
    /// [`MemError::OutOfBounds`] or [`MemError::Misaligned`].
    pub fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), MemError> {
        self.check_word(offset)?;
        match self.store {
            Store::Raw(ptr) => self.raw_word(ptr, offset).store(value, order),
            #[cfg(smcd_loom)]
            Store::Tracked(t) => t.store_u64(offset / WORD_BYTES, value, order),
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
        Ok(match self.store {
            Store::Raw(ptr) => {
                // SAFETY: in bounds (checked above), valid per the
                // constructor's contract; no local writer exists for the
                // duration per this function's contract.
                f(unsafe { core::slice::from_raw_parts(ptr.as_ptr().add(offset), len) })
            }
            #[cfg(smcd_loom)]
            Store::Tracked(t) => t.with_copy(offset, len, f),
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
        Ok(match self.store {
            Store::Raw(ptr) => {
                // SAFETY: in bounds (checked above), valid per the
                // constructor's contract; exclusive for the duration per this
                // function's contract.
                f(unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr().add(offset), len) })
            }
            #[cfg(smcd_loom)]
            Store::Tracked(t) => t.with_copy_mut(offset, len, f),
        })
    }
}

/// A zeroed, 8-aligned heap buffer that owns the memory behind its
/// [`DmbMem`] views and frees it on drop (test doubles and unit tests; views
/// must not be used after the drop).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
pub(crate) struct OwnedDmb {
    words: NonNull<[u64]>,
    len: usize,
}

#[cfg(any(test, feature = "test-util"))]
impl OwnedDmb {
    /// `len` zeroed bytes.
    pub(crate) fn new(len: usize) -> Self {
        let words = std::vec![0u64; len.div_ceil(WORD_BYTES)].into_boxed_slice();
        Self {
            // Owned through a raw pointer (not a `Box`), so that moving
            // `self` does not invalidate the views derived from it.
            words: NonNull::from(std::boxed::Box::leak(words)),
            len,
        }
    }

    /// A view of the whole buffer.
    pub(crate) fn mem(&self) -> DmbMem {
        DmbMem {
            store: Store::Raw(self.words.cast()),
            len: self.len,
        }
    }
}

// SAFETY: `OwnedDmb` uniquely owns its heap buffer, as a `Box<[u64]>`
// would; freeing it on another thread is fine, and what it hands out are
// `DmbMem` views, which are `Send` and `Sync` themselves. This makes test
// doubles holding DMBs (`MockSmcd`) `Sync` behind their mutex.
#[cfg(any(test, feature = "test-util"))]
unsafe impl Send for OwnedDmb {}

#[cfg(any(test, feature = "test-util"))]
impl Drop for OwnedDmb {
    fn drop(&mut self) {
        // SAFETY: `words` came from `Box::leak` in `new` and is freed only here.
        drop(unsafe { std::boxed::Box::from_raw(self.words.as_ptr()) });
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
        unsafe { DmbMem::from_raw_parts(NonNull::from(&mut buf.0).cast(), 64) }.unwrap()
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
        assert_eq!(
            // SAFETY: never dereferenced: construction must fail.
            unsafe { DmbMem::from_raw_parts(p, 8) }.unwrap_err(),
            MemError::Misaligned
        );
    }
}
