//! [`Handshake`]: one connection's CLC engine, client or server.

use super::client::ClientState;
use super::context::ClcContext;
use super::outcome::{Established, Outcome, Role};
use super::server::ServerState;
use super::session::Session;
use crate::wire::clc::ClcType;

#[derive(Debug)]
enum State {
    Client(ClientState),
    Server(ServerState),
}

/// The CLC handshake of one TCP connection, sans I/O.
///
/// Create it when the TCP connection is up ([`client`](Self::client) after
/// `connect`, [`server`](Self::server) after `accept`), then loop:
///
/// 1. write every byte [`poll_transmit`](Self::poll_transmit) yields to the
///    TCP stream;
/// 2. feed bytes read from the stream to [`handle_input`](Self::handle_input);
///    bytes it does not consume are application data;
/// 3. call [`handle_timeout`](Self::handle_timeout) when the time from
///    [`poll_timeout`](Self::poll_timeout) has come;
///
/// until [`poll_outcome`](Self::poll_outcome) yields the [`Outcome`]. On a
/// fallback, flush `poll_transmit` first (it may hold our Decline), then the
/// same stream carries the application's bytes. Time is any monotonic clock
/// in milliseconds.
///
/// Resources the engine took (DMB, peer binding, link-group reference) are
/// given back on every path except [`Outcome::Established`]; then
/// [`take_established`](Self::take_established) hands them to the caller.
/// Dropping the engine gives back whatever it still holds.
///
/// The engine owns its context `C` ([`ClcContext`]: a `&Host`, an
/// `Arc<Host>`, a `&'static Host`, a [`Context`](super::Context) of
/// borrowed parts), so it needs no borrowed lifetime of its own.
///
/// Every outcome is counted, by role, in the link-group table's
/// [`ClcStats`](crate::stats::ClcStats) ([`LinkGroups::clc_stats`](super::LinkGroups::clc_stats)).
#[derive(Debug)]
pub struct Handshake<C: ClcContext> {
    session: Session<C>,
    state: State,
}

impl<C: ClcContext> Handshake<C> {
    /// The client side, started at `now_ms`: queues the Proposal (or, with
    /// no SMC-Dv2 device to offer, Decline NOSMCDEV).
    pub fn client(ctx: C, now_ms: u64) -> Self {
        let mut session = Session::new(Role::Client, ctx);
        let state = State::Client(ClientState::start(&mut session, now_ms));
        Self { session, state }
    }

    /// The server side, started at `now_ms`: waits for the Proposal.
    pub fn server(ctx: C, now_ms: u64) -> Self {
        let mut session = Session::new(Role::Server, ctx);
        session.wait(now_ms);
        Self {
            session,
            state: State::Server(ServerState::WaitProposal),
        }
    }

    /// Our role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.session.role
    }

    /// Feed bytes received on the TCP stream at `now_ms`, in any split.
    ///
    /// Returns how many of them were CLC bytes. The engine stops right after
    /// the message that ends the handshake, so whatever follows (application
    /// data after a Decline, anything after the Confirm) is left to the
    /// caller: `data[returned..]` is application data. Once the handshake has
    /// ended, nothing is consumed.
    #[must_use = "unconsumed bytes are application data"]
    pub fn handle_input(&mut self, now_ms: u64, data: &[u8]) -> usize {
        let mut consumed = 0;
        while let Some(rest) = data.get(consumed..).filter(|r| !r.is_empty()) {
            let expected = match &self.state {
                State::Client(_) => ClcType::Accept,
                State::Server(s) => s.expected(),
            };
            let (used, received) = self.session.read(rest, expected);
            if let Some(received) = received {
                match &mut self.state {
                    State::Client(c) => c.handle(&mut self.session, received),
                    State::Server(s) => s.handle(&mut self.session, now_ms, received),
                }
            }
            if used == 0 {
                break;
            }
            consumed += used;
        }
        consumed
    }

    /// Copy pending CLC bytes into `buf`; `None` when there are none.
    ///
    /// Call after every other method until it returns `None`.
    #[must_use = "the returned bytes must be written to the TCP stream"]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.session.poll_transmit(buf)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due (the caller's
    /// milliseconds); `None` when no timer runs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.session.poll_timeout()
    }

    /// Tell the engine the time. At or past the deadline the handshake fails
    /// with [`HandshakeError::Timeout`](super::HandshakeError::Timeout): no
    /// Decline, no fallback.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.session.handle_timeout(now_ms);
    }

    /// The result, once; later calls return `None`.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.session.poll_outcome()
    }

    /// After [`Outcome::Established`]: the connection's resources (our DMB,
    /// the bound peer DMB, the link-group reference), once. `None` before,
    /// after any other outcome, and on later calls.
    #[must_use = "an established connection holds DMBs and a link-group reference"]
    pub fn take_established(&mut self) -> Option<Established> {
        self.session.take_established()
    }

    /// The context the engine runs in.
    pub fn context(&self) -> &C {
        &self.session.ctx
    }

    /// Whether the handshake still waits for CLC input.
    #[must_use]
    pub fn is_handshaking(&self) -> bool {
        self.session.is_running()
    }

    /// Whether CLC bytes wait for [`poll_transmit`](Self::poll_transmit).
    #[must_use]
    pub fn has_transmit(&self) -> bool {
        self.session.has_transmit()
    }
}
