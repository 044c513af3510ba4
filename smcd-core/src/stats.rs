//! Counters for connections and devices, read as `Copy` snapshots.
//!
//! Counters are plain `u64`s that wrap on overflow (they never panic). A
//! [`crate::conn::Connection`] keeps its own [`ConnStats`] and hands out
//! copies; a device (e.g. the loopback device of `smcd-lo`) fills a
//! [`DeviceStats`].

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
    /// Consumer-cursor-only headers we wrote (window updates, `spec/cdc.md` §7).
    pub window_updates_sent: u64,
    /// Headers from the peer that advanced its consumer cursor (re-opened our window).
    pub window_updates_received: u64,
    /// Aborts: local, by the peer, or because of a protocol violation.
    pub aborts: u64,
}

/// Per-device counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeviceStats {
    /// DMBs registered since the device was created.
    pub dmbs_registered: u64,
    /// DMBs currently registered (or still attached).
    pub dmbs_in_use: u64,
    /// Highest `dmbs_in_use` seen.
    pub dmbs_peak: u64,
    /// `register_dmb` calls that failed (limit reached or no memory).
    pub register_failures: u64,
    /// Bytes written by `move_data` (data and headers).
    pub bytes_moved: u64,
    /// Doorbell signals delivered (header writes and `signal_dmb`).
    pub signals: u64,
}

/// Add one to a counter, wrapping on overflow.
pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.wrapping_add(1);
}

/// Add `n` to a counter, wrapping on overflow.
pub(crate) fn add(counter: &mut u64, n: u32) {
    *counter = counter.wrapping_add(u64::from(n));
}
