//! What a run reports: a [`Summary`] on success, a [`Failure`] otherwise.

use core::fmt;

use smcd_core::clc::{EidError, Fallback, HandshakeError};
use smcd_core::conn::{ConnError, SetupError};

/// Which device carried the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataPath {
    /// Interim: a loopback-like device over fixed arena slots, built on the
    /// core's `DmbTable` (until `smcd_lo::LoopbackDevice` is on main).
    InterimDevice,
}

impl DataPath {
    /// One-line description for the summary.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataPath::InterimDevice => {
                "interim static-slot device on the core's DmbTable (smcd-lo LoopbackDevice not on main yet)"
            }
        }
    }
}

impl fmt::Display for DataPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The figures of a passing run (defmt shows the fields; `Display` one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Summary {
    /// Which device carried the connections.
    pub path: DataPath,
    /// CLC version both SMC-D handshakes negotiated.
    pub clc_version: u8,
    /// Payload bytes moved in each direction, in each of copy and nocopy mode.
    pub bytes_per_direction: u32,
    /// Complete trips around the receive ring in each direction and mode.
    pub wraps_per_direction: u32,
    /// Decline reason code of the fallback handshake.
    pub fallback_reason: u32,
    /// Bytes moved in each direction over the stream after the fallback.
    pub fallback_bytes_per_direction: u32,
    /// Checksum over every stream of the run (as received, equal to as sent).
    pub checksum: u32,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PASS SMC-Dv{} copy + nocopy: {} B each way per mode ({} ring wraps each way), closed; \
             fallback: Decline {:#010x}, then {} B each way over the stream; checksum {:#010x}; \
             device: {}",
            self.clc_version,
            self.bytes_per_direction,
            self.wraps_per_direction,
            self.fallback_reason,
            self.fallback_bytes_per_direction,
            self.checksum,
            self.path
        )
    }
}

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// The arena cannot hold the DMBs the scenario needs.
    ArenaTooSmall,
    /// The static arena was already taken (the scenario runs once per boot).
    ArenaTaken,
    /// The scenario's UEID was refused.
    Eid(EidError),
    /// A handshake failed (protocol error or timeout).
    Handshake(HandshakeError),
    /// A handshake fell back to TCP where SMC-D or another reason was expected.
    Fallback(Fallback),
    /// A handshake ended otherwise than expected.
    Unexpected(&'static str),
    /// The handshake result was refused by the connection.
    Setup(SetupError),
    /// A connection operation failed.
    Conn(ConnError),
    /// A step did not finish within its round limit.
    Stalled(&'static str),
    /// The in-image stream had no room for a CLC message.
    PipeFull,
    /// The receiver saw end-of-stream before all bytes arrived.
    EarlyEof,
    /// The receiver did not see end-of-stream after the peer closed.
    NoEof,
    /// DMBs still registered or attached after every connection ended.
    Leak(usize),
    /// The receivers' checksum differs from the senders'.
    ChecksumMismatch {
        /// Checksum of the bytes sent.
        sent: u32,
        /// Checksum of the bytes received.
        received: u32,
    },
}

impl From<EidError> for Failure {
    fn from(e: EidError) -> Self {
        Failure::Eid(e)
    }
}

impl From<SetupError> for Failure {
    fn from(e: SetupError) -> Self {
        Failure::Setup(e)
    }
}

impl From<ConnError> for Failure {
    fn from(e: ConnError) -> Self {
        Failure::Conn(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ArenaTooSmall => f.write_str("arena too small for the scenario's DMBs"),
            Failure::ArenaTaken => f.write_str("the static arena was already taken"),
            Failure::Eid(e) => write!(f, "UEID refused: {e}"),
            Failure::Handshake(e) => write!(f, "handshake failed: {e}"),
            Failure::Fallback(fb) => write!(
                f,
                "unexpected fallback: {} (declined by {:?})",
                fb.reason, fb.declined_by
            ),
            Failure::Unexpected(what) => write!(f, "unexpected handshake outcome: {what}"),
            Failure::Setup(e) => write!(f, "connection setup: {e}"),
            Failure::Conn(e) => write!(f, "connection: {e}"),
            Failure::Stalled(step) => write!(f, "{step} stalled"),
            Failure::PipeFull => f.write_str("in-image stream full"),
            Failure::EarlyEof => f.write_str("end of stream before all bytes arrived"),
            Failure::NoEof => f.write_str("no end of stream after the peer closed"),
            Failure::Leak(n) => write!(f, "{n} DMBs left after every connection ended"),
            Failure::ChecksumMismatch { sent, received } => write!(
                f,
                "checksum mismatch: sent {sent:#010x}, received {received:#010x}"
            ),
        }
    }
}

impl core::error::Error for Failure {}
