//! # smcd-payload
//!
//! What the echo demos, the `smcd echo-client` and the benchmarks send and
//! check: a deterministic byte stream ([`payload::Payload`]) and a fast
//! running checksum that does not depend on how the stream was cut into
//! pieces ([`checksum::Checksum`]).

pub mod checksum;
pub mod payload;
