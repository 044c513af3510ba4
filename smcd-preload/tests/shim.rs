//! The shim under real processes: `smcd-shim-probe` (a plain `std::net`
//! program) with `libsmcd_preload.so` preloaded on both sides exchanges a
//! few MB, checksummed both ways, over SMC-D — blocking, with poll(2),
//! select(2) and epoll (level- and edge-triggered); with the shim on one side only it is plain TCP and just
//! as correct. `smcd run` is tried too, with the smcd binary of the same
//! build (made first if need be).
//!
//! Everything binds 127.0.0.1; every process is killed and reaped by its
//! guard; every wait is bounded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROBE: &str = env!("CARGO_BIN_EXE_smcd-shim-probe");
const LIMIT: Duration = Duration::from_secs(60);
const BYTES: &str = "3000000";

fn target_dir() -> PathBuf {
    Path::new(PROBE).parent().unwrap().to_path_buf()
}

/// The shim this test run built (cargo leaves the fresh one in `deps/`;
/// the copy beside it is only refreshed by `cargo build`).
fn lib() -> PathBuf {
    let fresh = target_dir().join("deps").join("libsmcd_preload.so");
    let p = if fresh.is_file() {
        fresh
    } else {
        target_dir().join("libsmcd_preload.so")
    };
    assert!(p.is_file(), "{} not built", p.display());
    p
}

/// A child that is killed and reaped whatever happens.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Wait for the exit (bounded); whether it succeeded, with its stderr.
    fn finish(mut self) -> (bool, String) {
        let end = Instant::now() + LIMIT;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return (st.success(), err);
            }
            if Instant::now() >= end {
                return (false, "timed out".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn probe(shim: bool, stats: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(PROBE);
    c.args(args)
        .env_remove("LD_PRELOAD")
        .env("SMCD_STATS_DIR", stats)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if shim {
        c.env("LD_PRELOAD", lib());
    }
    c
}

/// Start a server; its port.
fn start_server(mut cmd: Command) -> (Proc, u16) {
    let mut child = Proc(cmd.spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // The rest of its output ("ok") goes nowhere, but its pipe stays open.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let port = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port from the server: {line:?}"));
    (child, port)
}

/// The counters every process of a run wrote, summed per connection kind.
fn connections(dir: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut sum = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        for (k, n) in v["connections"].as_object().unwrap() {
            *sum.entry(k.clone()).or_insert(0) += n.as_u64().unwrap();
        }
        // DMBs still registered at exit (a connection that was not closed).
        let left = v["dmbs_in_use"].as_u64().unwrap();
        if left > 0 {
            *sum.entry("dmbs_in_use".into()).or_insert(0) += left;
        }
    }
    sum
}

fn stats_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smcd-shim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn exchange(
    name: &str,
    mode: &str,
    server_shim: bool,
    client_shim: bool,
) -> std::collections::BTreeMap<String, u64> {
    exchange_with(name, mode, server_shim, client_shim, &[])
}

fn exchange_with(
    name: &str,
    mode: &str,
    server_shim: bool,
    client_shim: bool,
    server_extra: &[&str],
) -> std::collections::BTreeMap<String, u64> {
    let dir = stats_dir(name);
    let mut args = vec!["server", mode, BYTES];
    args.extend_from_slice(server_extra);
    run_pair(&dir, probe(server_shim, &dir, &args), |port| {
        probe(client_shim, &dir, &["client", mode, port, BYTES])
    })
}

/// Run `server`, then the client `client(port)` makes, to the end (both
/// must succeed); the connections their stats in `dir` count.
fn run_pair(
    dir: &Path,
    server: Command,
    client: impl FnOnce(&str) -> Command,
) -> std::collections::BTreeMap<String, u64> {
    let (server, port) = start_server(server);
    let client = Proc(client(&port.to_string()).spawn().unwrap());
    let (ok, err) = client.finish();
    assert!(ok, "client failed: {err}");
    let (ok, err) = server.finish();
    assert!(ok, "server failed: {err}");
    let c = connections(dir);
    let _ = std::fs::remove_dir_all(dir);
    c
}

#[test]
fn blocking_programs_use_smcd() {
    let c = exchange("block", "block", true, true);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
    assert_eq!(c.get("tcp"), None, "{c:?}");
}

#[test]
fn poll_programs_use_smcd() {
    let c = exchange("poll", "poll", true, true);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

/// Level-triggered epoll, switched between IN and OUT with MOD (as redis
/// does), with a non-blocking connect.
#[test]
fn epoll_level_triggered_programs_use_smcd() {
    let c = exchange("epoll", "epoll", true, true);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

/// Level-triggered epoll with DEL and ADD (new data each time) around
/// every wait, as redis-benchmark does: the shim keeps the kernel
/// registration across them, and DEL, MOD and ADD still answer ENOENT and
/// EEXIST where the kernel would.
#[test]
fn epoll_programs_that_delete_and_add_use_smcd() {
    let c = exchange("epoll-churn", "epoll-churn", true, true);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

/// One edge-triggered IN|OUT|RDHUP registration per connection (as nginx
/// does), with a non-blocking connect.
#[test]
fn epoll_edge_triggered_programs_use_smcd() {
    let c = exchange("epoll-et", "epoll-et", true, true);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

#[test]
fn select_programs_use_smcd() {
    let c = exchange("select", "select", true, true);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

/// MSG_PEEK, FIONREAD, O_NONBLOCK views, dup/dup2/close and reused fd
/// numbers, readv/writev, recvmsg, MSG_WAITALL, sendfile, shutdown and
/// EPIPE on an SMC-D connection (the probe checks each against TCP's
/// behaviour; it passes over plain TCP too).
#[test]
fn the_calls_programs_make_behave_as_on_tcp() {
    for shim in [true, false] {
        let c = against_feat_server(if shim { "feat" } else { "feat-tcp" }, shim, "feat-client");
        if shim {
            assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
        }
    }
}

/// nginx's master blocks SIGCHLD and SIGQUIT and waits for them in
/// sigsuspend: a signal sent to the process must not be taken by one of
/// the shim's threads (the master then slept on after its workers had
/// gone, and `nginx -s quit` never finished).
#[test]
fn the_shims_threads_leave_signals_to_the_program() {
    let c = against_feat_server("signals", true, "signals");
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

/// `feat-server` and the probe client `client` (given the server's port),
/// both with or both without the shim; the connection counts of the run.
fn against_feat_server(
    name: &str,
    shim: bool,
    client: &str,
) -> std::collections::BTreeMap<String, u64> {
    let dir = stats_dir(name);
    run_pair(&dir, probe(shim, &dir, &["feat-server"]), |port| {
        probe(shim, &dir, &[client, port])
    })
}

/// TCP_CORK holds the doorbell ring, never the bytes: both parts arrive
/// after the uncork, a corked writer waiting for an answer still delivers
/// (the wait rule), and a close while corked delivers (probe `cork`).
#[test]
fn corked_writes_reach_a_sleeping_reader() {
    let dir = stats_dir("cork");
    let spin0 = |mut c: Command| {
        c.env("SMCD_SPIN_US", "0");
        c
    };
    let c = run_pair(&dir, spin0(probe(true, &dir, &["cork-server"])), |port| {
        spin0(probe(true, &dir, &["cork-client", port]))
    });
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

/// A fork-per-connection server: the child serves the accepted connection,
/// the parent closes its copy at once — which must not close it for the
/// peer (holder counts shared across fork).
#[test]
fn a_forked_child_serves_what_its_parent_closed() {
    for mode in ["block", "epoll-et"] {
        let c = exchange_with("fork", mode, true, true, &["fork"]);
        assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{mode}: {c:?}");
    }
}

/// A child that inherits a connection and exits (exit(3), the shim's exit
/// handler runs) leaves it open for the parent, which serves it.
#[test]
fn an_exiting_child_leaves_the_connection_to_its_parent() {
    let c = exchange_with("fork-exit", "poll", true, true, &["fork-exit"]);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
}

/// A child that inherits a connection and vanishes through _exit(2) (no
/// exit handler: redis's BGSAVE child) does not keep the parent's close
/// from reaching the peer (the client waits at most 2 s for a clean EOF
/// while the server lingers 3 s after its close).
#[test]
fn a_vanished_child_does_not_hold_the_connection_open() {
    let c = exchange_with("fork-_exit", "block", true, true, &["fork-_exit"]);
    assert_eq!(c.get("smc-d-nocopy"), Some(&2), "{c:?}");
    // Closed, not abandoned: its DMBs went back before the server exited.
    assert_eq!(c.get("dmbs_in_use"), None, "{c:?}");
}

#[test]
fn one_side_without_the_shim_is_plain_tcp() {
    let c = exchange("plain-client", "poll", true, false);
    assert_eq!(c.get("tcp"), Some(&1), "{c:?}");
    assert_eq!(c.get("smc-d-nocopy"), None, "{c:?}");
    let c = exchange("plain-server", "block", false, true);
    assert_eq!(c.get("tcp"), Some(&1), "{c:?}");
    assert_eq!(c.get("smc-d-nocopy"), None, "{c:?}");
}

#[test]
fn exports_are_the_hooks() {
    let Ok(out) = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib())
        .output()
    else {
        eprintln!("nm not installed: skipped");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for f in [
        "read",
        "write",
        "readv",
        "writev",
        "recv",
        "recvfrom",
        "recvmsg",
        "send",
        "sendto",
        "sendmsg",
        "connect",
        "listen",
        "accept",
        "accept4",
        "close",
        "dup",
        "dup2",
        "dup3",
        "fcntl",
        "fcntl64",
        "ioctl",
        "shutdown",
        "sendfile",
        "sendfile64",
        "poll",
        "ppoll",
        "__poll_chk",
        "select",
        "pselect",
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().last() == Some(f) && l.contains(" T ")),
            "{f} is not exported"
        );
    }
}

/// The `smcd` binary of this build: cargo cannot name another package's
/// binary to a test, so the workspace's tests are built once more into the
/// same target directory and profile — up to date in the workspace run
/// that got here (CI: about a second), made first when only this package
/// was built. (`cargo build -p smcd-cli` would resolve other dependency
/// features and compile a second smcd.)
fn smcd_binary() -> PathBuf {
    let profile_dir = target_dir();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.args(["test", "--no-run", "--quiet"]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cargo.arg("--release");
        }
        Some(other) => {
            cargo.args(["--profile", other]);
        }
        None => panic!("no profile directory above {PROBE}"),
    }
    let status = cargo
        .arg("--target-dir")
        .arg(profile_dir.parent().unwrap())
        .current_dir(workspace)
        .stdin(Stdio::null())
        .status()
        .expect("run cargo test --no-run");
    assert!(status.success(), "cargo test --no-run failed");
    let smcd = profile_dir.join("smcd");
    assert!(smcd.is_file(), "{} not built", smcd.display());
    smcd
}

/// `smcd run --stats` with the smcd binary of the same build.
#[test]
fn smcd_run_collects_stats() {
    let smcd = smcd_binary();
    let dir = stats_dir("run");
    let (s_json, c_json) = (dir.join("server.json"), dir.join("client.json"));
    let run = |json: &Path, extra: &[&str], args: &[&str]| {
        let mut c = Command::new(&smcd);
        c.arg("run")
            .args(extra)
            .arg("--stats")
            .arg(json)
            .arg("--")
            .arg(PROBE)
            .args(args);
        c.env_remove("LD_PRELOAD")
            .env_remove("SMCD_STATS_DIR")
            .env("SMCD_PRELOAD_LIB", lib())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let (server, port) = start_server(run(&s_json, &[], &["server", "block", BYTES]));
    let port = port.to_string();
    let client = Proc(
        run(&c_json, &["--copy"], &["client", "block", &port, BYTES])
            .spawn()
            .unwrap(),
    );
    let (ok, err) = client.finish();
    assert!(ok, "client failed: {err}");
    let (ok, err) = server.finish();
    assert!(ok, "server failed: {err}");
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (s, c) = (read(&s_json), read(&c_json));
    assert_eq!(s["connections"]["smc-d-nocopy"], 1, "{s}");
    assert_eq!(c["connections"]["smc-d-copy"], 1, "{c}");
    assert_eq!(c["bytes_sent"], 3_000_000, "{c}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where `name` is on PATH, if anywhere.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// curl fetches a file byte-exact from python3's http.server, both under
/// the shim, over SMC-D (when both programs are installed).
#[test]
fn curl_from_python_http_server() {
    let (Some(curl), Some(py)) = (which("curl"), which("python3")) else {
        eprintln!("curl or python3 not installed: skipped");
        return;
    };
    let dir = stats_dir("curl");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let body: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("blob.bin"), &body).unwrap();
    let stats = dir.join("stats");
    std::fs::create_dir_all(&stats).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&py);
    server
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&www)
        .env("LD_PRELOAD", lib())
        .env("SMCD_STATS_DIR", &stats)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = Proc(server.spawn().unwrap());
    let end = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "http.server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = dir.join("got.bin");
    let url = format!("http://127.0.0.1:{port}/blob.bin");
    let client = Proc(
        Command::new(&curl)
            .args(["-s", "-S", "--max-time", "30", "-o"])
            .arg(&out)
            .arg(&url)
            .env("LD_PRELOAD", lib())
            .env("SMCD_STATS_DIR", &stats)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (ok, err) = client.finish();
    assert!(ok, "curl failed: {err}");
    assert!(std::fs::read(&out).unwrap() == body, "curl got other bytes");
    drop(server);
    let c = connections(&stats);
    // The probe connection above was plain TCP (no shim in this process).
    assert!(c.get("smc-d-nocopy").copied().unwrap_or(0) >= 1, "{c:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
