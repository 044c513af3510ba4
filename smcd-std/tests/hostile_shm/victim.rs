//! The victim process: a listener whose connections are attacked, and one
//! healthy connection beside them.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smcd_core::conn::{ConnError, Violation};
use smcd_core::endpoint::EndpointError;
use smcd_std::{SmcConfig, SmcError, SmcListener, SmcStream};

use crate::attack::{Attack, Expect, LEGIT_TO_PEER, LEGIT_TO_VICTIM, SEND_UNDER_ATTACK};
use crate::{DMB, pattern, pattern_byte};

/// Each read and write under attack waits at most this long.
const CALL_TIMEOUT: Duration = Duration::from_millis(20);

/// A call must return within its timeout plus this: generous, since the
/// VM has two cores shared by several builds (a bound on liveness, not a
/// speed figure; a spinning or parked-forever call exceeds it by far).
const CALL_SLACK: Duration = Duration::from_secs(2);

/// How long an attack may take to be detected (the same reasoning: the
/// first call after the write normally sees it).
const DETECT_WITHIN: Duration = Duration::from_secs(5);

/// How long the victim keeps using a connection whose attack need not end
/// it (valid-looking values, torn headers).
const KEEP_GOING: Duration = Duration::from_millis(400);

/// Waits for the peer process's answers.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// The seed of the healthy connection's bytes.
const HEALTHY_SEED: u64 = 0x4ea1_7b1e;

/// The peer process, killed and reaped when dropped.
struct PeerProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl PeerProcess {
    fn spawn(addr: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("SMCD_HOSTILE_PEER", addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the peer process");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("tell the peer");
    }

    fn answer(&self) -> String {
        self.lines
            .recv_timeout(ANSWER_WITHIN)
            .expect("the peer process answers")
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How an attacked connection ended, by the typed reason in the error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Violation(Violation),
    /// The peer's abort flag (`ConnError::Reset`).
    Reset,
    /// The peer's close (`ConnError::PeerClosed`).
    PeerClosed,
    /// Anything else (a defect unless an attack allows it).
    Other(String),
}

fn ending(e: &io::Error) -> Ending {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<SmcError>());
    match inner {
        Some(SmcError::Endpoint(EndpointError::Conn(ConnError::Violation(v)))) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted, "{e}");
            Ending::Violation(*v)
        }
        Some(SmcError::Endpoint(EndpointError::Conn(ConnError::Reset))) => Ending::Reset,
        Some(SmcError::Endpoint(EndpointError::Conn(ConnError::PeerClosed))) => Ending::PeerClosed,
        _ => Ending::Other(format!("{:?}: {e}", e.kind())),
    }
}

/// What the victim saw while under attack.
#[derive(Debug, Default)]
struct Seen {
    ending: Option<Ending>,
    /// From the peer's `ready` to the error.
    latency: Option<Duration>,
    /// The longest single read or write.
    max_call: Duration,
    /// Stream bytes delivered under attack, and how many differ from what
    /// the peer put into the ring.
    received: usize,
    wrong: usize,
    /// Bytes delivered after EOF (must stay 0).
    after_eof: usize,
    eof: bool,
}

impl Seen {
    /// Note one call's outcome: its value, or `None` when it would block or
    /// the connection ended (then `ending` says why).
    fn call<T>(&mut self, begun: Instant, took: Duration, r: io::Result<T>) -> Option<T> {
        self.max_call = self.max_call.max(took);
        match r {
            Ok(v) => Some(v),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => {
                self.ending = Some(ending(&e));
                self.latency = Some(begun.elapsed());
                None
            }
        }
    }
}

/// Read and write the attacked connection until it ends (or `limit`).
fn under_attack(s: &SmcStream, seed: u64, limit: Duration) -> Seen {
    s.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(CALL_TIMEOUT)).unwrap();
    let mut seen = Seen::default();
    let mut buf = [0u8; 4096];
    let mut sent = 0;
    let begun = Instant::now();
    while seen.ending.is_none() && begun.elapsed() < limit {
        let t = Instant::now();
        let r = (&*s).read(&mut buf);
        match seen.call(begun, t.elapsed(), r) {
            Some(0) => seen.eof = true,
            Some(n) if seen.eof => seen.after_eof += n,
            Some(n) => {
                let at = (LEGIT_TO_VICTIM + seen.received) as u64;
                seen.wrong += (0..n)
                    .filter(|&i| buf[i] != pattern_byte(seed, at + i as u64))
                    .count();
                seen.received += n;
            }
            None => {}
        }
        if seen.ending.is_none() && sent < SEND_UNDER_ATTACK {
            let t = Instant::now();
            let r = (&*s).write(&pattern(!seed, (LEGIT_TO_PEER + sent) as u64, 100));
            sent += seen.call(begun, t.elapsed(), r).unwrap_or(0);
        }
    }
    seen
}

/// The healthy connection: chunks out, the echo back, every byte checked,
/// until `stop`; then the bytes that went both ways.
fn healthy(s: SmcStream, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    thread::spawn(move || {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (mut at, mut back) = (0u64, vec![0u8; 4096]);
        while !stop.load(Ordering::Relaxed) {
            let out = pattern(HEALTHY_SEED, at, 4096);
            (&s).write_all(&out).expect("healthy write");
            (&s).read_exact(&mut back).expect("healthy read");
            assert!(back == out, "healthy bytes at {at} changed");
            at += 4096;
        }
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!((&s).read(&mut back).unwrap(), 0, "healthy EOF");
        at
    })
}

/// Wait (bounded) until this process holds `n` DMBs; how many it holds.
fn dmbs_settle_at(n: u64) -> u64 {
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let now = smcd_std::stats().dmbs_in_use;
        if now == n || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Accept within a bound (the peer process may have died).
fn accept(listener: &SmcListener) -> SmcStream {
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// One attack on a fresh connection: the figures line, and how long the
/// victim took to end the connection (if it did).
fn attack(
    peer: &mut PeerProcess,
    listener: &SmcListener,
    a: Attack,
    seed: u64,
) -> (String, Option<Duration>) {
    peer.say(&format!("attack {} {seed}", a.name()));
    let s = accept(listener);
    assert!(s.transport().unwrap().is_smcd(), "{}: over SMC-D", a.name());
    let mut legit = vec![0u8; LEGIT_TO_VICTIM];
    (&s).read_exact(&mut legit).expect("legit read");
    assert!(legit == pattern(seed, 0, LEGIT_TO_VICTIM), "legit bytes");
    if a == Attack::AfterShutdown {
        assert_eq!((&s).read(&mut legit).unwrap(), 0, "the peer's FIN");
    }
    (&s).write_all(&pattern(!seed, 0, LEGIT_TO_PEER))
        .expect("legit write");
    assert_eq!(peer.answer(), "ready");
    let limit = match a.expect() {
        Expect::Survives | Expect::Either => KEEP_GOING,
        Expect::Violation(_) | Expect::Ends => DETECT_WITHIN,
    };
    let seen = under_attack(&s, seed, limit);
    peer.say("done");
    let result = peer.answer();
    drop(s);
    let name = a.name();
    // Only the healthy connection's DMB is left (nothing leaks on abort).
    assert_eq!(dmbs_settle_at(1), 1, "{name}: our DMB given back");
    let bound = CALL_TIMEOUT + CALL_SLACK;
    assert!(
        seen.max_call < bound,
        "{name}: a call took {:?}",
        seen.max_call
    );
    assert_eq!(seen.after_eof, 0, "{name}: bytes after EOF");
    match (a.expect(), &seen.ending) {
        (Expect::Violation(is), Some(Ending::Violation(v))) => {
            assert!(is(v), "{name}: wrong reason {v:?}");
        }
        (Expect::Ends, Some(Ending::Violation(_) | Ending::Reset | Ending::PeerClosed)) => {}
        (Expect::Survives, None) | (Expect::Either, None | Some(Ending::Violation(_))) => {}
        (_, other) => panic!("{name}: ended {other:?} ({seen:?})"),
    }
    if matches!(seen.ending, Some(Ending::Violation(_))) {
        // Our abort reached the peer: its end reports a reset — or, when we
        // consumed bytes its tap wrote behind its stream's back, its own
        // violation of our consumer cursor.
        let own_violation = seen.received > 0 && result.starts_with("result aborted");
        assert!(
            result == "result reset" || own_violation,
            "{name}: the peer saw our abort, not {result}"
        );
    }
    if !matches!(a, Attack::Torn | Attack::Random | Attack::AfterClose) {
        assert_eq!(seen.received, 0, "{name}: no data was announced");
    }
    if a == Attack::AfterClose {
        assert_eq!(seen.wrong, 0, "{name}: the peer's last bytes");
    }
    let line = format!(
        "{name:>16} seed {seed:#018x}: {:?} after {:?} (max call {:?}); \
         {} bytes delivered, {} not the peer's stream; peer {}",
        seen.ending, seen.latency, seen.max_call, seen.received, seen.wrong, result
    );
    (line, seen.latency)
}

pub(crate) fn run() {
    let iters: u64 = std::env::var("SMCD_HOSTILE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let listener = SmcConfig::new()
        .dmb_size(DMB)
        .bind("127.0.0.1:0")
        .expect("bind 127.0.0.1");
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut peer = PeerProcess::spawn(&addr);
    let stop = Arc::new(AtomicBool::new(false));
    let good = healthy(accept(&listener), Arc::clone(&stop));
    let started = Instant::now();
    let (mut attacks, mut latencies) = (0, Vec::new());
    for a in Attack::ALL {
        let rounds = if a.randomised() { iters } else { 1 };
        for round in 0..rounds {
            let seed = 0x5eed_0000_0000 ^ (attacks << 16) ^ round;
            let (line, latency) = attack(&mut peer, &listener, a, seed);
            println!("{line}");
            latencies.extend(latency);
            attacks += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let healthy_bytes = good.join().expect("the healthy connection");
    peer.say("exit");
    let status = peer.child.wait().expect("the peer process");
    assert!(status.success(), "peer process: {status}");
    assert_eq!(dmbs_settle_at(0), 0, "every DMB given back");
    assert!(healthy_bytes > 0, "the healthy connection moved data");
    latencies.sort();
    println!(
        "{attacks} attacks in {:?}; {} ended, time to the error: median {:?}, max {:?}; \
         healthy connection: {healthy_bytes} bytes each way, all intact",
        started.elapsed(),
        latencies.len(),
        latencies.get(latencies.len() / 2),
        latencies.last(),
    );
}
