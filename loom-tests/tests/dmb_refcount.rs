//! Model (d): nocopy attach/detach racing with the owner's unregister.
//!
//! "Freeing" a DMB overwrites every byte (what an allocator reusing the
//! memory does), so a use of the memory by an attacher that is not ordered
//! before the free is reported by loom as a data race: no use after free. The
//! table returns the entry to exactly one caller, who frees it: freed exactly
//! once.
#![cfg(smcd_loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::Arc;
use loom::thread;
use smcd_core::dmb::{DmbError, DmbTable, DmbToken};
use smcd_core::mem::DmbMem;

const TOKEN: DmbToken = DmbToken(0xD3B);
const DMB_LEN: usize = 48;
const RING_OFF: usize = 32;

type Table = DmbTable<(), 2>;

/// Free the DMB as an allocator would: the memory is reused.
fn free(mem: DmbMem) -> usize {
    mem.zero(0, mem.len()).unwrap();
    1
}

/// Use an attached DMB: write into the ring (nocopy send) at `RING_OFF +
/// 4 * slot` and read it back. Peers of one DMB use different slots.
fn use_attached(mem: DmbMem, slot: u8) {
    let off = RING_OFF + 4 * usize::from(slot);
    mem.write(off, &[slot; 4]).unwrap();
    let mut back = [0; 4];
    mem.read(off, &mut back).unwrap();
    assert_eq!(back, [slot; 4]);
}

/// Drop one attachment; free the DMB if it was the last reference.
fn detach(table: &Table) -> usize {
    table.detach(TOKEN).unwrap().map_or(0, |e| free(e.mem))
}

/// Drop the owner's reference; free the DMB if it was the last one.
fn unregister(table: &Table) -> usize {
    table.unregister(TOKEN).unwrap().map_or(0, |e| free(e.mem))
}

fn registered_table() -> Arc<Table> {
    let table = Arc::new(Table::new());
    table
        .register(TOKEN, DmbMem::loom_new(DMB_LEN), ())
        .unwrap();
    table
}

/// A peer attaches, writes and detaches while the owner unregisters.
#[test]
fn attach_use_detach_races_unregister() {
    // Executions in which the attach came too late / in time (plain std
    // atomics: they count across loom's executions).
    static LATE: AtomicUsize = AtomicUsize::new(0);
    static IN_TIME: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        let table = registered_table();
        let peer = {
            let table = table.clone();
            thread::spawn(move || match table.attach(TOKEN) {
                Ok(entry) => {
                    IN_TIME.fetch_add(1, Ordering::Relaxed);
                    use_attached(entry.mem, 0);
                    detach(&table)
                }
                // The owner was first: a DMB being torn down takes no attachment.
                Err(DmbError::Unregistered | DmbError::NotFound) => {
                    LATE.fetch_add(1, Ordering::Relaxed);
                    0
                }
                Err(e) => panic!("attach: {e}"),
            })
        };
        let frees = unregister(&table) + peer.join().unwrap();
        assert_eq!(frees, 1, "freed exactly once");
        assert!(table.is_empty());
    });
    assert!(LATE.load(Ordering::Relaxed) > 0 && IN_TIME.load(Ordering::Relaxed) > 0);
}

/// Two attachments, two threads: the owner unregisters and then keeps using
/// its own attachment (still valid: the DMB lives on for attachers) while
/// the other attacher uses and detaches. The last of the three references
/// frees the DMB, whichever it is.
#[test]
fn unregister_and_detaches_race() {
    loom::model(|| {
        let table = registered_table();
        let mem = table.attach(TOKEN).unwrap().mem;
        table.attach(TOKEN).unwrap();
        let peer = {
            let table = table.clone();
            thread::spawn(move || {
                use_attached(mem, 0);
                detach(&table)
            })
        };
        let mut frees = unregister(&table);
        use_attached(mem, 1);
        frees += detach(&table);
        frees += peer.join().unwrap();
        assert_eq!(frees, 1, "freed exactly once");
        assert!(table.is_empty());
    });
}
