//! Runnable examples of smcd; see `examples/`. This library holds the pieces
//! the examples share: a payload pool, a fast stream checksum and a `std`
//! delay for the blocking driver.

pub mod checksum;
pub mod delay;
pub mod payload;
