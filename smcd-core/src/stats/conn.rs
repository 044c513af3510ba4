//! [`ConnStats`]: the counters of one SMC-D connection.

/// Per-connection counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnStats {
    /// Payload bytes written into the peer's ring.
    pub bytes_sent: u64,
    /// Payload bytes handed to the application.
    pub bytes_received: u64,
    /// Calls of `send` / `send_with`.
    pub send_calls: u64,
    /// Calls of `recv` / `recv_with`.
    pub recv_calls: u64,
    /// Sends that found the peer's ring full (window closed).
    pub buffer_full: u64,
    /// Consumer-cursor-only headers we wrote (window updates, `docs/protocol/cdc.md` §7).
    pub window_updates_sent: u64,
    /// Headers from the peer that advanced its consumer cursor (re-opened our window).
    pub window_updates_received: u64,
    /// Aborts: local, by the peer, or because of a protocol violation.
    pub aborts: u64,
}
