//! The loom-tracked `DmbMem` backend: bytes published by a release store of a
//! header word are visible to an acquire reader, and the same publication with
//! `Relaxed` is reported as a data race (the property every ring model relies on).
#![cfg(smcd_loom)]

use loom::thread;
use smcd_core::mem::{DmbMem, DmbRegion};
use smcd_core::sync::Ordering;

const DMB_LEN: usize = 40;
const RING_OFF: usize = 32;
const PROD_WORD: usize = 8;
const DATA: [u8; 4] = [1, 2, 3, 4];

/// A view of `region` (a leaked loom region: valid forever).
fn view(region: DmbRegion) -> DmbMem {
    // SAFETY: loom regions are leaked and only reached through `DmbMem` views.
    unsafe { DmbMem::from_region(region) }
}

/// Writer: ring bytes, then the producer word. Reader: the word, then the
/// bytes. Each thread has its own view of the one DMB.
fn publish(store: Ordering, load: Ordering) {
    loom::model(move || {
        let region = DmbRegion::loom_new(DMB_LEN);
        let mem = view(region);
        let writer = thread::spawn(move || {
            let mem = view(region);
            mem.write(RING_OFF, &DATA).unwrap();
            mem.store_u64(PROD_WORD, DATA.len() as u64, store).unwrap();
        });
        if mem.load_u64(PROD_WORD, load).unwrap() == DATA.len() as u64 {
            let mut got = [0; 4];
            mem.read(RING_OFF, &mut got).unwrap();
            assert_eq!(got, DATA);
        }
        writer.join().unwrap();
    });
}

#[test]
fn release_acquire_publication_is_race_free() {
    publish(Ordering::Release, Ordering::Acquire);
}

#[test]
#[should_panic(expected = "Causality violation")]
fn relaxed_publication_is_reported() {
    publish(Ordering::Relaxed, Ordering::Acquire);
}

#[test]
fn words_are_separate_from_bytes() {
    loom::model(|| {
        let mem = DmbMem::loom_new(DMB_LEN);
        mem.store_u64(PROD_WORD, u64::MAX, Ordering::Relaxed)
            .unwrap();
        let mut raw = [0xAA; 8];
        mem.read(PROD_WORD, &mut raw).unwrap();
        assert_eq!(raw, [0; 8]);
        assert_eq!(
            mem.load_u64(PROD_WORD, Ordering::Relaxed).unwrap(),
            u64::MAX
        );
        // SAFETY: single thread; nothing else touches the range.
        let sum = unsafe {
            mem.with_slice_mut(RING_OFF, 4, |s| {
                s.copy_from_slice(&DATA);
                s.len()
            })
        };
        assert_eq!(sum.unwrap(), 4);
        // SAFETY: as above.
        let copy = unsafe { mem.with_slice(RING_OFF, 4, |s| [s[0], s[1], s[2], s[3]]) };
        assert_eq!(copy.unwrap(), DATA);
        assert!(mem.read(DMB_LEN - 2, &mut [0; 4]).is_err());
    });
}
