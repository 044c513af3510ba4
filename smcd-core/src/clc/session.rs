//! The parts of a handshake both roles share: input reassembly, the pending
//! output, the CLC timer, held resources and the final outcome.

use super::CLC_WAIT_MS;
use super::claim::Claim;
use super::context::ClcContext;
use super::outcome::{
    DeclinedBy, Established, Fallback, HandshakeError, Outcome, ProtocolError, Role, SmcdInfo,
};
use super::reader::{Read, Reader};
use super::transmit::Transmit;
use crate::wire::clc::{
    ClcHeaderRepr, ClcMessage, ClcType, DeclineReason, DeclineRepr, EmitError, Eyecatcher,
    OS_TYPE_LINUX, WireError,
};

/// One received message, or why it was rejected.
// Lives on the stack for one call; there is no heap to box the message into.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Received {
    /// A valid message of the expected type or a Decline.
    Message(ClcMessage),
    /// Rejected; `version` is the header's when the header was readable.
    Rejected {
        /// Header version of the rejected message.
        version: Option<u8>,
        /// What was wrong.
        error: WireError,
    },
}

#[derive(Debug)]
enum End {
    Running,
    Ready(Outcome),
    Taken,
}

/// State shared by the client and the server role.
pub(crate) struct Session<C: ClcContext> {
    pub(crate) role: Role,
    /// The host: configuration, devices, link groups.
    pub(crate) ctx: C,
    /// Resources held for the connection being set up.
    pub(crate) claim: Claim,
    reader: Reader,
    tx: Transmit,
    deadline: Option<u64>,
    end: End,
    /// What an established handshake settled on, until its resources are
    /// taken.
    established: Option<SmcdInfo>,
}

impl<C: ClcContext> core::fmt::Debug for Session<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("devices", &self.ctx.devices())
            .field("claim", &self.claim)
            .field("deadline", &self.deadline)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<C: ClcContext> Session<C> {
    pub(crate) fn new(role: Role, ctx: C) -> Self {
        Self {
            role,
            ctx,
            claim: Claim::default(),
            reader: Reader::new(),
            tx: Transmit::new(),
            deadline: None,
            end: End::Running,
            established: None,
        }
    }

    /// Whether the handshake still expects CLC input.
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.end, End::Running)
    }

    /// Consume bytes of the next message, which must be of type `expected`
    /// or a Decline. Returns the bytes consumed and, once complete, the
    /// message. Consumes nothing once the handshake has ended.
    pub(crate) fn read(&mut self, data: &[u8], expected: ClcType) -> (usize, Option<Received>) {
        if !self.is_running() {
            return (0, None);
        }
        let (used, read) = self.reader.feed(data, |bytes| {
            let header = ClcHeaderRepr::peek(bytes)?;
            header.check_type(expected)?;
            Ok((usize::from(header.length), header.receive_buffer_len()))
        });
        let received = match read {
            Read::Incomplete => None,
            Read::BadHeader(error) => Some(Received::Rejected {
                version: None,
                error,
            }),
            Read::Message(bytes) => Some(match ClcMessage::parse(bytes) {
                Ok(message) => Received::Message(message),
                Err(error) => Received::Rejected {
                    version: ClcHeaderRepr::peek(bytes).ok().map(|h| h.version),
                    error,
                },
            }),
        };
        (used, received)
    }

    /// Arm the CLC timer for the next message.
    pub(crate) fn wait(&mut self, now_ms: u64) {
        self.deadline = Some(now_ms.saturating_add(CLC_WAIT_MS));
    }

    /// Queue one message for [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    ///
    /// The message could not be encoded (a bug; the handshake then fails).
    pub(crate) fn send(
        &mut self,
        emit: impl FnOnce(&mut [u8]) -> Result<usize, EmitError>,
    ) -> Result<(), EmitError> {
        let mut result = Ok(());
        self.tx
            .queue(|buf| emit(buf).map_err(|e| result = Err(e)).ok());
        result
    }

    /// Send a Decline and fall back to TCP.
    pub(crate) fn decline(&mut self, reason: DeclineReason, version: u8, out_of_sync: bool) {
        let decline = DeclineRepr {
            eyecatcher: Eyecatcher::Smcr,
            version,
            out_of_sync,
            id_for_peer: [0; 8],
            peer_diagnosis: reason,
            os_type: if version >= 2 { OS_TYPE_LINUX } else { 0 },
            peer_diagnosis_v2: [0; 4],
            trailer: Eyecatcher::Smcr,
        };
        match self.send(|buf| decline.emit(buf)) {
            Ok(()) => self.finish(Outcome::Fallback(Fallback {
                reason,
                declined_by: DeclinedBy::Local,
            })),
            Err(e) => self.fail(HandshakeError::Emit(e)),
        }
    }

    /// The peer declined: fall back silently.
    pub(crate) fn declined(&mut self, reason: DeclineReason) {
        self.finish(Outcome::Fallback(Fallback {
            reason,
            declined_by: DeclinedBy::Peer,
        }));
    }

    /// A message was rejected: answer with a Decline of `decline_version`
    /// where Linux does, else fail with a protocol error.
    pub(crate) fn rejected(&mut self, error: WireError, decline_version: u8) {
        match error.decline_reason() {
            Some(reason) => self.decline(reason, decline_version, false),
            None => self.fail(ProtocolError::Malformed(error).into()),
        }
    }

    /// A valid message of a type that does not fit the state (only reachable
    /// if the header check and the parser disagree): protocol error.
    pub(crate) fn unexpected(&mut self, message: &ClcMessage, expected: ClcType) {
        let error = WireError::UnexpectedType {
            r#type: message.clc_type().into(),
            expected: Some(expected),
        };
        self.fail(ProtocolError::Malformed(error).into());
    }

    /// End without fallback.
    pub(crate) fn fail(&mut self, error: HandshakeError) {
        self.finish(Outcome::Failed(error));
    }

    /// End the handshake and count how it ended in the link-group table's
    /// [`ClcStats`](crate::stats::ClcStats). Resources still claimed are
    /// given back, except for an established connection, whose resources
    /// wait for [`take_established`](Self::take_established).
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if !self.is_running() {
            return;
        }
        self.ctx.link_groups().record(self.role, &outcome);
        if !matches!(outcome, Outcome::Established(_)) {
            self.release();
        }
        if let Outcome::Established(info) = outcome {
            self.established = Some(info);
        }
        self.deadline = None;
        self.reader.reset();
        self.end = End::Ready(outcome);
    }

    pub(crate) fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.tx.poll(buf)
    }

    pub(crate) fn has_transmit(&self) -> bool {
        self.tx.is_pending()
    }

    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.deadline
    }

    pub(crate) fn handle_timeout(&mut self, now_ms: u64) {
        if self.deadline.is_some_and(|d| now_ms >= d) {
            self.fail(HandshakeError::Timeout);
        }
    }

    /// Give back whatever the claim holds.
    pub(crate) fn release(&mut self) {
        self.claim
            .release(self.ctx.devices(), self.ctx.link_groups());
    }

    /// The resources of an established connection, once.
    pub(crate) fn take_established(&mut self) -> Option<Established> {
        self.established
            .take()
            .and_then(|info| self.claim.take(info))
    }

    pub(crate) fn poll_outcome(&mut self) -> Option<Outcome> {
        match core::mem::replace(&mut self.end, End::Taken) {
            End::Ready(outcome) => Some(outcome),
            other => {
                self.end = other;
                None
            }
        }
    }
}

impl<C: ClcContext> Drop for Session<C> {
    /// Resources not taken (a running handshake, an established connection
    /// nobody took) go back.
    fn drop(&mut self) {
        self.release();
    }
}
