//! How a handshake ends: SMC-D established, fallback to TCP, or failure.

use core::fmt;

use super::lgr::LinkGroup;
use crate::conn::{ConnParams, SendMode};
use crate::dmb::{Chid, DmbToken, Gid};
use crate::ops::Dmb;
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

/// Everything an SMC-D connection needs, handed over by the engine.
///
/// [`conn_params`](Self::conn_params) gives what [`Connection::new`](crate::conn::Connection::new)
/// needs. The caller owns the resources from here on: unregister
/// [`dmb`](Self::dmb), detach the DMB of [`SendMode::NoCopy`] and release
/// [`link_group`](Self::link_group) (`LinkGroups::release`) when the
/// connection ends.
#[derive(Debug, Clone, Copy)]
pub struct Established {
    /// Our role.
    pub role: Role,
    /// Index of the chosen device in the caller's device slice.
    pub device: usize,
    /// CLC version of the connection (2).
    pub version: u8,
    /// Peer's GID (128 bits for an emulated device such as loopback).
    pub peer_gid: Gid,
    /// CHID of the chosen device (same on both ends).
    pub chid: Chid,
    /// Token of the peer's DMB (we write into it).
    pub peer_token: DmbToken,
    /// Size in bytes of the peer's DMB, 32-byte CDC header included.
    pub peer_dmb_size: usize,
    /// Our own DMB (registered by the engine; the peer writes into it).
    pub dmb: Dmb,
    /// Copy or nocopy, with the attached peer DMB.
    pub mode: SendMode,
    /// Negotiated EID (zero if none).
    pub eid: Eid,
    /// Whether this side created the link group (the `first_contact` it sent).
    pub first_contact: bool,
    /// The link group, with one reference held for this connection.
    pub link_group: LinkGroup,
    /// Negotiated release (0 = v2.0, 1 = v2.1); learnt on first contact,
    /// else the highest this engine speaks.
    pub release: u8,
    /// Negotiated feature mask (bit 0: emulated ISM / 128-bit GIDs).
    pub features: u16,
    /// Peer's hostname from its first-contact extension, if it sent one in
    /// ASCII.
    pub peer_hostname: Option<Hostname>,
}

impl Established {
    /// The inputs of [`Connection::new`](crate::conn::Connection::new) for this
    /// connection.
    pub fn conn_params(&self) -> ConnParams {
        ConnParams {
            own: self.dmb,
            peer_token: self.peer_token,
            peer_dmb_len: self.peer_dmb_size,
            mode: self.mode,
        }
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
    /// The message broke a receive rule of `spec/clc.md` §6.
    Malformed(WireError),
    /// The Accept names a CHID the Proposal did not offer
    /// (`spec/handshake.md` §2 step 12).
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
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// SMC-D is up.
    Established(Established),
    /// Plain TCP on the same connection.
    Fallback(Fallback),
    /// Close the connection.
    Failed(HandshakeError),
}
