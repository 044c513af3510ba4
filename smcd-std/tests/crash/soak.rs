//! The soak of the crash suite (`SMCD_SOAK_SECS`, run by `scripts/test
//! soak`): the crash cases one after the other until the time is up, while
//! one steady connection to a child that is never killed echoes checked
//! bytes the whole time; the process's RSS and fd count are sampled every
//! second. Any failed iteration, a wrong or missing byte on the steady
//! connection, or fds not back at the end fail it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use smcd_std::SmcStream;

use super::support::{Held, Proc, fill, matches};
use super::{CASES, Figures, one_iteration};

/// RSS of this process in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// First, last and largest of the samples.
#[derive(Debug, Default, Clone, Copy)]
struct Track {
    first: u64,
    last: u64,
    max: u64,
}

impl Track {
    fn add(&mut self, v: u64) {
        if self.max == 0 {
            self.first = v;
        }
        self.last = v;
        self.max = self.max.max(v);
    }
}

/// The steady connection: a writer and a reader thread on one stream to an
/// echo child; the bytes read back must be the pattern, all of it.
struct Steady {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<Result<u64, String>>>,
    _child: Proc,
}

impl Steady {
    fn start() -> Result<Self, String> {
        let child = Proc::spawn("server", &["echo"], &[]);
        let port = child
            .line("port", Duration::from_secs(20))
            .ok_or("no port")?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let s = SmcStream::connect(addr).map_err(|e| e.to_string())?;
        if !s.transport().is_ok_and(|t| t.is_smcd()) {
            return Err("the steady connection is not SMC-D".into());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let w = s.try_clone().map_err(|e| e.to_string())?;
        let wstop = Arc::clone(&stop);
        let writer = thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            let mut at = 0u64;
            while !wstop.load(Ordering::Relaxed) {
                fill(&mut buf, at);
                (&w).write_all(&buf)
                    .map_err(|e| format!("steady write: {e}"))?;
                at += buf.len() as u64;
            }
            w.shutdown(std::net::Shutdown::Write)
                .map_err(|e| e.to_string())?;
            Ok(at)
        });
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut at = 0u64;
            loop {
                match (&s).read(&mut buf) {
                    Ok(0) => return Ok(at),
                    Ok(n) if matches(&buf[..n], at) => at += n as u64,
                    Ok(_) => return Err(format!("steady: wrong byte at offset {at}")),
                    Err(e) => return Err(format!("steady read at {at}: {e}")),
                }
            }
        });
        Ok(Self {
            stop,
            threads: vec![writer, reader],
            _child: child,
        })
    }

    /// Stop writing; both counts (sent, echoed back), which must match.
    fn finish(self) -> Result<(u64, u64), String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut counts = Vec::new();
        for t in self.threads {
            counts.push(t.join().map_err(|_| "a steady thread panicked")??);
        }
        Ok((counts[0], counts[1]))
    }
}

/// Mappings the allocator may add over a long run (its arenas grow by
/// heaps of their own, and a heap that grows splits a mapping in two);
/// fds, threads, DMBs and `/dev/shm` must be back exactly.
const MAPS_SLACK: usize = 4;

/// Wait up to 4 s for the counts to be back at `start` (mappings within
/// [`MAPS_SLACK`]).
fn back_to(start: Held) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(4);
    loop {
        let now = Held::now();
        let same = (now.fds, now.threads, now.dmbs) == (start.fds, start.threads, start.dmbs)
            && now.shm <= start.shm
            && now.maps <= start.maps + MAPS_SLACK;
        if same {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(format!("leak: started with {start:?}, now {now:?}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn run(length: Duration) -> ExitCode {
    let steady = match Steady::start() {
        Ok(s) => s,
        Err(e) => {
            println!("soak: FAILED to start the steady connection: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Once more every case with the steady connection running (its threads
    // make the allocator's per-thread arenas, more mappings, on first use).
    for case in CASES {
        let _ = one_iteration(case, None, &mut Figures::default());
    }
    thread::sleep(Duration::from_millis(300));
    let start = Held::now();
    let (mut rss, mut fds) = (Track::default(), Track::default());
    let begin = Instant::now();
    let mut last_sample = begin - Duration::from_secs(2);
    let (mut kills, mut errors) = (0u64, Vec::new());
    let mut fig = Figures::default();
    'outer: loop {
        for case in CASES {
            if begin.elapsed() >= length {
                break 'outer;
            }
            if last_sample.elapsed() >= Duration::from_secs(1) {
                rss.add(rss_kib());
                fds.add(Held::now().fds as u64);
                last_sample = Instant::now();
            }
            kills += 1;
            let r = one_iteration(case, None, &mut fig).and_then(|()| back_to(start));
            if let Err(e) = r {
                println!("soak: {}: FAILED {e}", case.name);
                errors.push(e);
            }
        }
    }
    rss.add(rss_kib());
    fds.add(Held::now().fds as u64);
    let stats = smcd_std::stats();
    let steady = steady.finish();
    let (med, max) = super::support::median_max(&mut fig.latencies);
    println!(
        "soak: {:?}: {kills} kills ({} detections, median {med:?}, max {max:?}), {} errors; \
         connections {:?}; bytes sent {} received {}; RSS KiB start {} end {} max {}; \
         fds start {} end {} max {}; load {}",
        begin.elapsed(),
        fig.latencies.len(),
        errors.len(),
        stats.connections,
        stats.bytes_sent,
        stats.bytes_received,
        rss.first,
        rss.last,
        rss.max,
        fds.first,
        fds.last,
        fds.max,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    match steady {
        Ok((sent, echoed)) if sent == echoed => {
            println!("soak: steady connection: {sent} bytes echoed, every one checked");
        }
        Ok((sent, echoed)) => {
            errors.push(format!("steady: {sent} bytes sent, {echoed} came back"));
        }
        Err(e) => errors.push(e),
    }
    if !errors.is_empty() || fds.last != fds.first {
        println!("soak: FAILED: {errors:?}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
