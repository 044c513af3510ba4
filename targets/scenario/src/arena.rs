//! The image's DMB memory: one statically allocated, aligned buffer, handed
//! out at most once (no heap anywhere in the images).
#![allow(unsafe_code)]

use core::cell::UnsafeCell;

use smcd_core::sync::{AtomicBool, Ordering};

/// Bytes of DMB memory every image reserves (in `.bss`): room for the two
/// 16 KiB DMBs of one connection, twice over.
pub const ARENA_BYTES: usize = 64 * 1024;

/// Backing store, aligned well beyond the 8 bytes a DMB base needs.
#[repr(C, align(64))]
struct Aligned([u8; ARENA_BYTES]);

struct ArenaCell {
    taken: AtomicBool,
    bytes: UnsafeCell<Aligned>,
}

// SAFETY: `bytes` is only reached through `take_arena`, which hands out the
// single `&mut` at most once (guarded by the atomic `taken` flag).
unsafe impl Sync for ArenaCell {}

static ARENA: ArenaCell = ArenaCell {
    taken: AtomicBool::new(false),
    bytes: UnsafeCell::new(Aligned([0; ARENA_BYTES])),
};

/// The arena, 64-byte aligned; `None` on every call after the first.
pub fn take_arena() -> Option<&'static mut [u8]> {
    if ARENA.taken.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: the swap above returns `false` exactly once, so this is the
    // only reference ever created to the buffer, and it lives in a static.
    Some(unsafe { &mut (*ARENA.bytes.get()).0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handed_out_once_and_aligned() {
        let a = take_arena().expect("first call gets the arena");
        assert_eq!(a.len(), ARENA_BYTES);
        assert_eq!(a.as_ptr() as usize % 64, 0);
        assert!(take_arena().is_none());
    }
}
