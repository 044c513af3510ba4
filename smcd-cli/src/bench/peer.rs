//! `smcd bench-peer` (hidden): one endpoint of one bench run, in its own
//! process, started by `smcd bench`.
//!
//! The server prints the address to connect to as its first stdout line
//! (or `unsupported: …` when the transport is not built in), serves the
//! run's connections, then stays until its stdin is closed, so that it
//! never vanishes under a client still reading. The client prints one
//! JSON line, the [`Measured`](super::workload::Measured) figures.
//! Failures: one `error: …` line on stderr, exit status 1.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use rustix::process::Signal;
use rustix::thread::CpuSet;

use super::transport::{Dialer, Listener, Setup};
use super::workload::{self, Job};
use crate::args::PeerArgs;
use crate::report;

/// The first stdout line of a server whose transport is not built in.
pub(crate) const UNSUPPORTED: &str = "unsupported:";

/// Which end of the run this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    Server,
    Client,
}

pub(crate) fn run(args: &PeerArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            report(&format!("error: {line}"));
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &PeerArgs) -> Result<(), String> {
    // Die with the orchestrator, whatever kills it.
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    if let Some(cpu) = args.cpu {
        // Before any thread starts (the device's too): they inherit it.
        let mut set = CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set)
            .map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
    }
    let setup = Setup {
        transport: args.transport,
        dmb_size: args.dmb_size,
        wait: args.wait,
    };
    match args.role {
        Role::Server => serve(args, &setup),
        Role::Client => {
            let addr = args.addr.as_deref().ok_or("the client needs --addr")?;
            let job = Job {
                workload: args.workload,
                size: args.size,
                duration: secs(args.duration)?,
                warmup: secs(args.warmup)?,
            };
            let m = workload::drive(&Dialer::new(&setup, addr), &job)
                .map_err(|e| format!("{} over {}: {e}", args.workload, args.transport))?;
            let line = serde_json::to_string(&m).map_err(|e| e.to_string())?;
            out(&line)
        }
    }
}

fn serve(args: &PeerArgs, setup: &Setup) -> Result<(), String> {
    let (listener, addr) = match Listener::bind(setup, args.uds_dir.as_deref()) {
        Ok(bound) => bound,
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            return out(&format!("{UNSUPPORTED} {e}"));
        }
        Err(e) => return Err(format!("cannot listen ({}): {e}", args.transport)),
    };
    out(&addr)?;
    workload::serve(&listener, args.workload, args.size)
        .map_err(|e| format!("serving {} over {}: {e}", args.workload, args.transport))?;
    drop(listener);
    io::copy(&mut io::stdin().lock(), &mut io::sink())
        .map(drop)
        .map_err(|e| format!("stdin: {e}"))
}

fn out(line: &str) -> Result<(), String> {
    writeln!(io::stdout(), "{line}").map_err(|e| format!("stdout: {e}"))
}

fn secs(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("{s} s: {e}"))
}
