//! SMC-D Accept (type 2, server → client) and Confirm (type 3, client →
//! server), v1 and v2, `docs/protocol/clc.md` §4. Both share one layout and one Repr.

use zerocopy::network_endian::{U16, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::codec::{byte_at_or_zero, ensure_room, read_at, write_at};
use super::eid::Eid;
use super::error::{EmitError, Rule, WireError};
use super::fce::{Fce, len_for_release};
use super::header::{
    CLC_TRAILER_LEN, ClcHeader, ClcHeaderRepr, ClcType, Eyecatcher, SmcType, emit_trailer,
};
use crate::dmb::{Chid, DmbToken, Gid};

/// The first 32 bytes of an SMC-D Accept/Confirm: `struct
/// smc_clc_msg_accept_confirm` with `struct smcd_clc_msg_accept_confirm_common`
/// (net/smc/smc_clc.h). v1 continues with 12 reserved bytes, v2 with
/// [`AcceptV2Layout`].
///
/// ```text
///  0       8               16              24  25  26  28      32
/// +-------+---------------+---------------+---+---+---+-------+
/// |header |      gid      |     token     |idx|sz |rsv|linkid |
/// +-------+---------------+---------------+---+---+---+-------+
///  idx = dmbe_idx, sz = dmbe_size << 4
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct AcceptLayout {
    /// Common header, type 2 or 3.
    pub(crate) header: ClcHeader,
    /// Sender's ISM GID (high half of an emulated GID).
    pub(crate) gid: U64,
    /// Sender's receive DMB token.
    pub(crate) token: U64,
    /// DMB element index.
    pub(crate) dmbe_idx: u8,
    /// Compressed DMB size in bits 7–4, bits 3–0 reserved.
    pub(crate) dmbe_size: u8,
    /// Reserved.
    pub(crate) reserved: [u8; 2],
    /// Link-group id (opaque).
    pub(crate) linkid: [u8; 4],
}

/// The v2 part of an SMC-D Accept/Confirm (42 bytes at offset 32), the `d1`
/// member of `struct smc_clc_msg_accept_confirm`.
///
/// ```text
///  32    34                                66              74
/// +-----+--------------------------------+---------------+
/// |chid |              eid               |    gid_ext    |
/// +-----+--------------------------------+---------------+
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct AcceptV2Layout {
    /// Sender's ISM CHID.
    pub(crate) chid: U16,
    /// Negotiated EID.
    pub(crate) eid: [u8; 32],
    /// Low half of a 128-bit GID (0 unless `chid` is emulated).
    pub(crate) gid_ext: U64,
}

const COMMON_LEN: usize = size_of::<AcceptLayout>();
const V2_PART_LEN: usize = size_of::<AcceptV2Layout>();
/// SMC-D v1 Accept/Confirm length (rule A2).
const SMCD_V1_LEN: u16 = 48;
/// Minimum SMC-D v2 Accept/Confirm length (rule A3).
const SMCD_V2_MIN_LEN: u16 = 78;
/// SMC-R v1 Accept/Confirm length (rule A2).
const SMCR_V1_LEN: u16 = 68;
/// Minimum SMC-R v2 Accept/Confirm length (rule A3).
const SMCR_V2_MIN_LEN: u16 = 108;
/// The FCE starts right after the v2 part.
const FCE_AT: usize = COMMON_LEN + V2_PART_LEN;

/// Whether an [`AcceptRepr`] is an Accept or a Confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AcceptKind {
    /// Type 2, server → client.
    Accept,
    /// Type 3, client → server.
    Confirm,
}

impl From<AcceptKind> for ClcType {
    fn from(k: AcceptKind) -> Self {
        match k {
            AcceptKind::Accept => ClcType::Accept,
            AcceptKind::Confirm => ClcType::Confirm,
        }
    }
}

/// An SMC-D Accept or Confirm, parsed and validated.
///
/// `typev1` is always D. Reserved bytes are dropped (emitted as zero); bytes
/// between the last field and the trailer of a longer-than-needed message
/// are padding, kept only as `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AcceptRepr {
    /// Accept or Confirm.
    pub kind: AcceptKind,
    /// Header eyecatcher (Linux: "SMCD").
    pub eyecatcher: Eyecatcher,
    /// Header `length`: 48 for v1; at least [`min_len`](Self::min_len) for v2.
    pub length: u16,
    /// Header version: 1, or ≥ 2 for the v2 layout.
    pub version: u8,
    /// The sender created a new link group for this connection.
    pub first_contact: bool,
    /// Sender's ISM GID; `gid_ext` is only on the wire in v2 (0 in v1).
    pub gid: Gid,
    /// Sender's receive DMB token.
    pub token: DmbToken,
    /// DMB element index (Linux 0).
    pub dmbe_idx: u8,
    /// Compressed DMB size (4 bits, see [`bufsize`](super::bufsize)).
    pub dmbe_size: u8,
    /// Link-group id (4 opaque bytes; never interpret).
    pub linkid: [u8; 4],
    /// Sender's ISM CHID (v2 only; 0 in v1).
    pub chid: Chid,
    /// Negotiated EID (v2 only; zero in v1 or if none).
    pub eid: Eid,
    /// First-contact extension: present iff `version` ≥ 2 and `first_contact`.
    pub fce: Option<Fce>,
    /// Trailer eyecatcher (Linux: "SMCD").
    pub trailer: Eyecatcher,
}

impl AcceptRepr {
    /// Parses and validates an SMC-D Accept or Confirm (rules H1–H4, A1–A3, X2).
    ///
    /// # Errors
    ///
    /// A [`WireError`] naming the violated rule; H2 if the message is neither
    /// Accept nor Confirm; [`WireError::SmcrAcceptConfirm`] (answer: Decline
    /// MODEUNSUPP) for a well-formed SMC-R one.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let header = ClcHeaderRepr::peek(bytes)?;
        let kind = match header.r#type {
            ClcType::Accept => AcceptKind::Accept,
            ClcType::Confirm => AcceptKind::Confirm,
            other => {
                return Err(WireError::UnexpectedType {
                    r#type: other.into(),
                    expected: Some(ClcType::Accept),
                });
            }
        };
        let smcr = match SmcType::from_bits(header.typev1) {
            SmcType::R => true,
            SmcType::D => false,
            _ => {
                return Err(WireError::BadAcceptType {
                    typev1: header.typev1,
                });
            }
        };
        let v2 = header.version >= 2;
        check_length(&header, smcr, v2)?;
        let message = header.message(bytes)?;
        let trailer = header.trailer(message, true)?;
        if smcr {
            return Err(WireError::SmcrAcceptConfirm);
        }
        let first_contact = header.typev2 & 0b10 != 0;
        let has_fce = v2 && first_contact;
        if has_fce {
            // First the release-0 size, then (with the release byte known to
            // lie before the trailer) the size that release asks for.
            check_fce_room(&header, len_for_release(0))?;
            let release = byte_at_or_zero(message, FCE_AT + 1);
            check_fce_room(&header, len_for_release(release))?;
        }
        let common: AcceptLayout = read_at(message, 0)?;
        let mut repr = Self {
            kind,
            eyecatcher: header.eyecatcher,
            length: header.length,
            version: header.version,
            first_contact,
            gid: Gid::new(common.gid.get(), 0),
            token: DmbToken(common.token.get()),
            dmbe_idx: common.dmbe_idx,
            dmbe_size: common.dmbe_size >> 4,
            linkid: common.linkid,
            chid: Chid(0),
            eid: Eid::default(),
            fce: None,
            trailer,
        };
        if v2 {
            let v2_part: AcceptV2Layout = read_at(message, COMMON_LEN)?;
            repr.chid = Chid(v2_part.chid.get());
            repr.eid = Eid(v2_part.eid);
            repr.gid.gid_ext = v2_part.gid_ext.get();
        }
        if has_fce {
            repr.fce = Some(Fce::read(message, FCE_AT)?);
        }
        Ok(repr)
    }

    /// The smallest `length` that holds the fields: 48 for v1, 78 for v2,
    /// plus the FCE (36 or 52) when there is one.
    pub fn min_len(&self) -> usize {
        if self.version < 2 {
            return usize::from(SMCD_V1_LEN);
        }
        usize::from(SMCD_V2_MIN_LEN) + self.fce.as_ref().map_or(0, Fce::wire_len)
    }

    /// Number of bytes [`emit`](Self::emit) writes: `length`.
    pub fn buffer_len(&self) -> usize {
        usize::from(self.length)
    }

    /// Writes the message to the start of `buf`; returns the bytes written.
    /// Bytes between the last field and the trailer are zero.
    ///
    /// # Errors
    ///
    /// [`EmitError::LengthTooShort`] if `length` < [`min_len`](Self::min_len),
    /// [`EmitError::BufferTooSmall`] if `buf` is shorter than `length`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.buffer_len();
        let min = self.min_len();
        if len < min {
            return Err(EmitError::LengthTooShort {
                length: self.length,
                min,
            });
        }
        ensure_room(buf, len)?;
        buf.iter_mut().take(len).for_each(|b| *b = 0);
        let header = ClcHeaderRepr {
            eyecatcher: self.eyecatcher,
            r#type: self.kind.into(),
            length: self.length,
            version: self.version,
            typev2: if self.first_contact { 0b10 } else { 0 },
            typev1: SmcType::D.bits(),
        };
        let common = AcceptLayout {
            header: header.raw(),
            gid: U64::new(self.gid.gid),
            token: U64::new(self.token.0),
            dmbe_idx: self.dmbe_idx,
            dmbe_size: self.dmbe_size << 4,
            reserved: [0; 2],
            linkid: self.linkid,
        };
        write_at(buf, 0, &common)?;
        if self.version >= 2 {
            let v2_part = AcceptV2Layout {
                chid: U16::new(self.chid.0),
                eid: self.eid.0,
                gid_ext: U64::new(self.gid.gid_ext),
            };
            write_at(buf, COMMON_LEN, &v2_part)?;
            if let Some(fce) = &self.fce {
                fce.write(buf, FCE_AT)?;
            }
        }
        emit_trailer(buf, len, self.trailer)?;
        Ok(len)
    }

    /// The DMB size in bytes that `dmbe_size` stands for.
    pub fn dmbe_size_bytes(&self) -> usize {
        super::bufsize::decode(self.dmbe_size)
    }
}

/// Rule X2: `length` leaves room for an FCE of `fce_len` bytes.
fn check_fce_room(header: &ClcHeaderRepr, fce_len: usize) -> Result<(), WireError> {
    let min = FCE_AT + fce_len + CLC_TRAILER_LEN;
    if usize::from(header.length) < min {
        return Err(WireError::LengthTooShort {
            rule: Rule::X2,
            length: header.length,
            min: u16::try_from(min).unwrap_or(u16::MAX),
        });
    }
    Ok(())
}

/// Rules A2 (v1: exact length) and A3 (v2: minimum length), with the SMC-R
/// or SMC-D numbers.
fn check_length(header: &ClcHeaderRepr, smcr: bool, v2: bool) -> Result<(), WireError> {
    let (v1_len, v2_min) = if smcr {
        (SMCR_V1_LEN, SMCR_V2_MIN_LEN)
    } else {
        (SMCD_V1_LEN, SMCD_V2_MIN_LEN)
    };
    if !v2 && header.length != v1_len {
        return Err(WireError::LengthMismatch {
            rule: Rule::A2,
            length: header.length,
            expected: v1_len,
        });
    }
    if v2 && header.length < v2_min {
        return Err(WireError::LengthTooShort {
            rule: Rule::A3,
            length: header.length,
            min: v2_min,
        });
    }
    Ok(())
}
