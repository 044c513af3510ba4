//! `smcd ss` and `smcd stats` against real processes: an `smcd echo-server`
//! and an `smcd echo-client` streaming to it are both listed over SMC-D.
//! Binds 127.0.0.1 only; every wait is bounded; children are killed and
//! reaped by their guard.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_smcd");

/// Kills and reaps its child when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    spawn_in(args, None)
}

/// Start `smcd ARGS`, with `SMCD_RENDEZVOUS_DIR=dir` if given.
fn spawn_in(args: &[&str], dir: Option<&std::path::Path>) -> Proc {
    let mut cmd = Command::new(BIN);
    if let Some(d) = dir {
        cmd.env("SMCD_RENDEZVOUS_DIR", d);
    }
    Proc(
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smcd"),
    )
}

fn json_of(args: &[&str]) -> Value {
    json_in(args, None)
}

fn json_in(args: &[&str], dir: Option<&std::path::Path>) -> Value {
    let mut cmd = Command::new(BIN);
    if let Some(d) = dir {
        cmd.env("SMCD_RENDEZVOUS_DIR", d);
    }
    let out = cmd.args(args).output().expect("run smcd");
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// The connections of `pid` in an `smcd ss --json` document.
fn of_pid(doc: &Value, pid: u32) -> Vec<Value> {
    doc["connections"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["pid"].as_u64() == Some(u64::from(pid)))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ss_lists_both_ends_of_a_running_echo_over_smc_d() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = spawn(&["echo-server", "--listen", &addr]);
    // Wait for the listener, then stream far more than the test lasts.
    let end = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < end, "echo-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = spawn(&["echo-client", &addr, "--bytes", "1T", "--copy"]);
    let (spid, cpid) = (server.0.id(), client.0.id());
    let end = Instant::now() + Duration::from_secs(20);
    let (s, c) = loop {
        let doc = json_of(&["ss", "--json"]);
        let (s, c) = (of_pid(&doc, spid), of_pid(&doc, cpid));
        let moving = |v: &[Value]| {
            v.iter()
                .any(|c| c["bytes_received"].as_u64().unwrap_or(0) > 0)
        };
        if moving(&s) && moving(&c) {
            break (s, c);
        }
        assert!(Instant::now() < end, "not listed: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let client_conn = c
        .iter()
        .find(|x| x["peer"] == addr.as_str())
        .expect("client's connection to the server");
    assert_eq!(client_conn["transport"], "smc-d-copy");
    assert_eq!(client_conn["state"], "active");
    assert_eq!(client_conn["command"], "smcd");
    let local = client_conn["local"].clone();
    let server_conn = s
        .iter()
        .find(|x| x["peer"] == local)
        .expect("server's end of the client's connection");
    // Each end sends in its own mode: the server's default is nocopy.
    assert_eq!(server_conn["transport"], "smc-d-nocopy");
    for key in [
        "pid",
        "local",
        "peer",
        "transport",
        "state",
        "bytes_sent",
        "bytes_received",
    ] {
        assert!(client_conn.get(key).is_some(), "{key} missing");
    }
    let text = client_conn.to_string();
    assert!(!text.contains("token") && !text.contains("gid"), "{text}");

    let totals = json_of(&["stats", "--json"]);
    for kind in ["smc-d-copy", "smc-d-nocopy"] {
        let n = |key: &str| totals[key][kind].as_u64().unwrap_or(0);
        assert!(
            n("live_connections") >= 1 && n("connections") >= 1,
            "{totals}"
        );
    }
    assert!(totals["processes"].as_u64().unwrap_or(0) >= 2);
    for key in [
        "fallbacks",
        "bytes_sent",
        "bytes_received",
        "dmbs_in_use",
        "handshakes",
    ] {
        assert!(totals.get(key).is_some(), "{key} missing in {totals}");
    }
    // The table names the columns and both connections.
    let out = Command::new(BIN).arg("ss").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("PID"), "{table}");
    assert!(table.contains(&addr), "{table}");
    drop(client);
    drop(server);
    // The processes are gone: nothing of theirs is left, nothing fails.
    let doc = json_of(&["ss", "--json", "--all"]);
    assert!(of_pid(&doc, spid).is_empty() && of_pid(&doc, cpid).is_empty());
}

#[test]
fn help_explains_the_columns() {
    let out = Command::new(BIN).args(["ss", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["TRANSPORT", "STATE", "SENT", "REASON", "--all", "--json"] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let out = Command::new(BIN)
        .args(["stats", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("dmbs_in_use") && help.contains("fallbacks"),
        "{help}"
    );
}

#[test]
fn ss_in_a_rendezvous_dir_survives_a_killed_process() {
    let dir = std::env::temp_dir().join(format!("smcd-ss-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = spawn_in(&["echo-server", "--listen", &addr], Some(&dir));
    let end = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < end, "echo-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = spawn_in(&["echo-client", &addr, "--bytes", "1T"], Some(&dir));
    let cpid = client.0.id();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let doc = json_in(&["ss", "--json"], Some(&dir));
        if of_pid(&doc, cpid)
            .iter()
            .any(|c| c["transport"] == "smc-d-nocopy")
        {
            break;
        }
        assert!(Instant::now() < end, "not listed: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL leaves the server's device socket file behind.
    let _ = server.0.kill();
    let _ = server.0.wait();
    drop(client);
    let stale = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("dev-"));
    assert!(stale, "the killed server left its device socket");
    let doc = json_in(&["ss", "--json", "--all"], Some(&dir));
    assert_eq!(
        doc["connections"].as_array().map(Vec::len),
        Some(0),
        "{doc}"
    );
    assert!(doc["skipped"].as_u64().unwrap_or(0) >= 1, "{doc}");
    let _ = std::fs::remove_dir_all(&dir);
}
