//! The inverse of [`describe`](super::describe): a JSON object of the
//! `docs/protocol/clc.md` §10 schema back into a [`ClcMessage`].
//!
//! Everything the wire derives from other fields (counts, lengths, the flag
//! bits of `typev2`) must agree with them; a disagreement is an error naming
//! the key, so that the bytes written are the bytes the JSON describes.

use std::net::{Ipv4Addr, Ipv6Addr};

use heapless::Vec as HVec;
use serde_json::Value;
use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::wire::clc::{
    AcceptKind, AcceptRepr, ClcMessage, ClcType, DeclineReason, DeclineRepr, Eid, Eyecatcher, Fce,
    GidChid, Hostname, IpPrefix, Ipv6Prefix, MAX_GIDCHID_ENTRIES, MAX_IPV6_PREFIXES, MAX_UEIDS,
    ProposalRepr, SmcType, SmcdV2Ext, V2Ext,
};

use super::reader::{self, Obj, err};
use super::text::Empty;

/// Top-level keys that `decode --json` adds for people and `encode` ignores.
pub(crate) const IGNORED_KEYS: &[&str] = &["derived", "server_verdict"];

/// The header fields every message has.
struct Header {
    eyecatcher: Eyecatcher,
    r#type: u8,
    length: u16,
    version: u8,
    typev2: u8,
    typev1: u8,
}

/// Builds the message a JSON object describes.
///
/// # Errors
///
/// One line naming the offending key.
pub(crate) fn message(value: &Value) -> Result<ClcMessage, String> {
    let mut root = Obj::new(String::new(), value)?;
    let kind_value = root.get("kind")?;
    let kind = kind_value.as_str().unwrap_or("");
    let expected_type = match kind {
        "proposal" => ClcType::Proposal,
        "accept" => ClcType::Accept,
        "confirm" => ClcType::Confirm,
        "decline" => ClcType::Decline,
        _ => {
            return Err(err(
                "kind",
                format!(
                    "expected \"proposal\", \"accept\", \"confirm\" or \"decline\", found {kind_value}"
                ),
            ));
        }
    };
    let mut header_obj = root.object("header")?;
    let header = header(&mut header_obj, expected_type)?;
    let trailer = Eyecatcher::from(root.bytes::<4>("trailer")?);
    let message = match expected_type {
        ClcType::Decline => {
            ClcMessage::Decline(decline(&mut root, &mut header_obj, &header, trailer)?)
        }
        ClcType::Proposal => ClcMessage::Proposal(proposal(&mut root, &header, trailer)?),
        _ => {
            let kind = if expected_type == ClcType::Accept {
                AcceptKind::Accept
            } else {
                AcceptKind::Confirm
            };
            ClcMessage::AcceptConfirm(accept(&mut root, &mut header_obj, &header, kind, trailer)?)
        }
    };
    header_obj.finish(&[])?;
    root.finish(IGNORED_KEYS)?;
    Ok(message)
}

fn header(obj: &mut Obj<'_>, expected: ClcType) -> Result<Header, String> {
    let header = Header {
        eyecatcher: Eyecatcher::from(obj.bytes::<4>("eyecatcher")?),
        r#type: obj.u8("type")?,
        length: obj.u16("length")?,
        version: obj.bits("version", 4)?,
        typev2: obj.bits("typev2", 2)?,
        typev1: obj.bits("typev1", 2)?,
    };
    if header.version == 0 {
        return Err(err(
            &obj.path("version"),
            "0, but every CLC message has version 1 or more (rule H1)",
        ));
    }
    if header.r#type != u8::from(expected) {
        return Err(err(
            &obj.path("type"),
            format!(
                "{} contradicts \"kind\", which needs {} ({expected})",
                header.r#type,
                u8::from(expected)
            ),
        ));
    }
    Ok(header)
}

/// Checks that the header's `length` is `actual`.
fn check_length(header: &Header, actual: usize) -> Result<(), String> {
    if usize::from(header.length) == actual {
        return Ok(());
    }
    Err(err(
        "header.length",
        format!(
            "{}, but the fields make a message of {actual} bytes",
            header.length
        ),
    ))
}

/// Reads a flag of header `typev2` bit 1 and checks that `typev2` agrees.
fn typev2_flag(
    header_obj: &mut Obj<'_>,
    header: &Header,
    key: &'static str,
) -> Result<bool, String> {
    let flag = header_obj.boolean(key)?;
    let expected = if flag { 0b10 } else { 0 };
    if header.typev2 != expected {
        return Err(err(
            &header_obj.path("typev2"),
            format!("{}, but {key} = {flag} makes it {expected}", header.typev2),
        ));
    }
    Ok(flag)
}

fn decline(
    root: &mut Obj<'_>,
    header_obj: &mut Obj<'_>,
    header: &Header,
    trailer: Eyecatcher,
) -> Result<DeclineRepr, String> {
    let out_of_sync = typev2_flag(header_obj, header, "out_of_sync")?;
    if header.typev1 != 0 {
        return Err(err(
            &header_obj.path("typev1"),
            format!("{}, but a Decline carries 0", header.typev1),
        ));
    }
    let mut peer_diagnosis_v2 = [0u32; 4];
    if header.version >= 2 {
        let codes = root.list("peer_diagnosis_v2", 4)?;
        if codes.len() != 4 {
            return Err(err(
                &root.path("peer_diagnosis_v2"),
                format!("{} entries, a version-2 Decline has exactly 4", codes.len()),
            ));
        }
        for (slot, code) in peer_diagnosis_v2.iter_mut().zip(&codes) {
            let n = reader::uint(&code.path, code.value, u64::from(u32::MAX))?;
            *slot = u32::try_from(n).unwrap_or(u32::MAX);
        }
    }
    let repr = DeclineRepr {
        eyecatcher: header.eyecatcher,
        version: header.version,
        out_of_sync,
        id_for_peer: root.bytes::<8>("id_for_peer")?,
        peer_diagnosis: DeclineReason::from(root.u32("peer_diagnosis")?),
        os_type: root.bits("os_type", 4)?,
        peer_diagnosis_v2,
        trailer,
    };
    check_length(header, repr.buffer_len())?;
    Ok(repr)
}

fn accept(
    root: &mut Obj<'_>,
    header_obj: &mut Obj<'_>,
    header: &Header,
    kind: AcceptKind,
    trailer: Eyecatcher,
) -> Result<AcceptRepr, String> {
    let first_contact = typev2_flag(header_obj, header, "first_contact")?;
    if header.typev1 != SmcType::D.bits() {
        return Err(err(
            &header_obj.path("typev1"),
            format!(
                "{}, but only SMC-D (1) Accept/Confirm messages are supported",
                header.typev1
            ),
        ));
    }
    let v2 = header.version >= 2;
    let mut repr = AcceptRepr {
        kind,
        eyecatcher: header.eyecatcher,
        length: header.length,
        version: header.version,
        first_contact,
        gid: Gid::new(root.u64("gid")?, 0),
        token: DmbToken(root.u64("token")?),
        dmbe_idx: root.u8("dmbe_idx")?,
        dmbe_size: root.bits("dmbe_size", 4)?,
        linkid: root.bytes::<4>("linkid")?,
        chid: Chid(0),
        eid: Eid::default(),
        fce: None,
        trailer,
    };
    if v2 {
        repr.chid = Chid(root.u16("chid")?);
        repr.eid = Eid(root.text("eid", Empty::Zeros)?);
        repr.gid.gid_ext = root.u64("gid_ext")?;
    }
    let fce_expected = v2 && first_contact;
    match (root.opt_object("fce")?, fce_expected) {
        (Some(mut obj), true) => {
            repr.fce = Some(fce(&mut obj)?);
            obj.finish(&[])?;
        }
        (None, false) => {}
        (Some(_), false) => {
            return Err(err(
                "fce",
                "only a version-2 message with first_contact has a first-contact extension",
            ));
        }
        (None, true) => {
            return Err(err(
                "fce",
                "missing: a version-2 message with first_contact has a first-contact extension",
            ));
        }
    }
    if repr.buffer_len() < repr.min_len() {
        return Err(err(
            "header.length",
            format!(
                "{}, but the fields need at least {} bytes",
                header.length,
                repr.min_len()
            ),
        ));
    }
    if !v2 {
        check_length(header, repr.min_len())?;
    }
    Ok(repr)
}

fn fce(obj: &mut Obj<'_>) -> Result<Fce, String> {
    let mut fce = Fce {
        v2_direct: obj.boolean("v2_direct")?,
        os_type: obj.bits("os_type", 4)?,
        release: obj.bits("release", 4)?,
        hostname: Hostname(obj.text("hostname", Empty::Blanks)?),
        max_conns: 0,
        max_links: 0,
        feature_mask: 0,
        vendor_exp_options: 0,
    };
    // The v2.1 tail exists only for release ≥ 1; without it the keys are
    // unknown (`finish` reports them).
    if fce.release >= 1 {
        fce.max_conns = obj.u8("max_conns")?;
        fce.max_links = obj.u8("max_links")?;
        fce.feature_mask = obj.u16("feature_mask")?;
        fce.vendor_exp_options = obj.u32("vendor_exp_options")?;
    }
    Ok(fce)
}

fn proposal(
    root: &mut Obj<'_>,
    header: &Header,
    trailer: Eyecatcher,
) -> Result<ProposalRepr, String> {
    let typev1 = SmcType::from_bits(header.typev1);
    let typev2 = SmcType::from_bits(header.typev2);
    let v2 = header.version >= 2;
    let mut repr = ProposalRepr {
        eyecatcher: header.eyecatcher,
        version: header.version,
        typev2,
        typev1,
        id_for_peer: root.bytes::<8>("id_for_peer")?,
        gid: root.bytes::<16>("gid")?,
        mac: root.bytes::<6>("mac")?,
        iparea_offset: root.u16("iparea_offset")?,
        ism_gid: root.u64("ism_gid")?,
        ism_chid: Chid(root.u16("ism_chid")?),
        v2_ext_offset: root.u16("v2_ext_offset")?,
        vendor_oui: root.bytes::<3>("vendor_oui")?,
        vendor_exp_options: root.bytes::<5>("vendor_exp_options")?,
        ip_prefix: None,
        v2_ext: None,
        smcd_v2_ext: None,
        trailer,
    };
    let why_prefix = if v2 {
        "typev1 offers SMC (not 2 = none)"
    } else {
        "the header is version 1"
    };
    repr.ip_prefix = area(
        root,
        "ip_prefix",
        !v2 || typev1 != SmcType::N,
        why_prefix,
        ip_prefix,
    )?;
    repr.smcd_v2_ext = area(
        root,
        "smcd_v2_ext",
        v2 && typev2.has_d(),
        "the header is version 2 and typev2 offers SMC-D (1 or 3)",
        smcd_v2_ext,
    )?;
    let ism_gid_cnt = repr.smcd_v2_ext.as_ref().map_or(0, |e| e.gidchid.len());
    repr.v2_ext = area(
        root,
        "v2_ext",
        v2 && typev2 != SmcType::N,
        "the header is version 2 and typev2 offers SMC (not 2 = none)",
        |obj| v2_ext(obj, ism_gid_cnt),
    )?;
    check_length(header, repr.buffer_len())?;
    Ok(repr)
}

/// Reads the optional area `key`, which must be present exactly when
/// `expected` (whose reason is `why`).
fn area<'a, T>(
    root: &mut Obj<'a>,
    key: &'static str,
    expected: bool,
    why: &str,
    read: impl FnOnce(&mut Obj<'a>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match (root.opt_object(key)?, expected) {
        (Some(mut obj), true) => {
            let value = read(&mut obj)?;
            obj.finish(&[])?;
            Ok(Some(value))
        }
        (None, false) => Ok(None),
        (Some(_), false) => Err(err(key, format!("present, but it exists only when {why}"))),
        (None, true) => Err(err(key, format!("missing, but it exists when {why}"))),
    }
}

/// Checks a count field against the length of the list it counts.
fn check_count(obj: &mut Obj<'_>, key: &'static str, actual: usize) -> Result<(), String> {
    let stated = obj.u8(key)?;
    if usize::from(stated) != actual {
        return Err(err(
            &obj.path(key),
            format!("{stated}, but the list it counts has {actual} entries"),
        ));
    }
    Ok(())
}

fn ip_prefix(obj: &mut Obj<'_>) -> Result<IpPrefix, String> {
    let entries = obj.list("ipv6_prefixes", MAX_IPV6_PREFIXES)?;
    let mut ipv6_prefixes = HVec::new();
    for entry in &entries {
        let mut e = entry.object()?;
        let prefix = Ipv6Prefix {
            prefix: Ipv6Addr::from(e.bytes::<16>("prefix")?),
            prefix_len: e.u8("prefix_len")?,
        };
        e.finish(&[])?;
        // The list length was checked against the capacity above.
        let _ = ipv6_prefixes.push(prefix);
    }
    check_count(obj, "ipv6_prefixes_cnt", ipv6_prefixes.len())?;
    Ok(IpPrefix {
        outgoing_subnet: Ipv4Addr::from(obj.bytes::<4>("outgoing_subnet")?),
        prefix_len: obj.u8("prefix_len")?,
        ipv6_prefixes,
    })
}

fn v2_ext(obj: &mut Obj<'_>, ism_gid_cnt: usize) -> Result<V2Ext, String> {
    let mut user_eids = HVec::<Eid, MAX_UEIDS>::new();
    for entry in &obj.list("user_eids", MAX_UEIDS)? {
        let eid = reader::padded_text(&entry.path, entry.value, Empty::Zeros)?;
        let _ = user_eids.push(Eid(eid));
    }
    check_count(obj, "eid_cnt", user_eids.len())?;
    check_count(obj, "ism_gid_cnt", ism_gid_cnt)?;
    Ok(V2Ext {
        release: obj.bits("release", 4)?,
        seid: obj.boolean("seid")?,
        smcd_v2_ext_offset: obj.u16("smcd_v2_ext_offset")?,
        roce: obj.bytes::<16>("roce")?,
        max_conns: obj.u8("max_conns")?,
        max_links: obj.u8("max_links")?,
        feature_mask: obj.u16("feature_mask")?,
        user_eids,
    })
}

fn smcd_v2_ext(obj: &mut Obj<'_>) -> Result<SmcdV2Ext, String> {
    let mut gidchid = HVec::<GidChid, MAX_GIDCHID_ENTRIES>::new();
    for entry in &obj.list("gidchid", MAX_GIDCHID_ENTRIES)? {
        let mut e = entry.object()?;
        let value = GidChid {
            gid: e.u64("gid")?,
            chid: Chid(e.u16("chid")?),
        };
        e.finish(&[])?;
        let _ = gidchid.push(value);
    }
    Ok(SmcdV2Ext {
        system_eid: Eid(obj.text("system_eid", Empty::Zeros)?),
        gidchid,
    })
}
