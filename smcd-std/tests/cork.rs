//! `SmcStream::set_cork` over SMC-D: the doorbell ring of corked sends is
//! held (counted in `held_count`) while the bytes are already in the
//! peer's DMB, and released by the uncork, by a wait, and by a close. One
//! test: the held count is per process.

use std::io::{Read, Write};
use std::time::Duration;

use smcd_std::SmcConfig;
use smcd_std::device::held_count;

#[test]
fn corked_sends_hold_one_ring_until_uncork_wait_or_close() {
    let config = SmcConfig::new().spin(Duration::ZERO);
    let listener = config.bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = std::thread::spawn(move || listener.accept().unwrap().0);
    let mut w = config.connect(addr).unwrap();
    let mut r = accept.join().unwrap();
    assert!(w.transport().unwrap().is_smcd());

    // Uncork: two sends, one ring held, none after the uncork.
    w.set_cork(true).unwrap();
    w.write_all(b"head").unwrap();
    w.write_all(b"body").unwrap();
    assert_eq!(held_count(), 1, "two corked sends hold one ring");
    w.set_cork(false).unwrap();
    assert_eq!(held_count(), 0, "the uncork rings");
    let mut buf = [0u8; 8];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"headbody");

    // Wait: a blocking read on the corked stream rings first.
    w.set_cork(true).unwrap();
    w.write_all(b"ping").unwrap();
    assert_eq!(held_count(), 1);
    let answer = std::thread::spawn(move || {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        r.write_all(b"pong").unwrap();
        r
    });
    let mut b = [0u8; 4];
    w.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"pong");
    let mut r = answer.join().unwrap();

    // Close: still corked, the last bytes and the EOF arrive.
    w.write_all(b"last").unwrap();
    assert_eq!(held_count(), 1);
    drop(w);
    assert_eq!(held_count(), 0, "the close rings");
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"last");
}
