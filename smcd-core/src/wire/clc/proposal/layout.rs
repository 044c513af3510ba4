//! Raw layouts of the Proposal and its areas (`docs/protocol/clc.md` §3).

use zerocopy::network_endian::{U16, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::wire::clc::eid::Eid;
use crate::wire::clc::header::ClcHeader;

/// Size of the IP prefix area head.
pub(super) const IP_PREFIX_HEAD_LEN: usize = size_of::<IpPrefixLayout>();
/// Size of one IPv6 prefix entry.
pub(super) const IPV6_PREFIX_LEN: usize = size_of::<Ipv6PrefixLayout>();
/// Size of the v2 extension head.
pub(super) const V2_EXT_HEAD_LEN: usize = size_of::<V2ExtLayout>();
/// Size of one UEID.
pub(super) const EID_LEN: usize = size_of::<Eid>();
/// Size of the SMC-Dv2 extension head.
pub(super) const SMCD_V2_EXT_HEAD_LEN: usize = size_of::<SmcdV2ExtLayout>();
/// Size of one GID/CHID entry.
pub(super) const GIDCHID_LEN: usize = size_of::<GidChidLayout>();

/// The first 40 bytes of a Proposal, `struct smc_clc_msg_proposal`
/// (net/smc/smc_clc.h), with `struct smc_clc_msg_local` inlined.
///
/// ```text
///  0       8              16                              32          38  40
/// +-------+--------------+-------------------------------+-----------+---+
/// |header | id_for_peer  |          gid (RoCE)           |    mac    |ipa|
/// +-------+--------------+-------------------------------+-----------+---+
///                                                   ipa = iparea_offset
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct ProposalHead {
    /// Common header, type 1.
    pub(crate) header: ClcHeader,
    /// SMC-R system id.
    pub(crate) id_for_peer: [u8; 8],
    /// RoCE GID.
    pub(crate) gid: [u8; 16],
    /// RoCE MAC.
    pub(crate) mac: [u8; 6],
    /// Distance from byte 40 to the IP prefix area.
    pub(crate) iparea_offset: U16,
}

/// The SMC-D area at byte 40 (40 bytes), `struct smc_clc_msg_smcd`.
///
/// ```text
///  40          48    50    52    55          60                      80
/// +-----------+-----+-----+-----+-----------+-----------------------+
/// |  ism_gid  |chid |v2eo | oui | vendor_exp|       reserved        |
/// +-----------+-----+-----+-----+-----------+-----------------------+
///                  chid = ism_chid, v2eo = v2_ext_offset
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct SmcdArea {
    /// Native v1 ISM GID (`ism.gid`).
    pub(crate) ism_gid: U64,
    /// CHID of that device (`ism.chid`).
    pub(crate) ism_chid: U16,
    /// Distance from byte 52 to the v2 extension.
    pub(crate) v2_ext_offset: U16,
    /// Vendor OUI.
    pub(crate) vendor_oui: [u8; 3],
    /// Vendor experimental options.
    pub(crate) vendor_exp_options: [u8; 5],
    /// Reserved.
    pub(crate) reserved: [u8; 20],
}

/// The IP prefix area head (8 bytes), `struct smc_clc_msg_proposal_prefix`.
///
/// ```text
///  +0              +4    +5      +7   +8
/// +---------------+-----+-------+----+
/// |outgoing_subnet| len | rsvd  |cnt |  then cnt × smc_clc_ipv6_prefix
/// +---------------+-----+-------+----+
///            len = prefix_len, cnt = ipv6_prefixes_cnt
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct IpPrefixLayout {
    /// IPv4 address AND mask of the egress interface.
    pub(crate) outgoing_subnet: [u8; 4],
    /// IPv4 mask length.
    pub(crate) prefix_len: u8,
    /// Reserved.
    pub(crate) reserved: [u8; 2],
    /// Number of IPv6 prefixes that follow.
    pub(crate) ipv6_prefixes_cnt: u8,
}

/// One IPv6 prefix (17 bytes), `struct smc_clc_ipv6_prefix`.
///
/// ```text
///  +0                                              +16  +17
/// +------------------------------------------------+----+
/// |                    prefix                      |len |
/// +------------------------------------------------+----+
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct Ipv6PrefixLayout {
    /// Address masked to `prefix_len`.
    pub(crate) prefix: [u8; 16],
    /// Prefix length.
    pub(crate) prefix_len: u8,
}

/// The v2 extension head (40 bytes), `struct smc_clc_v2_extension` with its
/// `struct smc_clnt_opts_area_hdr`; `eid_cnt` UEIDs of 32 bytes follow.
///
/// ```text
///  +0  +1  +2  +3  +4    +6     +8               +24 +25 +26  +28        +40
/// +---+---+---+---+-----+------+----------------+---+---+----+----------+
/// |eid|gid|rsv|r|s| rsv | sdeo |     roce       |mc |ml |feat| reserved |
/// +---+---+---+---+-----+------+----------------+---+---+----+----------+
///  eid = eid_cnt, gid = ism_gid_cnt, r|s = release<<4 | seid,
///  sdeo = smcd_v2_ext_offset, mc/ml = max_conns/max_links, feat = feature_mask
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct V2ExtLayout {
    /// Number of UEIDs.
    pub(crate) eid_cnt: u8,
    /// Number of GID/CHID entries in the SMC-Dv2 extension.
    pub(crate) ism_gid_cnt: u8,
    /// Reserved.
    pub(crate) reserved: u8,
    /// `release` (bits 7–4), reserved (bits 3–1), `seid` (bit 0).
    pub(crate) release_seid: u8,
    /// Reserved.
    pub(crate) reserved2: [u8; 2],
    /// Distance from byte +8 to the SMC-Dv2 extension.
    pub(crate) smcd_v2_ext_offset: U16,
    /// RoCEv2 GID.
    pub(crate) roce: [u8; 16],
    /// SMC-Rv2 max connections.
    pub(crate) max_conns: u8,
    /// SMC-Rv2 max links.
    pub(crate) max_links: u8,
    /// Supported features.
    pub(crate) feature_mask: U16,
    /// Reserved.
    pub(crate) reserved3: [u8; 12],
}

/// The SMC-Dv2 extension head (48 bytes), `struct smc_clc_smcd_v2_extension`;
/// `ism_gid_cnt` GID/CHID entries follow.
///
/// ```text
///  +0                               +32              +48
/// +--------------------------------+----------------+
/// |          system_eid            |    reserved    |
/// +--------------------------------+----------------+
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct SmcdV2ExtLayout {
    /// SEID, zero if none.
    pub(crate) system_eid: [u8; 32],
    /// Reserved.
    pub(crate) reserved: [u8; 16],
}

/// One GID/CHID entry (10 bytes), `struct smc_clc_smcd_gid_chid`.
///
/// ```text
///  +0              +8    +10
/// +---------------+-----+
/// |      gid      |chid |
/// +---------------+-----+
/// ```
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct GidChidLayout {
    /// GID, or one half of a 128-bit GID.
    pub(crate) gid: U64,
    /// CHID.
    pub(crate) chid: U16,
}
