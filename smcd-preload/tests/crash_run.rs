//! Programs under `smcd run` whose peer is killed with SIGKILL: one
//! long-lived survivor (`smcd-shim-probe crash-survivor`, a plain
//! `std::net` program) accepts and connects one connection after another;
//! each peer (`crash-peer`, also under the shim) is killed during the
//! handshake, mid-transfer, or while the survivor is parked in a blocking
//! read or write (the nocopy peer holding the survivor's DMB mapped).
//!
//! Each iteration: the survivor's call returns EOF or an error soon after
//! the kill (latency from just before `kill(2)` to the survivor's own
//! CLOCK_MONOTONIC stamp), no byte it read is wrong, and its fd and mapping
//! counts (`/proc/PID/fd`, `/proc/PID/maps`) come back to their values after
//! a warm-up connection each way; `/dev/shm` gains no entry.
//!
//! `SMCD_CRASH_ITERS` sets the iterations per case (default 10; the full
//! run is 100). `smcd run` is used when the smcd binary was built into the
//! same target directory (a workspace `cargo test` builds it), else the
//! shim is preloaded directly, which is what `smcd run` does.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

const PROBE: &str = env!("CARGO_BIN_EXE_smcd-shim-probe");
/// The detection bound each iteration must meet: 10× the 100 ms target,
/// because this loaded 2-core VM stalls processes for hundreds of ms at
/// times; the printed figures count the iterations over 100 ms.
const DETECT_LIMIT: Duration = Duration::from_secs(1);
const DETECT_TARGET: Duration = Duration::from_millis(100);
/// A survivor that printed nothing for this long after the kill hangs.
const HANG_LIMIT: Duration = Duration::from_secs(10);
/// Counts may take this long to come back (closes finish in the background).
const SETTLE_LIMIT: Duration = Duration::from_secs(4);
const START_LIMIT: Duration = Duration::from_secs(20);

fn target_dir() -> PathBuf {
    Path::new(PROBE).parent().unwrap().to_path_buf()
}

/// The shim this test run built (as in the shim tests: `deps/` has the
/// fresh one).
fn lib() -> PathBuf {
    let fresh = target_dir().join("deps").join("libsmcd_preload.so");
    if fresh.is_file() {
        fresh
    } else {
        target_dir().join("libsmcd_preload.so")
    }
}

/// CLOCK_MONOTONIC in nanoseconds (the survivor stamps with the same clock).
fn now_ns() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u128::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u128::try_from(t.tv_nsec).unwrap_or(0)
}

/// A probe under the shim: `smcd run` (or the shim preloaded directly), its
/// lines, and the probe's own pid (under `smcd run` the probe is a child of
/// smcd). Both are killed and reaped when dropped.
struct Prog {
    child: Child,
    pid: i32,
    lines: Receiver<String>,
    stdin: Option<ChildStdin>,
}

impl Prog {
    /// Start the probe with `args`; `stats`: where `smcd run --stats` puts
    /// the counters (only under `smcd run`).
    fn start(args: &[&str], stats: Option<&Path>) -> Self {
        let smcd = target_dir().join("smcd");
        let mut cmd = if smcd.is_file() {
            let mut c = Command::new(smcd);
            c.arg("run");
            if let Some(f) = stats {
                c.arg("--stats").arg(f);
            }
            c.arg("--").arg(PROBE);
            c
        } else {
            let mut c = Command::new(PROBE);
            c.env("LD_PRELOAD", lib());
            c
        };
        cmd.args(args)
            .env("SMCD_PRELOAD_LIB", lib())
            .env_remove("SMCD_STATS_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start the probe");
        let out = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut p = Self {
            child,
            pid: 0,
            lines,
            stdin,
        };
        let pid = p
            .line("pid", START_LIMIT)
            .expect("the probe printed no pid");
        p.pid = pid.parse().unwrap();
        p
    }

    /// The rest of the next line starting with `prefix`, within `limit`.
    fn line(&self, prefix: &str, limit: Duration) -> Option<String> {
        let mut seen = Vec::new();
        self.lines_until(prefix, limit, &mut seen)
            .then(|| seen.pop())
            .flatten()
            .and_then(|l| l.strip_prefix(prefix).map(|r| r.trim().to_owned()))
    }

    /// Collect lines into `seen` up to and including the next one starting
    /// with `prefix`; whether it came within `limit`.
    fn lines_until(&self, prefix: &str, limit: Duration, seen: &mut Vec<String>) -> bool {
        let end = Instant::now() + limit;
        loop {
            let Ok(l) = self
                .lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            else {
                return false;
            };
            let last = l.starts_with(prefix);
            seen.push(l);
            if last {
                return true;
            }
        }
    }

    fn tell(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    /// Close its stdin and wait (bounded) for it to exit by itself.
    fn finish(&mut self) {
        self.stdin.take();
        let end = Instant::now() + START_LIMIT;
        while Instant::now() < end && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL the probe itself, then reap its wrapper.
    fn kill(&mut self) {
        if let Some(pid) = Pid::from_raw(self.pid) {
            let _ = kill_process(pid, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Open fds and mappings of the probe.
    fn held(&self) -> (usize, usize) {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, Iterator::count);
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid))
            .map_or(0, |m| m.lines().count());
        (fds, maps)
    }
}

impl Drop for Prog {
    fn drop(&mut self) {
        self.stdin.take();
        self.kill();
    }
}

/// `/dev/shm` entries, but `smcd bench`'s raw baseline files (other tests).
fn shm_entries() -> usize {
    std::fs::read_dir("/dev/shm").map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with("smcd-raw-"))
            .count()
    })
}

#[derive(Debug)]
struct Case {
    name: &'static str,
    /// `accept` (the survivor is the server) or `connect`.
    survivor: &'static str,
    act: &'static str,
    peer_mode: &'static str,
    /// The peer's line the kill is timed from (`None`: from the command).
    trigger: Option<&'static str>,
    delay_us: (u64, u64),
}

const CASES: &[Case] = &[
    Case {
        name: "handshake, client killed",
        survivor: "accept",
        act: "read",
        peer_mode: "source",
        trigger: Some("go"),
        delay_us: (0, 4000),
    },
    Case {
        name: "handshake, server killed",
        survivor: "connect",
        act: "read",
        peer_mode: "source",
        trigger: None,
        delay_us: (0, 4000),
    },
    Case {
        name: "mid-transfer, nocopy sender killed",
        survivor: "accept",
        act: "read",
        peer_mode: "source",
        trigger: Some("connected"),
        delay_us: (1000, 30_000),
    },
    Case {
        name: "mid-transfer, reader killed",
        survivor: "connect",
        act: "write",
        peer_mode: "sink",
        trigger: Some("accepted"),
        delay_us: (1000, 30_000),
    },
    Case {
        name: "parked in read, client holding our DMB mapped killed",
        survivor: "accept",
        act: "read",
        peer_mode: "idle",
        trigger: Some("idle"),
        delay_us: (20_000, 40_000),
    },
    Case {
        name: "parked in write (ring full), server killed",
        survivor: "connect",
        act: "write",
        peer_mode: "idle",
        trigger: Some("idle"),
        delay_us: (50_000, 80_000),
    },
];

#[derive(Debug, Default)]
struct Figures {
    latencies: Vec<Duration>,
    ended_before: usize,
    never_connected: usize,
    ends: std::collections::BTreeMap<String, usize>,
}

/// One kill; `Err` says what went wrong.
fn iteration(
    survivor: &mut Prog,
    port: &str,
    case: &Case,
    start: Option<(usize, usize)>,
    fig: &mut Figures,
) -> Result<(), String> {
    let mut peer = match case.survivor {
        "accept" => {
            survivor.tell(&format!("accept {}", case.act));
            Prog::start(&["crash-peer", "client", port, case.peer_mode], None)
        }
        _ => {
            let peer = Prog::start(&["crash-peer", "server", case.peer_mode], None);
            let p = peer
                .line("port", START_LIMIT)
                .ok_or("no port from the peer")?;
            survivor.tell(&format!("connect {p} {}", case.act));
            peer
        }
    };
    if let Some(t) = case.trigger {
        peer.line(t, START_LIMIT)
            .ok_or_else(|| format!("the peer never printed {t:?}"))?;
    }
    let (lo, hi) = case.delay_us;
    std::thread::sleep(Duration::from_micros(rand_between(lo, hi)));
    let killed = now_ns();
    peer.kill();
    // A peer killed before its connect leaves the survivor in accept: a
    // plain connection of ours (closed at once) ends that, told apart by its
    // address in the survivor's `stream` line.
    let mut nudge = None;
    let mut seen = Vec::new();
    if !survivor.lines_until("end", Duration::from_millis(500), &mut seen) {
        if case.survivor == "accept" {
            nudge = TcpStream::connect(format!("127.0.0.1:{port}"))
                .ok()
                .and_then(|s| s.local_addr().ok());
        }
        if !survivor.lines_until("end", HANG_LIMIT, &mut seen) {
            return Err(format!(
                "the survivor hangs after the kill:\n{}",
                stacks(survivor.pid)
            ));
        }
    }
    let nudged = nudge.is_some_and(|a| seen.iter().any(|l| *l == format!("stream {a}")));
    let end = seen
        .last()
        .and_then(|l| l.strip_prefix("end "))
        .unwrap_or_default();
    let (how, at) = end.split_once(' ').ok_or("malformed end line")?;
    let at: u128 = at.parse().map_err(|_| "malformed end stamp")?;
    *fig.ends.entry(how.to_owned()).or_default() += 1;
    if how == "corrupt" {
        return Err("the survivor read a wrong byte".into());
    }
    if nudged {
        fig.never_connected += 1;
    } else if at <= killed {
        fig.ended_before += 1;
    } else {
        let took = Duration::from_nanos(u64::try_from(at - killed).unwrap_or(u64::MAX));
        if took > DETECT_LIMIT {
            return Err(format!("{how} only {took:?} after the kill"));
        }
        fig.latencies.push(took);
    }
    survivor
        .line("closed", HANG_LIMIT)
        .ok_or("the survivor did not close")?;
    let Some(start) = start else { return Ok(()) };
    let begin = Instant::now();
    loop {
        let now = survivor.held();
        if now == start {
            return Ok(());
        }
        if begin.elapsed() > SETTLE_LIMIT {
            return Err(format!(
                "leak: (fds, maps) {start:?} at the start, {now:?} now"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The threads' stacks of `pid` (gdb's backtraces when gdb is installed,
/// else each thread's kernel wait channel), for the message of a hang.
fn stacks(pid: i32) -> String {
    let gdb = Command::new("timeout")
        .args([
            "60",
            "gdb",
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt 25",
        ])
        .stdin(Stdio::null())
        .output();
    if let Some(out) = gdb.ok().filter(|o| o.status.success()) {
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return String::new();
    };
    tasks
        .filter_map(Result::ok)
        .map(|t| {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            format!(
                "{} {} {}",
                read("comm").trim(),
                read("wchan"),
                read("syscall").trim()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// RSS of process `pid` in KiB (`VmRSS`).
fn survivor_rss(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A uniform draw from `lo..=hi` (the clock's low bits suffice here).
fn rand_between(lo: u64, hi: u64) -> u64 {
    let span = u128::from(hi - lo + 1);
    lo + u64::try_from(now_ns().wrapping_mul(0x9E37_79B9_7F4A_7C15) % span).unwrap_or(0)
}

fn median_max(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    v.last()
        .map_or((Duration::ZERO, Duration::ZERO), |m| (v[v.len() / 2], *m))
}

/// A new survivor with its port, warmed up (the shim's device and close
/// threads exist from then on), and its (fds, maps) after that.
fn fresh_survivor(stats: &Path) -> (Prog, String, (usize, usize)) {
    let mut survivor = Prog::start(&["crash-survivor"], Some(stats));
    let port = survivor.line("port", START_LIMIT).expect("survivor port");
    let mut warm = Figures::default();
    for case in &CASES[2..4] {
        iteration(&mut survivor, &port, case, None, &mut warm).expect("warm-up");
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = survivor.held();
    (survivor, port, start)
}

#[test]
fn programs_under_smcd_run_survive_a_killed_peer() {
    assert!(lib().is_file(), "{} not built", lib().display());
    let iters: usize = std::env::var("SMCD_CRASH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let shm_before = shm_entries();
    let stats = |n: usize| {
        std::env::temp_dir().join(format!("smcd-crash-run-{}-{n}.json", std::process::id()))
    };
    let mut sessions = 0;
    let (mut survivor, mut port, mut start) = fresh_survivor(&stats(sessions));
    let mut failures = Vec::new();
    let mut all = Vec::new();
    // A soak (`SMCD_SOAK_SECS`, `scripts/test soak`): every case in turn
    // until the time is up; the survivor's RSS and fds are sampled.
    let soak = std::env::var("SMCD_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| Instant::now() + Duration::from_secs(s));
    let (mut rss, mut kills) = (Vec::new(), 0u64);
    let rounds = if soak.is_some() { usize::MAX } else { 1 };
    for case in CASES
        .iter()
        .cycle()
        .take(CASES.len().saturating_mul(rounds))
    {
        if soak.is_some_and(|end| Instant::now() >= end) {
            break;
        }
        rss.push((survivor_rss(survivor.pid), survivor.held().0));
        kills += iters as u64;
        let mut fig = Figures::default();
        for i in 0..iters {
            if let Err(e) = iteration(&mut survivor, &port, case, Some(start), &mut fig) {
                println!("crash_run: {}: iteration {i}: FAILED {e}", case.name);
                failures.push(format!("{}: iteration {i}: {e}", case.name));
                // Out of step with the survivor now: start over with a new one.
                drop(survivor);
                sessions += 1;
                (survivor, port, start) = fresh_survivor(&stats(sessions));
            }
        }
        let (med, max) = median_max(&mut fig.latencies);
        let over = fig.latencies.iter().filter(|d| **d > DETECT_TARGET).count();
        println!(
            "crash_run: {}: {} detections (median {med:?}, max {max:?}, {over} over {DETECT_TARGET:?}), \
             {} ended before the kill, {} killed before connecting; ends {:?}",
            case.name,
            fig.latencies.len(),
            fig.ended_before,
            fig.never_connected,
            fig.ends
        );
        all.extend(fig.latencies);
    }
    let (med, max) = median_max(&mut all);
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        let max_rss = rss.iter().map(|r| r.0).max().unwrap_or(0);
        let max_fds = rss.iter().map(|r| r.1).max().unwrap_or(0);
        println!(
            "crash_run: {kills} kills, {} failures; survivor RSS KiB start {} end {} max {max_rss}; \
             fds start {} end {} max {max_fds}",
            failures.len(),
            first.0,
            last.0,
            first.1,
            last.1
        );
    }
    println!(
        "crash_run: all: {} detections, median {med:?}, max {max:?}, {} over {DETECT_TARGET:?}; \
         survivor (fds, maps) at the start {start:?}; load {}",
        all.len(),
        all.iter().filter(|d| **d > DETECT_TARGET).count(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    survivor.finish();
    drop(survivor);
    let last = std::fs::read_to_string(stats(sessions));
    for n in 0..=sessions {
        let _ = std::fs::remove_file(stats(n));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(shm_entries() <= shm_before, "/dev/shm gained entries");
    // Under `smcd run`: the survivor's connections were SMC-D.
    if let Ok(text) = last {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let smc = v["connections"]["smc-d-nocopy"].as_u64().unwrap_or(0);
        println!("crash_run: the survivor's connections {}", v["connections"]);
        // (A handshake cut short by the kill counts as no connection.)
        let whole = CASES
            .iter()
            .filter(|c| !c.name.starts_with("handshake"))
            .count();
        assert!(
            smc as usize >= whole * iters,
            "too few SMC-D connections: {text}"
        );
    }
}
