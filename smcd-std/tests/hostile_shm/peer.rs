//! The hostile peer process: real handshakes, then hostile writes into the
//! victim's DMB through its own mapping of it.
//!
//! Driven by lines on stdin (`attack NAME SEED`, `done`, `exit`); answers
//! `ready` when an attack's connection is set up and `result WHAT` (what its
//! own end of the attacked connection saw afterwards) on stdout.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{FallocateFlags, SealFlags};
use rustix::io::Errno;
use smcd_core::cursor::Cursor;
use smcd_core::wire::cdc::CdcHeader;
use smcd_std::device::PeerTap;
use smcd_std::{SmcConfig, SmcStream};

use crate::attack::{Attack, LEGIT_TO_PEER, LEGIT_TO_VICTIM};
use crate::{DMB, RING, Rng, pattern};

/// The longest any attack runs if the victim never says `done`.
const ATTACK_CAP: Duration = Duration::from_secs(20);

pub(crate) fn run(addr: &str) {
    let config = SmcConfig::new().dmb_size(DMB);
    let healthy = config.connect(addr).expect("healthy connect");
    assert!(healthy.transport().unwrap().is_smcd(), "healthy over SMC-D");
    let echo = thread::spawn(move || echo(healthy));
    let mut lines = std::io::stdin().lock().lines();
    while let Some(Ok(line)) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["attack", name, seed] => {
                let attack = Attack::parse(name).expect("attack name");
                let seed = seed.parse().expect("seed");
                let s = config.connect(addr).expect("hostile connect");
                assert!(s.transport().unwrap().is_smcd(), "attack over SMC-D");
                let result = one(attack, seed, s, &mut lines);
                println!("result {result}");
            }
            ["exit"] => break,
            other => panic!("peer: unknown command {other:?}"),
        }
    }
    echo.join().expect("echo thread");
}

/// Echo the healthy connection until EOF.
fn echo(mut s: SmcStream) {
    let mut buf = vec![0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => s.write_all(&buf[..n]).expect("healthy echo write"),
            Err(e) => panic!("healthy echo read: {e}"),
        }
    }
    s.shutdown(Shutdown::Write).expect("healthy shutdown");
}

/// Set up, attack until `done`, and say what our own end saw.
fn one(
    attack: Attack,
    seed: u64,
    mut s: SmcStream,
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> String {
    s.write_all(&pattern(seed, 0, LEGIT_TO_VICTIM))
        .expect("legit write");
    if attack == Attack::AfterShutdown {
        s.shutdown(Shutdown::Write).expect("legit shutdown");
    }
    let mut got = vec![0u8; attack.peer_reads()];
    s.read_exact(&mut got).expect("legit read");
    assert_eq!(got, pattern(!seed, 0, got.len()), "legit bytes");
    let tap = s.__peer_tap().expect("the victim's DMB is mapped");
    let stream = match attack {
        Attack::AfterClose => {
            drop(s);
            None
        }
        _ => Some(s),
    };
    println!("ready");
    let stop = Arc::new(AtomicBool::new(false));
    let hostile = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || write_hostile(attack, seed, &tap, &stop))
    };
    match lines.next() {
        Some(Ok(l)) if l == "done" => {}
        other => panic!("peer: expected done, got {other:?}"),
    }
    stop.store(true, Ordering::Relaxed);
    hostile.join().expect("hostile writer");
    stream.map_or_else(|| "closed".to_owned(), |s| own_end(&s))
}

/// What our end of the attacked connection reports: drain what the victim
/// sent, then its error (`reset` when the victim sent its abort).
///
/// Our stream knows nothing of what the tap wrote: when the victim consumed
/// such bytes, its consumer cursor runs ahead of what our stream produced,
/// and our end aborts with that violation (reported as `aborted: …`).
fn own_end(s: &SmcStream) -> String {
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    // The victim sends at most a few KiB: a bounded number of reads.
    for _ in 0..64 {
        match (&*s).read(&mut buf) {
            Ok(0) => return "eof".to_owned(),
            Ok(_) => {}
            Err(e) => {
                return match e.kind() {
                    ErrorKind::ConnectionReset => "reset".to_owned(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut => "alive".to_owned(),
                    ErrorKind::ConnectionAborted => format!("aborted: {e}"),
                    k => format!("{k:?}: {e}"),
                };
            }
        }
    }
    "alive".to_owned()
}

/// Write `attack` into the victim's DMB until `stop`.
fn write_hostile(attack: Attack, seed: u64, tap: &PeerTap, stop: &AtomicBool) {
    let base = tap.header().expect("the victim's header");
    let mut rng = Rng::new(seed);
    let publish = |h: &CdcHeader| {
        tap.publish(h).expect("header");
        tap.signal();
    };
    let mut h = base;
    match attack {
        Attack::ProdBeyondRing => h.prod.count = RING + 7,
        Attack::ConsBeyondRing => h.cons.count = u32::MAX,
        Attack::WrapBackwards => h.prod.wrap = base.prod.wrap.wrapping_sub(1),
        Attack::ProdAhead => h.prod.wrap = base.prod.wrap.wrapping_add(2),
        Attack::ConsBeyondSent => h.cons = base.cons.add(RING, 8000),
        Attack::ConsPlausible => h.cons = Cursor::new(0, LEGIT_TO_PEER as u32),
        Attack::AfterShutdown => {
            ring_data(tap, seed, LEGIT_TO_VICTIM as u64, base.prod, 100);
            h.prod = base.prod.add(RING, 100);
        }
        Attack::AfterClose => return data_after_close(tap, seed, base, stop),
        Attack::FlagStorm => return flag_storm(tap, stop),
        Attack::BellStorm => return bell_storm(tap, stop),
        Attack::Torn => return torn(tap, seed, base, &mut rng, stop),
        Attack::Random => return random(tap, &mut rng, stop),
        Attack::Resize => {
            resize(tap);
            tap.signal();
            return idle(stop);
        }
    }
    publish(&h);
    idle(stop);
}

/// Wait for `stop` (bounded).
fn idle(stop: &AtomicBool) {
    let begun = Instant::now();
    while !stop.load(Ordering::Relaxed) && begun.elapsed() < ATTACK_CAP {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Whether to go on attacking.
fn going(stop: &AtomicBool, begun: Instant) -> bool {
    !stop.load(Ordering::Relaxed) && begun.elapsed() < ATTACK_CAP
}

/// Stream bytes `at..at + len` into the ring from cursor `prod` on.
fn ring_data(tap: &PeerTap, seed: u64, at: u64, prod: Cursor, len: u32) {
    let bytes = pattern(seed, at, len as usize);
    let first = (RING - prod.count).min(len) as usize;
    tap.write(32 + prod.count as usize, &bytes[..first])
        .expect("ring");
    tap.write(32, &bytes[first..]).expect("ring");
}

/// After our close: more data and headers, every few milliseconds.
fn data_after_close(tap: &PeerTap, seed: u64, base: CdcHeader, stop: &AtomicBool) {
    // Give the victim a moment to see the close on its own first.
    thread::sleep(Duration::from_millis(50));
    let (mut h, mut at) = (base, LEGIT_TO_VICTIM as u64);
    let begun = Instant::now();
    while going(stop, begun) {
        ring_data(tap, seed, at, h.prod, 100);
        h.prod = h.prod.add(RING, 100);
        at += 100;
        tap.publish(&h).expect("header");
        tap.signal();
        thread::sleep(Duration::from_millis(5));
    }
}

/// Every value of both flag bytes, over and over, at full speed.
fn flag_storm(tap: &PeerTap, stop: &AtomicBool) {
    let begun = Instant::now();
    let mut v = 0u8;
    while going(stop, begun) {
        // Byte 22: producer flags, byte 23: connection-state flags.
        tap.write(22, &[v, v.rotate_left(3)]).expect("flags");
        if v % 16 == 0 {
            tap.signal();
        }
        v = v.wrapping_add(1);
    }
}

/// The doorbell, over and over (a yield between rings, so the victim's
/// process gets the cores it needs to keep waking up).
fn bell_storm(tap: &PeerTap, stop: &AtomicBool) {
    let begun = Instant::now();
    while going(stop, begun) {
        tap.ring();
        thread::yield_now();
    }
}

/// Forty headers, each preceded by its data, each written a byte at a
/// time in a random order (a peer that does not store cursor words whole).
fn torn(tap: &PeerTap, seed: u64, base: CdcHeader, rng: &mut Rng, stop: &AtomicBool) {
    let (mut h, mut at) = (base, LEGIT_TO_VICTIM as u64);
    let begun = Instant::now();
    // At most 40 × 400 bytes: less than a ring, so nothing unread is overwritten.
    for _ in 0..40 {
        if !going(stop, begun) {
            return;
        }
        let n = 1 + rng.below(400) as u32;
        ring_data(tap, seed, at, h.prod, n);
        h.prod = h.prod.add(RING, n);
        at += u64::from(n);
        let bytes = h.to_bytes();
        let mut order: Vec<usize> = (0..bytes.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for i in order {
            tap.write(i, &bytes[i..=i]).expect("header byte");
            tap.signal();
            for _ in 0..rng.below(2000) {
                std::hint::spin_loop();
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    idle(stop);
}

/// Try to resize and reseal the victim's memfd (the kernel refuses, the
/// seals being on the file, not on its owner's fd), then zero it by
/// punching a hole over all of it (allowed; the victim reads zeros).
fn resize(tap: &PeerTap) {
    let fd = tap.memfd();
    let size = rustix::fs::fstat(fd).expect("fstat").st_size as u64;
    assert!(size > tap.len() as u64, "the DMB and its control page");
    for to in [0, 4096, size - 1, size + 1, 2 * size] {
        assert_eq!(
            rustix::fs::ftruncate(fd, to),
            Err(Errno::PERM),
            "ftruncate {to}"
        );
    }
    let grow = FallocateFlags::empty();
    assert_eq!(
        rustix::fs::fallocate(fd, grow, size, 4096),
        Err(Errno::PERM)
    );
    for seal in [SealFlags::WRITE, SealFlags::FUTURE_WRITE] {
        assert_eq!(
            rustix::fs::fcntl_add_seals(fd, seal),
            Err(Errno::PERM),
            "{seal:?}"
        );
    }
    let seals = rustix::fs::fcntl_get_seals(fd).expect("seals");
    assert_eq!(seals, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL);
    let punch = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    rustix::fs::fallocate(fd, punch, 0, size).expect("punch a hole");
    assert_eq!(rustix::fs::fstat(fd).expect("fstat").st_size as u64, size);
}

/// Random values at random places: random header bytes, plausible
/// counts (inside the ring) and wraps (near the current ones) in the
/// cursor words, and random ring bytes.
fn random(tap: &PeerTap, rng: &mut Rng, stop: &AtomicBool) {
    // Cursor words: producer at 8 (wrap 8..10, count 10..14), consumer at
    // 16 (wrap 16..18, count 18..22).
    let base = tap.header().expect("the victim's header");
    let begun = Instant::now();
    let mut writes = 0u64;
    while going(stop, begun) {
        let (at, bytes) = match rng.below(4) {
            0 => {
                let len = 1 + rng.below(8) as usize;
                let at = rng.below((32 - len) as u64 + 1) as usize;
                (at, (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>())
            }
            1 => {
                let count = rng.below(u64::from(RING)) as u32;
                (
                    if rng.below(2) == 0 { 10 } else { 18 },
                    count.to_ne_bytes().to_vec(),
                )
            }
            2 => {
                let (at, wrap) = match rng.below(2) {
                    0 => (8, base.prod.wrap),
                    _ => (16, base.cons.wrap),
                };
                let wrap = wrap.wrapping_add(rng.below(3) as u16).wrapping_sub(1);
                (at, wrap.to_ne_bytes().to_vec())
            }
            _ => {
                let len = 1 + rng.below(64) as usize;
                let at = 32 + rng.below((DMB - 32 - len) as u64) as usize;
                (at, (0..len).map(|_| rng.next() as u8).collect())
            }
        };
        tap.write(at, &bytes).expect("inside the DMB");
        writes += 1;
        if writes % 8 == 0 {
            tap.signal();
            thread::sleep(Duration::from_micros(100));
        }
    }
}
