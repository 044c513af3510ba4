//! `smcd echo-server`, `smcd echo-client` and `smcd chk` as real processes:
//! SMC-D between two smcd processes, plain TCP with plain peers, many
//! streams at once, and a peer killed with SIGKILL mid-transfer.
//!
//! Everything binds 127.0.0.1 only; every wait is bounded; every child is
//! killed and reaped by its guard ([`Proc`]) whatever happens.
//!
//! Transfer sizes: the debug build of the data path moves some tens of MB/s,
//! so a debug run (`cargo test -p smcd-cli`) sends 8 MiB each way per mode;
//! a release run (`cargo test --release -p smcd-cli --test echo`) sends the
//! full 1 GiB each way. `SMCD_TEST_BYTES` (e.g. `64M`) overrides both.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smcd");

/// Longest any single process of a test may run.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Longest a server may take to print its address.
const START_LIMIT: Duration = Duration::from_secs(20);

/// Bytes each way for the big echo runs (argument of `--bytes`).
fn big_bytes() -> String {
    std::env::var("SMCD_TEST_BYTES").unwrap_or_else(|_| {
        if cfg!(debug_assertions) {
            "8M".into()
        } else {
            "1G".into()
        }
    })
}

/// Lines a child writes to one of its pipes, collected by a thread.
struct Lines {
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Lines {
    fn collect(pipe: impl Read + Send + 'static) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            lines,
            reader: Some(reader),
        }
    }

    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line that satisfies `pred`, waiting at most `limit`.
    fn wait_for(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + limit;
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// How many lines satisfy `pred`.
    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| pred(l))
            .count()
    }

    /// Every line, once the pipe is closed (the child has exited).
    fn finish(&mut self) -> Vec<String> {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.snapshot()
    }
}

/// A child process that is killed and reaped when the guard goes.
struct Proc {
    child: Child,
    out: Lines,
    err: Lines,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// `smcd ARGS` with the `SMCD_*` variables of the test's environment
    /// removed and `env` set.
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("SMCD_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("smcd starts");
        let out = Lines::collect(child.stdout.take().unwrap());
        let err = Lines::collect(child.stderr.take().unwrap());
        Self { child, out, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the exit, at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// What a finished client printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Run {
    fn has(&self, prefix: &str) -> bool {
        self.stdout.iter().any(|l| l.starts_with(prefix))
    }
}

/// Wait for `p` to exit (it must, within [`RUN_LIMIT`]) and collect its output.
fn finish(mut p: Proc) -> Run {
    let status = p.wait(RUN_LIMIT);
    assert!(
        status.is_some(),
        "smcd did not exit within {RUN_LIMIT:?}; stdout {:?} stderr {:?}",
        p.out.snapshot(),
        p.err.snapshot()
    );
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: p.out.finish(),
        stderr: p.err.finish(),
    };
    assert!(
        !run.stderr.iter().any(|l| l.contains("panicked")),
        "smcd panicked: {run:?}"
    );
    run
}

/// `smcd echo-client ARGS…` to completion.
fn client(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["echo-client", addr];
    all.extend_from_slice(args);
    finish(Proc::spawn(&all, env))
}

/// `smcd echo-server --listen 127.0.0.1:0 ARGS…` and the address it listens on.
fn server(args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let mut all = vec!["echo-server", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let p = Proc::spawn(&all, env);
    let line = p
        .out
        .wait_for(START_LIMIT, |l| l.starts_with("listening on "))
        .unwrap_or_else(|| panic!("echo-server did not start: {:?}", p.err.snapshot()));
    let addr = line["listening on ".len()..].to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    (p, addr)
}

/// The test's own byte pattern (not the client's).
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// Open descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .unwrap_or(0)
}

/// Entries of /dev/shm (smcd uses memfds, so it must never add one).
fn shm_count() -> usize {
    std::fs::read_dir("/dev/shm").map_or(0, Iterator::count)
}

#[test]
fn echo_client_and_server_speak_smc_d_in_copy_and_nocopy_mode() {
    let bytes = big_bytes();
    for mode in ["copy", "nocopy"] {
        let flag = format!("--{mode}");
        let (srv, addr) = server(&[&flag], &[]);
        let run = client(&addr, &["--bytes", &bytes, &flag], &[]);
        assert_eq!(run.code, Some(0), "{run:?}");
        let first = run.stdout.first().map(String::as_str).unwrap_or("");
        assert!(
            first.starts_with(&format!("transport: smc-d v2 {mode} ")),
            "first line: {first:?}"
        );
        assert!(run.has("verify: ok"), "{run:?}");
        let echoed = run
            .stdout
            .iter()
            .find(|l| l.starts_with("echoed:"))
            .unwrap();
        println!("{mode}: {echoed}");
        let closed = srv
            .err
            .wait_for(Duration::from_secs(10), |l| l.contains("closed:"));
        let want = u64::try_from(smcd_bytes(&bytes)).unwrap();
        assert!(
            closed
                .as_deref()
                .is_some_and(|l| l.ends_with(&format!("closed: {want} bytes echoed"))),
            "server: {:?}",
            srv.err.snapshot()
        );
        assert_eq!(
            srv.err
                .count(|l| l.contains(" transport smc-d v2 ") && l.contains(&format!(" {mode} "))),
            1,
            "server: {:?}",
            srv.err.snapshot()
        );
    }
}

/// The value of a `--bytes` argument, as the client parses it.
fn smcd_bytes(s: &str) -> usize {
    let (digits, shift) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 10),
        Some('M') => (&s[..s.len() - 1], 20),
        Some('G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits
        .parse::<usize>()
        .expect("SMCD_TEST_BYTES: N, NK, NM or NG")
        << shift
}

#[test]
fn a_plain_tcp_client_gets_its_bytes_back_from_echo_server() {
    let (srv, addr) = server(&[], &[]);
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(RUN_LIMIT)).unwrap();
    c.set_write_timeout(Some(RUN_LIMIT)).unwrap();
    let out = data(4 << 20);
    let mut w = c.try_clone().unwrap();
    let sent = out.clone();
    let writer = thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == out, "bytes changed ({} back)", back.len());
    let line = srv
        .err
        .wait_for(Duration::from_secs(10), |l| l.contains(" transport "));
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains("transport tcp (the client did not announce itself")),
        "{line:?}"
    );
}

#[test]
fn echo_client_gets_plain_tcp_from_a_plain_tcp_echo_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let echo = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(RUN_LIMIT)).unwrap();
        let mut w = s.try_clone().unwrap();
        std::io::copy(&mut s, &mut w).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let run = client(&addr, &["--bytes", "4M"], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout.first().map(String::as_str),
        Some("transport: tcp (no smcd listener on this host for that address)"),
        "{run:?}"
    );
    assert!(run.has("verify: ok"), "{run:?}");
    echo.join().unwrap();
}

#[test]
fn echo_client_reports_a_decline_and_passes_over_tcp() {
    // No common UEID: SMC-D v2 cannot be negotiated, the server declines.
    let (srv, addr) = server(&[], &[("SMCD_UEID", "SMCD-TEST-SERVER")]);
    let run = client(
        &addr,
        &["--bytes", "4M"],
        &[("SMCD_UEID", "SMCD-TEST-CLIENT")],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout.first().map(String::as_str),
        Some(
            "transport: tcp (reason 0x03030001: NOSMCDDEV, no SMC-D device (declined by the peer))"
        ),
        "{run:?}"
    );
    assert!(run.has("verify: ok"), "{run:?}");
    let line = srv
        .err
        .wait_for(Duration::from_secs(10), |l| l.contains(" transport "));
    assert!(
        line.as_deref().is_some_and(|l| l.ends_with(
            "transport tcp (reason 0x03030001: NOSMCDDEV, no SMC-D device (declined by us))"
        )),
        "{line:?}"
    );
}

#[test]
fn a_python_socket_gets_its_bytes_back_from_echo_server() {
    let python = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !python.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no python3");
        return;
    }
    let (srv, addr) = server(&[], &[]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = r#"
import socket, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
data = bytes((i * 7 + i // 251) % 256 for i in range(1 << 20))
s = socket.create_connection((host, port), timeout=60)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
t.join()
sys.exit(0 if bytes(got) == data else 1)
"#;
    let mut py = Command::new("python3")
        .args(["-c", script, host, port])
        .spawn()
        .unwrap();
    let end = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(s) = py.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= end {
            let _ = py.kill();
            let _ = py.wait();
            panic!("python3 client did not finish");
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "python3 client: bytes changed");
    assert!(
        srv.err
            .wait_for(Duration::from_secs(10), |l| l
                .contains("closed: 1048576 bytes"))
            .is_some(),
        "{:?}",
        srv.err.snapshot()
    );
}

#[test]
fn a_hundred_streams_at_once_all_speak_smc_d() {
    let per_stream = if cfg!(debug_assertions) {
        "256K"
    } else {
        "16M"
    };
    let (srv, addr) = server(&[], &[]);
    let run = client(&addr, &["--streams", "100", "--bytes", per_stream], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.has("streams: 100 (100 smc-d, 0 other)"), "{run:?}");
    assert_eq!(
        run.stdout
            .iter()
            .filter(|l| l.contains("transport: smc-d v2 "))
            .count(),
        100,
        "{run:?}"
    );
    assert!(run.has("verify: ok"), "{run:?}");
    println!(
        "{}",
        run.stdout
            .iter()
            .find(|l| l.starts_with("echoed:"))
            .unwrap()
    );
    let end = Instant::now() + Duration::from_secs(20);
    while srv.err.count(|l| l.contains(" closed: ")) < 100 && Instant::now() < end {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        srv.err.count(|l| l.contains(" transport smc-d v2 ")),
        100,
        "{:?}",
        srv.err.snapshot()
    );
    assert_eq!(srv.err.count(|l| l.contains(" closed: ")), 100);
}

/// Start a client that sends far more than the test lasts and wait until
/// its data moves.
fn endless_client(addr: &str, mode: &str) -> Proc {
    let c = Proc::spawn(&["echo-client", addr, "--bytes", "1T", mode], &[]);
    let first = c
        .out
        .wait_for(START_LIMIT, |l| l.starts_with("transport: "));
    assert!(
        first
            .as_deref()
            .is_some_and(|l| l.starts_with("transport: smc-d v2 ")),
        "{first:?} {:?}",
        c.err.snapshot()
    );
    // Mid-transfer: the handshake is done and the streams run.
    thread::sleep(Duration::from_millis(300));
    c
}

#[test]
fn killing_the_server_mid_transfer_fails_the_client_quickly_and_leaves_nothing() {
    for mode in ["--copy", "--nocopy"] {
        server_killed(mode);
    }
}

fn server_killed(mode: &str) {
    let shm_before = shm_count();
    let (mut srv, addr) = server(&[mode], &[]);
    let mut c = endless_client(&addr, mode);
    srv.kill();
    let killed = Instant::now();
    let status = c.wait(Duration::from_secs(10));
    let took = killed.elapsed();
    println!("{mode}: server SIGKILL -> client exit: {took:?}");
    let status = status.unwrap_or_else(|| {
        panic!(
            "client still running 10 s after the server died: {:?}",
            c.err.snapshot()
        )
    });
    let err = c.err.finish();
    assert_eq!(status.code(), Some(2), "{err:?}");
    assert!(
        err.iter().any(|l| l.starts_with("error: stream 0: ")),
        "{err:?}"
    );
    println!("client: {err:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(shm_count(), shm_before, "/dev/shm entries changed");
}

#[test]
fn killing_a_client_mid_transfer_leaves_the_server_serving_without_leaks() {
    for mode in ["--copy", "--nocopy"] {
        client_killed(mode);
    }
}

fn client_killed(mode: &str) {
    let (srv, addr) = server(&[mode], &[]);
    let pid = srv.pid();
    let baseline = fd_count(pid);
    let mut c = endless_client(&addr, mode);
    let during = fd_count(pid);
    c.kill();
    let killed = Instant::now();
    let limit = Duration::from_secs(3);
    while fd_count(pid) != baseline && killed.elapsed() < limit {
        thread::sleep(Duration::from_millis(10));
    }
    let took = killed.elapsed();
    println!("{mode}: server fds: {baseline} before, {during} during, back after {took:?}");
    assert_eq!(
        fd_count(pid),
        baseline,
        "server fds did not return to {baseline} within {limit:?}; server: {:?}",
        srv.err.snapshot()
    );
    assert!(during > baseline, "the transfer held no descriptor?");
    assert!(
        srv.err
            .wait_for(Duration::from_secs(5), |l| l.contains(" error after "))
            .is_some(),
        "{:?}",
        srv.err.snapshot()
    );
    // A new client is served, and leaves nothing behind either.
    let run = client(&addr, &["--bytes", "1M", mode], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.has("transport: smc-d v2 "), "{run:?}");
    let end = Instant::now() + limit;
    while fd_count(pid) != baseline && Instant::now() < end {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fd_count(pid), baseline);
}

#[test]
fn chk_tells_smc_d_from_tcp_with_its_exit_status() {
    let (_srv, addr) = server(&[], &[]);
    let run = finish(Proc::spawn(&["chk", &addr], &[]));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.has("transport: smc-d v2 "), "{run:?}");
    let run = finish(Proc::spawn(&["chk", &addr], &[("SMCD_DISABLE", "1")]));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stdout,
        ["transport: tcp (SMC-D disabled for this destination)"]
    );
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_addr = plain.local_addr().unwrap().to_string();
    let run = finish(Proc::spawn(&["chk", &plain_addr], &[]));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stdout,
        ["transport: tcp (no smcd listener on this host for that address)"]
    );
    drop(plain);
    // Nothing listens there any more: an error.
    let run = finish(Proc::spawn(&["chk", &plain_addr], &[]));
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr[0].starts_with("error: "), "{run:?}");
}

#[test]
fn help_says_what_each_command_does_and_its_exit_status() {
    for (cmd, words) in [
        ("echo-server", "runs until killed"),
        ("echo-client", "1 when the"),
        ("chk", "1 when plain TCP is used"),
    ] {
        let run = finish(Proc::spawn(&[cmd, "--help"], &[]));
        assert_eq!(run.code, Some(0));
        let text = run.stdout.join("\n");
        assert!(text.contains("Exit status"), "{cmd}: {text}");
        assert!(text.contains(words), "{cmd}: {text}");
    }
    let run = finish(Proc::spawn(
        &["echo-client", "127.0.0.1:1", "--dmb-size", "4K"],
        &[],
    ));
    assert_eq!(run.code, Some(2), "{run:?}");
}
