//! An `smcd echo-server` child process, what its device reports, and a
//! healthy smcd client that checks it is served.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use smcd_std::naming::Place;
use smcd_std::query::{Query, survey};
use smcd_std::{SmcStream, Transport};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_smcd");

/// Whether this test runs as root (another user is reachable with setpriv).
pub(crate) fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    println!("skipped: not root, so no process of another user can be started");
    false
}

/// `cmd` run as `nobody` (another uid, gid and no groups).
pub(crate) fn as_nobody(program: &str) -> Command {
    let mut cmd = clean(Command::new("setpriv"));
    cmd.args([
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        program,
    ]);
    cmd
}

/// Longest a child may take to print its address.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A child process, killed and reaped when this goes.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` with the `SMCD_*` variables of the test's environment removed.
pub(crate) fn clean(mut cmd: Command) -> Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("SMCD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `smcd echo-server --listen 127.0.0.1:0` (one thread per connection, the
/// default peer policy) and the address it listens on.
pub(crate) fn echo_server() -> (Proc, SocketAddr) {
    let mut cmd = clean(Command::new(BIN));
    cmd.args(["echo-server", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Proc(cmd.spawn().expect("smcd echo-server starts"));
    let out = child.0.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(START_LIMIT)
        .expect("the server prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, addr)
}

/// The DMBs process `pid` holds now, as its device reports them.
pub(crate) fn dmbs_of(pid: u32) -> u64 {
    survey(&Place::Abstract, Query::Totals)
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .map(|p| p.stats.dmbs_in_use)
        .unwrap_or_else(|| panic!("process {pid} answers the survey"))
}

/// Poll `dmbs_of(pid)` until it is `want`, at most `limit`; the last value.
pub(crate) fn wait_dmbs(pid: u32, want: u64, limit: Duration) -> u64 {
    let end = Instant::now() + limit;
    loop {
        let n = dmbs_of(pid);
        if n == want || Instant::now() >= end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Bytes a healthy client sends (fits the two DMBs: the echo server writes
/// back while it reads, and we read only after writing).
const PROBE_BYTES: usize = 40_000;

/// A healthy smcd client of `addr` (this process's device): connects, sends
/// [`PROBE_BYTES`], checks the echo byte for byte, and returns the transport.
pub(crate) fn healthy(addr: SocketAddr, seed: u8) -> Transport {
    let mut s = SmcStream::connect(addr).expect("a healthy client connects");
    let transport = s.transport().expect("the healthy handshake settles");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let out: Vec<u8> = (0..PROBE_BYTES)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    s.write_all(&out).expect("the healthy client writes");
    let mut back = vec![0u8; out.len()];
    s.read_exact(&mut back).expect("the echo comes back");
    assert!(back == out, "the echo differs from what was sent");
    transport
}
