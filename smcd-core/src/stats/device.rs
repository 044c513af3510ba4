//! [`DeviceStats`]: the counters of one device.

/// Per-device counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeviceStats {
    /// DMBs registered since the device was created.
    pub dmbs_registered: u64,
    /// DMBs currently registered (or still attached).
    pub dmbs_in_use: u64,
    /// Nocopy mappings of DMBs not yet detached.
    pub attachments: u64,
    /// Highest `dmbs_in_use` seen.
    pub dmbs_peak: u64,
    /// `register_dmb` calls that failed (limit reached or no memory).
    pub register_failures: u64,
    /// Bytes written by `move_data` (data and headers).
    pub bytes_moved: u64,
    /// Doorbell signals delivered (header writes and `signal_dmb`).
    pub signals: u64,
}
