//! The crash roles of the probe (`smcd-preload/tests/crash_run.rs`): a
//! survivor that makes one connection after another as told on stdin, and
//! the peers that the test kills with SIGKILL.
//!
//! `crash-survivor` prints `pid N` and `port N` (its listener), then for
//! each stdin line `accept ACT` or `connect PORT ACT` (ACT: `read` checks
//! the pattern until EOF or an error, `write` writes it until an error)
//! prints `stream PEER`, then `end HOW NS` when the call returned (NS:
//! CLOCK_MONOTONIC in nanoseconds, comparable across processes), drops the
//! stream and prints `closed`. Stdin's EOF ends it.
//!
//! `crash-peer server MODE` (prints `pid`, `port`, then `accepted`) and
//! `crash-peer client PORT MODE` (prints `pid`, `go`, then `connected`):
//! MODE `source` writes the pattern forever, `sink` reads forever, `idle`
//! writes 4 KiB, prints `idle` and waits. Either exits after 60 s.

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The byte at `offset` of every crash-test stream.
fn byte_at(offset: u64) -> u8 {
    (offset % 251) as u8
}

fn fill(buf: &mut [u8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = byte_at(offset + i as u64);
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
fn now_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u128::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u128::try_from(ts.tv_nsec).unwrap_or(0)
}

/// How `act` on `s` ended: `eof`, `corrupt`, or the error kind.
fn run(mut s: &TcpStream, act: &str) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    loop {
        let r = if act == "write" {
            fill(&mut buf, at);
            s.write(&buf)
        } else {
            s.read(&mut buf)
        };
        match r {
            Ok(0) => return "eof".into(),
            Ok(n)
                if act != "write" && !buf[..n].iter().zip(at..).all(|(b, i)| *b == byte_at(i)) =>
            {
                return "corrupt".into();
            }
            Ok(n) => at += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return format!("{:?}", e.kind()),
        }
    }
}

pub(crate) fn survivor() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("pid {}", std::process::id());
    println!("port {}", listener.local_addr()?.port());
    for line in io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let (stream, act) = match words.as_slice() {
            ["accept", act] => (listener.accept().map(|(s, _)| s), *act),
            ["connect", port, act] => (TcpStream::connect(format!("127.0.0.1:{port}")), *act),
            _ => return Err(io::Error::other(format!("unknown command {line:?}"))),
        };
        let end = match stream {
            Ok(s) => {
                let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                println!("stream {peer}");
                let end = run(&s, act);
                let at = now_ns();
                drop(s);
                format!("{end} {at}")
            }
            Err(e) => format!("connect-{:?} {}", e.kind(), now_ns()),
        };
        println!("end {end}");
        println!("closed");
    }
    Ok(())
}

pub(crate) fn peer(args: &[&str]) -> io::Result<()> {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(3)
    });
    println!("pid {}", std::process::id());
    let (s, mode) = match args {
        ["server", mode] => {
            let l = TcpListener::bind("127.0.0.1:0")?;
            println!("port {}", l.local_addr()?.port());
            let (s, _) = l.accept()?;
            println!("accepted");
            (s, *mode)
        }
        ["client", port, mode] => {
            println!("go");
            let s = TcpStream::connect(format!("127.0.0.1:{port}"))?;
            println!("connected");
            (s, *mode)
        }
        _ => {
            return Err(io::Error::other(
                "usage: crash-peer server MODE | client PORT MODE",
            ));
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    match mode {
        "source" => {
            let end = run(&s, "write");
            Err(io::Error::other(end))
        }
        "sink" => loop {
            if !matches!((&s).read(&mut buf), Ok(1..)) {
                return Ok(());
            }
        },
        _ => {
            fill(&mut buf[..4096], 0);
            (&s).write_all(&buf[..4096])?;
            println!("idle");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
