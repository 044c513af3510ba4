//! [`StaticArena`]: DMB memory carved from one caller-provided region.
//!
//! A first-fit allocator over a sorted list of blocks: allocation takes the
//! first free block that is large enough and splits off the rest, freeing
//! marks the block free and merges it with free neighbours, so freed memory
//! is reused and fragmentation stays bounded by the block list. The list
//! holds at most `B` blocks (used and free); when it is full a block is
//! handed out whole instead of being split.
#![allow(unsafe_code)]

use core::ptr::NonNull;

use heapless::Vec;
use smcd_core::mem::{DMB_ALIGN_BYTES, DmbMem, DmbRegion};

use super::DmbMemory;

/// One block of the arena: `len` bytes at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    offset: usize,
    len: usize,
    used: bool,
}

/// DMB memory from a `&'static mut [u8]` (no_std, no allocator).
///
/// `B` bounds the bookkeeping: the number of blocks (handed-out and free)
/// the arena tracks. `n` live DMBs need at most `2n + 1` blocks.
///
/// ```
/// use smcd_lo::{DmbMemory, StaticArena};
///
/// let region: &'static mut [u8] = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
/// let mut arena: StaticArena = StaticArena::new(region);
/// let a = arena.allocate(16 * 1024).unwrap();
/// let b = arena.allocate(16 * 1024).unwrap();
/// assert_ne!(a.as_ptr(), b.as_ptr());
/// // SAFETY: `a` came from this arena and no view of it exists.
/// unsafe { arena.free(a) };
/// assert_eq!(arena.allocate(16 * 1024).unwrap().as_ptr(), a.as_ptr()); // reused
/// ```
#[derive(Debug)]
pub struct StaticArena<const B: usize = 32> {
    base: NonNull<u8>,
    blocks: Vec<Block, B>,
}

// SAFETY: the arena owns its region exclusively (it consumed the `'static`
// borrow); moving the bookkeeping to another thread moves that ownership.
unsafe impl<const B: usize> Send for StaticArena<B> {}

impl<const B: usize> StaticArena<B> {
    /// An arena over `region`; the first bytes up to an 8-byte boundary are
    /// skipped.
    pub fn new(region: &'static mut [u8]) -> Self {
        let skip = region
            .as_ptr()
            .align_offset(DMB_ALIGN_BYTES)
            .min(region.len());
        let (_, usable) = region.split_at_mut(skip);
        let len = usable.len() - usable.len() % DMB_ALIGN_BYTES;
        let mut blocks = Vec::new();
        if len > 0 && B > 0 {
            // Cannot fail: the list is empty and has room for one.
            let _ = blocks.push(Block {
                offset: 0,
                len,
                used: false,
            });
        }
        Self {
            base: NonNull::from(usable).cast(),
            blocks,
        }
    }

    /// Bytes in free blocks.
    pub fn free_bytes(&self) -> usize {
        self.blocks.iter().filter(|b| !b.used).map(|b| b.len).sum()
    }

    /// The largest single allocation that would succeed now.
    pub fn largest_free(&self) -> usize {
        self.blocks
            .iter()
            .filter(|b| !b.used)
            .map(|b| b.len)
            .max()
            .unwrap_or(0)
    }

    /// Number of blocks handed out.
    pub fn in_use(&self) -> usize {
        self.blocks.iter().filter(|b| b.used).count()
    }

    /// Merge the free block at `i` with a free successor.
    fn merge_next(&mut self, i: usize) {
        let (Some(cur), Some(next)) = (self.blocks.get(i), self.blocks.get(i + 1)) else {
            return;
        };
        if cur.used || next.used {
            return;
        }
        let len = cur.len + next.len;
        self.blocks.remove(i + 1);
        if let Some(cur) = self.blocks.get_mut(i) {
            cur.len = len;
        }
    }
}

impl<const B: usize> DmbMemory for StaticArena<B> {
    fn allocate(&mut self, size: usize) -> Option<DmbRegion> {
        let want = size.checked_next_multiple_of(DMB_ALIGN_BYTES)?;
        if want == 0 {
            return None;
        }
        let i = self.blocks.iter().position(|b| !b.used && b.len >= want)?;
        let room = self.blocks.len() < B;
        let block = self.blocks.get_mut(i)?;
        let offset = block.offset;
        block.used = true;
        if block.len > want && room {
            let rest = Block {
                offset: offset + want,
                len: block.len - want,
                used: false,
            };
            block.len = want;
            // Cannot fail: `room` was checked above.
            let _ = self.blocks.insert(i + 1, rest);
        }
        // SAFETY: `offset` lies inside the region (the block holds at least
        // `want >= size` bytes from there), so the pointer is in bounds and
        // not null.
        let ptr = unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) };
        // The offset is a multiple of 8 from an 8-aligned base.
        let region = DmbRegion::new(ptr, size).ok()?;
        // SAFETY: the block is exclusively ours (the region was a `'static`
        // borrow) and handed out to nobody until freed; the view is dropped
        // before the region is returned.
        unsafe { DmbMem::from_region(region) }.zero(0, size).ok()?;
        Some(region)
    }

    unsafe fn free(&mut self, region: DmbRegion) {
        let offset = (region.as_ptr() as usize).wrapping_sub(self.base.as_ptr() as usize);
        let Some(i) = self
            .blocks
            .iter()
            .position(|b| b.used && b.offset == offset)
        else {
            return;
        };
        if let Some(b) = self.blocks.get_mut(i) {
            b.used = false;
        }
        self.merge_next(i);
        if let Some(prev) = i.checked_sub(1) {
            self.merge_next(prev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::vec;

    const KIB: usize = 1024;

    /// `len` leaked bytes on an 8-byte boundary (the global allocator need
    /// not align a byte buffer: Miri does not), so that sizes are exact.
    fn region(len: usize) -> &'static mut [u8] {
        let buf = Box::leak(vec![0xA5u8; len + 8].into_boxed_slice());
        let skip = buf.as_ptr().align_offset(8);
        &mut buf[skip..skip + len]
    }

    /// A view of an allocated block (the arena's region is leaked, so the
    /// memory stays valid even after a `free`).
    fn view(r: DmbRegion) -> DmbMem {
        // SAFETY: the block lies in a leaked region reached only through views.
        unsafe { DmbMem::from_region(r) }
    }

    #[test]
    fn allocations_are_aligned_zeroed_and_disjoint() {
        let r = region(64 * KIB + 3);
        let start = r.as_ptr() as usize;
        let mut arena: StaticArena = StaticArena::new(r);
        let a = arena.allocate(16 * KIB).unwrap();
        let b = arena.allocate(20 * KIB + 1).unwrap();
        for m in [view(a), view(b)] {
            assert_eq!(m.as_ptr() as usize % 8, 0);
            assert!(m.as_ptr() as usize >= start);
            let mut probe = [0xFFu8; 64];
            m.read(m.len() - 64, &mut probe).unwrap();
            assert_eq!(probe, [0; 64]);
        }
        assert_eq!(b.len(), 20 * KIB + 1);
        assert!(b.as_ptr() as usize >= a.as_ptr() as usize + 16 * KIB);
        assert_eq!(arena.in_use(), 2);
    }

    #[test]
    fn exhaustion_and_reuse() {
        let mut arena: StaticArena = StaticArena::new(region(48 * KIB));
        let a = arena.allocate(16 * KIB).unwrap();
        let b = arena.allocate(16 * KIB).unwrap();
        let c = arena.allocate(16 * KIB).unwrap();
        assert!(arena.allocate(8).is_none());
        assert_eq!(arena.free_bytes(), 0);
        // Freed memory comes back zeroed.
        view(b).write(100, &[7; 4]).unwrap();
        // SAFETY: `b` came from this arena and is not used afterwards.
        unsafe { arena.free(b) };
        assert!(arena.allocate(32 * KIB).is_none());
        let b2 = arena.allocate(16 * KIB).unwrap();
        assert_eq!(b2.as_ptr(), b.as_ptr());
        let mut got = [1u8; 4];
        view(b2).read(100, &mut got).unwrap();
        assert_eq!(got, [0; 4]);
        // Neighbours merge: freeing a and b2 yields one 32 KiB block.
        // SAFETY: both came from this arena and are not used afterwards.
        unsafe {
            arena.free(a);
            arena.free(b2);
        }
        assert_eq!(arena.largest_free(), 32 * KIB);
        let big = arena.allocate(32 * KIB).unwrap();
        assert_eq!(big.as_ptr(), a.as_ptr());
        // SAFETY: as above.
        unsafe {
            arena.free(c);
            arena.free(big);
        }
        assert_eq!((arena.largest_free(), arena.in_use()), (48 * KIB, 0));
    }

    #[test]
    fn full_block_list_hands_out_whole_blocks() {
        let mut arena: StaticArena<2> = StaticArena::new(region(64 * KIB));
        let a = arena.allocate(16 * KIB).unwrap(); // split: [a, free 48K]
        let b = arena.allocate(16 * KIB).unwrap(); // list full: whole 48K block
        assert_eq!(arena.free_bytes(), 0);
        assert!(arena.allocate(16 * KIB).is_none());
        // SAFETY: from this arena, unused afterwards.
        unsafe { arena.free(b) };
        assert_eq!(arena.largest_free(), 48 * KIB);
        // SAFETY: as above.
        unsafe { arena.free(a) };
        assert_eq!(arena.largest_free(), 64 * KIB);
    }

    #[test]
    fn degenerate_regions_and_requests() {
        let mut empty: StaticArena = StaticArena::new(region(7));
        assert!(empty.allocate(8).is_none());
        let mut arena: StaticArena = StaticArena::new(region(64));
        assert!(arena.allocate(0).is_none());
        assert!(arena.allocate(usize::MAX).is_none());
        assert!(arena.allocate(64).is_some());
    }

    #[test]
    fn foreign_memory_is_not_freed() {
        let mut arena: StaticArena = StaticArena::new(region(64));
        let mut other: StaticArena = StaticArena::new(region(64));
        let mine = arena.allocate(64).unwrap();
        let theirs = other.allocate(64).unwrap();
        // SAFETY: deliberately wrong provider; the arena must ignore it.
        unsafe { arena.free(theirs) };
        assert_eq!(arena.in_use(), 1);
        // SAFETY: from this arena, unused afterwards.
        unsafe { arena.free(mine) };
        assert_eq!(arena.in_use(), 0);
    }
}
