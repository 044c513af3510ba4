//! The readiness fd of an SMC stream reports every change to a caller that
//! retries its reads and writes, whichever of its calls took the change in.

use std::io::ErrorKind::WouldBlock;
use std::io::{Read, Write};
use std::thread;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use smcd_std::{SmcConfig, SmcStream};

fn readable(s: &SmcStream, ms: i64) -> bool {
    let mut fds = [PollFd::new(s, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    poll(&mut fds, Some(&ts)).unwrap() > 0
}

/// A write blocks on a full ring; the peer empties it; then a *read* of the
/// writer's stream reports `WouldBlock` (taking in the peer's cursor update
/// and draining the doorbell). The readiness fd must still wake the caller
/// for the write that can now go on.
#[test]
fn a_read_that_blocks_does_not_swallow_room_for_a_write() {
    let config = SmcConfig::new().dmb_size(16 * 1024);
    let listener = config.bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connect = thread::spawn(move || config.connect(addr).unwrap());
    let (server, _) = listener.accept().unwrap();
    let client = connect.join().unwrap();
    assert!(client.transport().unwrap().is_smcd());
    for s in [&client, &server] {
        s.set_nonblocking(true).unwrap();
    }
    // The readiness fd exists (and the doorbell is armed) from here on.
    let _ = readable(&client, 0);
    let chunk = [7u8; 4096];
    let mut sent = 0;
    loop {
        match (&client).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(sent > 0);
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < sent {
        match (&server).read(&mut buf) {
            Ok(n) => got += n,
            Err(e) if e.kind() == WouldBlock => assert!(readable(&server, 5000), "server"),
            Err(e) => panic!("read: {e}"),
        }
    }
    // The peer's cursor update has rung the client's doorbell by now.
    assert!(readable(&client, 5000), "no event for the room");
    // Nothing to read: WouldBlock (this call takes the update in).
    let e = (&client).read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), WouldBlock);
    // A caller that now waits for the fd before retrying its write must be
    // woken: the write would go through.
    let woke = readable(&client, 1000);
    let wrote = (&client).write(&chunk).is_ok();
    assert!(wrote, "the write still blocks");
    assert!(
        woke,
        "the write can go on, but the readiness fd stays quiet"
    );
}

/// Bytes that arrived before the readiness fd existed rang no doorbell (it
/// was not armed yet): the fd must still become readable for them.
#[test]
fn a_readiness_fd_made_after_the_bytes_arrived_is_readable() {
    let config = SmcConfig::new();
    let listener = config.bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connect = thread::spawn(move || config.connect(addr).unwrap());
    let (server, _) = listener.accept().unwrap();
    let client = connect.join().unwrap();
    assert!(server.transport().unwrap().is_smcd());
    server.set_nonblocking(true).unwrap();
    (&client).write_all(b"early").unwrap();
    // Let the bytes land in the server's DMB before anyone watches it.
    thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        readable(&server, 2000),
        "no event for bytes that came first"
    );
    let mut buf = [0u8; 8];
    assert_eq!((&server).read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"early");
}
