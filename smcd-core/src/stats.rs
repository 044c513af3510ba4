//! Counters for connections and devices, read as `Copy` snapshots.
