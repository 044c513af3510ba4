//! `smcd bench` as a real process: every workload over every transport
//! gives a figure, `--only` and `--transports` select rows, bad arguments
//! exit 2. No test asserts a speed: the figures only have to exist.
//!
//! The raw ring has rows for msg-rate, latency and throughput only (it has
//! no connections to open); a run the bench cannot do is listed under
//! `"skipped"`, which must stay empty here.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_smcd");
/// Longest one `smcd bench` of these tests may run.
const LIMIT: Duration = Duration::from_secs(120);

/// Run `smcd ARGS` (without the `SMCD_*` variables of the test's
/// environment) to its end, at most `LIMIT`: exit code, stdout, stderr.
fn smcd(args: &[&str]) -> (Option<i32>, String, String) {
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
    let mut child = cmd.spawn().expect("start smcd");
    let pipe = |mut p: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = p.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("stdout")));
    let err = pipe(Box::new(child.stderr.take().expect("stderr")));
    let end = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("smcd {args:?} ran longer than {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().expect("stdout"), err.join().expect("stderr"));
    (status.code(), out, err)
}

/// The JSON report of a successful `smcd ARGS`.
fn report(args: &[&str]) -> Value {
    let (code, out, err) = smcd(args);
    assert_eq!(code, Some(0), "smcd {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn rows(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results")
}

fn find<'a>(report: &'a Value, key: &str, workload: &str, transport: &str) -> Option<&'a Value> {
    report[key]
        .as_array()
        .expect(key)
        .iter()
        .find(|r| r["workload"] == workload && r["transport"] == transport)
}

#[test]
fn quick_json_has_every_workload_over_every_transport() {
    let r = report(&["bench", "--quick", "--json"]);
    for key in [
        "cpu",
        "cores",
        "kernel",
        "wait",
        "dmb_size",
        "pin",
        "duration_s",
    ] {
        assert!(
            r["host"].get(key).is_some(),
            "host.{key} missing: {}",
            r["host"]
        );
    }
    let skipped = r["skipped"].as_array().expect("skipped");
    assert!(skipped.is_empty(), "no run may be skipped: {skipped:?}");
    let workloads = ["msg-rate", "latency", "throughput", "connect", "fan-in"];
    let transports = ["tcp", "uds", "smc-d-copy", "smc-d-nocopy", "raw"];
    for w in workloads {
        for t in transports {
            let raw_runs = matches!(w, "msg-rate" | "latency" | "throughput");
            let Some(row) = find(&r, "results", w, t) else {
                assert!(t == "raw" && !raw_runs, "no row for {w} over {t}: {r}");
                continue;
            };
            assert!(t != "raw" || raw_runs, "raw has no {w} row to give");
            let value = row["value"].as_f64().expect("value");
            let ratio = row["ratio_to_tcp"].as_f64().expect("ratio_to_tcp");
            assert!(value > 0.0 && ratio > 0.0, "{row}");
            assert!(row["unit"].is_string(), "{row}");
            if w == "latency" {
                let p99 = row["p99"].as_f64().expect("p99");
                assert!(p99 >= value, "{row}");
            }
        }
    }
}

#[test]
fn only_and_transports_select_rows_and_plot_writes_svg() {
    let svg = std::env::temp_dir().join(format!("smcd-bench-test-{}.svg", std::process::id()));
    let svg_arg = svg.display().to_string();
    let r = report(&[
        "bench",
        "--only",
        "latency",
        "--transports",
        "tcp,uds",
        "--duration",
        "0.1",
        "--json",
        "--plot",
        &svg_arg,
    ]);
    let mut got: Vec<(String, String)> = rows(&r)
        .iter()
        .map(|row| {
            (
                row["workload"].as_str().unwrap_or("?").to_owned(),
                row["transport"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    got.sort();
    let want = [("latency", "tcp"), ("latency", "uds")].map(|(w, t)| (w.to_owned(), t.to_owned()));
    assert_eq!(got, want);
    let picture = std::fs::read_to_string(&svg).unwrap_or_default();
    let _ = std::fs::remove_file(&svg);
    assert!(picture.contains("<svg"), "no SVG written: {picture:.200}");
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let (code, out, err) = smcd(&["bench", "--transports", "foo"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("foo"), "{err}");
    let (code, _, err) = smcd(&["bench", "--transports", "raw", "--only", "connect"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nothing to run"), "{err}");
}

#[test]
fn help_explains_the_workloads_and_hides_the_peer() {
    let (code, out, _) = smcd(&["bench", "--help"]);
    assert_eq!(code, Some(0));
    for word in [
        "msg-rate",
        "latency",
        "throughput",
        "connect",
        "fan-in",
        "smc-d-nocopy",
        "raw",
        "--wait",
    ] {
        assert!(out.contains(word), "{word} missing from --help");
    }
    let (_, top, _) = smcd(&["--help"]);
    assert!(
        top.contains("bench") && !top.contains("bench-peer"),
        "{top}"
    );
}
