//! CLC messages (`docs/protocol/clc.md`): the SMC handshake on the TCP connection.
//!
//! Every message is an 8-byte [header](ClcHeaderRepr), a body and a 4-byte trailer;
//! the header's `length` counts all of it. All integers are big-endian.
//!
//! | message | Repr | Linux struct (net/smc/smc_clc.h) |
//! |---|---|---|
//! | Proposal v1/v2 | [`ProposalRepr`] | `struct smc_clc_msg_proposal` + areas |
//! | Accept / Confirm (SMC-D v1/v2) | [`AcceptRepr`] | `struct smc_clc_msg_accept_confirm` |
//! | Decline v1/v2 | [`DeclineRepr`] | `struct smc_clc_msg_decline(_v2)` |
//!
//! [`ClcMessage::parse`] applies every receive-side rule of `docs/protocol/clc.md` §6
//! (H1–H4, P1–P6, A1–A3, D1) plus two stricter smcd rules (X1, X2, see
//! [`Rule`]); each failure is a [`WireError`] naming the rule, the byte offset
//! and what Linux does about it. A well-formed Proposal that a server must
//! still decline is judged by [`server_precheck`].
//!
//! # Receiving a message
//!
//! ```
//! use smcd_core::wire::clc::{ClcHeaderRepr, ClcMessage, ClcType};
//!
//! # let stream: &[u8] = &[
//! #     0xe2, 0xd4, 0xc3, 0xd9, 0x04, 0x00, 0x1c, 0x18, 0, 0, 0, 0, 0, 0, 0, 0,
//! #     0x04, 0, 0, 0, 0, 0, 0, 0, 0xe2, 0xd4, 0xc3, 0xd9,
//! # ];
//! // 1. Peek the 8-byte header to learn type and length.
//! let header = ClcHeaderRepr::peek(stream)?;
//! header.check_type(ClcType::Accept)?; // a Decline is always accepted too
//! // 2. Read `receive_len()` bytes (discard the rest of an over-long message).
//! let message = &stream[..header.receive_len()];
//! // 3. Parse and validate.
//! match ClcMessage::parse(message)? {
//!     ClcMessage::Decline(d) => assert!(d.out_of_sync),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), smcd_core::wire::clc::WireError>(())
//! ```

mod accept;
pub mod bufsize;
mod codec;
mod decline;
mod eid;
mod error;
mod fce;
pub mod fields;
mod header;
mod precheck;
mod proposal;
mod reason;

pub use accept::{AcceptKind, AcceptRepr};
pub use decline::DeclineRepr;
pub use eid::{Eid, Hostname};
pub use error::{EmitError, Rule, WireError};
pub use fce::Fce;
pub use header::{
    ACCEPT_RCVBUF_BYTES, CLC_HEADER_LEN, CLC_TRAILER_LEN, ClcHeaderRepr, ClcType, Eyecatcher,
    PROPOSAL_RCVBUF_BYTES, SmcType,
};
pub use precheck::{SMC_RELEASE_MAX, ServerPrecheck, SmcdV2Offer, server_precheck};
pub use proposal::{
    Devices, GidChid, IPAREA_OFFSET_MAX, IpPrefix, Ipv6Prefix, MAX_GIDCHID_ENTRIES,
    MAX_IPV6_PREFIXES, MAX_UEIDS, ProposalRepr, SMCD_V2_EXT_OFFSET_MAX, SmcdV2Ext,
    V2_EXT_OFFSET_MAX, V2Ext,
};
pub use reason::DeclineReason;

/// OS type value for Linux in a Decline or first-contact extension.
pub const OS_TYPE_LINUX: u8 = 2;

/// Any CLC message, parsed and validated.
///
/// A Proposal Repr holds its lists inline (about 700 bytes); without an
/// allocator it cannot be boxed, so the variants differ in size.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClcMessage {
    /// Type 1, client → server.
    Proposal(ProposalRepr),
    /// Type 2 (Accept, server → client) or type 3 (Confirm, client → server);
    /// [`AcceptRepr::kind`] tells which.
    AcceptConfirm(AcceptRepr),
    /// Type 4, either direction.
    Decline(DeclineRepr),
}

impl ClcMessage {
    /// Parses and validates one CLC message of any type.
    ///
    /// `bytes` must start with the message and hold at least
    /// [`ClcHeaderRepr::receive_len`] bytes; bytes after the header's
    /// `length` are ignored.
    ///
    /// # Errors
    ///
    /// A [`WireError`] naming the violated rule of `docs/protocol/clc.md` §6; an
    /// unknown message type fails rule H2.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let header = ClcHeaderRepr::peek(bytes)?;
        match header.r#type {
            ClcType::Proposal => ProposalRepr::parse(bytes).map(Self::Proposal),
            ClcType::Accept | ClcType::Confirm => AcceptRepr::parse(bytes).map(Self::AcceptConfirm),
            ClcType::Decline => DeclineRepr::parse(bytes).map(Self::Decline),
            ClcType::Unknown(r#type) => Err(WireError::UnexpectedType {
                r#type,
                expected: None,
            }),
        }
    }

    /// The message type.
    pub fn clc_type(&self) -> ClcType {
        match self {
            Self::Proposal(_) => ClcType::Proposal,
            Self::AcceptConfirm(a) => a.kind.into(),
            Self::Decline(_) => ClcType::Decline,
        }
    }

    /// Number of bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Proposal(p) => p.buffer_len(),
            Self::AcceptConfirm(a) => a.buffer_len(),
            Self::Decline(d) => d.buffer_len(),
        }
    }

    /// Writes the message to the start of `buf`; returns the bytes written.
    ///
    /// # Errors
    ///
    /// [`EmitError`] if `buf` is too small or the message cannot be encoded.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        match self {
            Self::Proposal(p) => p.emit(buf),
            Self::AcceptConfirm(a) => a.emit(buf),
            Self::Decline(d) => d.emit(buf),
        }
    }
}
