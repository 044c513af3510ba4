//! The two sides of each workload: what the server process does with its
//! connections, and what the client process does and measures.
//!
//! Every connection ends the same way: the client shuts down its write
//! side, the server sees EOF, closes, and the client reads that EOF — so
//! no process exits while its peer still has something to read.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::histogram::Histogram;
use super::kinds::Workload;
use super::transport::{Conn, Dialer, Listener};

/// Connections of the fan-in workload.
pub(crate) const FAN_IN_CONNS: usize = 64;
/// Bytes of the throughput receiver's read buffer.
const READ_BUF_BYTES: usize = 64 * 1024;
/// Untimed round trips between two looks at the clock (msg-rate).
const ROUNDS_PER_CHECK: u64 = 16;
/// Bytes a streaming sender writes between two looks at the clock, at least.
const BYTES_PER_CHECK: usize = 16 * 1024;

/// What the client process of one run does.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) workload: Workload,
    /// Message (ping-pong) or write (streams) size in bytes.
    pub(crate) size: usize,
    /// How long the measurement runs.
    pub(crate) duration: Duration,
    /// How long the workload runs before it (ping-pong and connect only).
    pub(crate) warmup: Duration,
}

/// The client's result, printed as its one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// The primary figure in the workload's unit.
    pub(crate) value: f64,
    /// Latency: the 99th and 99.9th percentile round trip in µs.
    pub(crate) p99: Option<f64>,
    pub(crate) p999: Option<f64>,
    /// Round trips or connections measured.
    pub(crate) count: u64,
    /// Bytes the receiver acknowledged (streams).
    pub(crate) bytes: u64,
    /// Seconds measured.
    pub(crate) secs: f64,
}

/// Serve one run's connections on `listener`, then return.
pub(crate) fn serve(listener: &Listener, workload: Workload, size: usize) -> io::Result<()> {
    match workload {
        Workload::MsgRate | Workload::Latency => echo(&mut listener.accept()?, size),
        Workload::Throughput => sink(&mut listener.accept()?),
        Workload::Connect => {
            // Each connection: one request and its answer, then the server
            // closes; a connection that closes before its request ends it.
            let mut msg = vec![0; size];
            loop {
                let mut c = listener.accept()?;
                if !read_message(&mut c, &mut msg)? {
                    return Ok(());
                }
                c.write_all(&msg)?;
            }
        }
        Workload::FanIn => {
            let mut conns = Vec::with_capacity(FAN_IN_CONNS);
            for _ in 0..FAN_IN_CONNS {
                conns.push(listener.accept()?);
            }
            thread::scope(|scope| {
                let mut handles = Vec::with_capacity(conns.len());
                for mut c in conns {
                    let h = thread::Builder::new().spawn_scoped(scope, move || sink(&mut c))?;
                    handles.push(h);
                }
                joined(handles).map(drop)
            })
        }
    }
}

/// Echo messages of `size` bytes until EOF.
fn echo(c: &mut Conn, size: usize) -> io::Result<()> {
    let mut msg = vec![0; size];
    while read_message(c, &mut msg)? {
        c.write_all(&msg)?;
    }
    Ok(())
}

/// The throughput receiver: take in bytes until EOF (in place or by
/// `read`, as the transport's [`Conn::consume`]), then answer with their
/// count (8 bytes, little endian).
fn sink(c: &mut Conn) -> io::Result<()> {
    let mut buf = vec![0; READ_BUF_BYTES];
    let (mut total, mut fold) = (0u64, 0u64);
    loop {
        match c.consume(&mut buf, &mut fold) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    black_box(fold);
    c.write_all(&total.to_le_bytes())
}

/// Run `job` against the server and measure it.
pub(crate) fn drive(dialer: &Dialer, job: &Job) -> io::Result<Measured> {
    match job.workload {
        Workload::MsgRate => ping_pong(&mut dialer.dial()?, job, false),
        Workload::Latency => ping_pong(&mut dialer.dial()?, job, true),
        Workload::Throughput => {
            let mut c = dialer.dial()?;
            let start = Instant::now();
            let bytes = send_for(&mut c, job.size, start + job.duration)?;
            let secs = start.elapsed().as_secs_f64();
            expect_eof(&mut c)?;
            Ok(stream_result(bytes, secs))
        }
        Workload::Connect => connects(dialer, job),
        Workload::FanIn => fan_in(dialer, job),
    }
}

/// Ping-pong messages of `job.size` bytes: warm up, then count round trips
/// for the duration, timing each one when `timed`.
fn ping_pong(c: &mut Conn, job: &Job, timed: bool) -> io::Result<Measured> {
    let mut msg = vec![0x5a; job.size];
    let mut round = |c: &mut Conn| -> io::Result<()> {
        c.write_all(&msg)?;
        c.read_exact(&mut msg)
    };
    let warm_end = Instant::now() + job.warmup;
    while Instant::now() < warm_end {
        round(c)?;
    }
    let mut hist = Histogram::new();
    let start = Instant::now();
    let end = start + job.duration;
    let mut n = 0u64;
    if timed {
        let mut t0 = start;
        loop {
            round(c)?;
            let t1 = Instant::now();
            hist.record(t1 - t0);
            n += 1;
            if t1 >= end {
                break;
            }
            t0 = t1;
        }
    } else {
        while Instant::now() < end {
            for _ in 0..ROUNDS_PER_CHECK {
                round(c)?;
            }
            n += ROUNDS_PER_CHECK;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    c.shutdown_write()?;
    expect_eof(c)?;
    let us = |q: f64| hist.quantile(q).map(|ns| ns / 1e3);
    Ok(Measured {
        value: if timed {
            us(0.5).unwrap_or(0.0)
        } else {
            n as f64 / secs
        },
        p99: if timed { us(0.99) } else { None },
        p999: if timed { us(0.999) } else { None },
        count: n,
        bytes: 0,
        secs,
    })
}

/// Write `size`-byte pieces until `end`, shut down the write side, and
/// read the receiver's count, which must equal the bytes sent.
fn send_for(c: &mut Conn, size: usize, end: Instant) -> io::Result<u64> {
    let data = vec![0xa5; size];
    let per_check = BYTES_PER_CHECK.div_ceil(size.max(1));
    let mut sent = 0u64;
    loop {
        for _ in 0..per_check {
            c.write_all(&data)?;
        }
        sent += (per_check * size) as u64;
        if Instant::now() >= end {
            break;
        }
    }
    c.shutdown_write()?;
    let mut ack = [0; 8];
    c.read_exact(&mut ack)?;
    let got = u64::from_le_bytes(ack);
    if got != sent {
        return Err(io::Error::other(format!(
            "the receiver counted {got} bytes, {sent} were sent"
        )));
    }
    Ok(sent)
}

fn stream_result(bytes: u64, secs: f64) -> Measured {
    Measured {
        value: bytes as f64 / secs / 1e6,
        p99: None,
        p999: None,
        count: 0,
        bytes,
        secs,
    }
}

/// Connect, one round trip of `job.size` bytes, close — warm up, then
/// count for the duration; a last connection closed without a request
/// stops the server.
fn connects(dialer: &Dialer, job: &Job) -> io::Result<Measured> {
    let mut msg = vec![0x3c; job.size];
    let mut once = || -> io::Result<()> {
        let mut c = dialer.dial()?;
        c.write_all(&msg)?;
        c.read_exact(&mut msg)?;
        expect_eof(&mut c)
    };
    let warm_end = Instant::now() + job.warmup;
    while Instant::now() < warm_end {
        once()?;
    }
    let start = Instant::now();
    let end = start + job.duration;
    let mut n = 0u64;
    while Instant::now() < end {
        once()?;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut stop = dialer.dial()?;
    stop.shutdown_write()?;
    expect_eof(&mut stop)?;
    Ok(Measured {
        value: n as f64 / secs,
        p99: None,
        p999: None,
        count: n,
        bytes: 0,
        secs,
    })
}

/// Where the fan-in senders stand: waiting for the start, running until
/// the instant given, or told to give up before they started.
#[derive(Debug, Clone, Copy)]
enum Start {
    Waiting,
    Until(Instant),
    Abandoned,
}

/// A start signal for many threads at once.
#[derive(Debug)]
struct Gate {
    state: Mutex<Start>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, s: Start) {
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = s;
        self.changed.notify_all();
    }

    /// Wait for the start: `Some(end)`, or `None` when abandoned.
    fn wait(&self) -> Option<Instant> {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            match *s {
                Start::Waiting => {
                    s = self
                        .changed
                        .wait(s)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                Start::Until(end) => return Some(end),
                Start::Abandoned => return None,
            }
        }
    }
}

/// `FAN_IN_CONNS` connections, opened one after the other, then streaming
/// at once from one thread each; MB/s of all acknowledged bytes over the
/// time from the common start to the last acknowledgement.
fn fan_in(dialer: &Dialer, job: &Job) -> io::Result<Measured> {
    let mut conns = Vec::with_capacity(FAN_IN_CONNS);
    for _ in 0..FAN_IN_CONNS {
        conns.push(dialer.dial()?);
    }
    let gate = Gate {
        state: Mutex::new(Start::Waiting),
        changed: Condvar::new(),
    };
    let size = job.size;
    let (start, results) = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(conns.len());
        for mut c in conns {
            let gate = &gate;
            let spawned = thread::Builder::new().spawn_scoped(scope, move || {
                let Some(end) = gate.wait() else {
                    return Ok((0, Instant::now()));
                };
                let bytes = send_for(&mut c, size, end)?;
                let done = Instant::now();
                expect_eof(&mut c)?;
                Ok((bytes, done))
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    gate.set(Start::Abandoned);
                    return Err(e);
                }
            }
        }
        let start = Instant::now();
        gate.set(Start::Until(start + job.duration));
        joined(handles).map(|r| (start, r))
    })?;
    let bytes = results.iter().map(|(b, _)| b).sum();
    let last = results.iter().map(|&(_, t)| t).max().unwrap_or(start);
    Ok(stream_result(bytes, (last - start).as_secs_f64()))
}

/// The results of scoped threads, or the first error (a panicked thread
/// counts as one).
fn joined<T>(handles: Vec<thread::ScopedJoinHandle<'_, io::Result<T>>>) -> io::Result<Vec<T>> {
    let mut out = Vec::with_capacity(handles.len());
    let mut first = None;
    for h in handles {
        match h.join() {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first.get_or_insert(e);
            }
            Err(_) => {
                first.get_or_insert_with(|| io::Error::other("a connection's thread panicked"));
            }
        }
    }
    first.map_or(Ok(out), Err)
}

/// Fill `buf` with one message: `Ok(false)` at EOF before its first byte.
fn read_message(c: &mut Conn, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match c.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Read the peer's EOF; any byte before it is a protocol error.
fn expect_eof(c: &mut Conn) -> io::Result<()> {
    let mut buf = [0; 64];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{n} unexpected bytes before the peer's close"),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
