//! The first-contact extension of a v2 Accept/Confirm (`docs/protocol/clc.md` §4.1).

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::codec::{read_at, write_at};
use super::eid::Hostname;
use super::error::{EmitError, WireError};

/// The release-0 part of the FCE (36 bytes), `struct smc_clc_first_contact_ext`
/// (net/smc/smc_clc.h).
///
/// ```text
///  +0  +1  +2      +4                                 +36
/// +---+---+-------+----------------------------------+
/// |v2d|o|r| rsvd  |            hostname              |
/// +---+---+-------+----------------------------------+
///  v2d = v2_direct (bit 7), o|r = os_type<<4 | release
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct FceLayout {
    /// `v2_direct` in bit 7 (SMC-Rv2 only), bits 6–0 reserved.
    pub(crate) v2_direct: u8,
    /// `os_type` (bits 7–4) and negotiated `release` (bits 3–0).
    pub(crate) os_type_release: u8,
    /// Reserved.
    pub(crate) reserved: [u8; 2],
    /// Node name, blank padded.
    pub(crate) hostname: [u8; 32],
}

/// The release ≥ 1 tail of the FCE (16 bytes at +36), the rest of
/// `struct smc_clc_first_contact_ext_v2x`.
///
/// ```text
///  +36 +37 +38  +40            +44                      +52
/// +---+---+----+--------------+------------------------+
/// |mc |ml |feat| vendor_exp   |        reserved        |
/// +---+---+----+--------------+------------------------+
///  mc/ml = max_conns/max_links (SMC-R; reserved for SMC-D), feat = feature_mask
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct FceV2xLayout {
    /// SMC-R max connections (reserved for SMC-D).
    pub(crate) max_conns: u8,
    /// SMC-R max links (reserved for SMC-D).
    pub(crate) max_links: u8,
    /// Negotiated features.
    pub(crate) feature_mask: U16,
    /// Vendor experimental options.
    pub(crate) vendor_exp_options: U32,
    /// Reserved.
    pub(crate) reserved: [u8; 8],
}

const FCE_V20_LEN: usize = size_of::<FceLayout>();
const FCE_V2X_LEN: usize = size_of::<FceV2xLayout>();

/// The first-contact extension of a v2 Accept/Confirm with `first_contact`.
///
/// Its size follows from `release`: 36 bytes for release 0, 52 otherwise.
/// `max_conns`, `max_links`, `feature_mask` and `vendor_exp_options` exist
/// on the wire only in the 52-byte form (they read as zero in the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fce {
    /// SMC-Rv2 direct flag (false for SMC-D).
    pub v2_direct: bool,
    /// Sender's OS type (4 bits; 2 = Linux).
    pub os_type: u8,
    /// Negotiated release (4 bits; 0 = v2.0, 1 = v2.1).
    pub release: u8,
    /// Sender's node name.
    pub hostname: Hostname,
    /// SMC-R max connections (kept, never acted on).
    pub max_conns: u8,
    /// SMC-R max links (kept, never acted on).
    pub max_links: u8,
    /// Negotiated features (Linux: 0x0001).
    pub feature_mask: u16,
    /// Vendor experimental options.
    pub vendor_exp_options: u32,
}

impl Fce {
    /// Bytes on the wire: 36 for release 0, 52 otherwise.
    pub const fn wire_len(&self) -> usize {
        len_for_release(self.release)
    }

    /// Reads the FCE at `at`; the caller made sure [`len_for_release`] bytes
    /// of it exist before the trailer.
    pub(super) fn read(buf: &[u8], at: usize) -> Result<Self, WireError> {
        let base: FceLayout = read_at(buf, at)?;
        let mut fce = Self {
            v2_direct: base.v2_direct & 0x80 != 0,
            os_type: base.os_type_release >> 4,
            release: base.os_type_release & 0x0f,
            hostname: Hostname(base.hostname),
            max_conns: 0,
            max_links: 0,
            feature_mask: 0,
            vendor_exp_options: 0,
        };
        if fce.release >= 1 {
            let v2x: FceV2xLayout = read_at(buf, at + FCE_V20_LEN)?;
            fce.max_conns = v2x.max_conns;
            fce.max_links = v2x.max_links;
            fce.feature_mask = v2x.feature_mask.get();
            fce.vendor_exp_options = v2x.vendor_exp_options.get();
        }
        Ok(fce)
    }

    pub(super) fn write(&self, buf: &mut [u8], at: usize) -> Result<(), EmitError> {
        let base = FceLayout {
            v2_direct: if self.v2_direct { 0x80 } else { 0 },
            os_type_release: (self.os_type << 4) | (self.release & 0x0f),
            reserved: [0; 2],
            hostname: self.hostname.0,
        };
        write_at(buf, at, &base)?;
        if self.release & 0x0f >= 1 {
            let v2x = FceV2xLayout {
                max_conns: self.max_conns,
                max_links: self.max_links,
                feature_mask: U16::new(self.feature_mask),
                vendor_exp_options: U32::new(self.vendor_exp_options),
                reserved: [0; 8],
            };
            write_at(buf, at + FCE_V20_LEN, &v2x)?;
        }
        Ok(())
    }
}

/// FCE size for a release nibble: 36 bytes for 0, 52 otherwise.
pub(super) const fn len_for_release(release: u8) -> usize {
    if release & 0x0f == 0 {
        FCE_V20_LEN
    } else {
        FCE_V20_LEN + FCE_V2X_LEN
    }
}
