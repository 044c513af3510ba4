//! Runnable examples of smcd; see `examples/`. This library holds the pieces
//! the examples share: a payload pool, a fast stream checksum, the echo
//! pattern over any [`echo::Link`] (SMC-D, TCP, Unix sockets), and the
//! spin-then-park waiting that wakes on the loopback device's doorbell.

pub use smcd_payload::{checksum, payload};

pub mod echo;
pub mod park;
pub mod smc;
pub mod socket;
pub mod wait;
