//! The registry of this process's live streams, for `smcd ss` (a query on
//! the device socket, [`crate::query`]).
//!
//! A stream is entered when it is made and leaves when its last handle goes
//! (or it is abandoned). The registry holds weak references only and is
//! touched at those two moments and by a query: never on the data path.
//! What a query reports is read from what the stream keeps anyway (the
//! endpoint's transport, close state and connection counters); it never
//! names a token, a GID or an address in memory.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use smcd_core::conn::{CloseState, SendMode};
use smcd_core::endpoint::Transport as EpTransport;

use super::{Inner, Mode, Smc};
use crate::query::ConnReport;
use crate::transport::TcpReason;

static NEXT: AtomicU64 = AtomicU64::new(1);
static LIVE: Mutex<BTreeMap<u64, Weak<Inner>>> = Mutex::new(BTreeMap::new());

thread_local! {
    /// Set while this thread describes the registry (it holds [`LIVE`]):
    /// a stream whose last handle the description held, and which is
    /// therefore dropped in this thread, leaves through this list.
    static DESCRIBING: RefCell<Option<Vec<u64>>> = const { RefCell::new(None) };
}

/// How long one query may wait, over all streams, for streams whose lock a
/// call holds; those left are reported `busy`.
const BUSY_BUDGET: Duration = Duration::from_millis(20);

fn registry() -> MutexGuard<'static, BTreeMap<u64, Weak<Inner>>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The registry, locked (across a fork: see [`crate::adopt::before_fork`]).
#[derive(Debug)]
pub(crate) struct Held {
    _guard: MutexGuard<'static, BTreeMap<u64, Weak<Inner>>>,
}

/// Lock the registry until the returned guard goes.
pub(crate) fn hold() -> Held {
    Held { _guard: registry() }
}

/// A key for a new stream.
pub(super) fn next_key() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Enter a stream.
pub(super) fn add(inner: &Arc<Inner>) {
    registry().insert(inner.live, Arc::downgrade(inner));
}

/// A stream leaves (its last handle went, or it is abandoned).
pub(super) fn remove(key: u64) {
    // At exit, when this thread's locals are gone, it describes nothing.
    let deferred = DESCRIBING
        .try_with(|d| match d.borrow_mut().as_mut() {
            Some(gone) => {
                gone.push(key);
                true
            }
            None => false,
        })
        .unwrap_or(false);
    if !deferred {
        registry().remove(&key);
    }
}

/// Every live stream of this process, in the order they were made.
pub(crate) fn describe_all() -> Vec<ConnReport> {
    let mut live = registry();
    if DESCRIBING
        .try_with(|d| *d.borrow_mut() = Some(Vec::new()))
        .is_err()
    {
        return Vec::new();
    }
    let deadline = Instant::now() + BUSY_BUDGET;
    let mut out = Vec::with_capacity(live.len());
    for weak in live.values() {
        if let Some(inner) = weak.upgrade() {
            out.push(describe(&inner, deadline));
        }
        // A stream whose handles all went meanwhile drops here (its key is
        // deferred): the registry is held, so no handle count but the
        // streams' own is ever seen outside it (`abandon` relies on that).
    }
    let gone = DESCRIBING
        .try_with(|d| d.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default();
    for key in gone {
        live.remove(&key);
    }
    out
}

fn describe(inner: &Inner, deadline: Instant) -> ConnReport {
    let mut r = ConnReport {
        local: inner.tcp.local_addr().ok(),
        peer: inner.tcp.peer_addr().ok(),
        transport: "tcp".into(),
        fallback: None,
        reason: None,
        state: "established".into(),
        version: None,
        dmb_size: None,
        peer_dmb_size: None,
        bytes_sent: None,
        bytes_received: None,
    };
    match &inner.mode {
        Mode::Plain(why) => r.reason = Some(reason_name(why).into()),
        Mode::Smc(m) => match lock_until(m, deadline) {
            Some(s) => describe_smc(&s, &mut r),
            None => {
                "busy".clone_into(&mut r.transport);
                "busy".clone_into(&mut r.state);
            }
        },
    }
    r
}

/// The lock of an SMC side, waiting for a call that holds it until
/// `deadline` at most.
fn lock_until(m: &Mutex<Smc>, deadline: Instant) -> Option<MutexGuard<'_, Smc>> {
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

fn describe_smc(s: &Smc, r: &mut ConnReport) {
    match s.ep.transport() {
        EpTransport::Handshaking => {
            "pending".clone_into(&mut r.transport);
            "handshaking".clone_into(&mut r.state);
        }
        EpTransport::SmcD(info) => {
            let mode = match info.mode {
                SendMode::NoCopy => "smc-d-nocopy",
                SendMode::Copy => "smc-d-copy",
            };
            mode.clone_into(&mut r.transport);
            r.version = Some(info.version);
            r.dmb_size = u64::try_from(info.own_dmb_size).ok();
            r.peer_dmb_size = u64::try_from(info.peer_dmb_size).ok();
            match s.ep.connection() {
                Some(c) => {
                    let st = c.stats();
                    r.bytes_sent = Some(st.bytes_sent);
                    r.bytes_received = Some(st.bytes_received);
                    state_name(c.state()).clone_into(&mut r.state);
                }
                None => "closed".clone_into(&mut r.state),
            }
        }
        EpTransport::Tcp(f) => {
            r.fallback = Some(format!("{:#010x}", f.reason.code()));
            r.reason = Some("declined".into());
        }
        EpTransport::Failed(_) => {
            "failed".clone_into(&mut r.transport);
            "failed".clone_into(&mut r.state);
        }
        EpTransport::Closed => "closed".clone_into(&mut r.state),
    }
}

/// Why a stream is plain TCP from the start, as one word.
fn reason_name(why: &TcpReason) -> &'static str {
    match why {
        TcpReason::NoSmcPeer => "no-smcd-listener",
        TcpReason::Disabled => "disabled",
        TcpReason::PlainClient => "plain-client",
        TcpReason::Declined(_) => "declined",
    }
}

/// The close state machine's state (`docs/protocol/close.md`) as one word.
fn state_name(s: CloseState) -> &'static str {
    match s {
        CloseState::Active => "active",
        CloseState::Init => "init",
        CloseState::Closed => "closed",
        CloseState::Listen => "listen",
        CloseState::PeerCloseWait1 => "peer-close-wait-1",
        CloseState::PeerCloseWait2 => "peer-close-wait-2",
        CloseState::AppCloseWait1 => "app-close-wait-1",
        CloseState::AppCloseWait2 => "app-close-wait-2",
        CloseState::AppFinCloseWait => "app-fin-close-wait",
        CloseState::PeerFinCloseWait => "peer-fin-close-wait",
        CloseState::PeerAbortWait => "peer-abort-wait",
        CloseState::ProcessAbort => "process-abort",
    }
}
