//! Property tests of the CLC layer: emit → parse → emit round trips of
//! randomly generated valid Reprs of every message kind, and parse robustness
//! on mutated vectors.

use proptest::prelude::*;

use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::wire::clc::{
    AcceptKind, AcceptRepr, ClcMessage, DeclineReason, DeclineRepr, Eid, Eyecatcher, Fce, GidChid,
    Hostname, IpPrefix, Ipv6Prefix, ProposalRepr, SmcType, SmcdV2Ext, V2Ext,
};

#[path = "common/hex.rs"]
mod hex;

fn eyecatcher() -> impl Strategy<Value = Eyecatcher> {
    prop_oneof![Just(Eyecatcher::Smcr), Just(Eyecatcher::Smcd)]
}

fn smc_type() -> impl Strategy<Value = SmcType> {
    (0u8..4).prop_map(SmcType::from_bits)
}

fn ip_prefix() -> impl Strategy<Value = IpPrefix> {
    let v6 = (any::<[u8; 16]>(), any::<u8>()).prop_map(|(p, l)| Ipv6Prefix {
        prefix: p.into(),
        prefix_len: l,
    });
    (
        any::<[u8; 4]>(),
        any::<u8>(),
        prop::collection::vec(v6, 0..=8),
    )
        .prop_map(|(a, l, v)| IpPrefix {
            outgoing_subnet: a.into(),
            prefix_len: l,
            ipv6_prefixes: v.into_iter().collect(),
        })
}

fn v2_ext() -> impl Strategy<Value = V2Ext> {
    (
        0u8..16,
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<(u8, u8, u16)>(),
        prop::collection::vec(any::<[u8; 32]>().prop_map(Eid), 0..=8),
    )
        .prop_map(
            |(release, seid, roce, (max_conns, max_links, feature_mask), eids)| V2Ext {
                release,
                seid,
                smcd_v2_ext_offset: 0,
                roce,
                max_conns,
                max_links,
                feature_mask,
                user_eids: eids.into_iter().collect(),
            },
        )
}

fn smcd_v2_ext() -> impl Strategy<Value = SmcdV2Ext> {
    let entry = (any::<u64>(), any::<u16>()).prop_map(|(gid, chid)| GidChid {
        gid,
        chid: Chid(chid),
    });
    (any::<[u8; 32]>(), prop::collection::vec(entry, 0..=8)).prop_map(|(seid, list)| SmcdV2Ext {
        system_eid: Eid(seid),
        gidchid: list.into_iter().collect(),
    })
}

/// The 20 field bytes of the SMC-D area: gid, chid, v2_ext_offset, oui, exp.
fn smcd_area_fields(p: &mut ProposalRepr, mut raw: [u8; 20], present: usize) {
    raw.iter_mut().skip(present).for_each(|b| *b = 0);
    p.ism_gid = u64::from_be_bytes(raw[0..8].try_into().unwrap());
    p.ism_chid = Chid(u16::from_be_bytes([raw[8], raw[9]]));
    p.v2_ext_offset = u16::from_be_bytes([raw[10], raw[11]]);
    p.vendor_oui = raw[12..15].try_into().unwrap();
    p.vendor_exp_options = raw[15..20].try_into().unwrap();
}

fn base_proposal(eyecatcher: Eyecatcher, trailer: Eyecatcher, version: u8) -> ProposalRepr {
    ProposalRepr {
        eyecatcher,
        trailer,
        ..ProposalRepr::empty(version)
    }
}

fn proposal_v1() -> impl Strategy<Value = ProposalRepr> {
    (
        (
            eyecatcher(),
            eyecatcher(),
            any::<[u8; 8]>(),
            any::<[u8; 16]>(),
            any::<[u8; 6]>(),
        ),
        prop_oneof![Just(SmcType::R), Just(SmcType::D), Just(SmcType::B)],
        smc_type(),
        0u16..=40,
        any::<[u8; 20]>(),
        ip_prefix(),
    )
        .prop_map(|((e, t, id, gid, mac), typev1, typev2, iparea, smcd, ip)| {
            let mut p = base_proposal(e, t, 1);
            (p.id_for_peer, p.gid, p.mac) = (id, gid, mac);
            (p.typev1, p.typev2, p.iparea_offset) = (typev1, typev2, iparea);
            smcd_area_fields(&mut p, smcd, usize::from(iparea));
            p.ip_prefix = Some(ip);
            p
        })
}

fn proposal_v2() -> impl Strategy<Value = ProposalRepr> {
    (
        (
            eyecatcher(),
            eyecatcher(),
            2u8..16,
            any::<[u8; 8]>(),
            any::<[u8; 16]>(),
        ),
        (smc_type(), smc_type()),
        any::<[u8; 20]>(),
        (ip_prefix(), v2_ext(), smcd_v2_ext()),
        prop_oneof![Just(None), Just(Some(0u16)), (289u16..).prop_map(Some)],
    )
        .prop_map(
            |((e, t, version, id, gid), (typev1, typev2), smcd, exts, smcd_off)| {
                let (ip, v2, smcd_ext) = exts;
                let mut p = base_proposal(e, t, version);
                (p.id_for_peer, p.gid) = (id, gid);
                (p.typev1, p.typev2) = (typev1, typev2);
                smcd_area_fields(&mut p, smcd, 20);
                if typev1 == SmcType::N {
                    // P2 reads the low byte of ism_gid as a count here.
                    p.ism_gid &= !0xff;
                } else {
                    p.ip_prefix = Some(ip);
                }
                if typev2 != SmcType::N {
                    p.v2_ext = Some(v2);
                }
                if typev2.has_d() {
                    p.smcd_v2_ext = Some(smcd_ext);
                }
                let raw_v2_ext_offset = p.v2_ext_offset;
                p.set_canonical_offsets();
                if typev2 == SmcType::N {
                    p.v2_ext_offset = raw_v2_ext_offset;
                }
                if let (Some(v2), true, Some(off)) = (&mut p.v2_ext, typev2.has_d(), smcd_off) {
                    v2.smcd_v2_ext_offset = off;
                }
                p
            },
        )
}

fn fce() -> impl Strategy<Value = Fce> {
    (
        any::<bool>(),
        0u8..16,
        0u8..16,
        any::<[u8; 32]>(),
        any::<(u8, u8, u16, u32)>(),
    )
        .prop_map(|(v2_direct, os_type, release, host, tail)| {
            let tail = if release == 0 { (0, 0, 0, 0) } else { tail };
            Fce {
                v2_direct,
                os_type,
                release,
                hostname: Hostname(host),
                max_conns: tail.0,
                max_links: tail.1,
                feature_mask: tail.2,
                vendor_exp_options: tail.3,
            }
        })
}

fn accept() -> impl Strategy<Value = AcceptRepr> {
    (
        (
            eyecatcher(),
            eyecatcher(),
            any::<bool>(),
            prop_oneof![Just(1u8), 2u8..16],
        ),
        any::<bool>(),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u8>(),
            0u8..16,
            any::<[u8; 4]>(),
        ),
        (any::<u16>(), any::<[u8; 32]>(), fce(), 0u16..600),
    )
        .prop_map(
            |((e, t, confirm, version), first_contact, fields, v2_fields)| {
                let (gid, gid_ext, token, dmbe_idx, dmbe_size, linkid) = fields;
                let (chid, eid, fce, padding) = v2_fields;
                let v2 = version >= 2;
                let mut a = AcceptRepr {
                    kind: if confirm {
                        AcceptKind::Confirm
                    } else {
                        AcceptKind::Accept
                    },
                    eyecatcher: e,
                    length: 0,
                    version,
                    first_contact,
                    gid: Gid::new(gid, if v2 { gid_ext } else { 0 }),
                    token: DmbToken(token),
                    dmbe_idx,
                    dmbe_size,
                    linkid,
                    chid: Chid(if v2 { chid } else { 0 }),
                    eid: Eid(if v2 { eid } else { [0; 32] }),
                    fce: (v2 && first_contact).then_some(fce),
                    trailer: t,
                };
                let padding = if v2 { padding } else { 0 };
                a.length = u16::try_from(a.min_len()).unwrap() + padding;
                a
            },
        )
}

fn decline() -> impl Strategy<Value = DeclineRepr> {
    (
        (eyecatcher(), any::<[u8; 4]>(), 1u8..16, any::<bool>()),
        (any::<[u8; 8]>(), any::<u32>(), 0u8..16, any::<[u32; 4]>()),
    )
        .prop_map(
            |((e, t, version, out_of_sync), (id, code, os_type, v2))| DeclineRepr {
                eyecatcher: e,
                version,
                out_of_sync,
                id_for_peer: id,
                peer_diagnosis: DeclineReason::from(code),
                os_type,
                peer_diagnosis_v2: if version >= 2 { v2 } else { [0; 4] },
                trailer: Eyecatcher::from(t),
            },
        )
}

fn message() -> impl Strategy<Value = ClcMessage> {
    prop_oneof![
        proposal_v1().prop_map(ClcMessage::Proposal),
        proposal_v2().prop_map(ClcMessage::Proposal),
        accept().prop_map(ClcMessage::AcceptConfirm),
        decline().prop_map(ClcMessage::Decline),
    ]
}

fn emit(msg: &ClcMessage) -> Vec<u8> {
    let mut out = vec![0u8; msg.buffer_len()];
    assert_eq!(msg.emit(&mut out), Ok(out.len()));
    out
}

fn valid_vectors() -> Vec<Vec<u8>> {
    [
        include_str!("vectors/clc-proposal-v1-smcd.hex"),
        include_str!("vectors/clc-proposal-v2-loopback.hex"),
        include_str!("vectors/clc-accept-v2-fce-loopback.hex"),
        include_str!("vectors/clc-confirm-v2-loopback.hex"),
        include_str!("vectors/clc-accept-v1-smcd.hex"),
        include_str!("vectors/clc-decline-v2.hex"),
        include_str!("vectors/clc-decline-v1-syncerr.hex"),
        include_str!("vectors/declined-proposal-no-eid.hex"),
    ]
    .iter()
    .map(|text| hex::decode(text))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn emit_parse_emit_round_trips(msg in message()) {
        let bytes = emit(&msg);
        let parsed = ClcMessage::parse(&bytes);
        prop_assert_eq!(parsed.as_ref(), Ok(&msg), "bytes: {:02x?}", bytes);
        prop_assert_eq!(emit(&parsed.unwrap()), bytes);
    }

    #[test]
    fn mutated_vectors_never_panic_and_reparse_stably(
        pick in 0usize..8,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = valid_vectors().swap_remove(pick);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(msg) = ClcMessage::parse(&bytes) {
            let again = emit(&msg);
            prop_assert_eq!(ClcMessage::parse(&again), Ok(msg));
        }
    }
}
