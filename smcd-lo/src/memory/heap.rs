//! [`HeapMemory`]: DMB memory from the global allocator (feature `alloc`).
#![allow(unsafe_code)]

extern crate alloc;

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::ptr::NonNull;

use smcd_core::mem::{DMB_ALIGN_BYTES, DmbMem};

use super::DmbMemory;

/// DMB memory from the global allocator: one zeroed, 8-aligned allocation
/// per DMB, returned to the allocator when the DMB is freed.
///
/// ```
/// use smcd_lo::{DmbMemory, HeapMemory};
///
/// let mut heap = HeapMemory;
/// let mem = heap.allocate(16 * 1024).unwrap();
/// assert_eq!(mem.as_ptr() as usize % 8, 0);
/// // SAFETY: from this provider, not used any more.
/// unsafe { heap.free(mem) };
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeapMemory;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size, DMB_ALIGN_BYTES).ok()
}

impl DmbMemory for HeapMemory {
    fn allocate(&mut self, size: usize) -> Option<DmbMem> {
        let layout = layout(size).filter(|l| l.size() > 0)?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        // SAFETY: the fresh allocation is valid for `size` bytes until
        // `free`, reachable only through the views handed out from here. It
        // is 8-aligned by its layout, so the constructor cannot fail.
        unsafe { DmbMem::from_raw_parts(ptr, size) }.ok()
    }

    unsafe fn free(&mut self, mem: DmbMem) {
        if let Some(layout) = layout(mem.len()) {
            // SAFETY: per this function's contract `mem` came from
            // `allocate`, i.e. from `alloc_zeroed` with exactly this layout,
            // and is not freed or used any more.
            unsafe { dealloc(mem.as_ptr().cast_mut(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_zeroed_aligned_memory() {
        let mut heap = HeapMemory;
        assert!(heap.allocate(0).is_none());
        assert!(heap.allocate(usize::MAX).is_none());
        let m = heap.allocate(16 * 1024).unwrap();
        assert_eq!((m.len(), m.as_ptr() as usize % 8), (16 * 1024, 0));
        let mut tail = [1u8; 16];
        m.read(16 * 1024 - 16, &mut tail).unwrap();
        assert_eq!(tail, [0; 16]);
        m.write(0, &[9; 32]).unwrap();
        // SAFETY: from this provider, not used afterwards.
        unsafe { heap.free(m) };
    }
}
