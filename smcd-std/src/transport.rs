//! [`Transport`]: which path a stream took, and why.

use std::fmt;

use smcd_core::clc::{DeclinedBy, Fallback, SmcdInfo};
use smcd_core::conn::SendMode;
use smcd_core::wire::clc::DeclineReason;

/// Why a stream carries its bytes over plain TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpReason {
    /// The peer is not an smcd listener on this host (nothing answered the
    /// rendezvous; no CLC byte was sent).
    NoSmcPeer,
    /// SMC-D is switched off for this destination (`SMCD_DISABLE` or the
    /// configured policy).
    Disabled,
    /// The peer connected without announcing itself (plain TCP client).
    PlainClient,
    /// The handshake ended in a Decline (the Linux reason code).
    Declined(Fallback),
}

impl TcpReason {
    /// The Linux decline code, for a Decline.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Declined(f) => Some(f.reason.code()),
            _ => None,
        }
    }
}

impl fmt::Display for TcpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSmcPeer => f.write_str("no smcd listener on this host for that address"),
            Self::Disabled => f.write_str("SMC-D disabled for this destination"),
            Self::PlainClient => f.write_str("the client did not announce itself (plain TCP)"),
            Self::Declined(fb) => {
                let who = match fb.declined_by {
                    DeclinedBy::Local => "us",
                    DeclinedBy::Peer => "the peer",
                };
                write!(
                    f,
                    "reason {:#010x}: {} (declined by {who})",
                    fb.reason.code(),
                    describe(fb.reason)
                )
            }
        }
    }
}

/// `NOSMCDDEV, no SMC-D device` (the code is printed before it).
fn describe(r: DeclineReason) -> String {
    match r.name() {
        Some(name) => format!("{name}, {}", r.description()),
        None => "unknown reason code".into(),
    }
}

/// Which path a stream's bytes take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// SMC-D over shared memory.
    SmcD(SmcdInfo),
    /// Plain TCP on the same connection.
    Tcp(TcpReason),
}

impl Transport {
    /// Whether this is SMC-D.
    pub fn is_smcd(&self) -> bool {
        matches!(self, Self::SmcD(_))
    }
}

impl fmt::Display for Transport {
    /// `smc-d v2 nocopy dmb 65536/65536 eid SMCD-LOOPBACK` or
    /// `tcp (reason 0x03030008: …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SmcD(i) => {
                let mode = match i.mode {
                    SendMode::Copy => "copy",
                    SendMode::NoCopy => "nocopy",
                };
                let eid = String::from_utf8_lossy(&i.eid.0).trim_end().to_owned();
                write!(
                    f,
                    "smc-d v{} {mode} dmb {}/{} eid {eid} peer {}",
                    i.version, i.own_dmb_size, i.peer_dmb_size, i.peer_gid
                )
            }
            Self::Tcp(r) => write!(f, "tcp ({r})"),
        }
    }
}
