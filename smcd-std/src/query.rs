//! Asking the smcd processes of this host what they hold: the live
//! connections and the counters of each (what `smcd ss` and `smcd stats`
//! print).
//!
//! Every process that uses smcd runs a device socket (started with its
//! first SMC connection or listener). Besides handing out DMBs, it answers
//! two requests of the same wire format with a [`ProcessReport`] in JSON:
//! [`Query::Connections`] (the process, its counters and one
//! [`ConnReport`] per live stream) and [`Query::Totals`] (the process and
//! its counters only). A device answers only a process of its own
//! effective uid or root (`SO_PEERCRED`), whatever its DMB policy.
//!
//! The devices are found where they live ([`Place`]): in the abstract
//! namespace through `/proc/net/unix` (listening sockets named
//! `@smcd/dev/…`), in a rendezvous directory by its `dev-…` entries. A
//! process that died leaves no abstract name behind; a path socket left in
//! a directory refuses connections and is skipped, as is a device that does
//! not answer within [`ASK_TIMEOUT`], refuses us, or predates these
//! requests.
//!
//! A report never carries a DMB token, a GID or a memory address.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::naming::Place;
use crate::stats::Stats;

/// How long one device may take to answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// What to ask a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// The process, its counters and its live connections.
    Connections,
    /// The process and its counters.
    Totals,
}

/// One process's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/self/comm`).
    pub command: String,
    /// Its effective uid.
    pub uid: u32,
    /// Its counters since it started ([`crate::stats`]).
    pub stats: Stats,
    /// Its live streams ([`Query::Connections`] only).
    #[serde(default)]
    pub connections: Vec<ConnReport>,
}

/// One live stream of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnReport {
    /// Our address.
    pub local: Option<SocketAddr>,
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// `smc-d-copy`, `smc-d-nocopy`, `tcp`, `pending` (CLC handshake
    /// running), `failed` (the handshake failed), `busy` (a call held the
    /// stream for the whole query).
    pub transport: String,
    /// The Linux decline code of a fallback (`"0x03030008"`).
    pub fallback: Option<String>,
    /// Why a `tcp` stream is TCP: `declined`, `no-smcd-listener`,
    /// `disabled`, `plain-client`.
    pub reason: Option<String>,
    /// `handshaking`; over SMC-D the close state (`active`,
    /// `peer-close-wait-1`, … `closed`); `established` for TCP; `failed`,
    /// `busy`.
    pub state: String,
    /// The CLC version of an SMC-D connection.
    pub version: Option<u8>,
    /// Our DMB's size in bytes (CDC header included), over SMC-D.
    pub dmb_size: Option<u64>,
    /// The peer's DMB's size in bytes, over SMC-D.
    pub peer_dmb_size: Option<u64>,
    /// Application bytes sent, over SMC-D (TCP streams are not counted per
    /// stream; the kernel's `ss -ti` has them).
    pub bytes_sent: Option<u64>,
    /// Application bytes received, over SMC-D.
    pub bytes_received: Option<u64>,
}

/// What [`survey`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// The processes that answered, by pid.
    pub processes: Vec<ProcessReport>,
    /// Device sockets that did not answer (gone, stopped, of another
    /// user, or of an older smcd).
    pub skipped: usize,
}

/// Ask every smcd process at `place` (see the [module](self)).
pub fn survey(place: &Place, what: Query) -> Survey {
    let mut s = Survey::default();
    for addr in place.devices() {
        match crate::device::ask_report(&addr, what, ASK_TIMEOUT) {
            Ok(Some(r)) => s.processes.push(r),
            Ok(None) => s.skipped += 1,
            Err(e) => {
                tracing::debug!(error = %e, "a device socket did not answer");
                s.skipped += 1;
            }
        }
    }
    s.processes.sort_by_key(|p| p.pid);
    s
}

/// This process's answer to `what`.
pub(crate) fn report(what: Query) -> ProcessReport {
    let command = std::fs::read_to_string("/proc/self/comm")
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_default();
    ProcessReport {
        pid: rustix::process::getpid()
            .as_raw_nonzero()
            .get()
            .unsigned_abs(),
        command,
        uid: rustix::process::geteuid().as_raw(),
        stats: crate::stats(),
        connections: match what {
            Query::Connections => crate::stream::live::describe_all(),
            Query::Totals => Vec::new(),
        },
    }
}
