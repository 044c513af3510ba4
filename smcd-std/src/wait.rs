//! Waiting for a blocked stream call: spin for a short budget, then park on
//! the DMB's doorbell and the TCP socket.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::device::Bell;

/// Milliseconds since the first call (the clock of every endpoint).
pub(crate) fn now_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a parked call waits for.
#[derive(Debug)]
pub(crate) struct Park<'a> {
    /// The DMB doorbell (SMC-D established), already armed.
    pub(crate) bell: Option<Bell>,
    /// The TCP socket and the events of interest on it (none after EOF).
    pub(crate) tcp: Option<(std::os::fd::BorrowedFd<'a>, PollFlags)>,
    /// Wake up at the latest after this long.
    pub(crate) timeout: Option<Duration>,
}

impl Park<'_> {
    /// Sleep until a doorbell ring, a TCP event or the timeout.
    pub(crate) fn sleep(self) -> io::Result<()> {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2);
        if let Some(b) = &self.bell {
            fds.push(PollFd::new(b, PollFlags::IN));
        }
        if let Some((fd, events)) = self.tcp {
            fds.push(PollFd::from_borrowed_fd(fd, events));
        }
        let ts = self.timeout.map(|t| Timespec {
            tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The smaller of two optional timeouts.
pub(crate) fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The remaining time until `deadline`, `Some(0)` once it passed.
pub(crate) fn until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Whether a core is free for spinning: the host has no more runnable
/// threads than cores (the caller and a spinning peer included). When the
/// cores are shared with other work, a spinning thread only delays its own
/// wake-up (the scheduler favours threads that slept), so a waiter then
/// parks at once. Read from `/proc/loadavg` at most once per
/// [`LOAD_CHECK_EVERY_MS`] per process; `true` when it cannot be read.
pub(crate) fn cores_free() -> bool {
    static CHECKED_MS: AtomicU64 = AtomicU64::new(u64::MAX);
    static FREE: AtomicBool = AtomicBool::new(true);
    let now = now_ms();
    let last = CHECKED_MS.load(Ordering::Relaxed);
    let due = last == u64::MAX || now.saturating_sub(last) >= LOAD_CHECK_EVERY_MS;
    if due
        && CHECKED_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        FREE.store(
            runnable_now().is_none_or(|r| r <= cores()),
            Ordering::Relaxed,
        );
    }
    FREE.load(Ordering::Relaxed)
}

/// How often [`cores_free`] looks at the host's load, in milliseconds.
const LOAD_CHECK_EVERY_MS: u64 = 10;

/// The threads of the host that are runnable now (the first half of the
/// fourth field of `/proc/loadavg`, "runnable/total").
fn runnable_now() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let field = text.split_whitespace().nth(3)?;
    field.split('/').next()?.parse().ok()
}

/// The cores this process may run on.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}
