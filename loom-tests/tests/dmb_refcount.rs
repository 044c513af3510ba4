//! Model (d): a nocopy mapping (attach/detach) and a device pin racing with
//! the owner's unregister.
//!
//! "Freeing" a DMB overwrites every byte (what an allocator reusing the
//! memory does), so a use of the memory by a mapper or pinner that is not
//! ordered before the free is reported by loom as a data race: no use after
//! free. The table returns the entry to exactly one caller, who frees it:
//! freed exactly once.
#![cfg(smcd_loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::Arc;
use loom::thread;
use smcd_core::dmb::{CDC_HEADER_LEN_BYTES, DmbError, DmbTable, DmbToken};
use smcd_core::mem::{DmbMem, DmbRegion};

/// The DMB whose owner unregisters it.
const TOKEN: DmbToken = DmbToken(0xD3B);
/// The peer's own DMB, whose connection maps `TOKEN` (nocopy).
const PEER: DmbToken = DmbToken(0xBEE);
const DMB_LEN: usize = 48;

type Table = DmbTable<(), 2>;

/// A view of `region` (a leaked loom region: valid forever).
fn view(region: DmbRegion) -> DmbMem {
    // SAFETY: loom regions are leaked and only reached through `DmbMem` views.
    unsafe { DmbMem::from_region(region) }
}

/// The ring of a DMB, as a nocopy mapping hands it out.
fn ring(region: DmbRegion) -> DmbRegion {
    region.tail(CDC_HEADER_LEN_BYTES).unwrap()
}

/// Free the DMB as an allocator would: the memory is reused.
fn free(region: DmbRegion) -> usize {
    view(region).zero(0, region.len()).unwrap();
    1
}

/// Use DMB memory: write 4 bytes at `4 * slot` and read them back. Users of
/// one DMB use different slots.
fn use_mem(mem: &DmbMem, slot: u8) {
    let off = 4 * usize::from(slot);
    mem.write(off, &[slot; 4]).unwrap();
    let mut back = [0; 4];
    mem.read(off, &mut back).unwrap();
    assert_eq!(back, [slot; 4]);
}

/// Undo the peer's mapping; free the DMB if it was the last reference.
fn detach(table: &Table, region: DmbRegion) -> usize {
    table
        .detach(PEER, TOKEN, Some(ring(region)))
        .unwrap()
        .map_or(0, |e| free(e.region))
}

/// Drop the owner's reference; free the DMB if it was the last one.
fn unregister(table: &Table, region: DmbRegion) -> usize {
    table
        .unregister(TOKEN, region)
        .unwrap()
        .map_or(0, |e| free(e.region))
}

/// A table holding the owner's DMB and the peer's own DMB; returns the
/// owner's region and the peer's.
fn registered_table() -> (Arc<Table>, DmbRegion, DmbRegion) {
    let table = Arc::new(Table::new());
    let (mine, peers) = (DmbRegion::loom_new(DMB_LEN), DmbRegion::loom_new(DMB_LEN));
    table.register(TOKEN, mine, ()).unwrap();
    table.register(PEER, peers, ()).unwrap();
    (table, mine, peers)
}

/// A peer maps, writes and detaches while the owner unregisters.
#[test]
fn attach_use_detach_races_unregister() {
    // Executions in which the attach came too late / in time (plain std
    // atomics: they count across loom's executions).
    static LATE: AtomicUsize = AtomicUsize::new(0);
    static IN_TIME: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        let (table, mine, peers) = registered_table();
        let peer = {
            let table = table.clone();
            thread::spawn(
                move || match table.attach(PEER, peers, TOKEN, DMB_LEN, true) {
                    Ok(entry) => {
                        IN_TIME.fetch_add(1, Ordering::Relaxed);
                        use_mem(&view(ring(entry.region)), 0);
                        detach(&table, entry.region)
                    }
                    // The owner was first: a DMB being torn down takes no mapping.
                    Err(DmbError::Unregistered | DmbError::NotFound) => {
                        LATE.fetch_add(1, Ordering::Relaxed);
                        0
                    }
                    Err(e) => panic!("attach: {e}"),
                },
            )
        };
        let frees = unregister(&table, mine) + peer.join().unwrap();
        assert_eq!(frees, 1, "freed exactly once");
        // Only the peer's own DMB is left.
        assert_eq!(table.len(), 1);
        assert!(table.lookup(TOKEN).is_err());
    });
    assert!(LATE.load(Ordering::Relaxed) > 0 && IN_TIME.load(Ordering::Relaxed) > 0);
}

/// Three references, two threads: the owner's, the peer's mapping, and a
/// pin (a device writing into the DMB). The owner unregisters and then the
/// pinner keeps using the DMB (still valid: it lives on for its other
/// references) while the peer uses its mapping and detaches. The last of
/// the three references frees the DMB, whichever it is.
#[test]
fn unregister_and_detaches_race() {
    loom::model(|| {
        let (table, mine, peers) = registered_table();
        table.attach(PEER, peers, TOKEN, DMB_LEN, true).unwrap();
        let pinned = table.pin(TOKEN).unwrap().region;
        let peer = {
            let table = table.clone();
            thread::spawn(move || {
                use_mem(&view(ring(mine)), 0);
                detach(&table, mine)
            })
        };
        let mut frees = unregister(&table, mine);
        use_mem(&view(ring(pinned)), 1);
        frees += table.unpin(TOKEN).unwrap().map_or(0, |e| free(e.region));
        frees += peer.join().unwrap();
        assert_eq!(frees, 1, "freed exactly once");
        assert_eq!(table.len(), 1);
    });
}
