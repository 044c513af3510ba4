//! A stream with a reader thread and a writer thread (`try_clone`) must
//! never sleep through the event one of them waits for.
//!
//! Over SMC-D both park on the one doorbell of the connection: every header
//! the peer writes after a waiter armed the bell has to wake someone who
//! re-checks for that waiter. With no spin budget every blocked call parks,
//! so the arm / re-check / disarm of the two threads interleave constantly;
//! a small DMB keeps both directions full. (A lost ring deadlocks the echo:
//! client reader asleep on the bell, client writer waiting for it, server
//! blocked writing into the client's full DMB.)
//!
//! After a Decline the same path carries TCP, and a writer waiting for room
//! in the socket must wake even while the reader thread is the one asleep.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use smcd_std::{SmcConfig, TcpReason, Transport};

/// Longest one round may take (a debug build moves a round in well under a
/// second; a lost wakeup never finishes).
const ROUND_LIMIT: Duration = Duration::from_secs(20);
const ROUNDS: usize = 30;
const BYTES: usize = 1 << 20;

fn data(n: usize, round: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977 + round) as u8).collect()
}

#[test]
fn reader_and_writer_threads_of_one_stream_never_sleep_through_a_ring() {
    for nocopy in [false, true] {
        let config = SmcConfig::new()
            .nocopy(nocopy)
            .dmb_size(16 * 1024)
            .spin(Duration::ZERO);
        let listener = config.bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            for _ in 0..ROUNDS {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = vec![0u8; 50_000];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => s.write_all(&buf[..n]).unwrap(),
                        Err(e) => panic!("echo: {e}"),
                    }
                }
            }
        });
        for round in 0..ROUNDS {
            let (done, finished) = mpsc::channel();
            let config = config.clone();
            thread::spawn(move || {
                let client = config.connect(addr).unwrap();
                assert!(client.transport().unwrap().is_smcd());
                let mut reader = client.try_clone().unwrap();
                let back = thread::spawn(move || {
                    let mut got = Vec::with_capacity(BYTES);
                    reader.read_to_end(&mut got).unwrap();
                    got
                });
                let out = data(BYTES, round);
                (&client).write_all(&out).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
                let got = back.join().unwrap();
                let _ = done.send(got == out);
            });
            match finished.recv_timeout(ROUND_LIMIT) {
                Ok(same) => assert!(same, "nocopy {nocopy} round {round}: bytes changed"),
                Err(_) => panic!("nocopy {nocopy} round {round}: echo hung (lost wakeup)"),
            }
        }
        server.join().unwrap();
    }
}

/// After a Decline the same code path carries TCP: a writer blocked on a
/// full socket must wake when the socket drains, even while a reader thread
/// of the stream sleeps waiting for bytes that only come after the writer
/// is done.
#[test]
fn a_writer_after_a_decline_wakes_while_a_reader_thread_sleeps() {
    const SINK_BYTES: usize = 32 << 20;
    let server_cfg = SmcConfig::new().ueids(&["SMCD-WAKEUP-A"]).unwrap();
    let client_cfg = SmcConfig::new().ueids(&["SMCD-WAKEUP-B"]).unwrap();
    let listener = server_cfg.bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // Read everything first, answer only at EOF.
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => panic!("sink: {e}"),
            }
        }
        s.write_all(&(total as u64).to_le_bytes()).unwrap();
    });
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let client = client_cfg.connect(addr).unwrap();
        let t = client.transport().unwrap();
        assert!(matches!(t, Transport::Tcp(TcpReason::Declined(_))), "{t}");
        let mut reader = client.try_clone().unwrap();
        let back = thread::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            got
        });
        // Let the reader go to sleep first.
        thread::sleep(Duration::from_millis(100));
        (&client).write_all(&data(SINK_BYTES, 0)).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let _ = done.send(back.join().unwrap());
    });
    match finished.recv_timeout(ROUND_LIMIT) {
        Ok(got) => assert_eq!(got, (SINK_BYTES as u64).to_le_bytes()),
        Err(_) => panic!("the writer never woke (lost wakeup after a Decline)"),
    }
    server.join().unwrap();
}
