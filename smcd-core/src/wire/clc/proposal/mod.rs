//! Proposal (type 1, client → server), `docs/protocol/clc.md` §3.
//!
//! # Where the areas are read from
//!
//! Linux locates the IP prefix area at 40 + `iparea_offset`, the v2 extension
//! at 52 + `v2_ext_offset` and the SMC-Dv2 extension at v2 extension + 8 +
//! `smcd_v2_ext_offset`, reads them from its zero-filled 652-byte receive
//! buffer, and separately requires `length` to equal a formula over the
//! counts (§3.5). [`ProposalRepr::parse`] applies rules P1–P6 exactly that
//! way (counts are read where Linux reads them, as zero beyond the message).
//!
//! The contents are then read from the **canonical** positions: the areas
//! follow each other without gaps in the order the length formula lists
//! them (fixed part, prefix area, v2 extension, SMC-Dv2 extension, trailer).
//! For a v1 header the prefix area sits at 40 + `iparea_offset` (the formula
//! uses the offset), so both agree by construction. For a v2 header rule X1
//! requires every area Linux would use to be where its offset field puts it,
//! so again both agree; the single exception is an SMC-Dv2 extension whose
//! offset is 0 or above [`SMCD_V2_EXT_OFFSET_MAX`]: Linux ≥ 6.12 treats it as
//! absent ([`server_precheck`](super::server_precheck) answers NOV2DEXT),
//! and smcd keeps the bytes the formula reserves for it so the message
//! re-emits unchanged. The raw offsets are kept in the Repr and emitted
//! verbatim.

mod ext;
mod layout;

pub use ext::{
    Devices, GidChid, IpPrefix, Ipv6Prefix, MAX_GIDCHID_ENTRIES, MAX_IPV6_PREFIXES, MAX_UEIDS,
    SmcdV2Ext, V2Ext,
};
use layout::{
    EID_LEN, GIDCHID_LEN, IP_PREFIX_HEAD_LEN, IPV6_PREFIX_LEN, SMCD_V2_EXT_HEAD_LEN,
    V2_EXT_HEAD_LEN,
};
pub(crate) use layout::{
    GidChidLayout, IpPrefixLayout, Ipv6PrefixLayout, ProposalHead, SmcdArea, SmcdV2ExtLayout,
    V2ExtLayout,
};

use core::mem::offset_of;

use zerocopy::network_endian::{U16, U64};

use super::codec::{
    byte_at_or_zero, ensure_room, read_at, write_at, write_prefix_at, zero_extended,
};
use super::error::{EmitError, Rule, WireError};
use super::header::{
    CLC_TRAILER_LEN, ClcHeaderRepr, ClcType, Eyecatcher, PROPOSAL_RCVBUF_BYTES, SmcType,
    emit_trailer,
};
use crate::dmb::{Chid, Gid};

/// Largest `iparea_offset` (rule P1): the size of the SMC-D area.
pub const IPAREA_OFFSET_MAX: u16 = 40;
/// Largest `v2_ext_offset` (rule P4): 28 + 8 + 17·8.
pub const V2_EXT_OFFSET_MAX: u16 = 172;
/// Largest `smcd_v2_ext_offset` Linux ≥ 6.12 accepts: 32 + 32·8. Larger (or
/// 0) means "no usable SMC-Dv2 extension" (NOV2DEXT). Older kernels do not
/// bound it; smcd uses the bound (the conservative reading).
pub const SMCD_V2_EXT_OFFSET_MAX: u16 = 288;

const HEAD_LEN: usize = size_of::<ProposalHead>();
const SMCD_AREA_LEN: usize = size_of::<SmcdArea>();
const FIXED_LEN: usize = HEAD_LEN + SMCD_AREA_LEN;
/// `v2_ext_offset` counts from the end of its own field (byte 52).
const V2_EXT_OFFSET_BASE: usize = HEAD_LEN + offset_of!(SmcdArea, v2_ext_offset) + size_of::<U16>();
/// `smcd_v2_ext_offset` counts from the end of its own field (+8).
const SMCD_V2_EXT_OFFSET_BASE: usize =
    offset_of!(V2ExtLayout, smcd_v2_ext_offset) + size_of::<U16>();

/// A Proposal, parsed and validated.
///
/// Counts (`ipv6_prefixes_cnt`, `eid_cnt`, `ism_gid_cnt`) and `length` are
/// not stored: they follow from the lists. Offsets are stored raw. Reserved
/// bytes are dropped (emitted as zero). For a v1 header only the first
/// `iparea_offset` bytes of the SMC-D area exist on the wire; absent fields
/// read as zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProposalRepr {
    /// Header eyecatcher (Linux: "SMCR").
    pub eyecatcher: Eyecatcher,
    /// Header version: 1, or ≥ 2 for a v2 Proposal (Linux ≥ 5.10 sends 2).
    pub version: u8,
    /// SMC type offered for v2.
    pub typev2: SmcType,
    /// SMC type offered for v1.
    pub typev1: SmcType,
    /// SMC-R system id (kept, never acted on).
    pub id_for_peer: [u8; 8],
    /// RoCE GID (kept, never acted on).
    pub gid: [u8; 16],
    /// RoCE MAC (kept, never acted on).
    pub mac: [u8; 6],
    /// Raw distance from byte 40 to the IP prefix area.
    pub iparea_offset: u16,
    /// Native v1 ISM GID (`ism.gid`); 0 unless SMC-D is offered in `typev1`.
    pub ism_gid: u64,
    /// CHID of that device (`ism.chid`).
    pub ism_chid: Chid,
    /// Raw distance from byte 52 to the v2 extension.
    pub v2_ext_offset: u16,
    /// Vendor OUI.
    pub vendor_oui: [u8; 3],
    /// Vendor experimental options.
    pub vendor_exp_options: [u8; 5],
    /// IP prefix area; present iff `typev1` ≠ N (always for a v1 header).
    pub ip_prefix: Option<IpPrefix>,
    /// v2 extension; present iff the header is v2 and `typev2` ≠ N.
    pub v2_ext: Option<V2Ext>,
    /// SMC-Dv2 extension; present iff the header is v2 and `typev2` ∈ {D, B}.
    pub smcd_v2_ext: Option<SmcdV2Ext>,
    /// Trailer eyecatcher (Linux: "SMCR").
    pub trailer: Eyecatcher,
}

/// Positions of the areas of a Proposal being emitted.
struct Layout {
    smcd_area_len: usize,
    prefix_at: usize,
    v2_ext_at: usize,
    smcd_v2_ext_at: usize,
    trailer_at: usize,
}

/// What rules P1–P6 learnt, as Linux reads the message.
struct Checked {
    /// Where Linux finds the v2 extension (v2 header, `typev2` ≠ N).
    v2_ext_at: Option<usize>,
    /// Bytes of the IP prefix area (8 + 17·`ipv6_prefixes_cnt`).
    prefix_area_len: usize,
    /// `eid_cnt` and `ism_gid_cnt` as Linux reads them (0 when unused).
    eid_cnt: u8,
    ism_gid_cnt: u8,
}

impl ProposalRepr {
    /// A Proposal of header `version` that offers nothing: "SMCR" as
    /// eyecatcher and trailer, both types N, every field zero, no areas.
    /// Fill in what it offers with struct update syntax, then
    /// [`set_canonical_offsets`](Self::set_canonical_offsets).
    ///
    /// ```
    /// use smcd_core::wire::clc::{ProposalRepr, SmcType};
    ///
    /// let p = ProposalRepr {
    ///     typev1: SmcType::D,
    ///     ..ProposalRepr::empty(1)
    /// };
    /// assert_eq!((p.version, p.typev2, p.ism_gid), (1, SmcType::N, 0));
    /// ```
    #[must_use]
    pub const fn empty(version: u8) -> Self {
        Self {
            eyecatcher: Eyecatcher::Smcr,
            version,
            typev2: SmcType::N,
            typev1: SmcType::N,
            id_for_peer: [0; 8],
            gid: [0; 16],
            mac: [0; 6],
            iparea_offset: 0,
            ism_gid: 0,
            ism_chid: Chid(0),
            v2_ext_offset: 0,
            vendor_oui: [0; 3],
            vendor_exp_options: [0; 5],
            ip_prefix: None,
            v2_ext: None,
            smcd_v2_ext: None,
            trailer: Eyecatcher::Smcr,
        }
    }

    /// Parses and validates a Proposal (rules H1–H4, P1–P6, X1).
    ///
    /// # Errors
    ///
    /// A [`WireError`] naming the violated rule; also H2 if the message is
    /// not a Proposal.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let header = ClcHeaderRepr::peek(bytes)?;
        header.require_type(ClcType::Proposal)?;
        let message = header.message(bytes)?;
        // Linux parses from a zero-filled buffer of this size.
        let area: [u8; PROPOSAL_RCVBUF_BYTES] = zero_extended(message);
        let checked = Self::check_linux_rules(&header, &area)?;
        let trailer = header.trailer(message, true)?;
        Self::check_canonical(&header, &area, &checked)?;
        Self::read_contents(&header, &area, &checked, trailer)
    }

    /// Rules P1–P6, reading each count where Linux reads it.
    fn check_linux_rules(header: &ClcHeaderRepr, area: &[u8]) -> Result<Checked, WireError> {
        let head: ProposalHead = read_at(area, 0)?;
        let smcd: SmcdArea = read_at(area, HEAD_LEN)?;
        let typev1 = SmcType::from_bits(header.typev1);
        let typev2 = SmcType::from_bits(header.typev2);
        let iparea_offset = head.iparea_offset.get();
        if iparea_offset > IPAREA_OFFSET_MAX {
            return Err(WireError::IpareaOffsetTooLarge { iparea_offset });
        }
        let prefix_at = HEAD_LEN + usize::from(iparea_offset);
        let cnt_at = prefix_at + 7;
        let ipv6_prefixes_cnt = byte_at_or_zero(area, cnt_at);
        if usize::from(ipv6_prefixes_cnt) > MAX_IPV6_PREFIXES {
            return Err(WireError::TooManyIpv6Prefixes {
                offset: cnt_at,
                ipv6_prefixes_cnt,
            });
        }
        let prefix_area_len = IP_PREFIX_HEAD_LEN + IPV6_PREFIX_LEN * usize::from(ipv6_prefixes_cnt);
        if header.version == 1 {
            if typev1 == SmcType::N {
                return Err(WireError::V1ProposalOffersNothing);
            }
            check_length(
                header,
                Rule::P3,
                prefix_at + prefix_area_len + CLC_TRAILER_LEN,
            )?;
            return Ok(Checked {
                v2_ext_at: None,
                prefix_area_len,
                eid_cnt: 0,
                ism_gid_cnt: 0,
            });
        }
        let mut checked = Checked {
            v2_ext_at: None,
            prefix_area_len,
            eid_cnt: 0,
            ism_gid_cnt: 0,
        };
        if typev2 != SmcType::N {
            if typev1.has_d() && iparea_offset != IPAREA_OFFSET_MAX {
                return Err(WireError::SmcdAreaMissing { iparea_offset });
            }
            let v2_ext_offset = smcd.v2_ext_offset.get();
            if v2_ext_offset == 0 || v2_ext_offset > V2_EXT_OFFSET_MAX {
                return Err(WireError::V2ExtOffsetInvalid { v2_ext_offset });
            }
            let at = V2_EXT_OFFSET_BASE + usize::from(v2_ext_offset);
            checked.eid_cnt = byte_at_or_zero(area, at);
            if usize::from(checked.eid_cnt) > MAX_UEIDS {
                return Err(WireError::TooManyUeids {
                    offset: at,
                    eid_cnt: checked.eid_cnt,
                });
            }
            if typev2.has_d() {
                checked.ism_gid_cnt = byte_at_or_zero(area, at + 1);
                if usize::from(checked.ism_gid_cnt) > MAX_GIDCHID_ENTRIES {
                    return Err(WireError::TooManyGidChids {
                        offset: at + 1,
                        ism_gid_cnt: checked.ism_gid_cnt,
                    });
                }
            }
            checked.v2_ext_at = Some(at);
        }
        let expected = FIXED_LEN
            + if typev1 != SmcType::N {
                prefix_area_len
            } else {
                0
            }
            + v2_ext_len(typev2, checked.eid_cnt)
            + smcd_v2_ext_len(typev2, checked.ism_gid_cnt)
            + CLC_TRAILER_LEN;
        check_length(header, Rule::P6, expected)?;
        Ok(checked)
    }

    /// Rule X1: for a v2 header, every area Linux would use lies at its
    /// canonical position.
    fn check_canonical(
        header: &ClcHeaderRepr,
        area: &[u8],
        checked: &Checked,
    ) -> Result<(), WireError> {
        if header.version == 1 {
            return Ok(());
        }
        let head: ProposalHead = read_at(area, 0)?;
        let typev1 = SmcType::from_bits(header.typev1);
        let typev2 = SmcType::from_bits(header.typev2);
        let mut canonical_v2_ext_at = FIXED_LEN;
        if typev1 != SmcType::N {
            let iparea_offset = head.iparea_offset.get();
            if iparea_offset != IPAREA_OFFSET_MAX {
                return Err(WireError::NonCanonicalOffset {
                    field: "iparea_offset",
                    offset: 38,
                    value: iparea_offset,
                    expected: IPAREA_OFFSET_MAX,
                });
            }
            canonical_v2_ext_at += checked.prefix_area_len;
        }
        let Some(v2_ext_at) = checked.v2_ext_at else {
            return Ok(());
        };
        if v2_ext_at != canonical_v2_ext_at {
            return Err(WireError::NonCanonicalOffset {
                field: "v2_ext_offset",
                offset: 50,
                value: offset_u16(v2_ext_at - V2_EXT_OFFSET_BASE),
                expected: offset_u16(canonical_v2_ext_at - V2_EXT_OFFSET_BASE),
            });
        }
        if typev2.has_d() {
            let field_at = v2_ext_at + 6;
            let value = read_at::<U16>(area, field_at)?.get();
            let expected = offset_u16(V2_EXT_HEAD_LEN - SMCD_V2_EXT_OFFSET_BASE)
                + 32 * u16::from(checked.eid_cnt);
            let linux_uses_it = value != 0 && value <= SMCD_V2_EXT_OFFSET_MAX;
            if linux_uses_it && value != expected {
                return Err(WireError::NonCanonicalOffset {
                    field: "smcd_v2_ext_offset",
                    offset: field_at,
                    value,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Builds the Repr from the canonical positions of a validated message.
    fn read_contents(
        header: &ClcHeaderRepr,
        area: &[u8],
        checked: &Checked,
        trailer: Eyecatcher,
    ) -> Result<Self, WireError> {
        let head: ProposalHead = read_at(area, 0)?;
        let typev1 = SmcType::from_bits(header.typev1);
        let typev2 = SmcType::from_bits(header.typev2);
        let iparea_offset = head.iparea_offset.get();
        let smcd_area_len = if header.version == 1 {
            usize::from(iparea_offset)
        } else {
            SMCD_AREA_LEN
        };
        let smcd_bytes = area.get(HEAD_LEN..HEAD_LEN + smcd_area_len).unwrap_or(&[]);
        let smcd: SmcdArea = read_at(&zero_extended::<SMCD_AREA_LEN>(smcd_bytes), 0)?;
        let prefix_at = HEAD_LEN + smcd_area_len;
        let ip_prefix = if header.version == 1 || typev1 != SmcType::N {
            Some(IpPrefix::read(area, prefix_at)?)
        } else {
            None
        };
        let (v2_ext, smcd_v2_ext) = match checked.v2_ext_at {
            Some(at) => {
                let (v2_ext, ism_gid_cnt) = V2Ext::read(area, at)?;
                let smcd_v2_ext = if typev2.has_d() {
                    Some(SmcdV2Ext::read(area, at + v2_ext.wire_len(), ism_gid_cnt)?)
                } else {
                    None
                };
                (Some(v2_ext), smcd_v2_ext)
            }
            None => (None, None),
        };
        Ok(Self {
            eyecatcher: header.eyecatcher,
            version: header.version,
            typev2,
            typev1,
            id_for_peer: head.id_for_peer,
            gid: head.gid,
            mac: head.mac,
            iparea_offset,
            ism_gid: smcd.ism_gid.get(),
            ism_chid: Chid(smcd.ism_chid.get()),
            v2_ext_offset: smcd.v2_ext_offset.get(),
            vendor_oui: smcd.vendor_oui,
            vendor_exp_options: smcd.vendor_exp_options,
            ip_prefix,
            v2_ext,
            smcd_v2_ext,
            trailer,
        })
    }

    fn layout(&self) -> Layout {
        let smcd_area_len = if self.version < 2 {
            usize::from(self.iparea_offset)
        } else {
            SMCD_AREA_LEN
        };
        let prefix_at = HEAD_LEN + smcd_area_len;
        let v2_ext_at = prefix_at + self.ip_prefix.as_ref().map_or(0, IpPrefix::wire_len);
        let smcd_v2_ext_at = v2_ext_at + self.v2_ext.as_ref().map_or(0, V2Ext::wire_len);
        let trailer_at = smcd_v2_ext_at + self.smcd_v2_ext.as_ref().map_or(0, SmcdV2Ext::wire_len);
        Layout {
            smcd_area_len,
            prefix_at,
            v2_ext_at,
            smcd_v2_ext_at,
            trailer_at,
        }
    }

    /// Number of bytes [`emit`](Self::emit) writes (the header `length`).
    pub fn buffer_len(&self) -> usize {
        self.layout().trailer_at + CLC_TRAILER_LEN
    }

    /// Writes the Proposal to the start of `buf`; returns the bytes written.
    ///
    /// Areas are written at their canonical positions, offsets as stored
    /// (see [`set_canonical_offsets`](Self::set_canonical_offsets)).
    ///
    /// # Errors
    ///
    /// [`EmitError::BufferTooSmall`], or [`EmitError::TooLong`] for a v1
    /// Repr with an `iparea_offset` far beyond 40.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let layout = self.layout();
        let len = layout.trailer_at + CLC_TRAILER_LEN;
        let length = u16::try_from(len).map_err(|_| EmitError::TooLong { length: len })?;
        ensure_room(buf, len)?;
        buf.iter_mut().take(len).for_each(|b| *b = 0);
        let header = ClcHeaderRepr {
            eyecatcher: self.eyecatcher,
            r#type: ClcType::Proposal,
            length,
            version: self.version,
            typev2: self.typev2.bits(),
            typev1: self.typev1.bits(),
        };
        let head = ProposalHead {
            header: header.raw(),
            id_for_peer: self.id_for_peer,
            gid: self.gid,
            mac: self.mac,
            iparea_offset: U16::new(self.iparea_offset),
        };
        write_at(buf, 0, &head)?;
        let smcd = SmcdArea {
            ism_gid: U64::new(self.ism_gid),
            ism_chid: U16::new(self.ism_chid.0),
            v2_ext_offset: U16::new(self.v2_ext_offset),
            vendor_oui: self.vendor_oui,
            vendor_exp_options: self.vendor_exp_options,
            reserved: [0; 20],
        };
        write_prefix_at(buf, HEAD_LEN, &smcd, layout.smcd_area_len)?;
        if let Some(p) = &self.ip_prefix {
            p.write(buf, layout.prefix_at)?;
        }
        if let Some(v2) = &self.v2_ext {
            let ism_gid_cnt = self
                .smcd_v2_ext
                .as_ref()
                .map_or(0, |e| ext::count(e.gidchid.len()));
            v2.write(buf, layout.v2_ext_at, ism_gid_cnt)?;
        }
        if let Some(e) = &self.smcd_v2_ext {
            e.write(buf, layout.smcd_v2_ext_at)?;
        }
        emit_trailer(buf, len, self.trailer)?;
        Ok(len)
    }

    /// Sets `iparea_offset`, `v2_ext_offset` and `smcd_v2_ext_offset` to the
    /// values a Linux ≥ 5.10 sender uses for the areas present: 40 with a
    /// prefix area (else 0), 28 + prefix area length with a v2 extension
    /// (else 0), 32 + 32·`eid_cnt` with an SMC-Dv2 extension (else 0).
    pub fn set_canonical_offsets(&mut self) {
        let prefix_len = self.ip_prefix.as_ref().map_or(0, IpPrefix::wire_len);
        self.iparea_offset = if self.ip_prefix.is_some() {
            IPAREA_OFFSET_MAX
        } else {
            0
        };
        self.v2_ext_offset = match self.v2_ext {
            Some(_) => offset_u16(FIXED_LEN - V2_EXT_OFFSET_BASE + prefix_len),
            None => 0,
        };
        let has_smcd = self.smcd_v2_ext.is_some();
        if let Some(v2) = &mut self.v2_ext {
            v2.smcd_v2_ext_offset = if has_smcd {
                v2.canonical_smcd_v2_ext_offset()
            } else {
                0
            };
        }
    }

    /// The v2 extension, if Linux can locate it: v2 header, the SMC-D area
    /// present (`iparea_offset` = 40 when `typev1` offers SMC-D) and
    /// `v2_ext_offset` in 1..=172.
    pub fn usable_v2_ext(&self) -> Option<&V2Ext> {
        let smcd_area_missing = self.typev1.has_d() && self.iparea_offset != IPAREA_OFFSET_MAX;
        let offset_ok = (1..=V2_EXT_OFFSET_MAX).contains(&self.v2_ext_offset);
        if self.version < 2 || smcd_area_missing || !offset_ok {
            return None;
        }
        self.v2_ext.as_ref()
    }

    /// The SMC-Dv2 extension, if Linux ≥ 6.12 can use it: the v2 extension
    /// is usable and its `smcd_v2_ext_offset` is in 1..=288.
    pub fn usable_smcd_v2_ext(&self) -> Option<&SmcdV2Ext> {
        let v2 = self.usable_v2_ext()?;
        if !(1..=SMCD_V2_EXT_OFFSET_MAX).contains(&v2.smcd_v2_ext_offset) {
            return None;
        }
        self.smcd_v2_ext.as_ref()
    }

    /// The native ISM device of the SMC-D area, if `ism_chid` ≠ 0 (a server
    /// tries it first when matching SMC-Dv2 devices).
    pub fn native_device(&self) -> Option<(Gid, Chid)> {
        (self.ism_chid.0 != 0).then_some((Gid::new(self.ism_gid, 0), self.ism_chid))
    }
}

/// Rules P3/P6: `length` must equal `expected`.
fn check_length(header: &ClcHeaderRepr, rule: Rule, expected: usize) -> Result<(), WireError> {
    if usize::from(header.length) == expected {
        return Ok(());
    }
    Err(WireError::LengthMismatch {
        rule,
        length: header.length,
        expected: offset_u16(expected),
    })
}

/// Length of the v2 extension the formula counts for `typev2`.
fn v2_ext_len(typev2: SmcType, eid_cnt: u8) -> usize {
    if typev2 == SmcType::N {
        return 0;
    }
    V2_EXT_HEAD_LEN + EID_LEN * usize::from(eid_cnt)
}

/// Length of the SMC-Dv2 extension the formula counts for `typev2`.
fn smcd_v2_ext_len(typev2: SmcType, ism_gid_cnt: u8) -> usize {
    if !typev2.has_d() {
        return 0;
    }
    SMCD_V2_EXT_HEAD_LEN + GIDCHID_LEN * usize::from(ism_gid_cnt)
}

/// A position within a Proposal (≤ 652) as a u16 wire value.
fn offset_u16(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}
