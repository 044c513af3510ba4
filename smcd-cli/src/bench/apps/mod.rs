//! `smcd bench --apps`: the seed's table with the seed's tools — sockperf
//! (ping-pong 14 B, throughput 64000 B), iperf3, nginx + wrk, and
//! redis-server + redis-benchmark — each over plain TCP and with both sides
//! under `smcd run --stats`, one after the other in one invocation, with
//! the ratio next to the seed's (Linux SMC-D loopback) and the CPU time of
//! both processes per request or byte.

mod proc;
mod tools;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use smcd_std::naming::Place;
use smcd_std::query::{Query, survey};

use super::host::Host;
use super::{Error, TempDir, child};
use crate::args::BenchArgs;
use proc::Proc;
use tools::{Bench, Figure, ROWS, RowInfo};

/// Whole seconds each client measures by default …
const DEFAULT_SECS: u64 = 3;
/// … and with `--quick`.
const QUICK_SECS: u64 = 1;
/// redis-benchmark requests per test (SET, GET) by default and with
/// `--quick`: a few seconds each at the rates of a small machine.
const REDIS_REQUESTS: u64 = 100_000;
const QUICK_REDIS_REQUESTS: u64 = 20_000;
/// How much longer than its measurement a client may take.
const CLIENT_SLACK: Duration = Duration::from_secs(30);
/// How long a stopped server (and `smcd run`, which waits up to 10 s for
/// the processes of its run) may take to exit.
const SERVER_STOP: Duration = Duration::from_secs(12);

/// Which way one side of a row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Tcp,
    Smcd,
}

/// What one bench gave over one side.
#[derive(Debug, Default)]
struct SideResult {
    figures: Vec<Figure>,
    /// CPU seconds of both processes (and their children).
    cpu_s: Option<f64>,
    /// `smcd run --stats` of the server and the client.
    stats: Option<(Value, Value)>,
    error: Option<String>,
}

#[derive(Debug)]
struct Settings {
    smcd: OsString,
    secs: u64,
    requests: u64,
    dmb_size: usize,
}

/// `smcd bench --apps`.
pub(crate) fn run(args: &BenchArgs) -> Result<(), Error> {
    crate::run::find_lib().map_err(Error::BadArgs)?;
    proc::ensure_programs()?;
    let secs = args.duration.map_or(
        if args.quick { QUICK_SECS } else { DEFAULT_SECS },
        // Whole seconds: sockperf and iperf3 take no fractions.
        |d| d.ceil().max(1.0) as u64,
    );
    let settings = Settings {
        smcd: std::env::current_exe()
            .map_err(|e| Error::Io("cannot find this executable".into(), e))?
            .into_os_string(),
        secs,
        requests: if args.quick {
            QUICK_REDIS_REQUESTS
        } else {
            REDIS_REQUESTS
        },
        dmb_size: args.dmb_size,
    };
    let host = Host::probe(args.wait, args.dmb_size, false, secs as f64, 0.0);
    let tmp = TempDir::new()?;
    // nginx's workers (nobody) must reach the page in it.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::Io(format!("chmod {}", tmp.0.display()), e))?;
    }
    let mut results: Vec<(Bench, SideResult, SideResult)> = Vec::new();
    for (i, bench) in tools::ALL.into_iter().enumerate() {
        let [tcp, smcd] = [Side::Tcp, Side::Smcd].map(|side| {
            let dir = tmp.sub(i * 2 + usize::from(side == Side::Smcd));
            match dir.and_then(|d| one_side(&settings, bench, side, &d)) {
                Ok(r) => r,
                Err(e) => SideResult {
                    error: Some(e.to_string()),
                    ..SideResult::default()
                },
            }
        });
        results.push((bench, tcp, smcd));
    }
    drop(tmp);
    let rows: Vec<Value> = ROWS.iter().map(|info| row_json(info, &results)).collect();
    let failed = rows.iter().any(|r| !r["errors"].is_null());
    let text = if args.json {
        json!({"host": host_json(&host, &settings), "results": rows}).to_string() + "\n"
    } else {
        table(&host, &settings, &rows)
    };
    match io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(Error::Io("stdout".into(), e));
        }
        _ => {}
    }
    if failed {
        return Err(Error::Output("a tool failed (see errors above)".into()));
    }
    Ok(())
}

/// The command line of a program on `side`: as it is, or under
/// `smcd run --stats FILE`.
fn command(s: &Settings, side: Side, stats: &Path, prog: Vec<String>) -> Vec<OsString> {
    let mut argv: Vec<OsString> = Vec::new();
    if side == Side::Smcd {
        argv.push(s.smcd.clone());
        argv.extend(["run", "--dmb-size"].map(OsString::from));
        argv.push(s.dmb_size.to_string().into());
        argv.push("--stats".into());
        argv.push(stats.as_os_str().to_owned());
        argv.push("--".into());
    }
    let mut prog = prog.into_iter();
    if let Some(p) = prog.next() {
        argv.push(proc::find(&p).map_or(p.into(), PathBuf::into_os_string));
    }
    argv.extend(prog.map(OsString::from));
    argv
}

/// Run `bench` over `side` in `dir`: the server, then the client; both
/// reaped, and the CPU time of both from the reaped children's times.
fn one_side(s: &Settings, bench: Bench, side: Side, dir: &Path) -> Result<SideResult, Error> {
    let port = proc::free_port()?;
    tools::prepare(bench, dir, port)
        .map_err(|e| Error::Io(format!("cannot prepare {}", dir.display()), e))?;
    let sstats = dir.join("server-stats.json");
    let cstats = dir.join("client-stats.json");
    // nginx's workers run as nobody: they and their clients may exchange
    // DMBs across users. Everything else is the default.
    let env = [("SMCD_PEERS", "any")];
    let wrapped = side == Side::Smcd;
    let name = |role: &str| format!("{role} of {bench:?} over {side:?}");
    let cpu_before = child::reaped_cpu_ticks();
    let mut server = Proc::spawn(
        name("server"),
        &command(s, side, &sstats, tools::server(bench, dir, port)),
        wrapped,
        dir,
        &env,
    )?;
    proc::wait_listening(port, &mut server)?;
    let mut client = Proc::spawn(
        name("client"),
        &command(
            s,
            side,
            &cstats,
            tools::client(bench, port, s.secs, s.requests),
        ),
        wrapped,
        dir,
        &env,
    )?;
    let limit = Duration::from_secs(s.secs) + CLIENT_SLACK;
    let exited = client.wait_exit(limit);
    // A client that hangs under smcd run: what smcd ss sees, for the error.
    let seen = (!exited && side == Side::Smcd).then(in_flight);
    let out = client.finish(Duration::ZERO);
    server.stop(tools::stop_signal(bench), SERVER_STOP);
    drop(client);
    drop(server);
    let out = out.map_err(|e| match e {
        Error::Peer { name, stderr, .. } if !exited => Error::Peer {
            name,
            what: format!(
                "did not finish within {} s, killed{}",
                limit.as_secs(),
                seen.map_or_else(String::new, |s| format!(" (smcd ss at the time: {s})"))
            ),
            stderr,
        },
        e => e,
    })?;
    let cpu_s = cpu_before
        .zip(child::reaped_cpu_ticks())
        .map(|(a, b)| b.saturating_sub(a) as f64 / child::TICKS_PER_SEC);
    let figures = tools::parse(bench, &out, s.secs, s.requests)?;
    let stats = match side {
        Side::Tcp => None,
        Side::Smcd => Some((read_stats(&sstats), read_stats(&cstats))),
    };
    Ok(SideResult {
        figures,
        cpu_s,
        stats,
        error: None,
    })
}

/// What `smcd ss` sees now, in short: the connections by command, state
/// and transport, and those whose two ends disagree on the bytes that
/// moved (sent by one, not yet read by the other).
fn in_flight() -> String {
    let found = survey(&Place::from_env(), Query::Connections);
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut ends = Vec::new();
    for p in &found.processes {
        for c in &p.connections {
            *kinds
                .entry(format!("{} {} {}", p.command, c.state, c.transport))
                .or_default() += 1;
            ends.push((p.command.as_str(), c));
        }
    }
    let mut odd = Vec::new();
    for (cmd, c) in &ends {
        let other = ends
            .iter()
            .find(|(_, o)| o.local == c.peer && o.peer == c.local && c.local.is_some());
        if let Some((ocmd, o)) = other {
            if c.bytes_sent != o.bytes_received && c.bytes_sent.is_some() {
                odd.push(format!(
                    "{cmd} {} sent {} B, {ocmd} read {} B",
                    c.local.map_or_else(String::new, |a| a.to_string()),
                    c.bytes_sent.unwrap_or(0),
                    o.bytes_received.unwrap_or(0)
                ));
            }
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        "{}; unread: {}",
        kinds.join(", "),
        if odd.is_empty() {
            "none".to_owned()
        } else {
            odd.join("; ")
        }
    )
}

fn read_stats(path: &Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// SMC-D and TCP connections and fallbacks of one `--stats` object.
fn counts(v: &Value) -> (u64, u64, u64) {
    let c = &v["connections"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let fallbacks = v["fallbacks"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    (n("smc-d-copy") + n("smc-d-nocopy"), n("tcp"), fallbacks)
}

/// One row of the report (JSON; the table is printed from it).
fn row_json(info: &RowInfo, results: &[(Bench, SideResult, SideResult)]) -> Value {
    let find = |r: &SideResult| r.figures.iter().find(|f| f.row == info.row).cloned();
    let Some((_, tcp, smcd)) = results.iter().find(|(b, _, _)| *b == info.bench) else {
        return Value::Null;
    };
    let (t, m) = (find(tcp), find(smcd));
    let ratio = t
        .as_ref()
        .zip(m.as_ref())
        .filter(|(t, _)| t.value > 0.0)
        .map(|(t, m)| m.value / t.value);
    let cpu = |r: &SideResult, f: &Option<Figure>| {
        let ops_total: f64 = r.figures.iter().map(|f| f.ops).sum();
        // The CPU time of a run is shared by its rows (redis: SET and GET).
        let per = r
            .cpu_s
            .filter(|_| ops_total > 0.0 && f.is_some())
            .map(|c| c / ops_total * info.cpu_scale);
        json!({"cpu_s": r.cpu_s, "per_op": per})
    };
    let all_smcd = smcd.stats.as_ref().map(|(sv, cv)| {
        let (ss, st, sf) = counts(sv);
        let (cs, ct, cf) = counts(cv);
        ss > 0 && cs > 0 && st + ct + sf + cf == 0
    });
    let errors: Vec<String> = [("tcp", &tcp.error), ("smcd run", &smcd.error)]
        .iter()
        .filter_map(|(side, e)| e.as_ref().map(|e| format!("{side}: {e}")))
        .collect();
    json!({
        "tool": info.row,
        "label": info.label,
        "unit": info.unit,
        "tcp": t.map(|f| f.value),
        "smcd": m.map(|f| f.value),
        "ratio": ratio,
        "seed_ratio": info.seed.map(|(smc, tcp)| smc / tcp),
        "goal": info.goal,
        "lower_is_better": info.lower_is_better,
        "cpu_unit": info.cpu_unit,
        "cpu": {"tcp": cpu(tcp, &find(tcp)), "smcd": cpu(smcd, &find(smcd))},
        "all_smcd": all_smcd,
        "smcd_stats": smcd.stats.as_ref().map(|(s, c)| json!({"server": s, "client": c})),
        "errors": if errors.is_empty() { Value::Null } else { json!(errors) },
    })
}

fn host_json(host: &Host, s: &Settings) -> Value {
    json!({
        "cpu": host.cpu, "cores": host.cores, "kernel": host.kernel, "load": host.load,
        "build": host.build, "dmb_size": s.dmb_size, "duration_s": s.secs,
        "redis_requests": s.requests,
        "date": date(),
    })
}

/// `date -u` of now, or empty.
fn date() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A figure with three significant digits (at least the integer part).
fn fmt3(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn table(host: &Host, s: &Settings, rows: &[Value]) -> String {
    let mut out = format!(
        "host: {}, {} online cores, {}, load {}, {} build, {}\n\
         tcp: the programs as they are; smcd run: server and client each under \
         smcd run --dmb-size {} --stats; {} s per tool, redis {} requests per test\n\n",
        host.cpu,
        host.cores,
        host.kernel,
        host.load,
        host.build,
        date(),
        s.dmb_size,
        s.secs,
        s.requests
    );
    let mut cells = vec![
        [
            "tool",
            "unit",
            "tcp",
            "smcd run",
            "×tcp",
            "seed ×tcp",
            "goal",
            "cpu tcp",
            "cpu smcd",
            "cpu unit",
            "all smc-d",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut notes = Vec::new();
    for r in rows {
        let f = |k: &str| r[k].as_f64();
        let goal = match r["lower_is_better"].as_bool() {
            Some(true) => format!("≤{}", fmt3(f("goal"))),
            _ => format!("≥{}", fmt3(f("goal"))),
        };
        let all = match r["all_smcd"].as_bool() {
            Some(true) => "yes".to_owned(),
            Some(false) => {
                notes.push(format!(
                    "{}: smcd run --stats: {}",
                    r["tool"].as_str().unwrap_or(""),
                    r["smcd_stats"]
                ));
                "NO".to_owned()
            }
            None => "-".to_owned(),
        };
        if let Some(errs) = r["errors"].as_array() {
            for e in errs {
                notes.push(format!(
                    "{}: {}",
                    r["tool"].as_str().unwrap_or(""),
                    e.as_str().unwrap_or("")
                ));
            }
        }
        cells.push(vec![
            r["label"].as_str().unwrap_or("").to_owned(),
            r["unit"].as_str().unwrap_or("").to_owned(),
            fmt3(f("tcp")),
            fmt3(f("smcd")),
            fmt3(f("ratio")),
            fmt3(f("seed_ratio")),
            goal,
            fmt3(r["cpu"]["tcp"]["per_op"].as_f64()),
            fmt3(r["cpu"]["smcd"]["per_op"].as_f64()),
            r["cpu_unit"].as_str().unwrap_or("").to_owned(),
            all,
        ]);
    }
    let widths: Vec<usize> = (0..cells[0].len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i].saturating_sub(c.chars().count());
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(
        "\n×tcp: smcd run / tcp in this run (latency: below 1 is better); seed ×tcp: Linux SMC-D \
         loopback / TCP from the seed (no redis figure: the goal is 1.3).\n\
         cpu: user+system CPU of server and client (all their processes) over their whole \
         run, per round trip, GB or request; all smc-d: every connection of both sides was \
         SMC-D (no TCP, no fallback) by their --stats.\n",
    );
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}
