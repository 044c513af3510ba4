//! Model (e): `DmbTable` register, lookup and unregister from two threads.
#![cfg(smcd_loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::Arc;
use loom::thread;
use smcd_core::dmb::{DmbError, DmbTable, DmbToken};
use smcd_core::mem::DmbRegion;

const DMB_LEN: usize = 40;

/// Register then unregister a DMB under `token`; `true` if it was registered.
fn cycle<const N: usize>(table: &DmbTable<u8, N>, token: DmbToken, owner: u8) -> bool {
    let region = DmbRegion::loom_new(DMB_LEN);
    match table.register(token, region, owner) {
        Ok(()) => {
            let entry = table.lookup(token).unwrap();
            assert_eq!((entry.owner, entry.region), (owner, region));
            let freed = table
                .unregister(token, region)
                .unwrap()
                .expect("last reference");
            assert_eq!(freed.region, region);
            true
        }
        Err(DmbError::Full) => false,
        Err(e) => panic!("register: {e}"),
    }
}

/// Two threads cycle different tokens through a one-slot table: each either
/// gets the slot or sees `Full`, and at least one of them gets it.
#[test]
fn register_unregister_from_two_threads() {
    // Executions in which one thread found the slot taken (counted across
    // loom's executions: the model must reach that interleaving).
    static FULL: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        let table = Arc::new(DmbTable::<u8, 1>::new());
        let other = {
            let table = table.clone();
            thread::spawn(move || cycle(&table, DmbToken(2), 2))
        };
        let mine = cycle(&table, DmbToken(1), 1);
        let theirs = other.join().unwrap();
        assert!(mine || theirs);
        if !(mine && theirs) {
            FULL.fetch_add(1, Ordering::Relaxed);
        }
        assert!(table.is_empty());
    });
    assert!(FULL.load(Ordering::Relaxed) > 0);
}

/// Two threads register the same token: exactly one wins, the other is told
/// to draw another token, and the table holds the winner's DMB.
#[test]
fn token_collision_has_one_winner() {
    loom::model(|| {
        const TOKEN: DmbToken = DmbToken(7);
        let table = Arc::new(DmbTable::<u8, 2>::new());
        let register = |table: &DmbTable<u8, 2>, owner: u8| {
            let region = DmbRegion::loom_new(DMB_LEN);
            (table.register(TOKEN, region, owner), region)
        };
        let other = {
            let table = table.clone();
            thread::spawn(move || register(&table, 2))
        };
        let (mine, my_region) = register(&table, 1);
        let (theirs, their_region) = other.join().unwrap();
        let entry = table.lookup(TOKEN).unwrap();
        match (mine, theirs) {
            (Ok(()), Err(DmbError::TokenInUse)) => {
                assert_eq!((entry.owner, entry.region), (1, my_region));
            }
            (Err(DmbError::TokenInUse), Ok(())) => {
                assert_eq!((entry.owner, entry.region), (2, their_region));
            }
            other => panic!("both or neither registered: {other:?}"),
        }
        assert_eq!(table.len(), 1);
    });
}
