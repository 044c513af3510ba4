//! Model (c): close and abort flags racing with data. Every byte sent before
//! `close` reaches the reader before its EOF — which relies on the header's
//! cons/flags word being published after, and read before, the producer word
//! (`wire::cdc::publish` / `snapshot`). An abort may drop bytes, but never
//! delivers wrong ones and never looks like a clean EOF.
#![cfg(smcd_loom)]

mod ring_util;

use loom::thread;
use ring_util::{pair, recv_until, release, send_all};
use smcd_core::conn::{CloseState, ConnError};

const RING: usize = 4;
const DATA: [u8; 3] = [7, 8, 9];

#[test]
fn no_byte_sent_before_close_is_lost() {
    loom::model(|| {
        let (dev, mut a, mut b) = pair(RING, false);
        let producer = thread::spawn(move || {
            send_all(&mut a, dev, &DATA[..2]);
            send_all(&mut a, dev, &DATA[2..]);
            a.close(dev).unwrap();
            assert_eq!(a.state(), CloseState::PeerCloseWait1);
            a
        });
        let mut got = Vec::new();
        assert_eq!(recv_until(&mut b, dev, &mut got, usize::MAX, RING), Ok(0));
        assert_eq!(got, DATA);
        assert_eq!(b.state(), CloseState::AppCloseWait1);
        release(dev, producer.join().unwrap(), b);
    });
}

#[test]
fn both_sides_close_while_data_flows() {
    loom::model(|| {
        let (dev, mut a, mut b) = pair(RING, false);
        let producer = thread::spawn(move || {
            send_all(&mut a, dev, &DATA[..2]);
            a.close(dev).unwrap();
            while !a.is_closed() {
                a.handle_signal(dev).unwrap();
                thread::yield_now();
            }
            a
        });
        let mut got = Vec::new();
        assert_eq!(recv_until(&mut b, dev, &mut got, usize::MAX, 1), Ok(0));
        assert_eq!(got, DATA[..2]);
        b.close(dev).unwrap();
        assert!(b.is_closed());
        release(dev, producer.join().unwrap(), b);
    });
}

#[test]
fn abort_never_passes_for_eof_or_corrupts() {
    loom::model(|| {
        let (dev, mut a, mut b) = pair(RING, false);
        let producer = thread::spawn(move || {
            send_all(&mut a, dev, &DATA);
            a.abort(dev);
            a
        });
        let mut got = Vec::new();
        let end = recv_until(&mut b, dev, &mut got, usize::MAX, RING);
        assert_eq!(end, Err(ConnError::Reset));
        assert_eq!(got, DATA[..got.len()]);
        release(dev, producer.join().unwrap(), b);
    });
}
