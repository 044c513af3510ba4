//! `smcd echo-client`: send a deterministic byte stream through an echo
//! server, read the echo back on a second thread, verify it.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{BUF_BYTES, Conn, EXIT_ERROR};
use crate::args::EchoClientArgs;
use crate::report;
use smcd_payload::checksum::Checksum;
use smcd_payload::payload::{POOL_BYTES, Payload as Pattern};

/// Exit status when the echo differs from what was sent.
const EXIT_MISMATCH: u8 = 1;
/// Seed of the pattern.
const SEED: u64 = 0x5eed_c11e;
/// Largest piece handed to one `write`.
const WRITE_PIECE_BYTES: usize = 1 << 20;

/// What one stream's reader saw.
struct Echo {
    stream: usize,
    checksum: Checksum,
}

/// What a stream's threads report.
enum Event {
    /// The reader reached EOF.
    Done(Echo),
    /// A reader or writer failed.
    Failed(String),
}

pub(crate) fn run(args: &EchoClientArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(line) => {
            report(&format!("error: {line}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn out(line: &str) -> Result<(), String> {
    writeln!(io::stdout(), "{line}").map_err(|e| format!("stdout: {e}"))
}

fn run_inner(args: &EchoClientArgs) -> Result<ExitCode, String> {
    let pattern = Arc::new(Pattern::new(SEED, POOL_BYTES));
    let config = args.smc.config();
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut conns = Vec::with_capacity(args.streams);
    let mut smcd = 0;
    for i in 0..args.streams {
        let conn = Conn::connect(&config, &args.addr, timeout)
            .map_err(|e| format!("stream {i}: connect: {e}"))?;
        let t = conn
            .transport()
            .map_err(|e| format!("stream {i}: handshake: {e}"))?;
        smcd += usize::from(conn.is_smcd());
        if i == 0 {
            out(&format!("transport: {t}"))?;
        } else {
            out(&format!("stream {i} transport: {t}"))?;
        }
        conns.push(conn);
    }
    if args.streams > 1 {
        out(&format!(
            "streams: {} ({smcd} smc-d, {} other)",
            args.streams,
            args.streams - smcd
        ))?;
    }
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    for (i, conn) in conns.into_iter().enumerate() {
        let reader = conn
            .try_clone()
            .map_err(|e| format!("stream {i}: clone: {e}"))?;
        let wtx = tx.clone();
        let p = Arc::clone(&pattern);
        let bytes = args.bytes;
        spawn(move || {
            if let Err(e) = send(conn, &p, bytes) {
                let _ = wtx.send(Event::Failed(format!("stream {i}: sending: {e}")));
            }
        })?;
        let rtx = tx.clone();
        spawn(move || {
            let ev = match receive(reader) {
                Ok(checksum) => Event::Done(Echo {
                    stream: i,
                    checksum,
                }),
                Err(e) => Event::Failed(format!("stream {i}: receiving: {e}")),
            };
            let _ = rtx.send(ev);
        })?;
    }
    drop(tx);
    let mut echoes = Vec::with_capacity(args.streams);
    while echoes.len() < args.streams {
        match rx.recv() {
            Ok(Event::Done(e)) => echoes.push(e),
            // The first failure ends the run; the other threads end with the
            // process.
            Ok(Event::Failed(line)) => return Err(line),
            Err(_) => return Err("a stream's threads ended without a result".into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Computed after the clock stopped: it costs a pass over the pattern.
    let expect = pattern.checksum(args.bytes);
    echoes.sort_by_key(|e| e.stream);
    let mut bad = 0;
    for e in &echoes {
        let (got, sum) = (e.checksum.len(), e.checksum.value());
        if got != args.bytes {
            bad += 1;
            report(&format!(
                "stream {}: {got} bytes came back, {} were sent",
                e.stream, args.bytes
            ));
        } else if sum != expect {
            bad += 1;
            report(&format!(
                "stream {}: echo checksum {sum:#018x}, sent {expect:#018x}: bytes differ",
                e.stream
            ));
        }
    }
    let total = args.bytes as f64 * args.streams as f64;
    let what = if args.streams > 1 {
        format!("{} streams x {} bytes", args.streams, args.bytes)
    } else {
        format!("{} bytes", args.bytes)
    };
    out(&format!(
        "echoed: {what} each way in {secs:.3} s: {:.3} GB/s each way",
        total / secs.max(1e-9) / 1e9
    ))?;
    if bad > 0 {
        out(&format!(
            "verify: FAILED on {bad} of {} stream(s)",
            args.streams
        ))?;
        return Ok(ExitCode::from(EXIT_MISMATCH));
    }
    out(&format!("verify: ok, checksum {expect:#018x}"))?;
    Ok(ExitCode::SUCCESS)
}

fn spawn(f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    thread::Builder::new()
        .spawn(f)
        .map(drop)
        .map_err(|e| format!("no thread: {e}"))
}

/// Write the first `bytes` bytes of the pattern, then shut down the write
/// side so that the server sees EOF.
fn send(mut conn: Conn, pattern: &Pattern, bytes: u64) -> io::Result<()> {
    let mut pos = 0;
    while pos < bytes {
        let want = usize::try_from(bytes - pos).unwrap_or(usize::MAX);
        let piece = pattern.at(pos, want.min(WRITE_PIECE_BYTES));
        conn.write_all(piece)?;
        pos += piece.len() as u64;
    }
    conn.shutdown(Shutdown::Write)
}

/// Read until EOF, checksumming every byte.
fn receive(mut conn: Conn) -> io::Result<Checksum> {
    let mut buf = vec![0u8; BUF_BYTES];
    let mut sum = Checksum::new();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(sum),
            Ok(n) => sum.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
