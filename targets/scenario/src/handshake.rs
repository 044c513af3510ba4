//! Drives a client and a server CLC engine over the in-image stream until
//! both report their outcome.

use smcd_core::clc::{Handshake, Outcome};

use crate::pipe::Pipe;
use crate::summary::Failure;

/// Rounds after which a handshake that has not ended counts as stalled (it
/// needs three: Proposal, Accept, Confirm).
const MAX_ROUNDS: u64 = 16;
/// Bytes taken from an engine per `poll_transmit`.
const TX_CHUNK: usize = 256;

/// The "TCP connection" between the two endpoints.
#[derive(Debug)]
pub(crate) struct Stream {
    /// Client to server.
    pub(crate) up: Pipe,
    /// Server to client.
    pub(crate) down: Pipe,
}

impl Stream {
    /// Both directions empty.
    pub(crate) const fn new() -> Self {
        Self {
            up: Pipe::new(),
            down: Pipe::new(),
        }
    }
}

/// Run both engines to their outcomes (client's, server's). Time advances
/// 1 ms per round, far from any CLC timeout.
pub(crate) fn complete(
    client: &mut Handshake<'_>,
    server: &mut Handshake<'_>,
    stream: &mut Stream,
) -> Result<(Outcome, Outcome), Failure> {
    let (mut client_end, mut server_end) = (None, None);
    for now_ms in 0..MAX_ROUNDS {
        flush(client, &mut stream.up)?;
        flush(server, &mut stream.down)?;
        let used = server.handle_input(now_ms, stream.up.readable());
        stream.up.consume(used);
        let used = client.handle_input(now_ms, stream.down.readable());
        stream.down.consume(used);
        client_end = client_end.or_else(|| client.poll_outcome());
        server_end = server_end.or_else(|| server.poll_outcome());
        if let (Some(c), Some(s)) = (client_end, server_end) {
            // A Decline may still be queued: it belongs on the stream.
            flush(client, &mut stream.up)?;
            flush(server, &mut stream.down)?;
            return Ok((c, s));
        }
    }
    Err(Failure::Stalled("CLC handshake"))
}

/// Move every pending CLC byte of `engine` onto `pipe`.
fn flush(engine: &mut Handshake<'_>, pipe: &mut Pipe) -> Result<(), Failure> {
    let mut buf = [0u8; TX_CHUNK];
    while let Some(n) = engine.poll_transmit(&mut buf) {
        let bytes = buf.get(..n).ok_or(Failure::PipeFull)?;
        if pipe.write(bytes) != n {
            return Err(Failure::PipeFull);
        }
    }
    Ok(())
}
