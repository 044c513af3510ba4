//! Counters for connections, devices and handshakes, read as `Copy`
//! snapshots.
//!
//! Counters are plain `u64`s that wrap on overflow (they never panic). A
//! [`crate::conn::Connection`] keeps its own [`ConnStats`] and hands out
//! copies; a device (e.g. the loopback device of `smcd-lo`) fills a
//! [`DeviceStats`]; the host's [`LinkGroups`](crate::clc::LinkGroups) table,
//! which every handshake engine of a host shares, counts how handshakes
//! ended in a [`ClcStats`].

mod clc;
mod conn;
mod device;

pub use clc::{ClcStats, FALLBACK_CODES, FallbackCounts, ReasonCount, RoleStats};
pub use conn::ConnStats;
pub use device::DeviceStats;

/// Add one to a counter, wrapping on overflow.
pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.wrapping_add(1);
}

/// Add `n` to a counter, wrapping on overflow.
pub(crate) fn add(counter: &mut u64, n: u32) {
    *counter = counter.wrapping_add(u64::from(n));
}
