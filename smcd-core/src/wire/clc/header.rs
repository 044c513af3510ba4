//! The 8-byte CLC header common to all messages (`docs/protocol/clc.md` §2) and the
//! small enums it carries.

use core::fmt;

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::codec::{read_at, write_at};
use super::error::{EmitError, WireError};

/// Length of the CLC header in bytes (8).
pub const CLC_HEADER_LEN: usize = size_of::<ClcHeader>();
/// Length of the CLC trailer (an eyecatcher) in bytes.
pub const CLC_TRAILER_LEN: usize = 4;
/// Size of Linux's receive buffer for a Proposal or Confirm
/// (`sizeof(struct smc_clc_msg_proposal_area)`). Longer messages are parsed
/// from their first 652 bytes only and their trailer is not checked.
pub const PROPOSAL_RCVBUF_BYTES: usize = 652;
/// Size of Linux's receive buffer for an Accept (104 + 52 + 4), same rule.
pub const ACCEPT_RCVBUF_BYTES: usize = 160;

/// The raw CLC header, `struct smc_clc_msg_hdr` (net/smc/smc_clc.h).
///
/// ```text
///   0       1       2       3       4       5       6       7
/// +-------+-------+-------+-------+-------+-------+-------+-------+
/// |          eyecatcher           | type  |    length     |v |t2|t1
/// +-------+-------+-------+-------+-------+-------+-------+-------+
///                                  byte 7: version<<4 | typev2<<2 | typev1
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct ClcHeader {
    /// "SMCR" or "SMCD" in EBCDIC.
    pub(crate) eyecatcher: [u8; 4],
    /// Message type, 1..=4.
    pub(crate) r#type: u8,
    /// Total message length including header and trailer.
    pub(crate) length: U16,
    /// `version` (bits 7–4), `typev2` (bits 3–2), `typev1` (bits 1–0).
    pub(crate) version_typev2_typev1: u8,
}

/// An eyecatcher: 4 EBCDIC bytes in the header and the trailer (`docs/protocol/clc.md` §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Eyecatcher {
    /// "SMCR" (`E2 D4 C3 D9`): Proposal, Decline, SMC-R Accept/Confirm.
    Smcr,
    /// "SMCD" (`E2 D4 C3 C4`): SMC-D Accept/Confirm.
    Smcd,
    /// Anything else (only kept where Linux does not check it: the trailer of
    /// a Decline or of an over-long message).
    Unknown([u8; 4]),
}

impl Eyecatcher {
    /// Bytes of "SMCR" in EBCDIC.
    pub const SMCR_BYTES: [u8; 4] = [0xE2, 0xD4, 0xC3, 0xD9];
    /// Bytes of "SMCD" in EBCDIC.
    pub const SMCD_BYTES: [u8; 4] = [0xE2, 0xD4, 0xC3, 0xC4];

    /// Whether this is "SMCR" or "SMCD".
    pub const fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

    /// The four wire bytes.
    pub const fn to_bytes(self) -> [u8; 4] {
        match self {
            Self::Smcr => Self::SMCR_BYTES,
            Self::Smcd => Self::SMCD_BYTES,
            Self::Unknown(b) => b,
        }
    }
}

impl From<[u8; 4]> for Eyecatcher {
    fn from(b: [u8; 4]) -> Self {
        match b {
            Self::SMCR_BYTES => Self::Smcr,
            Self::SMCD_BYTES => Self::Smcd,
            other => Self::Unknown(other),
        }
    }
}

impl From<Eyecatcher> for [u8; 4] {
    fn from(e: Eyecatcher) -> Self {
        e.to_bytes()
    }
}

impl fmt::Display for Eyecatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smcr => f.write_str("SMCR"),
            Self::Smcd => f.write_str("SMCD"),
            Self::Unknown([a, b, c, d]) => write!(f, "{a:02x}{b:02x}{c:02x}{d:02x}"),
        }
    }
}

/// The CLC message type (header byte 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClcType {
    /// 1: Proposal.
    Proposal,
    /// 2: Accept.
    Accept,
    /// 3: Confirm.
    Confirm,
    /// 4: Decline.
    Decline,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for ClcType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Proposal,
            2 => Self::Accept,
            3 => Self::Confirm,
            4 => Self::Decline,
            other => Self::Unknown(other),
        }
    }
}

impl From<ClcType> for u8 {
    fn from(t: ClcType) -> Self {
        match t {
            ClcType::Proposal => 1,
            ClcType::Accept => 2,
            ClcType::Confirm => 3,
            ClcType::Decline => 4,
            ClcType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for ClcType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proposal => f.write_str("Proposal"),
            Self::Accept => f.write_str("Accept"),
            Self::Confirm => f.write_str("Confirm"),
            Self::Decline => f.write_str("Decline"),
            Self::Unknown(v) => write!(f, "unknown type {v}"),
        }
    }
}

/// The 2-bit SMC type of a Proposal's `typev1`/`typev2` or an Accept's `typev1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SmcType {
    /// 0: SMC-R.
    R,
    /// 1: SMC-D.
    D,
    /// 2: none.
    N,
    /// 3: both SMC-R and SMC-D.
    B,
}

impl SmcType {
    /// The type from the low two bits of `v`.
    pub const fn from_bits(v: u8) -> Self {
        match v & 0b11 {
            0 => Self::R,
            1 => Self::D,
            2 => Self::N,
            _ => Self::B,
        }
    }

    /// The 2-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            Self::R => 0,
            Self::D => 1,
            Self::N => 2,
            Self::B => 3,
        }
    }

    /// Whether SMC-D is offered (D or B; Linux `smcd_indicated`).
    pub const fn has_d(self) -> bool {
        matches!(self, Self::D | Self::B)
    }

    /// Whether SMC-R is offered (R or B; Linux `smcr_indicated`).
    pub const fn has_r(self) -> bool {
        matches!(self, Self::R | Self::B)
    }
}

impl fmt::Display for SmcType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::R => "R",
            Self::D => "D",
            Self::N => "N",
            Self::B => "B",
        })
    }
}

/// The decoded CLC header: what the handshake engine peeks at before the
/// whole message has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClcHeaderRepr {
    /// Header eyecatcher (validated: "SMCR" or "SMCD").
    pub eyecatcher: Eyecatcher,
    /// Message type.
    pub r#type: ClcType,
    /// Total message length in bytes.
    pub length: u16,
    /// Protocol version (4 bits, ≥ 1).
    pub version: u8,
    /// Raw 2-bit `typev2` (Proposal: SMC type for v2; Accept/Confirm: bit 1
    /// = `first_contact`; Decline: bit 1 = `out_of_sync`).
    pub typev2: u8,
    /// Raw 2-bit `typev1`.
    pub typev1: u8,
}

impl ClcHeaderRepr {
    /// Decodes the header at the start of `bytes` and applies the header
    /// rules H3 (eyecatcher) and H1 (version ≥ 1).
    ///
    /// Only the first [`CLC_HEADER_LEN`] bytes are looked at.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] with fewer than 8 bytes,
    /// [`WireError::BadEyecatcher`] (H3), [`WireError::BadVersion`] (H1).
    pub fn peek(bytes: &[u8]) -> Result<Self, WireError> {
        let raw: ClcHeader = read_at(bytes, 0)?;
        let eyecatcher = Eyecatcher::from(raw.eyecatcher);
        if !eyecatcher.is_known() {
            return Err(WireError::BadEyecatcher {
                eyecatcher: raw.eyecatcher,
            });
        }
        let version = raw.version_typev2_typev1 >> 4;
        if version < 1 {
            return Err(WireError::BadVersion { version });
        }
        Ok(Self {
            eyecatcher,
            r#type: ClcType::from(raw.r#type),
            length: raw.length.get(),
            version,
            typev2: (raw.version_typev2_typev1 >> 2) & 0b11,
            typev1: raw.version_typev2_typev1 & 0b11,
        })
    }

    /// Rule H2: the type must be `expected`, or Decline (a Decline is always
    /// accepted in place of the expected message).
    ///
    /// # Errors
    ///
    /// [`WireError::UnexpectedType`] otherwise.
    pub fn check_type(&self, expected: ClcType) -> Result<(), WireError> {
        if self.r#type == expected || self.r#type == ClcType::Decline {
            return Ok(());
        }
        Err(WireError::UnexpectedType {
            r#type: self.r#type.into(),
            expected: Some(expected),
        })
    }

    /// The type must be exactly `expected` (for a parser of one message type).
    pub(super) fn require_type(&self, expected: ClcType) -> Result<(), WireError> {
        if self.r#type == expected {
            return Ok(());
        }
        Err(WireError::UnexpectedType {
            r#type: self.r#type.into(),
            expected: Some(expected),
        })
    }

    /// Size of the receive buffer Linux uses for this message type:
    /// [`ACCEPT_RCVBUF_BYTES`] for an Accept, else [`PROPOSAL_RCVBUF_BYTES`].
    pub const fn receive_buffer_len(&self) -> usize {
        match self.r#type {
            ClcType::Accept => ACCEPT_RCVBUF_BYTES,
            _ => PROPOSAL_RCVBUF_BYTES,
        }
    }

    /// How many bytes of the message to read before parsing: `length`, capped
    /// at [`receive_buffer_len`](Self::receive_buffer_len). The remaining
    /// `length - receive_len()` bytes of an over-long message are read and
    /// discarded (Linux does the same; their trailer is not checked).
    pub fn receive_len(&self) -> usize {
        usize::from(self.length).min(self.receive_buffer_len())
    }

    /// Whether the trailer is checked (rule H4): only when the whole message
    /// fits in the receive buffer.
    pub fn trailer_checked(&self) -> bool {
        usize::from(self.length) <= self.receive_buffer_len()
    }

    /// Writes the header to the start of `buf`.
    ///
    /// # Errors
    ///
    /// [`EmitError::BufferTooSmall`] if `buf` holds fewer than 8 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        write_at(buf, 0, &self.raw())
    }

    /// The raw header (`version` is truncated to 4 bits, the types to 2).
    pub(crate) fn raw(&self) -> ClcHeader {
        ClcHeader {
            eyecatcher: self.eyecatcher.to_bytes(),
            r#type: self.r#type.into(),
            length: U16::new(self.length),
            version_typev2_typev1: (self.version << 4)
                | ((self.typev2 & 0b11) << 2)
                | (self.typev1 & 0b11),
        }
    }

    /// Reads the message bytes this header announces from `bytes`: the first
    /// `min(length, bytes.len())` bytes, which must be at least
    /// [`receive_len`](Self::receive_len).
    pub(super) fn message<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], WireError> {
        let needed = self.receive_len();
        if bytes.len() < needed {
            return Err(WireError::Truncated {
                needed,
                available: bytes.len(),
            });
        }
        Ok(bytes.get(..usize::from(self.length)).unwrap_or(bytes))
    }

    /// Reads the trailer of `message` and applies rule H4 when `check` is set
    /// (and the message fits the receive buffer). A trailer that was not
    /// received (over-long message) is taken to equal the header eyecatcher.
    pub(super) fn trailer(&self, message: &[u8], check: bool) -> Result<Eyecatcher, WireError> {
        let length = usize::from(self.length);
        let Some(at) = length.checked_sub(CLC_TRAILER_LEN) else {
            return Ok(self.eyecatcher);
        };
        let Ok(bytes) = read_at::<[u8; 4]>(message, at) else {
            return Ok(self.eyecatcher);
        };
        let trailer = Eyecatcher::from(bytes);
        if check && self.trailer_checked() && !trailer.is_known() {
            return Err(WireError::BadTrailer {
                offset: at,
                trailer: bytes,
            });
        }
        Ok(trailer)
    }
}

/// Writes `trailer` as the last 4 of `length` bytes of `buf`.
pub(super) fn emit_trailer(
    buf: &mut [u8],
    length: usize,
    trailer: Eyecatcher,
) -> Result<(), EmitError> {
    let at = length.saturating_sub(CLC_TRAILER_LEN);
    write_at(buf, at, &trailer.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_decodes_byte7() {
        let h = ClcHeaderRepr::peek(&[0xe2, 0xd4, 0xc3, 0xc4, 2, 0, 0x82, 0x29]).unwrap();
        assert_eq!(h.eyecatcher, Eyecatcher::Smcd);
        assert_eq!(h.r#type, ClcType::Accept);
        assert_eq!(h.length, 130);
        assert_eq!((h.version, h.typev2, h.typev1), (2, 0b10, 1));
        assert_eq!(h.receive_len(), 130);
        let mut buf = [0u8; 8];
        h.emit(&mut buf).unwrap();
        assert_eq!(buf, [0xe2, 0xd4, 0xc3, 0xc4, 2, 0, 0x82, 0x29]);
    }

    #[test]
    fn peek_rejects_bad_headers() {
        assert_eq!(
            ClcHeaderRepr::peek(&[0xe2, 0xd4, 0xc3]),
            Err(WireError::Truncated {
                needed: 8,
                available: 3
            })
        );
        assert!(matches!(
            ClcHeaderRepr::peek(b"GET / HTTP/1.1"),
            Err(WireError::BadEyecatcher { .. })
        ));
        assert_eq!(
            ClcHeaderRepr::peek(&[0xe2, 0xd4, 0xc3, 0xd9, 1, 0, 92, 0x01]),
            Err(WireError::BadVersion { version: 0 })
        );
    }

    #[test]
    fn h2_accepts_expected_or_decline() {
        let mut h = ClcHeaderRepr::peek(&[0xe2, 0xd4, 0xc3, 0xd9, 4, 0, 44, 0x20]).unwrap();
        assert_eq!(h.check_type(ClcType::Accept), Ok(()));
        h.r#type = ClcType::Confirm;
        assert_eq!(
            h.check_type(ClcType::Accept),
            Err(WireError::UnexpectedType {
                r#type: 3,
                expected: Some(ClcType::Accept)
            })
        );
    }

    #[test]
    fn over_long_accept_is_capped_and_trailer_unchecked() {
        let h = ClcHeaderRepr::peek(&[0xe2, 0xd4, 0xc3, 0xc4, 2, 0x01, 0x00, 0x21]).unwrap();
        assert_eq!(h.receive_len(), ACCEPT_RCVBUF_BYTES);
        assert!(!h.trailer_checked());
    }
}
