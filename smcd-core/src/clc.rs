//! Sans-IO CLC handshake engine (client and server roles).
//!
//! To be built: `Client`/`Server` with `handle_input`, `poll_transmit`,
//! `handle_timeout`/`poll_timeout` and an established-or-fallback outcome.
