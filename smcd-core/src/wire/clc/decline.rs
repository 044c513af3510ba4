//! Decline (type 4, either direction), v1 and v2, `docs/protocol/clc.md` §5.

use zerocopy::network_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::codec::{ensure_room, read_at, write_at};
use super::error::{EmitError, Rule, WireError};
use super::header::{ClcHeader, ClcHeaderRepr, ClcType, Eyecatcher, emit_trailer};
use super::reason::DeclineReason;

/// A v1 Decline without its trailer (24 bytes), `struct smc_clc_msg_decline`
/// (net/smc/smc_clc.h).
///
/// ```text
///  0       8               16      20  21          24
/// +-------+---------------+-------+---+-----------+
/// |header |  id_for_peer  | diag  |os | reserved  |
/// +-------+---------------+-------+---+-----------+
///  diag = peer_diagnosis, os = os_type << 4
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct DeclineLayout {
    /// Common header, type 4.
    pub(crate) header: ClcHeader,
    /// SMC-R system id (zero for SMC-D).
    pub(crate) id_for_peer: [u8; 8],
    /// Reason code.
    pub(crate) peer_diagnosis: U32,
    /// `os_type` in bits 7–4, bits 3–0 reserved.
    pub(crate) os_type: u8,
    /// Reserved.
    pub(crate) reserved: [u8; 3],
}

/// The v2 addition at offset 24 (16 bytes), from `struct smc_clc_msg_decline_v2`.
///
/// ```text
///  24      28      32      36      40
/// +-------+-------+-------+-------+
/// | diag0 | diag1 | diag2 | diag3 |   peer_diagnosis_v2[4]
/// +-------+-------+-------+-------+
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct DeclineV2Layout {
    /// Additional reason codes (Linux sends 0).
    pub(crate) peer_diagnosis_v2: [U32; 4],
}

const V1_LEN: u16 = 28;
const V2_LEN: u16 = 44;
const V2_PART_AT: usize = size_of::<DeclineLayout>();

/// A Decline, parsed and validated.
///
/// The header's `typev1` (Linux: 0, never checked) and the trailer check are
/// not part of the rules for a Decline; the trailer bytes are kept as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeclineRepr {
    /// Header eyecatcher (Linux: "SMCR" for SMC-R and SMC-D).
    pub eyecatcher: Eyecatcher,
    /// Header version: 1 (28 bytes) or ≥ 2 (44 bytes).
    pub version: u8,
    /// The sender's link group is out of sync (with SYNCERR).
    pub out_of_sync: bool,
    /// SMC-R system id (zero for SMC-D).
    pub id_for_peer: [u8; 8],
    /// Reason code.
    pub peer_diagnosis: DeclineReason,
    /// Sender's OS type (4 bits; 0 in v1, 2 = Linux in v2).
    pub os_type: u8,
    /// Additional reason codes (v2 only; Linux sends 0).
    pub peer_diagnosis_v2: [u32; 4],
    /// Trailer (not checked by Linux; "SMCR" when sent by Linux).
    pub trailer: Eyecatcher,
}

impl DeclineRepr {
    /// Parses and validates a Decline (rules H1, H3, D1; no trailer check).
    ///
    /// # Errors
    ///
    /// A [`WireError`] naming the violated rule; H2 if it is not a Decline.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let header = ClcHeaderRepr::peek(bytes)?;
        header.require_type(ClcType::Decline)?;
        let v2 = header.version >= 2;
        let expected = if v2 { V2_LEN } else { V1_LEN };
        if header.length != expected {
            return Err(WireError::LengthMismatch {
                rule: Rule::D1,
                length: header.length,
                expected,
            });
        }
        let message = header.message(bytes)?;
        let trailer = header.trailer(message, false)?;
        let fixed: DeclineLayout = read_at(message, 0)?;
        let mut peer_diagnosis_v2 = [0u32; 4];
        if v2 {
            let raw: DeclineV2Layout = read_at(message, V2_PART_AT)?;
            for (dst, src) in peer_diagnosis_v2.iter_mut().zip(raw.peer_diagnosis_v2) {
                *dst = src.get();
            }
        }
        Ok(Self {
            eyecatcher: header.eyecatcher,
            version: header.version,
            out_of_sync: header.typev2 & 0b10 != 0,
            id_for_peer: fixed.id_for_peer,
            peer_diagnosis: DeclineReason::from(fixed.peer_diagnosis.get()),
            os_type: fixed.os_type >> 4,
            peer_diagnosis_v2,
            trailer,
        })
    }

    /// Number of bytes [`emit`](Self::emit) writes: 28 for v1, 44 for v2.
    pub fn buffer_len(&self) -> usize {
        usize::from(if self.version >= 2 { V2_LEN } else { V1_LEN })
    }

    /// Writes the Decline to the start of `buf`; returns the bytes written.
    ///
    /// # Errors
    ///
    /// [`EmitError::BufferTooSmall`] if `buf` is shorter than
    /// [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.buffer_len();
        ensure_room(buf, len)?;
        let header = ClcHeaderRepr {
            eyecatcher: self.eyecatcher,
            r#type: ClcType::Decline,
            length: if self.version >= 2 { V2_LEN } else { V1_LEN },
            version: self.version,
            typev2: if self.out_of_sync { 0b10 } else { 0 },
            typev1: 0,
        };
        let fixed = DeclineLayout {
            header: header.raw(),
            id_for_peer: self.id_for_peer,
            peer_diagnosis: U32::new(self.peer_diagnosis.into()),
            os_type: self.os_type << 4,
            reserved: [0; 3],
        };
        write_at(buf, 0, &fixed)?;
        if self.version >= 2 {
            let v2_part = DeclineV2Layout {
                peer_diagnosis_v2: self.peer_diagnosis_v2.map(U32::new),
            };
            write_at(buf, V2_PART_AT, &v2_part)?;
        }
        emit_trailer(buf, len, self.trailer)?;
        Ok(len)
    }
}
