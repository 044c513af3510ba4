//! Model (a): one producer and one consumer moving bytes through a 4-byte
//! ring across its end, through the real `Connection` code. The consumer
//! never sees stale or torn bytes (loom reports any ring byte read without a
//! happens-before edge from its write) and the producer never overwrites
//! unread bytes (the data would differ, and loom would report the race).
#![cfg(smcd_loom)]

mod ring_util;

use loom::thread;
use ring_util::{pair, recv_until, release, send_all};

const RING: usize = 4;

/// Warm up single-threaded so that the producer sits at ring offset 3, then
/// race a 4-byte stream (sent as 1 + 3 bytes, the second send wrapping)
/// against a consumer reading in 2-byte steps.
fn wrap_model(nocopy: bool) {
    loom::model(move || {
        let (dev, mut a, mut b) = pair(RING, nocopy);
        send_all(&mut a, dev, &[9, 9, 9]);
        let mut warm = Vec::new();
        recv_until(&mut b, dev, &mut warm, 3, RING).unwrap();
        a.handle_signal(dev).unwrap();
        assert_eq!(a.send_space(), RING);

        let data = [1u8, 2, 3, 4];
        let producer = thread::spawn(move || {
            send_all(&mut a, dev, &data[..1]);
            send_all(&mut a, dev, &data[1..]);
            a
        });
        let mut got = Vec::new();
        recv_until(&mut b, dev, &mut got, data.len(), 2).unwrap();
        assert_eq!(got, data);
        release(dev, producer.join().unwrap(), b);
    });
}

#[test]
fn wrap_copy_mode() {
    wrap_model(false);
}

#[test]
fn wrap_nocopy_mode() {
    wrap_model(true);
}
