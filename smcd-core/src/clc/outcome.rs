//! How a handshake ends: SMC-D established, fallback to TCP, or failure.

use core::fmt;

use super::lgr::{LinkGroup, LinkId};
use crate::conn::{Connection, SendMode};
use crate::dmb::{Chid, Gid};
use crate::ops::{Dmb, PeerDmb};
use crate::wire::clc::{DeclineReason, Eid, EmitError, Hostname, WireError};

/// Which end of the TCP connection an engine plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Sends the Proposal and the Confirm.
    Client,
    /// Sends the Accept.
    Server,
}

/// What an SMC-D handshake settled on: information only, no memory and no
/// tokens ([`Outcome::Established`], and the endpoint's transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SmcdInfo {
    /// Our role.
    pub role: Role,
    /// Index of the chosen device in the context's device list.
    pub device: usize,
    /// CLC version of the connection (2).
    pub version: u8,
    /// Peer's GID (128 bits for an emulated device such as loopback).
    pub peer_gid: Gid,
    /// CHID of the chosen device (same on both ends).
    pub chid: Chid,
    /// Size in bytes of our DMB, 32-byte CDC header included.
    pub own_dmb_size: usize,
    /// Size in bytes of the peer's DMB, 32-byte CDC header included.
    pub peer_dmb_size: usize,
    /// Copy or nocopy.
    pub mode: SendMode,
    /// Negotiated EID (zero if none).
    pub eid: Eid,
    /// Whether this side created the link group (the `first_contact` it sent).
    pub first_contact: bool,
    /// The link group's wire id.
    pub link_id: LinkId,
    /// Negotiated release (0 = v2.0, 1 = v2.1); learnt on first contact,
    /// else the highest this engine speaks.
    pub release: u8,
    /// Negotiated feature mask (bit 0: emulated ISM / 128-bit GIDs).
    pub features: u16,
    /// Peer's hostname from its first-contact extension, if it sent one in
    /// ASCII.
    pub peer_hostname: Option<Hostname>,
}

/// The resources of an established SMC-D connection, taken from the engine
/// with [`Handshake::take_established`](super::Handshake::take_established):
/// our DMB, the bound peer DMB and one link-group reference.
///
/// The handles are linear ([`Dmb`], [`PeerDmb`]): build the
/// [`Connection`] with [`into_connection`](Self::into_connection), and give
/// everything back through the device when it ends. An `Established` that is
/// dropped instead leaks its DMBs (they stay registered); it never frees
/// memory in use.
#[derive(Debug)]
#[must_use = "an established connection holds DMBs and a link-group reference"]
pub struct Established {
    pub(crate) info: SmcdInfo,
    pub(crate) own: Dmb,
    pub(crate) peer: PeerDmb,
    pub(crate) link_group: LinkGroup,
}

impl Established {
    /// What the handshake settled on.
    pub fn info(&self) -> SmcdInfo {
        self.info
    }

    /// The link group, with one reference held for this connection.
    pub fn link_group(&self) -> LinkGroup {
        self.link_group
    }

    /// The connection over the two DMBs, and the link-group reference the
    /// caller releases when the connection ends.
    pub fn into_connection(self) -> (Connection, LinkGroup) {
        (Connection::new(self.own, self.peer), self.link_group)
    }
}

/// Which side sent the Decline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DeclinedBy {
    /// This engine sent it.
    Local,
    /// The peer sent it.
    Peer,
}

/// The connection continues as plain TCP: the application's bytes follow
/// the Decline on the same stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fallback {
    /// The Decline's `peer_diagnosis`.
    pub reason: DeclineReason,
    /// Who declined.
    pub declined_by: DeclinedBy,
}

/// A message was well-formed by the rules of its own but broke the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolError {
    /// The message broke a receive rule of `docs/protocol/clc.md` §6.
    Malformed(WireError),
    /// The Accept names a CHID the Proposal did not offer
    /// (`docs/protocol/handshake.md` §2 step 12).
    ChidNotOffered(Chid),
    /// The Confirm's version differs from the Accept's.
    VersionMismatch {
        /// Version of our Accept.
        accept: u8,
        /// Version of the Confirm.
        confirm: u8,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed CLC message: {e}"),
            Self::ChidNotOffered(chid) => {
                write!(
                    f,
                    "Accept names CHID {chid}, which the Proposal did not offer"
                )
            }
            Self::VersionMismatch { accept, confirm } => write!(
                f,
                "Confirm has version {confirm}, the Accept had version {accept}"
            ),
        }
    }
}

impl core::error::Error for ProtocolError {}

/// A handshake that ends without fallback: the TCP connection must be closed
/// (Linux: client `connect()` fails, the server drops the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandshakeError {
    /// EPROTO: the peer broke the protocol; no Decline was sent.
    Protocol(ProtocolError),
    /// ETIMEDOUT: the expected CLC message did not arrive within
    /// [`CLC_WAIT_MS`](super::CLC_WAIT_MS).
    Timeout,
    /// One of our own messages could not be encoded (a bug, not expected).
    Emit(EmitError),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(e) => write!(f, "CLC protocol error: {e}"),
            Self::Timeout => f.write_str("timed out waiting for a CLC message"),
            Self::Emit(e) => write!(f, "cannot encode a CLC message: {e}"),
        }
    }
}

impl core::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Protocol(e) => Some(e),
            Self::Emit(e) => Some(e),
            Self::Timeout => None,
        }
    }
}

impl From<EmitError> for HandshakeError {
    fn from(e: EmitError) -> Self {
        Self::Emit(e)
    }
}

impl From<ProtocolError> for HandshakeError {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

/// The end of a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// SMC-D is up; the resources wait in the engine for
    /// [`Handshake::take_established`](super::Handshake::take_established).
    Established(SmcdInfo),
    /// Plain TCP on the same connection.
    Fallback(Fallback),
    /// Close the connection.
    Failed(HandshakeError),
}
