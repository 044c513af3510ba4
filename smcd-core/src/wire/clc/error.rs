//! Parse and emit errors of the CLC layer.

use core::fmt;

use super::header::ClcType;
use super::reason::DeclineReason;

/// The receive-side rule of `docs/protocol/clc.md` §6 that a message violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rule {
    /// The input ends before the message does.
    Input,
    /// H1: `version` ≥ 1.
    H1,
    /// H2: `type` is the expected one or Decline.
    H2,
    /// H3: header eyecatcher is "SMCR" or "SMCD".
    H3,
    /// H4: trailer is "SMCR" or "SMCD".
    H4,
    /// P1: `iparea_offset` ≤ 40.
    P1,
    /// P2: `ipv6_prefixes_cnt` ≤ 8.
    P2,
    /// P3: a v1 Proposal offers a type in `typev1` and has the v1 length.
    P3,
    /// P4: a v2 Proposal offering a v2 type has a locatable v2 extension with
    /// `eid_cnt` ≤ 8.
    P4,
    /// P5: `ism_gid_cnt` ≤ 8.
    P5,
    /// P6: a v2 Proposal has exactly the v2 length.
    P6,
    /// A1: Accept/Confirm `typev1` is R or D.
    A1,
    /// A2: a v1 Accept/Confirm has the exact v1 length.
    A2,
    /// A3: a v2 Accept/Confirm has at least the v2 length.
    A3,
    /// D1: a Decline has the exact length of its version.
    D1,
    /// X1 (smcd, stricter than Linux): every extension a v2 Proposal offers
    /// sits where its offset field says *and* where the length formula puts
    /// it. Linux reads an extension at its offset even when that differs;
    /// no Linux sender does that, and smcd treats it as a protocol error.
    X1,
    /// X2 (smcd, stricter than Linux): a v2 first-contact Accept/Confirm is
    /// long enough to hold its first-contact extension (36 bytes for release
    /// 0, 52 otherwise) before the trailer. Linux would read the missing part
    /// from its zero-filled buffer.
    X2,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Input => "input",
            Self::H1 => "H1",
            Self::H2 => "H2",
            Self::H3 => "H3",
            Self::H4 => "H4",
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
            Self::P4 => "P4",
            Self::P5 => "P5",
            Self::P6 => "P6",
            Self::A1 => "A1",
            Self::A2 => "A2",
            Self::A3 => "A3",
            Self::D1 => "D1",
            Self::X1 => "X1",
            Self::X2 => "X2",
        };
        f.write_str(name)
    }
}

/// Why a CLC message was rejected.
///
/// Every variant knows the [`rule`](Self::rule) it violates, the byte
/// [`offset`](Self::offset) of the offending field and what Linux does
/// ([`decline_reason`](Self::decline_reason): `None` = protocol error, EPROTO,
/// no Decline is sent, no fallback; the connection fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// The input holds fewer bytes than needed.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// H1: header `version` is 0.
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// H2: a type other than the expected one (or Decline), or an unknown type.
    UnexpectedType {
        /// The type byte found.
        r#type: u8,
        /// The type that was expected, `None` when any known type would do.
        expected: Option<ClcType>,
    },
    /// H3: the header eyecatcher is neither "SMCR" nor "SMCD".
    BadEyecatcher {
        /// The bytes found.
        eyecatcher: [u8; 4],
    },
    /// H4: the trailer is neither "SMCR" nor "SMCD".
    BadTrailer {
        /// Byte offset of the trailer (`length - 4`).
        offset: usize,
        /// The bytes found.
        trailer: [u8; 4],
    },
    /// P1: `iparea_offset` > 40, the IP prefix area cannot be located.
    IpareaOffsetTooLarge {
        /// The offset found.
        iparea_offset: u16,
    },
    /// P2: `ipv6_prefixes_cnt` > 8.
    TooManyIpv6Prefixes {
        /// Byte offset of the count (40 + `iparea_offset` + 7).
        offset: usize,
        /// The count found.
        ipv6_prefixes_cnt: u8,
    },
    /// P3: a version-1 Proposal with `typev1` = N.
    V1ProposalOffersNothing,
    /// P4: `typev1` offers SMC-D but `iparea_offset` ≠ 40, so the SMC-D area
    /// (and with it `v2_ext_offset`) is missing.
    SmcdAreaMissing {
        /// The offset found.
        iparea_offset: u16,
    },
    /// P4: `v2_ext_offset` is 0 or > 172, the v2 extension cannot be located.
    V2ExtOffsetInvalid {
        /// The offset found.
        v2_ext_offset: u16,
    },
    /// P4: `eid_cnt` > 8.
    TooManyUeids {
        /// Byte offset of `eid_cnt`.
        offset: usize,
        /// The count found.
        eid_cnt: u8,
    },
    /// P5: `ism_gid_cnt` > 8.
    TooManyGidChids {
        /// Byte offset of `ism_gid_cnt`.
        offset: usize,
        /// The count found.
        ism_gid_cnt: u8,
    },
    /// P3, P6, A2, D1: `length` differs from the exact length required.
    LengthMismatch {
        /// The rule applied.
        rule: Rule,
        /// The header `length`.
        length: u16,
        /// The length the rule requires.
        expected: u16,
    },
    /// A3, X2: `length` is below the minimum required.
    LengthTooShort {
        /// The rule applied.
        rule: Rule,
        /// The header `length`.
        length: u16,
        /// The minimum length.
        min: u16,
    },
    /// A1: Accept/Confirm `typev1` is neither R nor D.
    BadAcceptType {
        /// The 2-bit `typev1` found.
        typev1: u8,
    },
    /// A1–A3 hold for an *SMC-R* Accept/Confirm (`typev1` = R). Linux finds
    /// it well-formed; smcd never offers SMC-R, so a client answers it with
    /// Decline MODEUNSUPP (handshake.md §2 step 10).
    SmcrAcceptConfirm,
    /// X1: an extension offset that Linux accepts but that differs from the
    /// position the length formula gives the extension.
    NonCanonicalOffset {
        /// Spec name of the offset field.
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// The value found.
        value: u16,
        /// The only value smcd accepts.
        expected: u16,
    },
}

impl WireError {
    /// The rule of `docs/protocol/clc.md` §6 this error violates.
    pub const fn rule(&self) -> Rule {
        match self {
            Self::Truncated { .. } => Rule::Input,
            Self::BadVersion { .. } => Rule::H1,
            Self::UnexpectedType { .. } => Rule::H2,
            Self::BadEyecatcher { .. } => Rule::H3,
            Self::BadTrailer { .. } => Rule::H4,
            Self::IpareaOffsetTooLarge { .. } => Rule::P1,
            Self::TooManyIpv6Prefixes { .. } => Rule::P2,
            Self::V1ProposalOffersNothing => Rule::P3,
            Self::SmcdAreaMissing { .. }
            | Self::V2ExtOffsetInvalid { .. }
            | Self::TooManyUeids { .. } => Rule::P4,
            Self::TooManyGidChids { .. } => Rule::P5,
            Self::LengthMismatch { rule, .. } | Self::LengthTooShort { rule, .. } => *rule,
            Self::BadAcceptType { .. } | Self::SmcrAcceptConfirm => Rule::A1,
            Self::NonCanonicalOffset { .. } => Rule::X1,
        }
    }

    /// Byte offset (from the start of the message) of the offending field.
    pub const fn offset(&self) -> usize {
        match self {
            Self::Truncated { available, .. } => *available,
            Self::BadEyecatcher { .. } => 0,
            Self::UnexpectedType { .. } => 4,
            Self::LengthMismatch { .. } | Self::LengthTooShort { .. } => 5,
            Self::BadVersion { .. }
            | Self::V1ProposalOffersNothing
            | Self::BadAcceptType { .. }
            | Self::SmcrAcceptConfirm => 7,
            Self::IpareaOffsetTooLarge { .. } | Self::SmcdAreaMissing { .. } => 38,
            Self::V2ExtOffsetInvalid { .. } => 50,
            Self::BadTrailer { offset, .. }
            | Self::TooManyIpv6Prefixes { offset, .. }
            | Self::TooManyUeids { offset, .. }
            | Self::TooManyGidChids { offset, .. }
            | Self::NonCanonicalOffset { offset, .. } => *offset,
        }
    }

    /// What Linux sends in answer: `Some(code)` = a Decline with that code
    /// and fallback to TCP; `None` = protocol error (EPROTO): no Decline, no
    /// fallback, the client's `connect()` fails and the server drops the
    /// connection.
    pub const fn decline_reason(&self) -> Option<DeclineReason> {
        match self {
            Self::SmcrAcceptConfirm => Some(DeclineReason::ModeUnsupp),
            _ => None,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}: ", self.offset())?;
        match *self {
            Self::Truncated { needed, available } => write!(
                f,
                "message incomplete: {available} bytes present, {needed} needed"
            )?,
            Self::BadVersion { version } => write!(f, "version {version} is below 1")?,
            Self::UnexpectedType {
                r#type,
                expected: Some(expected),
            } => write!(f, "type {} is neither {expected} nor Decline", r#type)?,
            Self::UnexpectedType {
                r#type,
                expected: None,
            } => write!(f, "type {} is not a CLC message type (1..=4)", r#type)?,
            Self::BadEyecatcher {
                eyecatcher: [a, b, c, d],
            } => write!(
                f,
                "eyecatcher {a:02x}{b:02x}{c:02x}{d:02x} is neither SMCR (e2d4c3d9) nor SMCD (e2d4c3c4)"
            )?,
            Self::BadTrailer {
                trailer: [a, b, c, d],
                ..
            } => write!(
                f,
                "trailer {a:02x}{b:02x}{c:02x}{d:02x} is neither SMCR (e2d4c3d9) nor SMCD (e2d4c3c4)"
            )?,
            Self::IpareaOffsetTooLarge { iparea_offset } => write!(
                f,
                "iparea_offset {iparea_offset} exceeds 40, the IP prefix area cannot be located"
            )?,
            Self::TooManyIpv6Prefixes {
                ipv6_prefixes_cnt, ..
            } => write!(f, "ipv6_prefixes_cnt {ipv6_prefixes_cnt} exceeds 8")?,
            Self::V1ProposalOffersNothing => {
                f.write_str("version-1 Proposal offers no SMC type (typev1 = N)")?
            }
            Self::SmcdAreaMissing { iparea_offset } => write!(
                f,
                "typev1 offers SMC-D but iparea_offset is {iparea_offset}, not 40, so the v2 extension cannot be located"
            )?,
            Self::V2ExtOffsetInvalid { v2_ext_offset } => write!(
                f,
                "v2_ext_offset {v2_ext_offset} is not in 1..=172, so the v2 extension cannot be located"
            )?,
            Self::TooManyUeids { eid_cnt, .. } => write!(f, "eid_cnt {eid_cnt} exceeds 8")?,
            Self::TooManyGidChids { ism_gid_cnt, .. } => {
                write!(f, "ism_gid_cnt {ism_gid_cnt} exceeds 8")?
            }
            Self::LengthMismatch {
                length, expected, ..
            } => write!(f, "length {length} differs from the required {expected}")?,
            Self::LengthTooShort { length, min, .. } => {
                write!(f, "length {length} is below the minimum {min}")?
            }
            Self::BadAcceptType { typev1 } => {
                write!(f, "typev1 {typev1} is neither SMC-R (0) nor SMC-D (1)")?
            }
            Self::SmcrAcceptConfirm => {
                f.write_str("SMC-R Accept/Confirm, but only SMC-D is offered")?
            }
            Self::NonCanonicalOffset {
                field,
                value,
                expected,
                ..
            } => write!(
                f,
                "{field} {value} does not match the message layout (expected {expected}; smcd is stricter than Linux here)"
            )?,
        }
        write!(f, " (rule {}); ", self.rule())?;
        match self.decline_reason() {
            Some(reason) => write!(
                f,
                "Linux answers with Decline {reason} and falls back to TCP"
            ),
            None if matches!(self, Self::Truncated { .. }) => {
                f.write_str("Linux waits for the rest (up to the 6 s CLC timeout)")
            }
            None => f.write_str(
                "Linux treats this as a protocol error (EPROTO): no Decline, no fallback",
            ),
        }
    }
}

impl core::error::Error for WireError {}

/// Why a `Repr` could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EmitError {
    /// The output buffer is smaller than [`buffer_len`](super::ClcMessage::buffer_len).
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The Accept/Confirm `length` is shorter than the fields it must hold.
    LengthTooShort {
        /// The length asked for.
        length: u16,
        /// The smallest length that holds the fields.
        min: usize,
    },
    /// The message would be longer than 65535 bytes (only possible with
    /// offsets no valid message has).
    TooLong {
        /// The computed length.
        length: usize,
    },
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer holds {available} bytes, the message needs {needed}"
            ),
            Self::LengthTooShort { length, min } => {
                write!(
                    f,
                    "length {length} is shorter than the {min} bytes the fields need"
                )
            }
            Self::TooLong { length } => {
                write!(
                    f,
                    "message of {length} bytes exceeds the 65535 a length field holds"
                )
            }
        }
    }
}

impl core::error::Error for EmitError {}
