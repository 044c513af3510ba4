//! What a run reports: a [`Summary`] on success, a [`Failure`] otherwise.

use core::fmt;

use smcd_core::clc::{EidError, Fallback};
use smcd_core::conn::ConnError;
use smcd_core::endpoint::EndpointError;

/// The figures of a passing run (defmt shows the fields; `Display` one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Summary {
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
    /// DMBs the loopback device registered over the run (all freed again).
    pub dmbs_registered: u64,
    /// CDC header signals the loopback device delivered.
    pub signals: u64,
    /// Checksum over every stream of the run (as received, equal to as sent).
    pub checksum: u32,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PASS SMC-Dv{} over smcd-lo LoopbackDevice + StaticArena, copy and nocopy: {} B each \
             way per mode ({} ring wraps each way), closed; fallback: Decline {:#010x}, then {} B \
             each way over the stream; {} DMBs registered and freed, {} signals; checksum {:#010x}",
            self.clc_version,
            self.bytes_per_direction,
            self.wraps_per_direction,
            self.fallback_reason,
            self.fallback_bytes_per_direction,
            self.dmbs_registered,
            self.signals,
            self.checksum
        )
    }
}

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// The static arena was already taken (the scenario runs once per boot).
    ArenaTaken,
    /// The scenario's UEID was refused.
    Eid(EidError),
    /// An endpoint call failed (handshake, connection or stream).
    Endpoint(EndpointError),
    /// A zero-copy call on the SMC-D connection failed.
    Conn(ConnError),
    /// A handshake fell back to TCP where SMC-D or another reason was expected.
    Fallback(Fallback),
    /// A handshake ended otherwise than expected.
    Unexpected(&'static str),
    /// An in-place call found no SMC-D connection.
    NoConnection,
    /// A step did not finish within its round limit.
    Stalled(&'static str),
    /// The receiver saw end-of-stream before all bytes arrived.
    EarlyEof,
    /// The receiver did not see end-of-stream after the peer closed.
    NoEof,
    /// DMBs still registered or attached after every connection ended.
    Leak(u64),
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

impl From<EndpointError> for Failure {
    fn from(e: EndpointError) -> Self {
        Failure::Endpoint(e)
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
            Failure::ArenaTaken => f.write_str("the static arena was already taken"),
            Failure::Eid(e) => write!(f, "UEID refused: {e}"),
            Failure::Endpoint(e) => write!(f, "endpoint: {e}"),
            Failure::Conn(e) => write!(f, "connection: {e}"),
            Failure::Fallback(fb) => write!(
                f,
                "unexpected fallback: {} (declined by {:?})",
                fb.reason, fb.declined_by
            ),
            Failure::Unexpected(what) => write!(f, "unexpected handshake outcome: {what}"),
            Failure::NoConnection => f.write_str("no SMC-D connection for an in-place call"),
            Failure::Stalled(step) => write!(f, "{step} stalled"),
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
