//! Model (b): consumer-cursor updates re-opening the window while the
//! producer waits. The producer fills the 4-byte ring (setting
//! `write_blocked`) and must wait for the consumer's update before it may
//! reuse the space; its writes into freed bytes must happen after the
//! consumer's reads of them (loom reports the race otherwise).
#![cfg(smcd_loom)]

mod ring_util;

use loom::thread;
use ring_util::{LoomDev, pair, recv_until};
use smcd_core::conn::{ConnError, Connection};

const RING: usize = 4;

/// Send all of `data`, checking the window rule at every call: a send takes
/// exactly the free space (or the rest, if smaller) and, when it took less
/// than offered, leaves the window closed; "would block" comes only with the
/// window closed (every byte of the ring in flight). Returns the number of
/// sends that found the window closed.
fn send_all_checked(c: &mut Connection, dev: &LoomDev, data: &[u8]) -> u64 {
    let (mut sent, mut closed) = (0, 0);
    while sent < data.len() {
        c.handle_signal(dev).unwrap();
        let (space, rest) = (c.send_space(), data.len() - sent);
        match c.send(dev, &data[sent..]) {
            Ok(n) => {
                assert_eq!(n, space.min(rest), "a send takes the whole free space");
                if n < rest {
                    assert_eq!(c.send_space(), 0, "the window closes when the ring is full");
                }
                sent += n;
            }
            Err(ConnError::WouldBlock) => {
                assert_eq!(space, 0, "would block with the window open");
                assert_eq!(c.bytes_in_flight(), RING);
                closed += 1;
                thread::yield_now();
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    closed
}

fn reopen_model(nocopy: bool) {
    loom::model(move || {
        let (dev, mut a, mut b) = pair(RING, nocopy);
        let data = [1u8, 2, 3, 4, 5, 6];
        let producer = thread::spawn(move || {
            let closed = send_all_checked(&mut a, &dev, &data);
            (a, closed)
        });
        let mut got = Vec::new();
        recv_until(&mut b, &dev, &mut got, data.len(), RING).unwrap();
        assert_eq!(got, data);
        let (a, closed) = producer.join().unwrap();
        // The window was closed exactly when the ring was full (the sends
        // that found it closed are the ones counted as `buffer_full`), and
        // every reopening came from one of B's consumer-cursor headers.
        assert_eq!(a.stats().buffer_full, closed);
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
