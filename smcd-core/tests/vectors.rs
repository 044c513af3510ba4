//! Every CLC vector of `smcd-core/tests/vectors/` (copied to `tests/vectors/`): valid ones
//! parse to the fields their comments state and re-emit byte for byte,
//! `bad-*` ones fail with the stated rule, `declined-*` ones parse and the
//! server pre-check names the stated Decline code.

use std::net::Ipv4Addr;

use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::wire::clc::{
    AcceptKind, AcceptRepr, ClcMessage, DeclineReason, DeclineRepr, Eid, Eyecatcher, GidChid,
    ProposalRepr, Rule, SmcType, WireError, server_precheck,
};

#[path = "common/hex.rs"]
mod hex;

macro_rules! vectors {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("vectors/", $name)))),*]
    };
}

/// Every `.hex` file in `tests/vectors/`.
const VECTORS: &[(&str, &str)] = vectors![
    "bad-accept-v2-short.hex",
    "bad-decline-v2-length-28.hex",
    "bad-proposal-eid-cnt-9.hex",
    "bad-proposal-iparea-offset-41.hex",
    "bad-proposal-length-plus1.hex",
    "bad-proposal-trailer.hex",
    "bad-proposal-v1-typev1-n.hex",
    "bad-proposal-v2-ext-offset-173.hex",
    "cdc-smcd-header-le.hex",
    "clc-accept-v1-smcd.hex",
    "clc-accept-v2-fce-loopback.hex",
    "clc-confirm-v2-loopback.hex",
    "clc-decline-v1-syncerr.hex",
    "clc-decline-v2.hex",
    "clc-proposal-v1-smcd.hex",
    "clc-proposal-v2-loopback.hex",
    "declined-proposal-no-eid.hex",
    "declined-proposal-smcd-ext-offset-289.hex",
];

fn vector(name: &str) -> (Vec<u8>, &'static str) {
    let (_, text) = VECTORS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    (hex::decode(text), text)
}

/// The text after `# expect:` in a vector.
fn expect_line(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("# expect:"))
        .expect("vector has an expect line")
        .trim()
}

/// Parses a valid vector and checks that emitting it gives the same bytes.
fn parse_round_trip(name: &str) -> ClcMessage {
    let (bytes, _) = vector(name);
    let msg = ClcMessage::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(msg.buffer_len(), bytes.len(), "{name}: buffer_len");
    let mut out = vec![0xAAu8; bytes.len()];
    assert_eq!(msg.emit(&mut out), Ok(bytes.len()));
    assert_eq!(out, bytes, "{name}: re-emitted bytes differ");
    msg
}

fn proposal(name: &str) -> ProposalRepr {
    match parse_round_trip(name) {
        ClcMessage::Proposal(p) => p,
        other => panic!("{name}: not a Proposal: {other:?}"),
    }
}

fn accept(name: &str) -> AcceptRepr {
    match parse_round_trip(name) {
        ClcMessage::AcceptConfirm(a) => a,
        other => panic!("{name}: not an Accept/Confirm: {other:?}"),
    }
}

fn decline(name: &str) -> DeclineRepr {
    match parse_round_trip(name) {
        ClcMessage::Decline(d) => d,
        other => panic!("{name}: not a Decline: {other:?}"),
    }
}

const LOOPBACK_GID: Gid = Gid::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);

#[test]
fn every_vector_file_is_covered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = VECTORS.iter().map(|(n, _)| *n).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn a_proposal_v1_smcd() {
    let p = proposal("clc-proposal-v1-smcd.hex");
    assert_eq!(p.eyecatcher, Eyecatcher::Smcr);
    assert_eq!((p.version, p.typev1, p.typev2.bits()), (1, SmcType::D, 0));
    assert_eq!(p.id_for_peer, [0; 8]);
    assert_eq!(p.iparea_offset, 40);
    assert_eq!(p.ism_gid, 0x1122_3344_5566_7788);
    assert_eq!(p.ism_chid, Chid(0x0123));
    assert_eq!(p.v2_ext_offset, 0);
    let ip = p.ip_prefix.as_ref().unwrap();
    assert_eq!(ip.outgoing_subnet, Ipv4Addr::new(192, 168, 1, 0));
    assert_eq!(ip.prefix_len, 24);
    assert!(ip.ipv6_prefixes.is_empty());
    assert!(p.v2_ext.is_none() && p.smcd_v2_ext.is_none());
    assert_eq!(p.trailer, Eyecatcher::Smcr);
    assert_eq!(p.buffer_len(), 92);
    // v1 only: the server can try SMC-D v1 (and has no v2 to offer).
    let pre = server_precheck(&p, true).unwrap();
    assert!(pre.smcd_v2.is_none());
    assert_eq!(
        pre.smcd_v1,
        Some((Gid::new(0x1122_3344_5566_7788, 0), Chid(0x0123)))
    );
}

#[test]
fn b_proposal_v2_loopback() {
    let p = proposal("clc-proposal-v2-loopback.hex");
    assert_eq!((p.version, p.typev2, p.typev1), (2, SmcType::D, SmcType::N));
    assert_eq!((p.iparea_offset, p.ism_gid, p.ism_chid), (0, 0, Chid(0)));
    assert_eq!(p.v2_ext_offset, 28);
    assert!(p.ip_prefix.is_none());
    let v2 = p.v2_ext.as_ref().unwrap();
    assert_eq!(
        v2.user_eids.as_slice(),
        &[Eid::from_text("SMCD-TEST").unwrap()]
    );
    assert_eq!((v2.release, v2.seid, v2.smcd_v2_ext_offset), (1, false, 64));
    assert_eq!((v2.roce, v2.max_conns, v2.max_links), ([0; 16], 0, 0));
    assert_eq!(v2.feature_mask, 0x0001);
    let d = p.smcd_v2_ext.as_ref().unwrap();
    assert!(d.system_eid.is_zero());
    assert_eq!(
        d.gidchid.as_slice(),
        &[
            GidChid {
                gid: 0x0123_4567_89ab_cdef,
                chid: Chid::LOOPBACK
            },
            GidChid {
                gid: 0xfedc_ba98_7654_3210,
                chid: Chid::LOOPBACK
            },
        ]
    );
    assert_eq!(
        d.devices().collect::<Vec<_>>(),
        [(LOOPBACK_GID, Chid::LOOPBACK)]
    );
    assert_eq!(p.buffer_len(), 224);

    let pre = server_precheck(&p, true).unwrap();
    assert!(pre.smcd_v1.is_none() && !pre.smcr);
    let offer = pre.smcd_v2.unwrap();
    assert_eq!(offer.release, 1);
    assert_eq!(
        offer.devices().collect::<Vec<_>>(),
        [(LOOPBACK_GID, Chid::LOOPBACK)]
    );
    assert_eq!(offer.user_eids(), v2.user_eids.as_slice());
    assert_eq!(offer.system_eid(), None);
    assert_eq!(server_precheck(&p, false), Err(DeclineReason::NoIsm2Supp));
}

#[test]
fn c_accept_v2_first_contact_release1_fce() {
    let a = accept("clc-accept-v2-fce-loopback.hex");
    assert_eq!(a.kind, AcceptKind::Accept);
    assert_eq!(
        (a.eyecatcher, a.trailer),
        (Eyecatcher::Smcd, Eyecatcher::Smcd)
    );
    assert_eq!((a.length, a.version, a.first_contact), (130, 2, true));
    assert_eq!(a.gid, LOOPBACK_GID);
    assert_eq!(a.token, DmbToken(0xa1b2_c3d4_e5f6_0718));
    assert_eq!(
        (a.dmbe_idx, a.dmbe_size, a.dmbe_size_bytes()),
        (0, 2, 64 * 1024)
    );
    assert_eq!(a.linkid, [0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(a.chid, Chid::LOOPBACK);
    assert_eq!(a.eid, Eid::from_text("SMCD-TEST").unwrap());
    let fce = a.fce.unwrap();
    assert_eq!((fce.v2_direct, fce.os_type, fce.release), (false, 2, 1));
    assert_eq!(fce.hostname.trimmed(), b"host1");
    assert_eq!((fce.max_conns, fce.max_links), (0, 0));
    assert_eq!((fce.feature_mask, fce.vendor_exp_options), (0x0001, 0));
    assert_eq!(fce.wire_len(), 52);
}

#[test]
fn d_confirm_v2_no_first_contact() {
    let c = accept("clc-confirm-v2-loopback.hex");
    assert_eq!(c.kind, AcceptKind::Confirm);
    assert_eq!((c.length, c.version, c.first_contact), (78, 2, false));
    assert_eq!(c.gid, LOOPBACK_GID);
    assert_eq!(c.token, DmbToken(0x1122_aabb_ccdd_eeff));
    assert_eq!((c.dmbe_size, c.dmbe_size_bytes()), (6, 1024 * 1024));
    assert_eq!(c.linkid, [0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(c.chid, Chid::LOOPBACK);
    assert_eq!(c.eid.trimmed(), b"SMCD-TEST");
    assert_eq!(c.fce, None);
}

#[test]
fn e_accept_v1_first_contact() {
    let a = accept("clc-accept-v1-smcd.hex");
    assert_eq!(a.kind, AcceptKind::Accept);
    assert_eq!((a.length, a.version, a.first_contact), (48, 1, true));
    assert_eq!(a.gid, Gid::new(0x1122_3344_5566_7788, 0));
    assert_eq!(a.token, DmbToken(0x0000_0001_0000_0002));
    assert_eq!(
        (a.dmbe_idx, a.dmbe_size, a.dmbe_size_bytes()),
        (0, 0, 16 * 1024)
    );
    assert_eq!(a.linkid, [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!((a.chid, a.fce), (Chid(0), None));
}

#[test]
fn f_decline_v2_nosmcd2dev() {
    let d = decline("clc-decline-v2.hex");
    assert_eq!((d.version, d.out_of_sync), (2, false));
    assert_eq!(d.id_for_peer, [0; 8]);
    assert_eq!(d.peer_diagnosis, DeclineReason::NoSmcd2Dev);
    assert_eq!(d.os_type, 2);
    assert_eq!(d.peer_diagnosis_v2, [0; 4]);
    assert_eq!(
        (d.eyecatcher, d.trailer),
        (Eyecatcher::Smcr, Eyecatcher::Smcr)
    );
}

#[test]
fn g_decline_v1_syncerr_out_of_sync() {
    let d = decline("clc-decline-v1-syncerr.hex");
    assert_eq!((d.version, d.out_of_sync), (1, true));
    assert_eq!(d.peer_diagnosis, DeclineReason::SyncErr);
    assert_eq!(d.os_type, 0);
    assert_eq!(d.buffer_len(), 28);
}

#[test]
fn bad_vectors_fail_with_the_stated_rule() {
    let cases: &[(&str, WireError)] = &[
        (
            "bad-proposal-length-plus1.hex",
            WireError::LengthMismatch {
                rule: Rule::P6,
                length: 225,
                expected: 224,
            },
        ),
        (
            "bad-proposal-eid-cnt-9.hex",
            WireError::TooManyUeids {
                offset: 80,
                eid_cnt: 9,
            },
        ),
        (
            "bad-proposal-iparea-offset-41.hex",
            WireError::IpareaOffsetTooLarge { iparea_offset: 41 },
        ),
        (
            "bad-proposal-v2-ext-offset-173.hex",
            WireError::V2ExtOffsetInvalid { v2_ext_offset: 173 },
        ),
        (
            "bad-proposal-trailer.hex",
            WireError::BadTrailer {
                offset: 220,
                trailer: [0; 4],
            },
        ),
        (
            "bad-proposal-v1-typev1-n.hex",
            WireError::V1ProposalOffersNothing,
        ),
        (
            "bad-accept-v2-short.hex",
            WireError::LengthTooShort {
                rule: Rule::A3,
                length: 74,
                min: 78,
            },
        ),
        (
            "bad-decline-v2-length-28.hex",
            WireError::LengthMismatch {
                rule: Rule::D1,
                length: 28,
                expected: 44,
            },
        ),
    ];
    let bad_files = VECTORS
        .iter()
        .filter(|(n, _)| n.starts_with("bad-"))
        .count();
    assert_eq!(cases.len(), bad_files, "every bad-* vector has a case");
    for (name, want) in cases {
        let (bytes, text) = vector(name);
        assert!(expect_line(text).starts_with("reject EPROTO"), "{name}");
        let err = ClcMessage::parse(&bytes).unwrap_err();
        assert_eq!(err, *want, "{name}");
        assert_eq!(
            err.decline_reason(),
            None,
            "{name}: EPROTO means no Decline"
        );
        let shown = err.to_string();
        assert!(
            shown.contains("EPROTO") && shown.contains(&format!("rule {}", err.rule())),
            "{shown}"
        );
    }
}

#[test]
fn declined_vectors_parse_and_precheck_names_the_code() {
    let declined: Vec<&str> = VECTORS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| n.starts_with("declined-"))
        .collect();
    assert_eq!(declined.len(), 2);
    for name in declined {
        let (_, text) = vector(name);
        let expect = expect_line(text);
        let code_text = expect
            .split_whitespace()
            .find_map(|w| w.strip_prefix("0x"))
            .expect("expect line names a code");
        let code = u32::from_str_radix(code_text, 16).unwrap();
        let p = proposal(name);
        let got = server_precheck(&p, true).unwrap_err();
        assert_eq!(u32::from(got), code, "{name}");
        assert!(expect.contains(got.name().unwrap()), "{name}: {expect}");
    }
}

#[test]
fn declined_smcd_ext_offset_289_keeps_its_contents() {
    let p = proposal("declined-proposal-smcd-ext-offset-289.hex");
    assert_eq!(p.v2_ext.as_ref().unwrap().smcd_v2_ext_offset, 289);
    assert!(p.usable_v2_ext().is_some());
    assert!(p.usable_smcd_v2_ext().is_none());
    // Contents read from where the length formula puts the extension.
    let d = p.smcd_v2_ext.as_ref().unwrap();
    assert_eq!(
        d.devices().collect::<Vec<_>>(),
        [(LOOPBACK_GID, Chid::LOOPBACK)]
    );
    assert_eq!(server_precheck(&p, true), Err(DeclineReason::NoV2dExt));
    // The host check comes first.
    assert_eq!(server_precheck(&p, false), Err(DeclineReason::NoIsm2Supp));
}
