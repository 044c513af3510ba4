//! Model (b): consumer-cursor updates re-opening the window while the
//! producer waits. The producer fills the 4-byte ring (setting
//! `write_blocked`) and must wait for the consumer's update before it may
//! reuse the space; its writes into freed bytes must happen after the
//! consumer's reads of them (loom reports the race otherwise). The
//! producer's window is checked against the consumer cursor the consumer
//! actually published (read from the header in the producer's DMB), so a
//! producer that drops or under-counts an update fails the model.
#![cfg(smcd_loom)]

mod ring_util;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use loom::thread;
use ring_util::{LoomDev, header, pair_with_view, recv_until, release};
use smcd_core::conn::{ConnError, Connection};
use smcd_core::mem::DmbMem;

const RING: usize = 4;

/// Bytes B has given back according to the header it published into A's
/// DMB (`view`): its consumer cursor as a byte count. This is B's state as
/// B wrote it, read independently of A's bookkeeping.
fn consumed(view: &DmbMem) -> usize {
    let cons = header(view).cons;
    usize::from(cons.wrap) * RING + cons.count as usize
}

/// Send all of `data`, checking A's window against B's published consumer
/// cursor at every call: after `handle_signal`, A offers at least the space
/// B had freed before A looked (every consumer-cursor update is taken in; a
/// producer that ignored or under-counted one fails here), a send takes
/// exactly the free space (or the rest, if smaller), and "would block" comes
/// only with the window closed. Returns the number of sends that found the
/// window closed.
fn send_all_checked(c: &mut Connection, dev: &LoomDev, view: &DmbMem, data: &[u8]) -> u64 {
    let (mut sent, mut closed) = (0, 0);
    while sent < data.len() {
        let freed = RING - (sent - consumed(view));
        c.handle_signal(dev).unwrap();
        let (space, rest) = (c.send_space(), data.len() - sent);
        assert!(
            space >= freed,
            "window update lost: A offers {space} bytes, B had freed {freed}"
        );
        match c.send(dev, &data[sent..]) {
            Ok(n) => {
                assert_eq!(n, space.min(rest), "a send takes the whole free space");
                sent += n;
            }
            Err(ConnError::WouldBlock) => {
                assert_eq!(space, 0, "would block with the window open");
                closed += 1;
                thread::yield_now();
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    closed
}

fn reopen_model(nocopy: bool) {
    // Outside the model (a std atomic, not loom's): counts executions.
    let runs_that_waited = Arc::new(AtomicU64::new(0));
    let waited = Arc::clone(&runs_that_waited);
    loom::model(move || {
        let (dev, mut a, mut b, view) = pair_with_view(RING, nocopy);
        let data = [1u8, 2, 3, 4, 5, 6];
        let producer = thread::spawn(move || {
            let closed = send_all_checked(&mut a, dev, &view, &data);
            (a, closed)
        });
        let mut got = Vec::new();
        recv_until(&mut b, dev, &mut got, data.len(), RING).unwrap();
        assert_eq!(got, data);
        let (a, closed) = producer.join().unwrap();
        // Six bytes through a four-byte ring: A needed at least one of B's
        // consumer-cursor headers, and took in every one B sent (B sends no
        // update after A's last `handle_signal`: two bytes are below the
        // update limit of a 4-byte ring).
        assert!(a.stats().window_updates_received >= 1);
        assert_eq!(
            a.stats().window_updates_received,
            b.stats().window_updates_sent
        );
        release(dev, a, b);
        if closed > 0 {
            waited.fetch_add(1, Relaxed);
        }
    });
    // The model is not vacuous: in some schedule A found the window closed
    // and had to wait for B to reopen it.
    assert!(runs_that_waited.load(Relaxed) > 0);
}

#[test]
fn window_reopens_copy_mode() {
    reopen_model(false);
}

#[test]
fn window_reopens_nocopy_mode() {
    reopen_model(true);
}
