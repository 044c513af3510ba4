//! `smcd bench`: msg-rate, latency, throughput, connect and fan-in over
//! TCP, Unix-domain sockets, SMC-D (copy and nocopy) and the raw
//! shared-memory ring, each endpoint in its own process.
//!
//! This process only plans, spawns, collects and prints: each run is a
//! server process and a client process of this executable
//! (`smcd bench-peer server|client …`, see [`peer`]), one run after the
//! other. The server prints its address, the client connects, measures
//! and prints one JSON line; both are reaped before the next run starts,
//! and every wait is bounded.

mod apps;
mod child;
mod histogram;
mod host;
mod kinds;
pub(crate) mod peer;
mod plot;
mod raw;
mod report;
mod transport;
mod workload;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) use kinds::{Transport, Wait, Workload};

use crate::args::BenchArgs;
use crate::report as say;
use child::Peer;
use host::Host;
use report::{Row, Skip};
use workload::Measured;

/// Seconds measured per run by default: the default plan (23 runs) takes
/// under a minute.
const DEFAULT_SECS: f64 = 2.0;
/// Seconds measured per run with `--quick`.
const QUICK_SECS: f64 = 0.3;
/// The warm-up is this fraction of the duration …
const WARMUP_SHARE: f64 = 0.1;
/// … and at most this long.
const WARMUP_MAX_SECS: f64 = 0.2;
/// How long a peer may be late (starting, printing, exiting) before it is
/// killed and the bench fails.
const HANG_LIMIT: Duration = Duration::from_secs(30);
/// How long a server may take to end once its client failed.
const SERVER_AFTER_CLIENT_FAILED: Duration = Duration::from_millis(500);
/// Message sizes of `--sweep`.
const SWEEP_SIZES: [usize; 8] = [
    64,
    256,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
];

/// Exit status for bad arguments.
const EXIT_BAD_ARGS: u8 = 2;
/// Exit status for a failed run.
const EXIT_FAILURE: u8 = 1;

/// Why the bench stopped.
#[derive(Debug)]
pub(crate) enum Error {
    /// The arguments ask for nothing that can run (exit status 2).
    BadArgs(String),
    /// A local operation failed: what, and the error.
    Io(String, io::Error),
    /// A peer process failed or hung: which, what happened, its stderr.
    Peer {
        name: String,
        what: String,
        stderr: String,
    },
    /// A peer printed something that is not what it should.
    Output(String),
    /// The client failed, and so did the server.
    Both(Box<Error>, Box<Error>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadArgs(s) | Self::Output(s) => f.write_str(s),
            Self::Io(what, e) => write!(f, "{what}: {e}"),
            Self::Peer { name, what, stderr } => {
                write!(f, "the {name} {what}")?;
                if !stderr.is_empty() {
                    write!(f, "; its stderr:\n{stderr}")?;
                }
                Ok(())
            }
            Self::Both(client, server) => write!(f, "{client}\n{server}"),
        }
    }
}

/// One run of the plan.
#[derive(Debug, Clone, Copy)]
struct Run {
    workload: Workload,
    sweep: bool,
    transport: Transport,
    size: usize,
}

impl Run {
    fn what(&self) -> String {
        format!(
            "{} over {} ({} B)",
            report::label(self.workload, self.sweep),
            self.transport,
            self.size
        )
    }
}

/// The settings every run shares.
#[derive(Debug)]
struct Settings {
    exe: OsString,
    host: Host,
}

pub(crate) fn run(args: &BenchArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("error: {e}"));
            ExitCode::from(match e {
                Error::BadArgs(_) => EXIT_BAD_ARGS,
                _ => EXIT_FAILURE,
            })
        }
    }
}

/// The runs `args` ask for, in the order of the table.
fn plan(args: &BenchArgs) -> Vec<Run> {
    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| args.only.is_empty() || args.only.contains(w))
        .collect();
    let transports: Vec<Transport> = Transport::ALL
        .into_iter()
        .filter(|t| args.transports.contains(t))
        .collect();
    let mut runs = Vec::new();
    for &workload in &workloads {
        for &transport in &transports {
            if transport.runs(workload) {
                runs.push(Run {
                    workload,
                    sweep: false,
                    transport,
                    size: workload.size(),
                });
            }
        }
    }
    if args.sweep {
        for workload in [Workload::Throughput, Workload::Latency] {
            if !workloads.contains(&workload) {
                continue;
            }
            for size in SWEEP_SIZES {
                for &transport in &transports {
                    runs.push(Run {
                        workload,
                        sweep: true,
                        transport,
                        size,
                    });
                }
            }
        }
    }
    runs
}

fn run_inner(args: &BenchArgs) -> Result<(), Error> {
    if args.apps {
        return apps::run(args);
    }
    let runs = plan(args);
    if runs.is_empty() {
        return Err(Error::BadArgs(
            "nothing to run: the raw transport runs only msg-rate, latency and throughput".into(),
        ));
    }
    let duration = args
        .duration
        .unwrap_or(if args.quick { QUICK_SECS } else { DEFAULT_SECS });
    // Whole milliseconds, so that the figure prints as it is meant.
    let warmup = ((duration * WARMUP_SHARE).min(WARMUP_MAX_SECS) * 1e3).round() / 1e3;
    let host = Host::probe(args.wait, args.dmb_size, args.pin, duration, warmup);
    if args.pin && host.cores < 2 {
        return Err(Error::BadArgs(format!(
            "--pin needs two online CPUs, this host has {}",
            host.cores
        )));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::Io("cannot find this executable".into(), e))?
        .into_os_string();
    let settings = Settings { exe, host };
    let uds = if runs.iter().any(|r| r.transport == Transport::Uds) {
        Some(TempDir::new()?)
    } else {
        None
    };
    let bar = ProgressBar::new(runs.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}") {
        bar.set_style(style);
    }
    let mut rows = Vec::new();
    let mut skipped: Vec<Skip> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        // The bar is drawn between runs only: no thread ticks it.
        bar.set_message(r.what());
        let unsupported = skipped
            .iter()
            .find(|s| s.transport == r.transport)
            .map(|s| s.reason.clone());
        let outcome = match unsupported {
            Some(reason) => Outcome::Unsupported(reason),
            None => {
                let dir = match &uds {
                    Some(t) if r.transport == Transport::Uds => Some(t.sub(i)?),
                    _ => None,
                };
                one_run(&settings, r, dir.as_deref())?
            }
        };
        match outcome {
            Outcome::Measured(measured, cpu_s) => rows.push(Row {
                workload: r.workload,
                sweep: r.sweep,
                transport: r.transport,
                size: r.size,
                measured,
                cpu_s,
                ratio: None,
            }),
            Outcome::Unsupported(reason) => skipped.push(Skip {
                label: report::label(r.workload, r.sweep),
                transport: r.transport,
                size: r.size,
                reason,
            }),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(uds);
    report::fill_ratios(&mut rows);
    if let Some(path) = &args.plot {
        plot::write(path, &rows).map_err(|e| Error::Output(format!("{}: {e}", path.display())))?;
    }
    let text = if args.json {
        report::json(&settings.host, &rows, &skipped).to_string() + "\n"
    } else {
        report::table(&settings.host, &rows, &skipped)
    };
    match io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::Io("stdout".into(), e)),
        _ => Ok(()),
    }
}

/// What one run gave.
#[derive(Debug)]
enum Outcome {
    /// The client's figures and the CPU seconds of both processes.
    Measured(Measured, Option<f64>),
    /// The transport is not built in (the reason).
    Unsupported(String),
}

/// Run `r`: the server process, then the client process; both reaped.
fn one_run(settings: &Settings, r: &Run, uds_dir: Option<&Path>) -> Result<Outcome, Error> {
    let host = &settings.host;
    let cpu_before = child::reaped_cpu_ticks();
    let common = |role: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "bench-peer",
            role,
            "--workload",
            r.workload.name(),
            "--transport",
            r.transport.name(),
            "--wait",
            host.wait.name(),
        ]
        .map(String::from)
        .into();
        a.extend([
            "--size".into(),
            r.size.to_string(),
            "--dmb-size".into(),
            host.dmb_size.to_string(),
        ]);
        a
    };
    let mut sargs = common("server");
    if host.pin {
        sargs.extend(["--cpu".into(), "0".into()]);
    }
    if let Some(d) = uds_dir {
        sargs.extend(["--uds-dir".into(), d.display().to_string()]);
    }
    let mut server = Peer::spawn(&settings.exe, &sargs, format!("server of {}", r.what()))?;
    let addr = server.line(HANG_LIMIT)?;
    if let Some(reason) = addr.strip_prefix(peer::UNSUPPORTED) {
        server.release();
        server.finish(HANG_LIMIT)?;
        return Ok(Outcome::Unsupported(reason.trim().to_owned()));
    }
    let mut cargs = common("client");
    cargs.extend([
        "--addr".into(),
        addr,
        "--duration".into(),
        host.duration.to_string(),
        "--warmup".into(),
        host.warmup.to_string(),
    ]);
    if host.pin {
        cargs.extend(["--cpu".into(), "1".into()]);
    }
    let mut client = Peer::spawn(&settings.exe, &cargs, format!("client of {}", r.what()))?;
    let expected = Duration::from_secs_f64(host.duration + host.warmup);
    let line = match client.line(expected + HANG_LIMIT) {
        Ok(line) => line,
        Err(e) => {
            // The client's failure may be the server's doing: say so too.
            server.release();
            return Err(match server.finish(SERVER_AFTER_CLIENT_FAILED) {
                Ok(()) => e,
                Err(s) => Error::Both(Box::new(e), Box::new(s)),
            });
        }
    };
    client.finish(HANG_LIMIT)?;
    server.release();
    server.finish(HANG_LIMIT)?;
    let measured: Measured = serde_json::from_str(&line).map_err(|e| {
        Error::Output(format!(
            "the client of {} printed {line:?}, not its figures: {e}",
            r.what()
        ))
    })?;
    let cpu = cpu_before
        .zip(child::reaped_cpu_ticks())
        .map(|(a, b)| b.saturating_sub(a) as f64 / child::TICKS_PER_SEC);
    Ok(Outcome::Measured(measured, cpu))
}

/// A private temporary directory for the Unix-domain sockets, removed with
/// everything in it when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, Error> {
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last = None;
        for attempt in 0..16u32 {
            let path = base.join(format!(
                "smcd-bench-{}-{nanos:x}-{attempt}",
                std::process::id()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Io(
            format!("cannot create a directory in {}", base.display()),
            last.unwrap_or_else(|| io::ErrorKind::AlreadyExists.into()),
        ))
    }

    /// A fresh subdirectory for run `i` (each run's server binds its own
    /// socket there).
    fn sub(&self, i: usize) -> Result<PathBuf, Error> {
        let path = self.0.join(i.to_string());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::Io(format!("cannot create {}", path.display()), e))?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
