//! [`pair`]: a client and a server endpoint of one host, joined by an
//! in-memory [`Pipe`] and handshaken — the in-process shape every unikernel
//! and test uses.

use super::{Endpoint, EndpointError, HostRef, Pipe, PipeEnd};

/// Rounds of polling after which a handshake over a pipe counts as stuck
/// (a handshake takes a handful).
const PAIR_ROUNDS: usize = 1_000;

/// A connected pair of endpoints of `client_host` and `server_host` over
/// `pipe`: both handshakes are driven at time `now_ms` until they end
/// (SMC-D, or TCP fallback on the pipe).
///
/// # Errors
///
/// The first [`EndpointError`] either side reported (e.g. a protocol error),
/// or [`EndpointError::WouldBlock`] if the handshake did not end within a
/// bounded number of rounds (a full pipe).
#[allow(clippy::type_complexity)] // a pair of endpoints, spelled out for the docs
pub fn pair<'p, H: HostRef, const N: usize>(
    client_host: H,
    server_host: H,
    pipe: &'p Pipe<N>,
    now_ms: u64,
) -> Result<(Endpoint<H, PipeEnd<'p, N>>, Endpoint<H, PipeEnd<'p, N>>), EndpointError> {
    let (a, b) = pipe.ends();
    let mut client = Endpoint::client(client_host, a, now_ms);
    let mut server = Endpoint::server(server_host, b, now_ms);
    for _ in 0..PAIR_ROUNDS {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
        client.poll(now_ms)?;
        server.poll(now_ms)?;
    }
    Err(EndpointError::WouldBlock)
}
