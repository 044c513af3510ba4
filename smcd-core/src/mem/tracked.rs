//! loom-tracked DMB storage (`cfg(smcd_loom)` only): one loom cell per byte
//! and one loom atomic per aligned 64-bit word, so that loom reports a data
//! race when ring bytes are read without a happens-before edge from their
//! write (e.g. a cursor published with `Relaxed`).
//!
//! Callers ([`super::DmbMem`]) check bounds and alignment before calling in.

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::sync::{AtomicU64, Ordering, UnsafeCell};

/// The cells of one loom-model DMB.
#[derive(Debug)]
pub(super) struct Tracked {
    bytes: Box<[UnsafeCell<u8>]>,
    words: Box<[AtomicU64]>,
}

// SAFETY: the byte cells are only reached through loom's `with`/`with_mut`,
// which check every access for races; the words are atomics.
unsafe impl Sync for Tracked {}

impl Tracked {
    /// Zeroed storage of `len` bytes, leaked so that `Copy` views can share it.
    pub(super) fn leak(len: usize) -> &'static Self {
        let bytes = (0..len).map(|_| UnsafeCell::new(0)).collect();
        let words = (0..len / super::WORD_BYTES)
            .map(|_| AtomicU64::new(0))
            .collect();
        Box::leak(Box::new(Self { bytes, words }))
    }

    pub(super) fn as_ptr(&self) -> *const u8 {
        self.bytes.as_ptr().cast()
    }

    fn cells(&self, offset: usize, len: usize) -> impl Iterator<Item = &UnsafeCell<u8>> {
        self.bytes.iter().skip(offset).take(len)
    }

    pub(super) fn write(&self, offset: usize, src: &[u8]) {
        for (cell, b) in self.cells(offset, src.len()).zip(src) {
            // SAFETY: loom checks that no other access overlaps this one.
            cell.with_mut(|p| unsafe { *p = *b });
        }
    }

    pub(super) fn read(&self, offset: usize, dst: &mut [u8]) {
        for (cell, b) in self.cells(offset, dst.len()).zip(dst) {
            // SAFETY: loom checks that no write overlaps this read.
            *b = cell.with(|p| unsafe { *p });
        }
    }

    pub(super) fn zero(&self, offset: usize, len: usize) {
        for cell in self.cells(offset, len) {
            // SAFETY: loom checks that no other access overlaps this one.
            cell.with_mut(|p| unsafe { *p = 0 });
        }
    }

    pub(super) fn load_u64(&self, word: usize, order: Ordering) -> u64 {
        self.words.get(word).map_or(0, |w| w.load(order))
    }

    pub(super) fn store_u64(&self, word: usize, value: u64, order: Ordering) {
        if let Some(w) = self.words.get(word) {
            w.store(value, order);
        }
    }

    /// Run `f` on a copy of the range (read accesses).
    pub(super) fn with_copy<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut tmp = alloc::vec![0; len];
        self.read(offset, &mut tmp);
        f(&tmp)
    }

    /// Run `f` on a copy of the range and write it back (write accesses).
    pub(super) fn with_copy_mut<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        // Taken as writes, so that a concurrent reader of the range is reported.
        let mut tmp: Vec<u8> = self
            .cells(offset, len)
            // SAFETY: loom checks that no other access overlaps this one.
            .map(|cell| cell.with_mut(|p| unsafe { *p }))
            .collect();
        let r = f(&mut tmp);
        self.write(offset, &tmp);
        r
    }
}
