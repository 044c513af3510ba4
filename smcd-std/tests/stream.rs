//! `SmcStream` and `SmcListener` in one process: SMC-D between smcd ends,
//! plain TCP with plain peers, data unchanged either way.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

use smcd_core::conn::SendMode;
use smcd_std::{SmcConfig, SmcListener, SmcStream, TcpReason, Transport};

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// Echo every byte back until EOF, then close.
fn echo(mut s: SmcStream) {
    let mut buf = vec![0u8; 70_000];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => s.write_all(&buf[..n]).expect("echo write"),
            Err(e) => panic!("echo read: {e}"),
        }
    }
}

/// Send `out` through an echo and read it back, writer and reader apart.
fn round_trip(client: &SmcStream, out: &[u8]) -> Vec<u8> {
    let mut reader = client.try_clone().unwrap();
    let expect = out.len();
    let back = thread::spawn(move || {
        let mut got = Vec::with_capacity(expect);
        reader.read_to_end(&mut got).expect("read back");
        got
    });
    let mut w = client;
    w.write_all(out).expect("write");
    client.shutdown(Shutdown::Write).expect("shutdown");
    back.join().unwrap()
}

#[test]
fn smcd_ends_speak_smc_d_copy_and_nocopy() {
    for nocopy in [false, true] {
        let config = SmcConfig::new().nocopy(nocopy).dmb_size(64 * 1024);
        let listener = config.bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || echo(listener.accept().unwrap().0));
        let client = config.connect(addr).unwrap();
        let Transport::SmcD(info) = client.transport().unwrap() else {
            panic!("not SMC-D: {}", client.transport().unwrap());
        };
        assert_eq!(
            info.mode,
            if nocopy {
                SendMode::NoCopy
            } else {
                SendMode::Copy
            }
        );
        let out = data(5_000_000);
        assert!(round_trip(&client, &out) == out, "bytes changed");
        server.join().unwrap();
    }
}

#[test]
fn a_plain_client_gets_plain_tcp_from_an_smc_listener() {
    let listener = SmcListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        assert_eq!(
            s.transport().unwrap(),
            Transport::Tcp(TcpReason::PlainClient)
        );
        // Server speaks first: a plain client must get these bytes unchanged.
        (&s).write_all(b"220 hello\r\n").unwrap();
        echo(s);
    });
    let mut c = TcpStream::connect(addr).unwrap();
    let mut greeting = [0u8; 11];
    c.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"220 hello\r\n");
    c.write_all(b"plain bytes").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"plain bytes");
    server.join().unwrap();
}

#[test]
fn an_smc_client_gets_plain_tcp_from_a_plain_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
    });
    let c = SmcStream::connect(addr).unwrap();
    assert_eq!(c.transport().unwrap(), Transport::Tcp(TcpReason::NoSmcPeer));
    assert_eq!(round_trip(&c, b"to a plain server"), b"to a plain server");
    server.join().unwrap();
}

#[test]
fn zero_copy_calls_move_the_same_bytes() {
    for nocopy in [false, true] {
        let config = SmcConfig::new().nocopy(nocopy);
        let listener = config.bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let total = 3_000_000usize;
        let server = thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut got = Vec::with_capacity(total);
            loop {
                // Consume at most 1000 bytes per call: the rest must stay.
                let n = s
                    .read_with(|b| {
                        let take = b.len().min(1000);
                        got.extend_from_slice(&b[..take]);
                        take
                    })
                    .unwrap_or_else(|e| {
                        panic!("read_with after {} bytes (nocopy {nocopy}): {e}", got.len())
                    });
                if n == 0 {
                    break got;
                }
            }
        });
        let c = config.connect(addr).unwrap();
        assert!(c.transport().unwrap().is_smcd());
        let out = data(total);
        let mut sent = 0;
        while sent < total {
            sent += c
                .write_with(total - sent, |b| {
                    let n = b.len().min(50_000);
                    b[..n].copy_from_slice(&out[sent..sent + n]);
                    n
                })
                .unwrap();
        }
        c.shutdown(Shutdown::Write).unwrap();
        assert!(
            server.join().unwrap() == out,
            "bytes changed (nocopy {nocopy})"
        );
    }
}

/// Both ends in one thread, non-blocking, driven by `poll` on their
/// readiness fds only: every byte arrives, and nobody waits forever.
#[test]
fn a_poll_loop_on_readiness_fds_moves_every_byte() {
    use std::io::ErrorKind::WouldBlock;

    use rustix::event::{PollFd, PollFlags, poll};

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
    let out = data(2_000_000);
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = vec![0u8; 40_000];
    let mut rounds = 0;
    while got.len() < out.len() {
        rounds += 1;
        assert!(rounds < 1_000_000, "stalled at {} bytes", got.len());
        let mut progress = false;
        if sent < out.len() {
            match (&client).write(&out[sent..(sent + 30_000).min(out.len())]) {
                Ok(n) => (sent, progress) = (sent + n, true),
                Err(e) if e.kind() == WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        match (&server).read(&mut buf) {
            Ok(0) => panic!("early EOF"),
            Ok(n) => (got.extend_from_slice(&buf[..n]), progress = true).0,
            Err(e) if e.kind() == WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        if !progress {
            let mut fds = [
                PollFd::new(&client, PollFlags::IN),
                PollFd::new(&server, PollFlags::IN),
            ];
            let ts = rustix::event::Timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            let n = poll(&mut fds, Some(&ts)).unwrap();
            assert!(
                n > 0,
                "no readiness for 5 s at {} of {} bytes",
                got.len(),
                out.len()
            );
        }
    }
    assert!(got == out, "bytes changed");
}
