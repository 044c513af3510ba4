//! [`stats`]: what the smcd streams of this process did, as a snapshot that
//! serialises to JSON.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use smcd_core::clc::Role;
use smcd_core::conn::SendMode;

use crate::transport::Transport;

/// Handshakes that ended in SMC-D, by role and CLC version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshakes {
    /// As the connecting side, by version (`"v2"`).
    pub client: BTreeMap<String, u64>,
    /// As the accepting side, by version.
    pub server: BTreeMap<String, u64>,
}

/// A snapshot of this process's smcd counters (see [`stats`]).
///
/// ```
/// let s = smcd_std::stats();
/// let json = serde_json::to_string(&s).unwrap();
/// assert!(json.contains("\"connections\""));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Connections by transport: `smc-d-copy`, `smc-d-nocopy`, `tcp`.
    pub connections: BTreeMap<String, u64>,
    /// Fallbacks after a Decline, by Linux reason code (`"0x03030008"`).
    pub fallbacks: BTreeMap<String, u64>,
    /// Established SMC-D handshakes by role and version.
    pub handshakes: Handshakes,
    /// Application bytes written.
    pub bytes_sent: u64,
    /// Application bytes read.
    pub bytes_received: u64,
    /// Writes that had to wait for room in the peer's ring.
    pub buffer_full_waits: u64,
    /// DMBs this process holds now.
    pub dmbs_in_use: u64,
}

#[derive(Debug, Default)]
struct Tallies {
    connections: BTreeMap<String, u64>,
    fallbacks: BTreeMap<String, u64>,
    handshakes: Handshakes,
}

static TALLIES: Mutex<Option<Tallies>> = Mutex::new(None);
static BYTES_SENT: AtomicU64 = AtomicU64::new(0);
static BYTES_RECEIVED: AtomicU64 = AtomicU64::new(0);
static BUFFER_FULL: AtomicU64 = AtomicU64::new(0);

fn tally(f: impl FnOnce(&mut Tallies)) {
    let mut t = TALLIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(t.get_or_insert_with(Tallies::default));
}

/// Count a stream whose transport just became known.
pub(crate) fn connection(t: &Transport) {
    tally(|s| {
        let kind = match t {
            Transport::SmcD(i) if i.mode == SendMode::NoCopy => "smc-d-nocopy",
            Transport::SmcD(_) => "smc-d-copy",
            Transport::Tcp(_) => "tcp",
        };
        *s.connections.entry(kind.to_owned()).or_default() += 1;
        match t {
            Transport::SmcD(i) => {
                let side = match i.role {
                    Role::Client => &mut s.handshakes.client,
                    Role::Server => &mut s.handshakes.server,
                };
                *side.entry(format!("v{}", i.version)).or_default() += 1;
            }
            Transport::Tcp(r) => {
                if let Some(code) = r.code() {
                    *s.fallbacks.entry(format!("{code:#010x}")).or_default() += 1;
                }
            }
        }
    });
}

pub(crate) fn sent(n: usize) {
    BYTES_SENT.fetch_add(n as u64, Ordering::Relaxed);
}

pub(crate) fn received(n: usize) {
    BYTES_RECEIVED.fetch_add(n as u64, Ordering::Relaxed);
}

pub(crate) fn buffer_full() {
    BUFFER_FULL.fetch_add(1, Ordering::Relaxed);
}

/// The registry of live streams and the counters, locked across a fork
/// (see [`crate::adopt::before_fork`]; dropping it releases both).
#[derive(Debug)]
pub(crate) struct ForkHold {
    _live: crate::stream::live::Held,
    _tallies: std::sync::MutexGuard<'static, Option<Tallies>>,
}

/// Lock the registry, then the counters (the order every path keeps: no
/// path holds the counters and waits for the registry).
pub(crate) fn hold_for_fork() -> ForkHold {
    let live = crate::stream::live::hold();
    ForkHold {
        _live: live,
        _tallies: TALLIES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    }
}

/// Start counting from zero (a child after fork: its parent's counts are
/// the parent's to report).
pub(crate) fn reset() {
    *TALLIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    BYTES_SENT.store(0, Ordering::Relaxed);
    BYTES_RECEIVED.store(0, Ordering::Relaxed);
    BUFFER_FULL.store(0, Ordering::Relaxed);
}

/// A snapshot of what the smcd streams of this process did so far.
pub fn stats() -> Stats {
    let t = TALLIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let empty = Tallies::default();
    let t = t.as_ref().unwrap_or(&empty);
    Stats {
        connections: t.connections.clone(),
        fallbacks: t.fallbacks.clone(),
        handshakes: t.handshakes.clone(),
        bytes_sent: BYTES_SENT.load(Ordering::Relaxed),
        bytes_received: BYTES_RECEIVED.load(Ordering::Relaxed),
        buffer_full_waits: BUFFER_FULL.load(Ordering::Relaxed),
        dmbs_in_use: crate::config::running_device().map_or(0, |d| d.dmbs_in_use() as u64),
    }
}
