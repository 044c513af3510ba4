//! What a run reports: a [`Summary`] on success, a [`Failure`] otherwise.

use core::fmt;

use smcd_core::cursor::CursorError;
use smcd_core::mem::MemError;
use smcd_core::wire::cdc::CdcError;

/// Which layers of smcd carried the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPath {
    /// Interim: CDC rings driven directly through `DmbMem` over the static
    /// arena (no device, no handshake yet).
    DmbMemOnly,
}

impl DataPath {
    /// One-line description for the summary.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataPath::DmbMemOnly => {
                "CDC rings driven through DmbMem on the static arena (no device/handshake yet)"
            }
        }
    }
}

impl fmt::Display for DataPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The figures of a passing run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Which layers carried the data.
    pub path: DataPath,
    /// Payload bytes moved in each direction.
    pub bytes_per_direction: u32,
    /// Ring wrap-arounds in each direction.
    pub wraps_per_direction: u32,
    /// Checksum over both directions' streams (as received, equal to as sent).
    pub checksum: u32,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PASS {} bytes each way, {} ring wraps each way, checksum {:#010x}; path: {}",
            self.bytes_per_direction, self.wraps_per_direction, self.checksum, self.path
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Summary {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "PASS {=u32} bytes each way, {=u32} ring wraps each way, checksum {=u32:#010x}; path: {=str}",
            self.bytes_per_direction,
            self.wraps_per_direction,
            self.checksum,
            self.path.as_str()
        );
    }
}

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// A DMB access was refused.
    Mem(MemError),
    /// A CDC header could not be stored.
    Cdc(CdcError),
    /// A cursor read back from a DMB lies outside the ring.
    Cursor(CursorError),
    /// The receiver's checksum differs from the sender's.
    ChecksumMismatch {
        /// Checksum of the bytes sent.
        sent: u32,
        /// Checksum of the bytes received.
        received: u32,
    },
    /// The arena cannot hold the DMBs the scenario needs.
    ArenaTooSmall,
    /// The static arena was already taken (the scenario runs once per boot).
    ArenaTaken,
}

impl From<MemError> for Failure {
    fn from(e: MemError) -> Self {
        Failure::Mem(e)
    }
}

impl From<CdcError> for Failure {
    fn from(e: CdcError) -> Self {
        Failure::Cdc(e)
    }
}

impl From<CursorError> for Failure {
    fn from(e: CursorError) -> Self {
        Failure::Cursor(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Mem(e) => write!(f, "DMB access failed: {e}"),
            Failure::Cdc(e) => write!(f, "CDC header: {e}"),
            Failure::Cursor(e) => write!(f, "invalid cursor: {e}"),
            Failure::ChecksumMismatch { sent, received } => write!(
                f,
                "checksum mismatch: sent {sent:#010x}, received {received:#010x}"
            ),
            Failure::ArenaTooSmall => f.write_str("arena too small for the scenario's DMBs"),
            Failure::ArenaTaken => f.write_str("the static arena was already taken"),
        }
    }
}

impl core::error::Error for Failure {}
