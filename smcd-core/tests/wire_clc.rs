//! Edge cases of the CLC layer beyond the shared vectors: Linux's offset
//! rules, over-long messages, SMC-R messages, the stricter smcd rules X1/X2
//! and every branch of the server pre-check.

use smcd_core::dmb::{Chid, Gid};
use smcd_core::wire::clc::{
    ACCEPT_RCVBUF_BYTES, AcceptRepr, ClcHeaderRepr, ClcMessage, ClcType, DeclineReason,
    DeclineRepr, Eid, Eyecatcher, ProposalRepr, Rule, SmcType, WireError, server_precheck,
};

#[path = "common/hex.rs"]
mod hex;

use hex::decode;

fn vector_b() -> Vec<u8> {
    decode(include_str!("vectors/clc-proposal-v2-loopback.hex"))
}

fn vector_c() -> Vec<u8> {
    decode(include_str!("vectors/clc-accept-v2-fce-loopback.hex"))
}

fn vector_d() -> Vec<u8> {
    decode(include_str!("vectors/clc-confirm-v2-loopback.hex"))
}

fn set_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn emit(msg: &ClcMessage) -> Vec<u8> {
    let mut out = vec![0u8; msg.buffer_len()];
    msg.emit(&mut out).unwrap();
    out
}

/// An SMC-R-only v1 Proposal from an older kernel: `iparea_offset` 0, so the
/// prefix area sits at byte 40 over the absent SMC-D area; 52 bytes.
#[test]
fn smcr_only_v1_proposal_with_iparea_offset_0() {
    let mut m = vec![0u8; 52];
    m[..8].copy_from_slice(&[0xe2, 0xd4, 0xc3, 0xd9, 1, 0, 52, 0x10]);
    m[8..16].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    m[40..48].copy_from_slice(&[10, 0, 0, 0, 8, 0, 0, 0]);
    m[48..52].copy_from_slice(&Eyecatcher::SMCR_BYTES);
    let p = ProposalRepr::parse(&m).unwrap();
    assert_eq!((p.version, p.typev1, p.iparea_offset), (1, SmcType::R, 0));
    // The SMC-D area is absent: its fields read as zero, not as prefix bytes.
    assert_eq!((p.ism_gid, p.ism_chid, p.v2_ext_offset), (0, Chid(0), 0));
    let ip = p.ip_prefix.as_ref().unwrap();
    assert_eq!(
        (ip.outgoing_subnet.octets(), ip.prefix_len),
        ([10, 0, 0, 0], 8)
    );
    assert_eq!(emit(&ClcMessage::Proposal(p.clone())), m);
    // Only SMC-R is left: no Decline yet, smcd has nothing to match.
    let pre = server_precheck(&p, true).unwrap();
    assert!(pre.smcr && pre.smcd_v1.is_none() && pre.smcd_v2.is_none());
}

/// A v1 Proposal whose SMC-D area is cut short keeps exactly the bytes sent.
#[test]
fn v1_proposal_with_partial_smcd_area_round_trips() {
    let mut m = vec![0u8; 40 + 12 + 8 + 4];
    m[..8].copy_from_slice(&[0xe2, 0xd4, 0xc3, 0xd9, 1, 0, 64, 0x11]);
    set_u16(&mut m, 38, 12);
    m[40..52].copy_from_slice(&[
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x01, 0x23, 0, 0,
    ]);
    m[60..64].copy_from_slice(&Eyecatcher::SMCR_BYTES);
    let p = ProposalRepr::parse(&m).unwrap();
    assert_eq!(
        (p.ism_gid, p.ism_chid),
        (0x1122_3344_5566_7788, Chid(0x0123))
    );
    assert_eq!(emit(&ClcMessage::Proposal(p)), m);
}

/// P2 reads the count at 40 + `iparea_offset` + 7 even when `typev1` = N: for
/// vector B that is the low byte of `ism_gid`.
#[test]
fn p2_reads_the_count_where_linux_does() {
    let mut m = vector_b();
    m[47] = 9;
    assert_eq!(
        ProposalRepr::parse(&m),
        Err(WireError::TooManyIpv6Prefixes {
            offset: 47,
            ipv6_prefixes_cnt: 9
        })
    );
    m[47] = 8; // allowed, and the prefix area is absent (typev1 = N)
    let p = ProposalRepr::parse(&m).unwrap();
    assert_eq!(p.ism_gid, 8);
    assert!(p.ip_prefix.is_none());
}

#[test]
fn p4_v2_ext_offset_zero_and_smcd_area_missing() {
    let mut m = vector_b();
    set_u16(&mut m, 50, 0);
    assert_eq!(
        ProposalRepr::parse(&m),
        Err(WireError::V2ExtOffsetInvalid { v2_ext_offset: 0 })
    );
    let mut m = vector_b();
    m[7] = 0x25; // typev2 D, typev1 D: SMC-D area needs iparea_offset 40
    assert_eq!(
        ProposalRepr::parse(&m),
        Err(WireError::SmcdAreaMissing { iparea_offset: 0 })
    );
}

#[test]
fn p5_too_many_gid_chid_entries() {
    let mut m = vector_b();
    m[81] = 9;
    assert_eq!(
        ProposalRepr::parse(&m),
        Err(WireError::TooManyGidChids {
            offset: 81,
            ism_gid_cnt: 9
        })
    );
}

/// X1: an offset Linux accepts but that points elsewhere than the layout.
#[test]
fn x1_rejects_non_canonical_offsets() {
    // SMC-Rv2-only Proposal (typev2 R, typev1 N, no UEID): 80 + 40 + 4 bytes.
    // Linux reads eid_cnt at 52 + 29 = 81 (= ism_gid_cnt byte, 0), so the
    // length formula still holds and only X1 catches the shifted offset.
    let mut m = vector_b()[..120].to_vec();
    m.extend_from_slice(&Eyecatcher::SMCR_BYTES);
    m[6] = 124;
    m[7] = 0x22;
    m[80] = 0; // eid_cnt
    m[81] = 0; // ism_gid_cnt
    set_u16(&mut m, 86, 0);
    let p = ProposalRepr::parse(&m).unwrap();
    assert_eq!((p.typev2, p.smcd_v2_ext.is_none()), (SmcType::R, true));
    set_u16(&mut m, 50, 29);
    let err = ProposalRepr::parse(&m).unwrap_err();
    assert_eq!(
        err,
        WireError::NonCanonicalOffset {
            field: "v2_ext_offset",
            offset: 50,
            value: 29,
            expected: 28
        }
    );
    assert_eq!((err.rule(), err.decline_reason()), (Rule::X1, None));

    let mut m = vector_b();
    set_u16(&mut m, 86, 32);
    assert_eq!(
        ProposalRepr::parse(&m),
        Err(WireError::NonCanonicalOffset {
            field: "smcd_v2_ext_offset",
            offset: 86,
            value: 32,
            expected: 64
        })
    );
}

/// `smcd_v2_ext_offset` 0 is format-valid; the pre-check names NOV2DEXT.
#[test]
fn smcd_v2_ext_offset_zero_parses_and_is_declined() {
    let mut m = vector_b();
    set_u16(&mut m, 86, 0);
    let p = ProposalRepr::parse(&m).unwrap();
    assert!(p.smcd_v2_ext.is_some() && p.usable_smcd_v2_ext().is_none());
    assert_eq!(emit(&ClcMessage::Proposal(p.clone())), m);
    assert_eq!(server_precheck(&p, true), Err(DeclineReason::NoV2dExt));
}

#[test]
fn proposal_formula_counts_prefixes_and_eids() {
    // v2, typev1 D with one IPv6 prefix, typev2 D with two UEIDs and a
    // native device: built from a Repr, checked against the formula.
    let mut p = ProposalRepr::parse(&vector_b()).unwrap();
    p.typev1 = SmcType::D;
    p.ism_gid = 0x1122_3344_5566_7788;
    p.ism_chid = Chid(0x0123);
    let mut ip = smcd_core::wire::clc::IpPrefix {
        outgoing_subnet: [0, 0, 0, 0].into(),
        prefix_len: 0,
        ipv6_prefixes: Default::default(),
    };
    ip.ipv6_prefixes
        .push(smcd_core::wire::clc::Ipv6Prefix {
            prefix: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].into(),
            prefix_len: 32,
        })
        .unwrap();
    p.ip_prefix = Some(ip);
    let v2 = p.v2_ext.as_mut().unwrap();
    v2.user_eids
        .push(Eid::from_text("SECOND").unwrap())
        .unwrap();
    p.set_canonical_offsets();
    assert_eq!(p.iparea_offset, 40);
    assert_eq!(p.v2_ext_offset, 28 + 8 + 17);
    assert_eq!(p.v2_ext.as_ref().unwrap().smcd_v2_ext_offset, 32 + 64);
    let bytes = emit(&ClcMessage::Proposal(p.clone()));
    assert_eq!(bytes.len(), 80 + (8 + 17) + (40 + 64) + (48 + 20) + 4);
    assert_eq!(ProposalRepr::parse(&bytes), Ok(p.clone()));
    let offer = server_precheck(&p, true).unwrap().smcd_v2.unwrap();
    let devices: Vec<_> = offer.devices().collect();
    assert_eq!(
        devices,
        [
            (Gid::new(0x1122_3344_5566_7788, 0), Chid(0x0123)),
            (
                Gid::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
                Chid::LOOPBACK
            ),
        ]
    );
}

#[test]
fn truncated_input_and_unknown_type() {
    let m = vector_b();
    assert_eq!(
        ClcMessage::parse(&m[..100]),
        Err(WireError::Truncated {
            needed: 224,
            available: 100
        })
    );
    let mut m = vector_b();
    m[4] = 5;
    let err = ClcMessage::parse(&m).unwrap_err();
    assert_eq!(
        err,
        WireError::UnexpectedType {
            r#type: 5,
            expected: None
        }
    );
    assert_eq!(err.rule(), Rule::H2);
    // Bytes after `length` belong to the next thing on the stream.
    let mut m = vector_b();
    m.extend_from_slice(b"application data");
    assert!(ClcMessage::parse(&m).is_ok());
}

#[test]
fn header_eyecatcher_may_be_either() {
    let mut m = vector_d();
    m[..4].copy_from_slice(&Eyecatcher::SMCR_BYTES);
    let a = AcceptRepr::parse(&m).unwrap();
    assert_eq!(
        (a.eyecatcher, a.trailer),
        (Eyecatcher::Smcr, Eyecatcher::Smcd)
    );
    assert_eq!(emit(&ClcMessage::AcceptConfirm(a)), m);
}

/// An Accept longer than Linux's 160-byte buffer: only 160 bytes are parsed
/// and the trailer is not checked.
#[test]
fn over_long_accept_skips_the_trailer_check() {
    let mut m = vector_d();
    m.truncate(74);
    m.resize(200, 0xEE);
    m[4] = 2;
    set_u16(&mut m, 5, 200);
    let header = ClcHeaderRepr::peek(&m).unwrap();
    assert_eq!(header.receive_len(), ACCEPT_RCVBUF_BYTES);
    let a = AcceptRepr::parse(&m).unwrap();
    assert_eq!(a.trailer, Eyecatcher::Unknown([0xEE; 4]));
    assert_eq!(a.length, 200);
    // Only the received part: the trailer is taken as the header's.
    let a2 = AcceptRepr::parse(&m[..ACCEPT_RCVBUF_BYTES]).unwrap();
    assert_eq!(a2.trailer, Eyecatcher::Smcd);
    // The same message within the buffer must have a valid trailer.
    let mut short = m[..150].to_vec();
    set_u16(&mut short, 5, 150);
    assert_eq!(AcceptRepr::parse(&short).unwrap_err().rule(), Rule::H4);
}

#[test]
fn accept_rules_a1_a2_and_smcr() {
    let mut m = decode(include_str!("vectors/clc-accept-v1-smcd.hex"));
    m[7] = 0x1a; // typev1 N
    assert_eq!(
        AcceptRepr::parse(&m),
        Err(WireError::BadAcceptType { typev1: 2 })
    );
    m[7] = 0x19;
    m.insert(44, 0);
    m[6] = 49;
    assert_eq!(
        AcceptRepr::parse(&m),
        Err(WireError::LengthMismatch {
            rule: Rule::A2,
            length: 49,
            expected: 48
        })
    );
    // A well-formed SMC-R v1 Accept (68 bytes): MODEUNSUPP.
    let mut r = vec![0u8; 68];
    r[..8].copy_from_slice(&[0xe2, 0xd4, 0xc3, 0xd9, 2, 0, 68, 0x18]);
    r[64..].copy_from_slice(&Eyecatcher::SMCR_BYTES);
    let err = ClcMessage::parse(&r).unwrap_err();
    assert_eq!(err, WireError::SmcrAcceptConfirm);
    assert_eq!(err.decline_reason(), Some(DeclineReason::ModeUnsupp));
    assert!(err.to_string().contains("Decline MODEUNSUPP"));
}

/// X2: a v2 first-contact Accept must hold its FCE before the trailer.
#[test]
fn x2_first_contact_accept_without_room_for_the_fce() {
    let mut m = vector_d();
    m[4] = 2;
    m[7] = 0x29; // first contact
    assert_eq!(
        AcceptRepr::parse(&m),
        Err(WireError::LengthTooShort {
            rule: Rule::X2,
            length: 78,
            min: 114
        })
    );
    // Release-1 FCE needs 52 bytes: 114 is not enough.
    let mut c = vector_c();
    c.truncate(110);
    c.extend_from_slice(&Eyecatcher::SMCD_BYTES);
    c[6] = 114;
    assert_eq!(
        AcceptRepr::parse(&c),
        Err(WireError::LengthTooShort {
            rule: Rule::X2,
            length: 114,
            min: 130
        })
    );
    // A release-0 FCE is 36 bytes: 114 in total.
    c[75] = 0x20;
    let a = AcceptRepr::parse(&c).unwrap();
    let fce = a.fce.unwrap();
    assert_eq!((fce.release, fce.wire_len(), fce.feature_mask), (0, 36, 0));
    assert_eq!(emit(&ClcMessage::AcceptConfirm(a)), c);
}

#[test]
fn decline_trailer_is_not_checked_and_version_3_is_v2() {
    let mut m = decode(include_str!("vectors/clc-decline-v2.hex"));
    m[40..44].copy_from_slice(&[0; 4]);
    m[7] = 0x30;
    let d = DeclineRepr::parse(&m).unwrap();
    assert_eq!((d.version, d.trailer), (3, Eyecatcher::Unknown([0; 4])));
    assert_eq!(emit(&ClcMessage::Decline(d)), m);
    assert_eq!(
        ClcHeaderRepr::peek(&m)
            .unwrap()
            .check_type(ClcType::Confirm),
        Ok(())
    );
}

#[test]
fn precheck_branches() {
    let base = ProposalRepr::parse(&vector_b()).unwrap();

    // Nothing offered at all (v2 header, typev1 N, typev2 N): PEERNOSMC.
    let mut p = base.clone();
    p.typev2 = SmcType::N;
    p.v2_ext = None;
    p.smcd_v2_ext = None;
    assert_eq!(server_precheck(&p, true), Err(DeclineReason::PeerNoSmc));

    // v2 types in a version-1 header do not count.
    let mut p = base.clone();
    p.version = 1;
    assert_eq!(server_precheck(&p, true), Err(DeclineReason::PeerNoSmc));

    // v2 extension not locatable: NOV2EXT.
    let mut p = base.clone();
    p.v2_ext_offset = 0;
    assert_eq!(server_precheck(&p, true), Err(DeclineReason::NoV2Ext));

    // SEID flag instead of a UEID is enough.
    let mut p = base.clone();
    let v2 = p.v2_ext.as_mut().unwrap();
    v2.user_eids.clear();
    v2.seid = true;
    let offer = server_precheck(&p, true).unwrap().smcd_v2.unwrap();
    assert!(offer.system_eid().is_some() && offer.user_eids().is_empty());

    // Both D and R v2 without any EID: NOUEID.
    let mut p = base.clone();
    p.typev2 = SmcType::B;
    p.v2_ext.as_mut().unwrap().user_eids.clear();
    assert_eq!(server_precheck(&p, true), Err(DeclineReason::NoUeid));

    // D-v2 unusable but SMC-D v1 still offered: Ok, v1 left to try.
    let mut p = base.clone();
    p.typev1 = SmcType::D;
    p.iparea_offset = 40;
    let pre = server_precheck(&p, false).unwrap();
    assert!(pre.smcd_v2.is_none() && pre.smcd_v1.is_some());

    // SMC-R v2 with a UEID is left even when SMC-D v2 is not.
    let mut p = base.clone();
    p.typev2 = SmcType::B;
    let pre = server_precheck(&p, false).unwrap();
    assert!(pre.smcr && pre.smcd_v2.is_none());

    // Release is capped at 1.
    let mut p = base;
    p.v2_ext.as_mut().unwrap().release = 7;
    assert_eq!(
        server_precheck(&p, true).unwrap().smcd_v2.unwrap().release,
        1
    );
}

#[test]
fn errors_read_well() {
    let e = WireError::V2ExtOffsetInvalid { v2_ext_offset: 173 };
    assert_eq!(
        e.to_string(),
        "byte 50: v2_ext_offset 173 is not in 1..=172, so the v2 extension cannot be located \
         (rule P4); Linux treats this as a protocol error (EPROTO): no Decline, no fallback"
    );
    let t = WireError::Truncated {
        needed: 92,
        available: 10,
    };
    assert!(t.to_string().contains("6 s CLC timeout"));
}
