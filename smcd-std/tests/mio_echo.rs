//! Feature `mio`: a mio event loop drives an SMC listener, its accepted
//! stream (handshake included) and a client, in one thread.
#![cfg(feature = "mio")]

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use smcd_std::{SmcConfig, SmcStream};

const LISTENER: Token = Token(0);
const SERVER: Token = Token(1);
const CLIENT: Token = Token(2);

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// Write from `out[*at..]` until WouldBlock; whether anything went out.
fn push(s: &SmcStream, out: &[u8], at: &mut usize) -> bool {
    let mut moved = false;
    while *at < out.len() {
        match (&*s).write(&out[*at..out.len().min(*at + 50_000)]) {
            Ok(n) => (*at, moved) = (*at + n, true),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    moved
}

/// Read into `into` until WouldBlock or EOF (at most `cap` buffered);
/// (whether anything came, whether EOF came).
fn pull(s: &SmcStream, into: &mut Vec<u8>, cap: usize) -> (bool, bool) {
    let mut buf = [0u8; 32 * 1024];
    let mut moved = false;
    while into.len() < cap {
        match (&*s).read(&mut buf) {
            Ok(0) => return (moved, true),
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                moved = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    (moved, false)
}

/// The echo side of the loop: what it read and has yet to write back.
struct Echo {
    s: SmcStream,
    pending: Vec<u8>,
    sent: usize,
    eof: bool,
}

impl Echo {
    /// Move what can move now; whether anything did.
    fn step(&mut self) -> bool {
        let mut moved = push(&self.s, &self.pending, &mut self.sent);
        if self.sent == self.pending.len() {
            self.pending.clear();
            self.sent = 0;
        }
        if !self.eof {
            let (got, eof) = pull(&self.s, &mut self.pending, 256 * 1024);
            moved |= got;
            if eof {
                self.eof = true;
            }
        }
        moved |= push(&self.s, &self.pending, &mut self.sent);
        moved
    }
}

#[test]
fn a_mio_loop_echoes_over_smc_d() {
    let config = SmcConfig::new().dmb_size(16 * 1024);
    let mut listener = config.bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap();
    // The client connects in a thread (a blocking connect waits for the
    // handshake, which the loop below drives on the accepted stream).
    let mut connect = Some(thread::spawn(move || config.connect(addr).unwrap()));
    let mut client: Option<SmcStream> = None;
    let mut echo: Option<Echo> = None;
    let out = data(3_000_000);
    let (mut sent, mut back) = (0usize, Vec::with_capacity(out.len()));
    let mut shut = false;
    let mut events = Events::with_capacity(16);
    let start = Instant::now();
    while back.len() < out.len() || !echo.as_ref().is_some_and(|e| e.eof) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "stalled at {} of {} bytes",
            back.len(),
            out.len()
        );
        // Every source is retried after every wake-up: an SMC stream's
        // event says only "something may have changed".
        let mut moved = false;
        if echo.is_none() {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(true).unwrap();
                    poll.registry()
                        .register(&mut s, SERVER, Interest::READABLE | Interest::WRITABLE)
                        .unwrap();
                    echo = Some(Echo {
                        s,
                        pending: Vec::new(),
                        sent: 0,
                        eof: false,
                    });
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        if let Some(e) = echo.as_mut() {
            moved |= e.step();
        }
        if let Some(t) = connect.take_if(|t| t.is_finished()) {
            let mut c = t.join().unwrap();
            assert!(c.transport().unwrap().is_smcd());
            c.set_nonblocking(true).unwrap();
            poll.registry()
                .register(&mut c, CLIENT, Interest::WRITABLE)
                .unwrap();
            client = Some(c);
            moved = true;
        }
        if let Some(c) = &client {
            moved |= push(c, &out, &mut sent);
            if sent == out.len() && !shut {
                c.shutdown(Shutdown::Write).unwrap();
                shut = true;
            }
            let (got, eof) = pull(c, &mut back, usize::MAX);
            moved |= got;
            assert!(!eof || back.len() == out.len(), "early EOF");
        }
        if !moved {
            // Short while the connect thread is still out (it has no event).
            let wait = if client.is_some() {
                Duration::from_secs(5)
            } else {
                Duration::from_millis(5)
            };
            poll.poll(&mut events, Some(wait)).unwrap();
            assert!(
                client.is_none() || !events.is_empty(),
                "no event for 5 s at {} of {} bytes",
                back.len(),
                out.len()
            );
        }
    }
    assert!(back == out, "bytes changed");
    let e = echo.unwrap();
    assert!(e.s.transport().unwrap().is_smcd());
    let mut c = client.unwrap();
    poll.registry().deregister(&mut c).unwrap();
}
