//! The variable areas of a Proposal: IP prefix area, v2 extension and
//! SMC-Dv2 extension (`docs/protocol/clc.md` §3.2–3.4).

use core::net::{Ipv4Addr, Ipv6Addr};

use heapless::Vec;
use zerocopy::network_endian::{U16, U64};

use super::layout::{
    EID_LEN, GIDCHID_LEN, GidChidLayout, IP_PREFIX_HEAD_LEN, IPV6_PREFIX_LEN, IpPrefixLayout,
    Ipv6PrefixLayout, SMCD_V2_EXT_HEAD_LEN, SmcdV2ExtLayout, V2_EXT_HEAD_LEN, V2ExtLayout,
};
use crate::dmb::{Chid, Gid};
use crate::wire::clc::codec::{read_at, write_at};
use crate::wire::clc::eid::Eid;
use crate::wire::clc::error::{EmitError, WireError};

/// Most IPv6 prefixes in a Proposal.
pub const MAX_IPV6_PREFIXES: usize = 8;
/// Most UEIDs in a received Proposal (`SMC_CLC_MAX_UEID`).
pub const MAX_UEIDS: usize = 8;
/// Most GID/CHID entries in an SMC-Dv2 extension.
pub const MAX_GIDCHID_ENTRIES: usize = 8;

/// One IPv6 prefix of the IP prefix area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ipv6Prefix {
    /// Address masked to `prefix_len`.
    pub prefix: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// The IP prefix area (`docs/protocol/clc.md` §3.2), present iff `typev1` ≠ N.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IpPrefix {
    /// IPv4 address AND mask of the egress interface (0 for IPv6).
    pub outgoing_subnet: Ipv4Addr,
    /// IPv4 mask length.
    pub prefix_len: u8,
    /// IPv6 prefixes; `ipv6_prefixes_cnt` on the wire is their number.
    pub ipv6_prefixes: Vec<Ipv6Prefix, MAX_IPV6_PREFIXES>,
}

impl IpPrefix {
    /// Bytes on the wire: 8 + 17 per IPv6 prefix.
    pub fn wire_len(&self) -> usize {
        IP_PREFIX_HEAD_LEN + IPV6_PREFIX_LEN * self.ipv6_prefixes.len()
    }

    pub(super) fn read(buf: &[u8], at: usize) -> Result<Self, WireError> {
        let head: IpPrefixLayout = read_at(buf, at)?;
        let mut ipv6_prefixes = Vec::new();
        for i in 0..usize::from(head.ipv6_prefixes_cnt) {
            let raw: Ipv6PrefixLayout =
                read_at(buf, at + IP_PREFIX_HEAD_LEN + IPV6_PREFIX_LEN * i)?;
            let entry = Ipv6Prefix {
                prefix: Ipv6Addr::from(raw.prefix),
                prefix_len: raw.prefix_len,
            };
            ipv6_prefixes
                .push(entry)
                .map_err(|_| WireError::TooManyIpv6Prefixes {
                    offset: at + 7,
                    ipv6_prefixes_cnt: head.ipv6_prefixes_cnt,
                })?;
        }
        Ok(Self {
            outgoing_subnet: Ipv4Addr::from(head.outgoing_subnet),
            prefix_len: head.prefix_len,
            ipv6_prefixes,
        })
    }

    pub(super) fn write(&self, buf: &mut [u8], at: usize) -> Result<(), EmitError> {
        let head = IpPrefixLayout {
            outgoing_subnet: self.outgoing_subnet.octets(),
            prefix_len: self.prefix_len,
            reserved: [0; 2],
            ipv6_prefixes_cnt: count(self.ipv6_prefixes.len()),
        };
        write_at(buf, at, &head)?;
        for (i, p) in self.ipv6_prefixes.iter().enumerate() {
            let raw = Ipv6PrefixLayout {
                prefix: p.prefix.octets(),
                prefix_len: p.prefix_len,
            };
            write_at(buf, at + IP_PREFIX_HEAD_LEN + IPV6_PREFIX_LEN * i, &raw)?;
        }
        Ok(())
    }
}

/// The v2 extension (`docs/protocol/clc.md` §3.3), present iff `typev2` ≠ N.
///
/// `eid_cnt` on the wire is the number of `user_eids`; `ism_gid_cnt` is the
/// number of entries of the Proposal's [`SmcdV2Ext`] (0 without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct V2Ext {
    /// Sender's release (4 bits; Linux 1).
    pub release: u8,
    /// The SEID in the SMC-Dv2 extension is valid and enabled.
    pub seid: bool,
    /// Raw distance from byte +8 of this extension to the SMC-Dv2 extension.
    /// Linux sends 32 + 32·`eid_cnt`; 0 or > 288 means "no usable SMC-Dv2
    /// extension" (see [`SmcdV2Ext`] for where smcd reads it from).
    pub smcd_v2_ext_offset: u16,
    /// RoCEv2 GID (SMC-Rv2 only; kept, never acted on).
    pub roce: [u8; 16],
    /// SMC-Rv2 max connections (kept, never acted on).
    pub max_conns: u8,
    /// SMC-Rv2 max links (kept, never acted on).
    pub max_links: u8,
    /// Supported features (Linux sends 0x0001, `SMC_SPF_EMULATED_ISM_DEV`).
    pub feature_mask: u16,
    /// User EIDs.
    pub user_eids: Vec<Eid, MAX_UEIDS>,
}

impl V2Ext {
    /// Bytes on the wire: 40 + 32 per UEID.
    pub fn wire_len(&self) -> usize {
        V2_EXT_HEAD_LEN + EID_LEN * self.user_eids.len()
    }

    /// The `smcd_v2_ext_offset` Linux sends: 32 + 32·`eid_cnt`.
    pub fn canonical_smcd_v2_ext_offset(&self) -> u16 {
        let eids = u16::from(count(self.user_eids.len()));
        32 + 32 * eids
    }

    /// Reads the extension at `at`; counts are already validated (≤ 8).
    pub(super) fn read(buf: &[u8], at: usize) -> Result<(Self, u8), WireError> {
        let head: V2ExtLayout = read_at(buf, at)?;
        let mut user_eids = Vec::new();
        for i in 0..usize::from(head.eid_cnt) {
            let eid: [u8; 32] = read_at(buf, at + V2_EXT_HEAD_LEN + EID_LEN * i)?;
            user_eids
                .push(Eid(eid))
                .map_err(|_| WireError::TooManyUeids {
                    offset: at,
                    eid_cnt: head.eid_cnt,
                })?;
        }
        let ext = Self {
            release: head.release_seid >> 4,
            seid: head.release_seid & 0x01 != 0,
            smcd_v2_ext_offset: head.smcd_v2_ext_offset.get(),
            roce: head.roce,
            max_conns: head.max_conns,
            max_links: head.max_links,
            feature_mask: head.feature_mask.get(),
            user_eids,
        };
        Ok((ext, head.ism_gid_cnt))
    }

    pub(super) fn write(
        &self,
        buf: &mut [u8],
        at: usize,
        ism_gid_cnt: u8,
    ) -> Result<(), EmitError> {
        let head = V2ExtLayout {
            eid_cnt: count(self.user_eids.len()),
            ism_gid_cnt,
            reserved: 0,
            release_seid: (self.release << 4) | u8::from(self.seid),
            reserved2: [0; 2],
            smcd_v2_ext_offset: U16::new(self.smcd_v2_ext_offset),
            roce: self.roce,
            max_conns: self.max_conns,
            max_links: self.max_links,
            feature_mask: U16::new(self.feature_mask),
            reserved3: [0; 12],
        };
        write_at(buf, at, &head)?;
        for (i, eid) in self.user_eids.iter().enumerate() {
            write_at(buf, at + V2_EXT_HEAD_LEN + EID_LEN * i, &eid.0)?;
        }
        Ok(())
    }
}

/// One GID/CHID entry of the SMC-Dv2 extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GidChid {
    /// A native GID, or one half of an emulated device's 128-bit GID.
    pub gid: u64,
    /// The device's CHID.
    pub chid: Chid,
}

/// The SMC-Dv2 extension (`docs/protocol/clc.md` §3.4), present iff the header is v2
/// and `typev2` ∈ {D, B}.
///
/// smcd reads it from the position the length formula gives it (right after
/// the UEIDs), which is where Linux finds it whenever `smcd_v2_ext_offset`
/// lets Linux find it at all (rule X1 rejects anything else); with an offset
/// of 0 or > 288 the contents are kept for display and round trips only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SmcdV2Ext {
    /// SEID, zero unless the sender has one and enabled it.
    pub system_eid: Eid,
    /// Raw GID/CHID entries; an emulated device (CHID 0xFF00–0xFFFF) takes
    /// two consecutive entries with the same CHID. See [`devices`](Self::devices).
    pub gidchid: Vec<GidChid, MAX_GIDCHID_ENTRIES>,
}

impl SmcdV2Ext {
    /// Bytes on the wire: 48 + 10 per entry.
    pub fn wire_len(&self) -> usize {
        SMCD_V2_EXT_HEAD_LEN + GIDCHID_LEN * self.gidchid.len()
    }

    /// The offered devices, each as its full GID and CHID.
    ///
    /// An emulated-CHID entry is combined with the next entry when that has
    /// the same CHID (`gid` = high half, next `gid` = `gid_ext`); a lone
    /// emulated entry is skipped and the entry after it is looked at on its
    /// own, as Linux does.
    pub fn devices(&self) -> Devices<'_> {
        Devices {
            entries: &self.gidchid,
            pos: 0,
        }
    }

    /// Appends a device (two entries for an emulated CHID, one otherwise).
    ///
    /// # Errors
    ///
    /// Returns `Err(())` and leaves the list unchanged if the entries do not
    /// fit (at most 8; Linux then skips the device).
    #[allow(clippy::result_unit_err)]
    pub fn push_device(&mut self, gid: Gid, chid: Chid) -> Result<(), ()> {
        let needed = if chid.is_emulated() { 2 } else { 1 };
        if self.gidchid.capacity() - self.gidchid.len() < needed {
            return Err(());
        }
        self.gidchid
            .push(GidChid { gid: gid.gid, chid })
            .map_err(|_| ())?;
        if chid.is_emulated() {
            let low = GidChid {
                gid: gid.gid_ext,
                chid,
            };
            self.gidchid.push(low).map_err(|_| ())?;
        }
        Ok(())
    }

    /// Reads the extension with `ism_gid_cnt` (≤ 8, validated) entries at `at`.
    pub(super) fn read(buf: &[u8], at: usize, ism_gid_cnt: u8) -> Result<Self, WireError> {
        let head: SmcdV2ExtLayout = read_at(buf, at)?;
        let mut gidchid = Vec::new();
        for i in 0..usize::from(ism_gid_cnt) {
            let raw: GidChidLayout = read_at(buf, at + SMCD_V2_EXT_HEAD_LEN + GIDCHID_LEN * i)?;
            let entry = GidChid {
                gid: raw.gid.get(),
                chid: Chid(raw.chid.get()),
            };
            gidchid
                .push(entry)
                .map_err(|_| WireError::TooManyGidChids {
                    offset: at,
                    ism_gid_cnt,
                })?;
        }
        Ok(Self {
            system_eid: Eid(head.system_eid),
            gidchid,
        })
    }

    pub(super) fn write(&self, buf: &mut [u8], at: usize) -> Result<(), EmitError> {
        let head = SmcdV2ExtLayout {
            system_eid: self.system_eid.0,
            reserved: [0; 16],
        };
        write_at(buf, at, &head)?;
        for (i, e) in self.gidchid.iter().enumerate() {
            let raw = GidChidLayout {
                gid: U64::new(e.gid),
                chid: U16::new(e.chid.0),
            };
            write_at(buf, at + SMCD_V2_EXT_HEAD_LEN + GIDCHID_LEN * i, &raw)?;
        }
        Ok(())
    }
}

/// Iterator over the devices of an [`SmcdV2Ext`], see [`SmcdV2Ext::devices`].
#[derive(Debug, Clone)]
pub struct Devices<'a> {
    entries: &'a [GidChid],
    pos: usize,
}

impl Iterator for Devices<'_> {
    type Item = (Gid, Chid);

    fn next(&mut self) -> Option<(Gid, Chid)> {
        loop {
            let entry = self.entries.get(self.pos)?;
            self.pos += 1;
            if !entry.chid.is_emulated() {
                return Some((Gid::new(entry.gid, 0), entry.chid));
            }
            match self.entries.get(self.pos) {
                Some(low) if low.chid == entry.chid => {
                    self.pos += 1;
                    return Some((Gid::new(entry.gid, low.gid), entry.chid));
                }
                _ => continue,
            }
        }
    }
}

/// A list length (≤ 8 by the `heapless` capacity) as a wire count.
pub(super) fn count(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(entries: &[(u64, u16)]) -> SmcdV2Ext {
        let mut e = SmcdV2Ext::default();
        for (gid, chid) in entries {
            e.gidchid
                .push(GidChid {
                    gid: *gid,
                    chid: Chid(*chid),
                })
                .unwrap();
        }
        e
    }

    #[test]
    fn devices_combine_emulated_pairs_and_skip_lone_entries() {
        let e = ext(&[
            (0xA, 0xFFFF),
            (0xB, 0xFFFF),
            (0xC, 0x0123),
            (0xD, 0xFF01), // lone: next entry has another CHID
            (0xE, 0x0456),
            (0xF, 0xFF02), // lone: last entry
        ]);
        let got: std::vec::Vec<_> = e.devices().collect();
        assert_eq!(
            got,
            [
                (Gid::new(0xA, 0xB), Chid(0xFFFF)),
                (Gid::new(0xC, 0), Chid(0x0123)),
                (Gid::new(0xE, 0), Chid(0x0456)),
            ]
        );
    }

    #[test]
    fn push_device_needs_two_slots_for_emulated() {
        let mut e = SmcdV2Ext::default();
        for i in 0..7 {
            e.push_device(Gid::new(i, 0), Chid(0x100)).unwrap();
        }
        assert_eq!(e.push_device(Gid::new(1, 2), Chid::LOOPBACK), Err(()));
        assert_eq!(e.gidchid.len(), 7);
        e.push_device(Gid::new(9, 0), Chid(0x200)).unwrap();
        assert_eq!(e.push_device(Gid::new(10, 0), Chid(0x300)), Err(()));
        let mut lo = SmcdV2Ext::default();
        lo.push_device(Gid::new(1, 2), Chid::LOOPBACK).unwrap();
        assert_eq!(
            lo.devices().collect::<std::vec::Vec<_>>(),
            [(Gid::new(1, 2), Chid::LOOPBACK)]
        );
    }
}
