//! A parsed CLC message as a [`Field`] tree: every field of `docs/protocol/clc.md` §10
//! with its byte offset, value and (for people) its meaning.
//!
//! Offsets come from the field tables of `smcd_core::wire::clc::fields`,
//! built from the parser's layout structs, so they cannot drift from it.

use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr};

use smcd_core::dmb::Chid;
use smcd_core::wire::clc::fields::{
    ACCEPT, ACCEPT_V2, DECLINE, FCE, FCE_V2X, GID_CHID, HEADER, IP_PREFIX, IPV6_PREFIX,
    PROPOSAL_HEAD, PROPOSAL_SMCD_AREA, SMCD_V2_EXT, V2_EXT,
};
use smcd_core::wire::clc::{
    AcceptRepr, ClcHeaderRepr, ClcMessage, DeclineReason, DeclineRepr, Fce, IpPrefix, ProposalRepr,
    SmcType, SmcdV2Ext, V2Ext, bufsize,
};

use super::text;
use super::tree::{Field, FieldValue};

/// The offset of field `$name` in the part `$part` of
/// `smcd_core::wire::clc::fields`; a name the part does not have fails the
/// build.
macro_rules! at {
    ($part:ident, $name:literal) => {
        const {
            match $part.offset($name) {
                Some(offset) => offset,
                None => panic!(concat!("no field ", $name, " in ", stringify!($part))),
            }
        }
    };
}

/// Header byte 7: version, typev2, typev1.
const BITS_AT: usize = at!(HEADER, "version_typev2_typev1");
/// Start of the SMC-D area of a Proposal (after the fixed head).
const SMCD_AREA_AT: usize = PROPOSAL_HEAD.size();
/// Size of the SMC-D area of a v2 Proposal.
const SMCD_AREA_LEN: usize = PROPOSAL_SMCD_AREA.size();
/// Where the v2 part of an Accept/Confirm starts.
const ACCEPT_V2_AT: usize = ACCEPT.size();
/// Where the first-contact extension of an Accept/Confirm starts.
const FCE_AT: usize = ACCEPT_V2_AT + ACCEPT_V2.size();
/// Where the v2.1 tail of the first-contact extension starts, from its start.
const FCE_V2X_AT: usize = FCE.size();
/// Where `peer_diagnosis_v2` of a v2 Decline starts.
const DECLINE_V2_AT: usize = DECLINE.size();
/// Size of one UEID.
const EID_LEN: usize = text::TEXT_LEN;

/// The message kind, as the JSON `"kind"` value.
pub(crate) fn kind(message: &ClcMessage) -> &'static str {
    match message {
        ClcMessage::Proposal(_) => "proposal",
        ClcMessage::AcceptConfirm(a) => match a.kind {
            smcd_core::wire::clc::AcceptKind::Accept => "accept",
            smcd_core::wire::clc::AcceptKind::Confirm => "confirm",
        },
        ClcMessage::Decline(_) => "decline",
    }
}

/// All fields of `message`; `header` is its decoded header (raw bit fields).
pub(crate) fn fields(header: &ClcHeaderRepr, message: &ClcMessage) -> Vec<Field> {
    let mut header_fields = header_fields(header);
    let mut fields = match message {
        ClcMessage::Proposal(p) => proposal(p),
        ClcMessage::AcceptConfirm(a) => {
            header_fields.push(Field::bool(BITS_AT, "first_contact", a.first_contact));
            accept(a)
        }
        ClcMessage::Decline(d) => {
            header_fields.push(Field::bool(BITS_AT, "out_of_sync", d.out_of_sync));
            decline(d)
        }
    };
    fields.insert(0, Field::object(0, "header", header_fields));
    let trailer = match message {
        ClcMessage::Proposal(p) => p.trailer,
        ClcMessage::AcceptConfirm(a) => a.trailer,
        ClcMessage::Decline(d) => d.trailer,
    };
    let trailer_at = usize::from(header.length).saturating_sub(4);
    fields.push(
        Field::bytes(trailer_at, "trailer", &trailer.to_bytes())
            .note(eyecatcher_note(trailer.to_bytes())),
    );
    fields
}

fn header_fields(h: &ClcHeaderRepr) -> Vec<Field> {
    let eyecatcher = h.eyecatcher.to_bytes();
    vec![
        Field::bytes(0, "eyecatcher", &eyecatcher).note(eyecatcher_note(eyecatcher)),
        Field::int(at!(HEADER, "type"), "type", u8::from(h.r#type)).note(h.r#type.to_string()),
        Field::int(at!(HEADER, "length"), "length", h.length).note("bytes"),
        Field::int(BITS_AT, "version", h.version).note("bits 7-4"),
        Field::int(BITS_AT, "typev2", h.typev2).note(format!("bits 3-2: {}", typev2_note(h))),
        Field::int(BITS_AT, "typev1", h.typev1).note(format!("bits 1-0: {}", typev1_note(h))),
    ]
}

fn typev2_note(h: &ClcHeaderRepr) -> String {
    use smcd_core::wire::clc::ClcType;
    match h.r#type {
        ClcType::Proposal if h.version < 2 => "unused in a version-1 Proposal".to_owned(),
        ClcType::Proposal => format!("SMC type offered for v2: {}", smc_type_name(h.typev2)),
        ClcType::Accept | ClcType::Confirm => flag_note(h.typev2, "first contact"),
        ClcType::Decline => flag_note(h.typev2, "out of sync"),
        ClcType::Unknown(_) => "raw".to_owned(),
    }
}

fn flag_note(typev2: u8, what: &str) -> String {
    if typev2 & 0b10 != 0 {
        what.to_owned()
    } else {
        format!("not {what}")
    }
}

fn typev1_note(h: &ClcHeaderRepr) -> String {
    use smcd_core::wire::clc::ClcType;
    match h.r#type {
        ClcType::Proposal => format!("SMC type offered for v1: {}", smc_type_name(h.typev1)),
        ClcType::Accept | ClcType::Confirm => format!("chosen type: {}", smc_type_name(h.typev1)),
        _ => "unused".to_owned(),
    }
}

fn smc_type_name(bits: u8) -> &'static str {
    match SmcType::from_bits(bits) {
        SmcType::R => "SMC-R",
        SmcType::D => "SMC-D",
        SmcType::N => "none",
        SmcType::B => "SMC-R and SMC-D",
    }
}

fn eyecatcher_note(bytes: [u8; 4]) -> String {
    use smcd_core::wire::clc::Eyecatcher;
    match Eyecatcher::from(bytes) {
        Eyecatcher::Smcr => "\"SMCR\" in EBCDIC".to_owned(),
        Eyecatcher::Smcd => "\"SMCD\" in EBCDIC".to_owned(),
        Eyecatcher::Unknown(_) => "neither SMCR nor SMCD".to_owned(),
    }
}

fn chid_note(chid: Chid) -> String {
    match chid.0 {
        c if chid == Chid::LOOPBACK => format!("{c:#06x}, loopback-ism"),
        c if chid.is_emulated() => format!("{c:#06x}, emulated ISM (128-bit GID)"),
        0 => "none".to_owned(),
        c => format!("{c:#06x}, native ISM"),
    }
}

fn os_type_note(os_type: u8) -> String {
    match os_type {
        0 => "unset".to_owned(),
        1 => "z/OS".to_owned(),
        2 => "Linux".to_owned(),
        3 => "AIX".to_owned(),
        other => format!("unknown OS type {other}"),
    }
}

fn release_note(release: u8) -> String {
    format!("SMC v2.{release}")
}

/// `max_conns`, `max_links` and `feature_mask`, the first at byte `at`: the
/// same three fields, in this order, in the v2 extension and in an FCE.
fn limits(at: usize, max_conns: u8, max_links: u8, feature_mask: u16) -> [Field; 3] {
    [
        Field::int(at, "max_conns", max_conns),
        Field::int(at + 1, "max_links", max_links),
        Field::int(at + 2, "feature_mask", feature_mask).note(feature_note(feature_mask)),
    ]
}

// `limits` relies on both layouts placing the three fields back to back.
const _: () = assert!(
    at!(V2_EXT, "feature_mask") == at!(V2_EXT, "max_conns") + 2
        && at!(FCE_V2X, "feature_mask") == at!(FCE_V2X, "max_conns") + 2
);

fn feature_note(mask: u16) -> String {
    if mask & 0x0001 != 0 {
        format!("{mask:#06x}: emulated ISM devices (128-bit GIDs) understood")
    } else {
        format!("{mask:#06x}")
    }
}

fn reason_note(reason: DeclineReason) -> String {
    match reason.name() {
        Some(name) => format!("{:#010x} {name}: {}", reason.code(), reason.description()),
        None => format!("{:#010x}: not a known reason code", reason.code()),
    }
}

fn proposal(p: &ProposalRepr) -> Vec<Field> {
    let area = |off: usize| SMCD_AREA_AT + off;
    let iparea_note = if p.ip_prefix.is_some() {
        format!(
            "IP prefix area at byte {}",
            SMCD_AREA_AT + usize::from(p.iparea_offset)
        )
    } else {
        "no IP prefix area: typev1 offers none".to_owned()
    };
    let v2_ext_note = if p.v2_ext.is_some() {
        format!(
            "v2 extension at byte {}",
            area(at!(PROPOSAL_SMCD_AREA, "vendor_oui")) + usize::from(p.v2_ext_offset)
        )
    } else {
        "no v2 extension".to_owned()
    };
    let ism_gid_note = if p.ism_gid == 0 {
        "none".to_owned()
    } else {
        format!("{:#018x}, native v1 ISM GID", p.ism_gid)
    };
    let mut fields = vec![
        Field::bytes(
            at!(PROPOSAL_HEAD, "id_for_peer"),
            "id_for_peer",
            &p.id_for_peer,
        )
        .note("SMC-R system id"),
        Field::bytes(at!(PROPOSAL_HEAD, "gid"), "gid", &p.gid).note("RoCE GID"),
        Field::bytes(at!(PROPOSAL_HEAD, "mac"), "mac", &p.mac).note("RoCE MAC"),
        Field::int(
            at!(PROPOSAL_HEAD, "iparea_offset"),
            "iparea_offset",
            p.iparea_offset,
        )
        .note(iparea_note),
        Field::int(
            area(at!(PROPOSAL_SMCD_AREA, "ism_gid")),
            "ism_gid",
            p.ism_gid,
        )
        .note(ism_gid_note),
        Field::int(
            area(at!(PROPOSAL_SMCD_AREA, "ism_chid")),
            "ism_chid",
            p.ism_chid.0,
        )
        .note(chid_note(p.ism_chid)),
        Field::int(
            area(at!(PROPOSAL_SMCD_AREA, "v2_ext_offset")),
            "v2_ext_offset",
            p.v2_ext_offset,
        )
        .note(v2_ext_note),
        Field::bytes(
            area(at!(PROPOSAL_SMCD_AREA, "vendor_oui")),
            "vendor_oui",
            &p.vendor_oui,
        ),
        Field::bytes(
            area(at!(PROPOSAL_SMCD_AREA, "vendor_exp_options")),
            "vendor_exp_options",
            &p.vendor_exp_options,
        ),
    ];
    // The areas follow each other at their canonical positions (as the
    // parser reads and the emitter writes them).
    let smcd_area_len = if p.version < 2 {
        usize::from(p.iparea_offset)
    } else {
        SMCD_AREA_LEN
    };
    let mut at = SMCD_AREA_AT + smcd_area_len;
    if let Some(prefix) = &p.ip_prefix {
        fields.push(ip_prefix(prefix, at));
        at += prefix.wire_len();
    }
    let ism_gid_cnt = p.smcd_v2_ext.as_ref().map_or(0, |e| e.gidchid.len());
    if let Some(v2) = &p.v2_ext {
        fields.push(v2_ext(v2, p.smcd_v2_ext.is_some(), ism_gid_cnt, at));
        at += v2.wire_len();
    }
    if let Some(ext) = &p.smcd_v2_ext {
        fields.push(smcd_v2_ext(ext, at));
    }
    fields
}

fn ip_prefix(prefix: &IpPrefix, at: usize) -> Field {
    let subnet = prefix.outgoing_subnet;
    let entries = prefix
        .ipv6_prefixes
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let entry_at = at + IP_PREFIX.size() + i * IPV6_PREFIX.size();
            let addr: Ipv6Addr = entry.prefix;
            Field::new(
                entry_at,
                "",
                FieldValue::Object(vec![
                    Field::bytes(entry_at, "prefix", &addr.octets())
                        .note(format!("{addr}/{}", entry.prefix_len)),
                    Field::int(
                        entry_at + at!(IPV6_PREFIX, "prefix_len"),
                        "prefix_len",
                        entry.prefix_len,
                    ),
                ]),
            )
        })
        .collect();
    Field::object(
        at,
        "ip_prefix",
        vec![
            Field::bytes(at, "outgoing_subnet", &subnet.octets())
                .note(ipv4_note(subnet, prefix.prefix_len)),
            Field::int(
                at + at!(IP_PREFIX, "prefix_len"),
                "prefix_len",
                prefix.prefix_len,
            ),
            Field::int(
                at + at!(IP_PREFIX, "ipv6_prefixes_cnt"),
                "ipv6_prefixes_cnt",
                count(prefix.ipv6_prefixes.len()),
            ),
            Field::list(at + IP_PREFIX.size(), "ipv6_prefixes", entries),
        ],
    )
}

fn ipv4_note(subnet: Ipv4Addr, len: u8) -> String {
    format!("{subnet}/{len}")
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn v2_ext(v2: &V2Ext, has_smcd_v2_ext: bool, ism_gid_cnt: usize, at: usize) -> Field {
    let off = |f: usize| at + f;
    let smcd_offset_field = off(at!(V2_EXT, "smcd_v2_ext_offset"));
    let smcd_offset_note = if !has_smcd_v2_ext {
        "no SMC-Dv2 extension: typev2 offers no SMC-D".to_owned()
    } else if v2.smcd_v2_ext_offset == 0
        || v2.smcd_v2_ext_offset > smcd_core::wire::clc::SMCD_V2_EXT_OFFSET_MAX
    {
        format!(
            "not in 1..={}: no usable SMC-Dv2 extension for Linux >= 6.12",
            smcd_core::wire::clc::SMCD_V2_EXT_OFFSET_MAX
        )
    } else {
        format!(
            "SMC-Dv2 extension at byte {}",
            smcd_offset_field + 2 + usize::from(v2.smcd_v2_ext_offset)
        )
    };
    let eids_at = off(V2_EXT.size());
    let eids = v2
        .user_eids
        .iter()
        .enumerate()
        .map(|(i, eid)| Field::text(eids_at + i * EID_LEN, "", text::to_string(&eid.0)))
        .collect();
    let mut fields = Vec::from([
        Field::int(
            off(at!(V2_EXT, "eid_cnt")),
            "eid_cnt",
            count(v2.user_eids.len()),
        ),
        Field::int(
            off(at!(V2_EXT, "ism_gid_cnt")),
            "ism_gid_cnt",
            count(ism_gid_cnt),
        ),
        Field::int(off(at!(V2_EXT, "release_seid")), "release", v2.release)
            .note(format!("bits 7-4: {}", release_note(v2.release))),
        Field::bool(off(at!(V2_EXT, "release_seid")), "seid", v2.seid)
            .note("bit 0: the SEID in the SMC-Dv2 extension is valid"),
        Field::int(
            smcd_offset_field,
            "smcd_v2_ext_offset",
            v2.smcd_v2_ext_offset,
        )
        .note(smcd_offset_note),
        Field::bytes(off(at!(V2_EXT, "roce")), "roce", &v2.roce).note("RoCEv2 GID"),
    ]);
    fields.extend(limits(
        off(at!(V2_EXT, "max_conns")),
        v2.max_conns,
        v2.max_links,
        v2.feature_mask,
    ));
    fields.push(Field::list(eids_at, "user_eids", eids));
    Field::object(at, "v2_ext", fields)
}

fn smcd_v2_ext(ext: &SmcdV2Ext, at: usize) -> Field {
    let list_at = at + SMCD_V2_EXT.size();
    let entries = ext
        .gidchid
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let entry_at = list_at + i * GID_CHID.size();
            Field::new(
                entry_at,
                "",
                FieldValue::Object(vec![
                    Field::int(entry_at, "gid", entry.gid).note(format!("{:#018x}", entry.gid)),
                    Field::int(entry_at + at!(GID_CHID, "chid"), "chid", entry.chid.0)
                        .note(chid_note(entry.chid)),
                ]),
            )
        })
        .collect();
    Field::object(
        at,
        "smcd_v2_ext",
        vec![
            Field::text(at, "system_eid", text::to_string(&ext.system_eid.0)),
            Field::list(list_at, "gidchid", entries),
        ],
    )
}

fn accept(a: &AcceptRepr) -> Vec<Field> {
    let size = bufsize::decode(a.dmbe_size);
    let mut fields = vec![
        Field::int(at!(ACCEPT, "gid"), "gid", a.gid.gid).note(format!("{:#018x}", a.gid.gid)),
        Field::int(at!(ACCEPT, "token"), "token", a.token.0)
            .note(format!("{:#018x}, the sender's DMB token", a.token.0)),
        Field::int(at!(ACCEPT, "dmbe_idx"), "dmbe_idx", a.dmbe_idx),
        Field::int(at!(ACCEPT, "dmbe_size"), "dmbe_size", a.dmbe_size).note(format!(
            "bits 7-4: DMB of {size} bytes ({} KiB)",
            size / 1024
        )),
        Field::bytes(at!(ACCEPT, "linkid"), "linkid", &a.linkid),
    ];
    if a.version >= 2 {
        let v2 = |f: usize| ACCEPT_V2_AT + f;
        fields.extend([
            Field::int(v2(at!(ACCEPT_V2, "chid")), "chid", a.chid.0).note(chid_note(a.chid)),
            Field::text(v2(at!(ACCEPT_V2, "eid")), "eid", text::to_string(&a.eid.0))
                .note("negotiated EID"),
            Field::int(v2(at!(ACCEPT_V2, "gid_ext")), "gid_ext", a.gid.gid_ext).note(format!(
                "{:#018x}, low half of a 128-bit GID",
                a.gid.gid_ext
            )),
        ]);
    }
    if let Some(fce) = &a.fce {
        fields.push(fce_fields(fce));
    }
    fields
}

fn fce_fields(fce: &Fce) -> Field {
    let off = |f: usize| FCE_AT + f;
    let mut fields = vec![
        Field::bool(off(at!(FCE, "v2_direct")), "v2_direct", fce.v2_direct)
            .note("bit 7, SMC-Rv2 only"),
        Field::int(off(at!(FCE, "os_type_release")), "os_type", fce.os_type)
            .note(format!("bits 7-4: {}", os_type_note(fce.os_type))),
        Field::int(off(at!(FCE, "os_type_release")), "release", fce.release)
            .note(format!("bits 3-0: {}", release_note(fce.release))),
        Field::text(
            off(at!(FCE, "hostname")),
            "hostname",
            text::to_string(&fce.hostname.0),
        ),
    ];
    if fce.wire_len() > FCE_V2X_AT {
        let v2x = |f: usize| off(FCE_V2X_AT + f);
        fields.extend(limits(
            v2x(at!(FCE_V2X, "max_conns")),
            fce.max_conns,
            fce.max_links,
            fce.feature_mask,
        ));
        fields.push(Field::int(
            v2x(at!(FCE_V2X, "vendor_exp_options")),
            "vendor_exp_options",
            fce.vendor_exp_options,
        ));
    }
    Field::object(FCE_AT, "fce", fields)
}

fn decline(d: &DeclineRepr) -> Vec<Field> {
    let mut fields = vec![
        Field::bytes(at!(DECLINE, "id_for_peer"), "id_for_peer", &d.id_for_peer)
            .note("SMC-R system id"),
        Field::int(
            at!(DECLINE, "peer_diagnosis"),
            "peer_diagnosis",
            d.peer_diagnosis.code(),
        )
        .note(reason_note(d.peer_diagnosis)),
        Field::int(at!(DECLINE, "os_type"), "os_type", d.os_type)
            .note(format!("bits 7-4: {}", os_type_note(d.os_type))),
    ];
    if d.version >= 2 {
        let codes = d
            .peer_diagnosis_v2
            .iter()
            .enumerate()
            .map(|(i, code)| Field::int(DECLINE_V2_AT + i * size_of::<u32>(), "", *code))
            .collect();
        fields.push(Field::list(DECLINE_V2_AT, "peer_diagnosis_v2", codes));
    }
    fields
}
