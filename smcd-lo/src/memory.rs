//! [`DmbMemory`]: where the loopback device gets DMB memory from.
//!
//! Providers: [`StaticArena`] (no_std, a caller's `&'static mut [u8]`) and
//! [`HeapMemory`] (feature `alloc`, the global allocator). smcd-std adds a
//! shared-memory provider.

mod arena;
#[cfg(any(test, feature = "alloc"))]
mod heap;

pub use arena::StaticArena;
#[cfg(any(test, feature = "alloc"))]
pub use heap::HeapMemory;

use smcd_core::mem::DmbRegion;

/// A source of DMB memory.
///
/// The device calls it under its lock, so `&mut self` suffices.
pub trait DmbMemory {
    /// `size` zeroed bytes, 8-byte aligned, or `None` if unavailable.
    ///
    /// The region stays valid for reads and writes, and is reached by
    /// nobody else, until it is given to [`free`](Self::free).
    fn allocate(&mut self, size: usize) -> Option<DmbRegion>;

    /// Give memory back.
    ///
    /// # Safety
    ///
    /// `region` was returned by [`allocate`](Self::allocate) of this
    /// provider, has not been freed since, and no view of it exists any more.
    #[allow(unsafe_code)] // the contract above is the provider seam's whole point
    unsafe fn free(&mut self, region: DmbRegion);
}
