//! Errors of the data path: what a call reports ([`ConnError`]), why a
//! connection was aborted because of the peer's shared memory
//! ([`Violation`]).

use core::fmt;

use crate::ops::ErrorKind;

/// Which of the peer's cursors a [`Violation`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CursorRole {
    /// The peer's producer cursor (how far it filled our ring).
    Producer,
    /// The peer's consumer cursor (how far it consumed what we sent).
    Consumer,
}

impl fmt::Display for CursorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CursorRole::Producer => "producer",
            CursorRole::Consumer => "consumer",
        })
    }
}

/// A value the peer wrote into our DMB that a conforming peer never writes.
/// The connection is aborted (our `peer_conn_abort` flag is sent) and nothing
/// of the offending header is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Violation {
    /// A cursor count is not inside its ring (`count ≥ ring`).
    OutOfRange {
        /// The cursor.
        cursor: CursorRole,
        /// The count read.
        count: u32,
        /// The ring size it must stay below.
        ring: u32,
    },
    /// A cursor's wrap counter went backwards.
    WrapBackwards {
        /// The cursor.
        cursor: CursorRole,
    },
    /// A cursor's count went backwards within the same wrap.
    CountBackwards {
        /// The cursor.
        cursor: CursorRole,
    },
    /// A cursor moved further than allowed: the producer by more than our
    /// free space, the consumer beyond what we have produced.
    Overrun {
        /// The cursor.
        cursor: CursorRole,
        /// Bytes it moved (saturated at `u32::MAX` for more than a ring).
        moved: u32,
        /// Bytes it could move at most.
        limit: u32,
    },
    /// Flags no conforming SMC-D peer sets together: `failover_validation`
    /// (SMC-R only), or `urg_data_present` without `urg_data_pending`.
    ImpossibleFlags {
        /// The producer-flags byte.
        prod_flags: u8,
        /// The connection-state-flags byte.
        conn_state_flags: u8,
    },
    /// A sticky connection-state flag seen earlier was cleared.
    StickyFlagCleared {
        /// The flags seen before.
        before: u8,
        /// The flags now.
        now: u8,
    },
    /// The producer cursor moved after an earlier header ended the peer's
    /// sending (`peer_done_writing`, `peer_conn_closed` or `peer_conn_abort`):
    /// data after the peer's FIN. Data in the same header as the flag is
    /// the peer's last data, not this.
    DataAfterShutdown {
        /// Bytes the producer cursor moved.
        moved: u32,
        /// The connection-state flags of the earlier header.
        conn_state_flags: u8,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::OutOfRange {
                cursor,
                count,
                ring,
            } => write!(
                f,
                "peer {cursor} cursor count {count} outside the {ring}-byte ring"
            ),
            Violation::WrapBackwards { cursor } => {
                write!(f, "peer {cursor} cursor wrap went backwards")
            }
            Violation::CountBackwards { cursor } => {
                write!(f, "peer {cursor} cursor went backwards")
            }
            Violation::Overrun {
                cursor,
                moved,
                limit,
            } => write!(
                f,
                "peer {cursor} cursor moved {moved} bytes, at most {limit} allowed"
            ),
            Violation::ImpossibleFlags {
                prod_flags,
                conn_state_flags,
            } => write!(
                f,
                "impossible CDC flags {prod_flags:#04x}/{conn_state_flags:#04x}"
            ),
            Violation::StickyFlagCleared { before, now } => write!(
                f,
                "sticky connection-state flags went from {before:#04x} to {now:#04x}"
            ),
            Violation::DataAfterShutdown {
                moved,
                conn_state_flags,
            } => write!(
                f,
                "peer produced {moved} bytes after ending its sending (flags {conn_state_flags:#04x})"
            ),
        }
    }
}

impl core::error::Error for Violation {}

/// What a [`Connection`](super::Connection) call reports.
///
/// Everything except [`WouldBlock`](ConnError::WouldBlock) and
/// [`NocopyRequired`](ConnError::NocopyRequired) is sticky: the connection
/// keeps reporting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnError {
    /// Nothing to read yet (not EOF), or no room in the peer's ring; wait for
    /// the peer's signal.
    WouldBlock,
    /// Sending after our own `shutdown_write` or `close` (EPIPE).
    WriteShutdown,
    /// Sending after the peer closed the connection (ECONNRESET in Linux).
    PeerClosed,
    /// The application already closed this connection.
    Closed,
    /// The peer aborted the connection (ECONNRESET).
    Reset,
    /// We aborted the connection (ECONNABORTED).
    Aborted,
    /// The peer wrote an invalid value into our DMB; we aborted.
    Violation(Violation),
    /// A device operation failed; the connection is dead (our abort flag is set).
    Device(ErrorKind),
    /// Zero-copy sending needs nocopy mode (the peer's DMB attached).
    NocopyRequired,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::WouldBlock => f.write_str("operation would block"),
            ConnError::WriteShutdown => f.write_str("write side already shut down"),
            ConnError::PeerClosed => f.write_str("peer closed the connection"),
            ConnError::Closed => f.write_str("connection closed by the application"),
            ConnError::Reset => f.write_str("connection reset by peer"),
            ConnError::Aborted => f.write_str("connection aborted"),
            ConnError::Violation(v) => write!(f, "protocol violation by peer: {v}"),
            ConnError::Device(k) => write!(f, "device error: {k}"),
            ConnError::NocopyRequired => f.write_str("zero-copy send needs nocopy mode"),
        }
    }
}

impl core::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ConnError::Violation(v) => Some(v),
            _ => None,
        }
    }
}
