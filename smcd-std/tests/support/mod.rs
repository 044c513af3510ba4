//! What the process tests of smcd-std share: a child process of the test
//! binary itself (a guard that kills and reaps it), the byte pattern both
//! sides check, and the resource counts that must come back after a crash.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The environment variable that makes the test binary a child role.
pub(crate) const ROLE_VAR: &str = "SMCD_TEST_CHILD";

/// The byte at `offset` of every stream a test sends (period 251, so a
/// shifted, lost or repeated run of bytes shows).
pub(crate) fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// Fill `buf` with the pattern from `offset` on.
pub(crate) fn fill(buf: &mut [u8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + i as u64);
    }
}

/// Whether `buf` holds the pattern from `offset` on.
pub(crate) fn matches(buf: &[u8], offset: u64) -> bool {
    buf.iter()
        .enumerate()
        .all(|(i, b)| *b == pattern_byte(offset + i as u64))
}

/// A child process running this test binary in a role; killed with SIGKILL
/// and reaped when dropped.
pub(crate) struct Proc {
    child: Child,
    lines: Receiver<String>,
}

impl Proc {
    /// Start the test binary as `role` with `args` and extra environment.
    pub(crate) fn spawn(role: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.env(ROLE_VAR, role)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn child");
        let out = child.stdout.take().expect("child stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line starting with `prefix` (the rest of it), waiting at
    /// most `limit`; `None` if the child did not print it in time.
    pub(crate) fn line(&self, prefix: &str, limit: Duration) -> Option<String> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return Some(rest.trim().to_owned());
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// SIGKILL the child now and reap it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a process holds that a crash of its peer must not leave behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// Open fds (`/proc/self/fd`).
    pub(crate) fds: usize,
    /// Mappings (`/proc/self/maps` lines).
    pub(crate) maps: usize,
    /// Threads (`/proc/self/task`).
    pub(crate) threads: usize,
    /// Entries of `/dev/shm` (smcd uses memfds: it must never add one).
    pub(crate) shm: usize,
    /// DMBs the process's device holds.
    pub(crate) dmbs: u64,
}

impl Held {
    /// The counts now.
    pub(crate) fn now() -> Self {
        let count = |dir: &str| std::fs::read_dir(dir).map_or(0, Iterator::count);
        // `smcd bench`'s raw-memory baseline (other tests of the host) is
        // the one program of the project that names files there.
        let shm = std::fs::read_dir("/dev/shm").map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with("smcd-raw-"))
                .count()
        });
        let maps = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count());
        Self {
            fds: count("/proc/self/fd"),
            maps,
            threads: count("/proc/self/task"),
            shm,
            dmbs: smcd_std::stats().dmbs_in_use,
        }
    }

    /// Wait up to `limit` for the counts to equal `start` (a close may
    /// finish in the background); the counts seen last otherwise.
    pub(crate) fn settle_to(start: Self, limit: Duration) -> Result<Duration, Self> {
        let begin = Instant::now();
        loop {
            let now = Self::now();
            // Another user of the host may add or remove /dev/shm entries;
            // only more entries than at the start are ours to explain.
            let same = Self {
                shm: start.shm,
                ..now
            } == start
                && now.shm <= start.shm;
            if same {
                return Ok(begin.elapsed());
            }
            if begin.elapsed() >= limit {
                return Err(now);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The median and the maximum of `v` (sorted in place); zeros when empty.
pub(crate) fn median_max(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    match v.len() {
        0 => (Duration::ZERO, Duration::ZERO),
        n => (v[n / 2], v[n - 1]),
    }
}

/// What each open fd of this process is (`/proc/self/fd` link targets),
/// for the message of a leak.
pub(crate) fn fd_targets() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The names of this process's threads (`/proc/self/task/*/comm`), for
/// the message of a leak.
pub(crate) fn thread_names() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .collect();
    v.sort();
    v
}
