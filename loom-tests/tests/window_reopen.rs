//! Model (b): consumer-cursor updates re-opening the window while the
//! producer waits. The producer fills the 4-byte ring (setting
//! `write_blocked`) and must wait for the consumer's update before it may
//! reuse the space; its writes into freed bytes must happen after the
//! consumer's reads of them (loom reports the race otherwise).
#![cfg(smcd_loom)]

mod ring_util;

use loom::thread;
use ring_util::{pair, recv_until, send_all};

const RING: usize = 4;

fn reopen_model(nocopy: bool) {
    loom::model(move || {
        let (dev, mut a, mut b) = pair(RING, nocopy);
        let data = [1u8, 2, 3, 4, 5, 6];
        let producer = thread::spawn(move || {
            send_all(&mut a, &dev, &data);
            a
        });
        let mut got = Vec::new();
        recv_until(&mut b, &dev, &mut got, data.len(), RING).unwrap();
        assert_eq!(got, data);
        let a = producer.join().unwrap();
        // The window was closed exactly when the ring was full, and every
        // reopening came from one of B's consumer-cursor headers.
        assert!(a.stats().buffer_full <= a.stats().send_calls);
        assert!(a.stats().window_updates_received >= 1);
        assert_eq!(
            a.stats().window_updates_received,
            b.stats().window_updates_sent
        );
    });
}

#[test]
fn window_reopens_copy_mode() {
    reopen_model(false);
}

#[test]
fn window_reopens_nocopy_mode() {
    reopen_model(true);
}
