//! `smcd bench`: throughput and latency of the transports between two
//! processes. (Placeholder: only the raw shared-memory reference ring.)

// Used only by its tests until the bench commands land.
#[cfg_attr(not(test), allow(dead_code))]
mod raw;
