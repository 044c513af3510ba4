//! [`HeapMemory`]: DMB memory from the global allocator (feature `alloc`).
#![allow(unsafe_code)]

extern crate alloc;

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::ptr::NonNull;

use smcd_core::mem::{DMB_ALIGN_BYTES, DmbRegion};

use super::DmbMemory;

/// DMB memory from the global allocator: one zeroed, 8-aligned allocation
/// per DMB, returned to the allocator when the DMB is freed.
///
/// ```
/// use smcd_lo::{DmbMemory, HeapMemory};
///
/// let mut heap = HeapMemory;
/// let region = heap.allocate(16 * 1024).unwrap();
/// assert_eq!(region.as_ptr() as usize % 8, 0);
/// // SAFETY: from this provider, no view of it exists.
/// unsafe { heap.free(region) };
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeapMemory;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size, DMB_ALIGN_BYTES).ok()
}

impl DmbMemory for HeapMemory {
    fn allocate(&mut self, size: usize) -> Option<DmbRegion> {
        let layout = layout(size).filter(|l| l.size() > 0)?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        // 8-aligned by its layout, so this cannot fail.
        DmbRegion::new(ptr, size).ok()
    }

    unsafe fn free(&mut self, region: DmbRegion) {
        if let Some(layout) = layout(region.len()) {
            // SAFETY: per this function's contract `region` came from
            // `allocate`, i.e. from `alloc_zeroed` with exactly this layout,
            // and is not freed or used any more.
            unsafe { dealloc(region.as_ptr().cast_mut(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smcd_core::mem::DmbMem;

    #[test]
    fn allocates_zeroed_aligned_memory() {
        let mut heap = HeapMemory;
        assert!(heap.allocate(0).is_none());
        assert!(heap.allocate(usize::MAX).is_none());
        let r = heap.allocate(16 * 1024).unwrap();
        assert_eq!((r.len(), r.as_ptr() as usize % 8), (16 * 1024, 0));
        {
            // SAFETY: fresh from the provider; the view is dropped before `free`.
            let m = unsafe { DmbMem::from_region(r) };
            let mut tail = [1u8; 16];
            m.read(16 * 1024 - 16, &mut tail).unwrap();
            assert_eq!(tail, [0; 16]);
            m.write(0, &[9; 32]).unwrap();
        }
        // SAFETY: from this provider, no view of it exists any more.
        unsafe { heap.free(r) };
    }
}
