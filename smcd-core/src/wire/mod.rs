//! Wire formats: CLC messages (big-endian, on the TCP connection) and the
//! SMC-D CDC header (host order, in shared memory).

pub mod cdc;
