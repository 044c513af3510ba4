//! Every Decline of an SMC-D handshake, driven through the engines: the
//! reason code and Decline version of `docs/protocol/handshake.md`, the Decline bytes
//! parsed back with `wire`, application data after the Decline delivered
//! intact, and every DMB, attachment and link-group reference given back.

mod clc_common;

use std::net::Ipv4Addr;

use clc_common::{
    Decliner, LO_GID, accept_for, assert_declines, assert_fallback, client, config, decline_in,
    drain, emit_accept, fallback, one, pair, server, take, vector,
};
use smcd_core::clc::testing::{FakeDevice, Pair};
use smcd_core::clc::{ClcConfig, ClcDevice, Context, DeclinedBy, Devices, LinkGroups};
use smcd_core::dmb::{Chid, Gid};
use smcd_core::ops::ErrorKind;
use smcd_core::wire::clc::{
    AcceptKind, AcceptRepr, DeclineReason, Eyecatcher, Fce, IpPrefix, ProposalRepr, SmcType,
};

/// Byte-at-a-time delivery (every message read in every partial state),
/// except under Miri: there `clc_established::one_byte_at_a_time` covers
/// it, and these fallback paths would cost the interpreter over a minute.
fn trickle(p: Pair<Context<'_>>) -> Pair<Context<'_>> {
    if cfg!(miri) { p } else { p.byte_by_byte() }
}

/// A pair over one device slice per side, sharing `lgrs`.
fn pair_of<'a>(
    configs: (&'a ClcConfig, &'a ClcConfig),
    client: &'a [&'a dyn ClcDevice],
    server: &'a [&'a dyn ClcDevice],
    lgrs: &'a LinkGroups<8>,
) -> Pair<Context<'a>> {
    pair(
        configs.0,
        configs.1,
        Devices::new(client),
        Devices::new(server),
        lgrs,
    )
}

/// Nothing left registered, attached or referenced.
fn assert_clean(devices: &[&FakeDevice], lgrs: &LinkGroups<8>) {
    for d in devices {
        assert_eq!((d.live_dmbs(), d.attachments()), (0, 0));
    }
    assert_eq!(lgrs.in_use(), 0, "a link-group reference was kept");
}

/// Two native ISM-like devices that reach each other (different hosts).
fn two_hosts() -> (FakeDevice, FakeDevice) {
    let a = Gid::new(0x1122_3344_5566_7788, 0);
    let b = Gid::new(0x8877_6655_4433_2211, 0);
    (
        FakeDevice::ism(a.gid, Chid(0x0123)).reaching(b),
        FakeDevice::ism(b.gid, Chid(0x0123)).reaching(a),
    )
}

/// Vector B (loopback Proposal), parsed for mutation.
fn proposal_b() -> ProposalRepr {
    ProposalRepr::parse(&vector("clc-proposal-v2-loopback.hex")).unwrap()
}

fn emit(p: &ProposalRepr) -> Vec<u8> {
    let mut buf = vec![0u8; p.buffer_len()];
    p.emit(&mut buf).unwrap();
    buf
}

/// A server with loopback at the vectors' GID.
fn lo_server_declines(msg: &[u8], reason: DeclineReason, version: u8) {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut server = server(&config, devices, &lgrs, 0);
    assert_declines(&mut server, msg, reason, version);
    assert_clean(&[lo], &lgrs);
}

#[test]
fn client_without_v2_device_declines_nosmcdev_instead_of_proposal() {
    let v1 = FakeDevice::ism(7, Chid(0x0123)).v1_only();
    let lo = FakeDevice::loopback(LO_GID);
    let client: [&dyn ClcDevice; 1] = [&v1];
    let server: [&dyn ClcDevice; 1] = [&lo];
    let lgrs = LinkGroups::new();
    let config = config();
    let mut p = pair_of((&config, &config), &client, &server, &lgrs);
    // No v2-capable device: a v1 Decline, and it is the first CLC message.
    assert_fallback(&mut p, Decliner::Client, DeclineReason::NoSmcDev, 1, false);
    assert_eq!(clc_common::message_lengths(p.client_wrote())[..1], [28]);
    assert_eq!(DeclineReason::NoSmcDev.code(), 0x0303_0000);
    assert_clean(&[&v1, &lo], &lgrs);
}

#[test]
fn client_with_no_device_at_all_declines_nosmcdev() {
    let lo = FakeDevice::loopback(LO_GID);
    let server: [&dyn ClcDevice; 1] = [&lo];
    let lgrs = LinkGroups::new();
    let config = config();
    let mut p = pair_of((&config, &config), &[], &server, &lgrs);
    assert_fallback(&mut p, Decliner::Client, DeclineReason::NoSmcDev, 1, false);
}

#[test]
fn no_ueid_and_no_seid_server_declines_noueid() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::new();
    let bare = ClcConfig::empty();
    let mut p = trickle(pair(&bare, &bare, devices, devices, &lgrs));
    assert_fallback(&mut p, Decliner::Server, DeclineReason::NoUeid, 2, false);
    assert_eq!(DeclineReason::NoUeid.code(), 0x0303_0008);
    // Linux's client still sends a v2 Proposal with eid_cnt 0 (192 bytes).
    assert_eq!(clc_common::message_lengths(p.client_wrote())[0], 192);
    assert_clean(&[lo], &lgrs);
}

#[test]
fn no_common_ueid_server_declines_nosmcddev() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::new();
    let client_config = ClcConfig::empty().with_ueid("CLIENT-SIDE").unwrap();
    let server_config = ClcConfig::empty().with_ueid("SERVER-SIDE").unwrap();
    let mut p = pair(&client_config, &server_config, devices, devices, &lgrs);
    assert_fallback(&mut p, Decliner::Server, DeclineReason::NoSmcdDev, 2, false);
    assert_clean(&[lo], &lgrs);
}

#[test]
fn peer_offering_only_smcd_v1_gets_nosmcddev_v1() {
    lo_server_declines(
        &vector("clc-proposal-v1-smcd.hex"),
        DeclineReason::NoSmcdDev,
        1,
    );
}

#[test]
fn peer_offering_only_smcr_gets_nosmcddev() {
    // SMC-R v1 in a v2 header (a Linux host with RoCE but no ISM, no UEID).
    let mut p = proposal_b();
    p.typev1 = SmcType::R;
    p.typev2 = SmcType::N;
    p.id_for_peer = [1; 8];
    p.ip_prefix = Some(IpPrefix {
        outgoing_subnet: Ipv4Addr::new(192, 168, 1, 0),
        prefix_len: 24,
        ipv6_prefixes: heapless::Vec::new(),
    });
    p.v2_ext = None;
    p.smcd_v2_ext = None;
    p.set_canonical_offsets();
    lo_server_declines(&emit(&p), DeclineReason::NoSmcdDev, 2);
    // The same offer from a pre-5.10 host (v1 header): a v1 Decline.
    p.version = 1;
    lo_server_declines(&emit(&p), DeclineReason::NoSmcdDev, 1);
}

#[test]
fn proposal_offering_nothing_gets_peernosmc() {
    let mut p = proposal_b();
    p.typev2 = SmcType::N;
    p.v2_ext = None;
    p.smcd_v2_ext = None;
    p.set_canonical_offsets();
    lo_server_declines(&emit(&p), DeclineReason::PeerNoSmc, 2);
}

#[test]
fn unusable_smcd_v2_extension_gets_nov2dext() {
    lo_server_declines(
        &vector("declined-proposal-smcd-ext-offset-289.hex"),
        DeclineReason::NoV2dExt,
        2,
    );
}

#[test]
fn vector_without_eid_gets_noueid() {
    lo_server_declines(
        &vector("declined-proposal-no-eid.hex"),
        DeclineReason::NoUeid,
        2,
    );
}

/// A handshake between two device lists that the server declines with
/// `reason`; afterwards `clean` hold nothing and no group is referenced.
fn server_declines(
    client: Devices<'static>,
    server: Devices<'static>,
    reason: DeclineReason,
    clean: &[&FakeDevice],
) {
    let lgrs = LinkGroups::new();
    let config = config();
    let mut p = pair(&config, &config, client, server, &lgrs);
    assert_fallback(&mut p, Decliner::Server, reason, 2, false);
    assert_clean(clean, &lgrs);
}

#[test]
fn server_without_v2_device_declines_noism2supp() {
    let (lo, client) = one(FakeDevice::loopback(LO_GID));
    let (v1, server) = one(FakeDevice::ism(7, Chid(0x0123)).v1_only());
    server_declines(client, server, DeclineReason::NoIsm2Supp, &[lo, v1]);
}

#[test]
fn unreachable_gid_declines_nosmcd2dev() {
    let (client_lo, client) = one(FakeDevice::loopback(LO_GID));
    let (server_lo, server) = one(FakeDevice::loopback(Gid::new(9, 9)));
    server_declines(
        client,
        server,
        DeclineReason::NoSmcd2Dev,
        &[client_lo, server_lo],
    );
}

#[test]
fn server_dmb_limit_declines_max_dmb() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID).max_dmbs(0));
    server_declines(devices, devices, DeclineReason::MaxDmb, &[lo]);
    assert_eq!(DeclineReason::MaxDmb.code(), 0x030d_0000);
}

#[test]
fn server_out_of_memory_declines_mem() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID).max_dmb_size(8 * 1024));
    server_declines(devices, devices, DeclineReason::Mem, &[lo]);
}

#[test]
fn server_tries_every_device_and_declines_with_the_first_reason() {
    let lo = FakeDevice::loopback(LO_GID).max_dmbs(0);
    let (client_ism, server_ism) = two_hosts();
    let server_ism = server_ism.max_dmb_size(8 * 1024);
    let client: [&dyn ClcDevice; 2] = [&client_ism, &lo];
    let server: [&dyn ClcDevice; 2] = [&server_ism, &lo];
    let lgrs = LinkGroups::new();
    let config = config();
    let mut p = pair_of((&config, &config), &client, &server, &lgrs);
    // ISM first (MEM), then loopback (MAX_DMB): the first recorded wins.
    assert_fallback(&mut p, Decliner::Server, DeclineReason::Mem, 2, false);
    assert_clean(&[&lo, &server_ism], &lgrs);
}

/// Two hosts whose client device is broken by `fault`: the client declines
/// `reason` after the Accept, and the server gives everything back.
fn client_device_declines(fault: fn(FakeDevice) -> FakeDevice, reason: DeclineReason) {
    let (client_ism, server_ism) = two_hosts();
    let (client_ism, client) = one(fault(client_ism));
    let (server_ism, server) = one(server_ism);
    let lgrs = LinkGroups::new();
    let config = config();
    let mut p = trickle(pair(&config, &config, client, server, &lgrs));
    assert_fallback(&mut p, Decliner::Client, reason, 2, false);
    assert_clean(&[client_ism, server_ism], &lgrs);
}

#[test]
fn client_dmb_limit_declines_max_dmb_and_server_gives_back_its_dmb() {
    client_device_declines(|d| d.max_dmbs(0), DeclineReason::MaxDmb);
}

#[test]
fn client_out_of_memory_declines_mem() {
    client_device_declines(|d| d.max_dmb_size(8 * 1024), DeclineReason::Mem);
}

#[test]
fn client_attach_failure_declines_mem() {
    for kind in [
        ErrorKind::NoMemory,
        ErrorKind::Other,
        ErrorKind::Unsupported,
    ] {
        let (lo, devices) = one(FakeDevice::loopback(LO_GID).failing_attach(kind));
        let lgrs = LinkGroups::new();
        let config = config();
        let mut p = pair(&config, &config, devices, devices, &lgrs);
        assert_fallback(&mut p, Decliner::Client, DeclineReason::Mem, 2, false);
        assert_clean(&[lo], &lgrs);
    }
}

#[test]
fn client_attach_refused_as_invalid_token_declines_interr() {
    // The device refuses to pair the peer's DMB with ours: PEER_DMB_INVALID.
    let (lo, devices) = one(FakeDevice::loopback(LO_GID).failing_attach(ErrorKind::InvalidToken));
    let lgrs = LinkGroups::new();
    let config = config();
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    assert_fallback(&mut p, Decliner::Client, DeclineReason::IntErr, 2, false);
    assert_eq!(DeclineReason::IntErr.code(), 0x0999_0000);
    assert_clean(&[lo], &lgrs);
}

/// Two hosts whose server device claims nocopy: the client finishes, the
/// server's attach fails and it declines `reason` after the Confirm.
fn server_attach_fails(server_ism: FakeDevice, reason: DeclineReason) {
    let (client_ism, _) = two_hosts();
    let client: [&dyn ClcDevice; 1] = [&client_ism];
    let server: [&dyn ClcDevice; 1] = [&server_ism];
    let lgrs = LinkGroups::new();
    let config = config();
    let mut p = pair_of((&config, &config), &client, &server, &lgrs);
    p.drive();
    let c = take(&mut p.client);
    let s = fallback(p.server.poll_outcome());
    assert_eq!((s.reason, s.declined_by), (reason, DeclinedBy::Local));
    assert!(p.server.take_established().is_none());
    let (d, _) = decline_in(p.server_wrote());
    assert_eq!((d.peer_diagnosis, d.version), (reason, 2));
    // The client already finished CLC: the Decline reaches it as TCP bytes.
    assert_eq!(p.client_app.len(), 44);
    assert_eq!(server_ism.live_dmbs(), 0);
    // The client's connection is the application's to end.
    c.release(Devices::new(&client), &lgrs);
    assert_clean(&[&client_ism, &server_ism], &lgrs);
}

#[test]
fn server_attach_failure_declines_mem_after_the_client_finished() {
    let (_, server_ism) = two_hosts();
    server_attach_fails(
        server_ism.with_nocopy().failing_attach(ErrorKind::NoMemory),
        DeclineReason::Mem,
    );
}

#[test]
fn server_nocopy_map_of_a_remote_dmb_declines_interr_after_the_client_finished() {
    // The server's device claims nocopy but cannot map the client's DMB on
    // another host: it refuses the token, so the DMB counts as invalid.
    let (_, server_ism) = two_hosts();
    server_attach_fails(server_ism.with_nocopy(), DeclineReason::IntErr);
}

#[test]
fn first_contact_mismatch_declines_syncerr_and_server_drops_its_group() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let server_lgrs = LinkGroups::<8>::new();
    let config = config();

    // A first connection leaves a group in the server's table.
    let first_client_lgrs = LinkGroups::<8>::new();
    let mut p = Pair::new(
        client(&config, devices, &first_client_lgrs, 0),
        server(&config, devices, &server_lgrs, 0),
    );
    p.drive();
    let s1 = take(&mut p.server);
    let c1 = take(&mut p.client);
    drop(p);

    // A client that lost its group: the server reuses, the client cannot.
    let fresh_client_lgrs = LinkGroups::<8>::new();
    let mut p = Pair::new(
        client(&config, devices, &fresh_client_lgrs, 0),
        server(&config, devices, &server_lgrs, 0),
    );
    assert_fallback(&mut p, Decliner::Client, DeclineReason::SyncErr, 2, true);
    // Header byte 7 of the Decline after the 224-byte Proposal: v2, out of sync.
    assert_eq!(p.client_wrote()[224 + 7], 0x28);
    drop(p);
    assert_eq!(fresh_client_lgrs.len(), 0);
    // The server's group is out of sync: gone once the first connection ends.
    let s1_lgr = s1.lgr;
    assert_eq!(server_lgrs.connections(s1_lgr), Some(1));
    s1.release(devices, &server_lgrs);
    assert_eq!(server_lgrs.connections(s1_lgr), None);
    c1.release(devices, &first_client_lgrs);

    // The next connection is a first contact on both sides again.
    let mut p = Pair::new(
        client(&config, devices, &fresh_client_lgrs, 0),
        server(&config, devices, &server_lgrs, 0),
    );
    p.drive();
    let (c, s) = (take(&mut p.client), take(&mut p.server));
    assert!(c.info.first_contact && s.info.first_contact);
    assert_ne!(s.lgr.id(), s1_lgr.id());
    c.release(devices, &fresh_client_lgrs);
    s.release(devices, &server_lgrs);
    assert_clean(&[lo], &server_lgrs);
    assert_eq!(fresh_client_lgrs.in_use(), 0);
}

/// A client that sent its Proposal, for hand-made answers.
fn lo_client_declines(answer: &[u8], reason: DeclineReason, version: u8) {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = client(&config, devices, &lgrs, 0);
    drain(&mut client);
    assert_declines(&mut client, answer, reason, version);
    assert_clean(&[lo], &lgrs);
}

#[test]
fn v1_accept_declines_modeunsupp_v1() {
    lo_client_declines(
        &vector("clc-accept-v1-smcd.hex"),
        DeclineReason::ModeUnsupp,
        1,
    );
}

#[test]
fn smcr_accept_declines_modeunsupp() {
    // A well-formed SMC-R v2 Accept (108 bytes, typev1 R).
    let mut accept = vec![0u8; 108];
    accept[..8].copy_from_slice(&[0xe2, 0xd4, 0xc3, 0xd9, 0x02, 0x00, 108, 0x20]);
    accept[104..].copy_from_slice(&Eyecatcher::SMCR_BYTES);
    lo_client_declines(&accept, DeclineReason::ModeUnsupp, 2);
}

#[test]
fn confirm_naming_our_own_dmb_declines_interr() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = client(&config, devices, &lgrs, 0);
    let mut server = server(&config, devices, &lgrs, 0);
    let accept = accept_for(&mut client, &mut server);
    // A well-formed Confirm that hands the server its own token back: the
    // server would write into its own receive ring.
    let confirm = AcceptRepr {
        kind: AcceptKind::Confirm,
        ..accept
    };
    assert_declines(
        &mut server,
        &emit_accept(&confirm),
        DeclineReason::IntErr,
        2,
    );
    assert_eq!(lo.live_dmbs(), 0, "the server gave back its DMB");
    assert_eq!(lo.attachments(), 0, "and attached nothing");
}

#[test]
fn accept_with_a_dmb_over_1_mib_declines_interr() {
    let (client_dev, client_devices) = one(FakeDevice::loopback(LO_GID));
    let (_, server_devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = client(&config, client_devices, &lgrs, 0);
    let mut server = server(&config, server_devices, &lgrs, 0);
    let accept = accept_for(&mut client, &mut server);
    // dmbe_size 7 decodes to 2 MiB, beyond the largest SMC-D DMB.
    let oversized = AcceptRepr {
        dmbe_size: 7,
        ..accept
    };
    assert_eq!(oversized.dmbe_size_bytes(), 2 << 20);
    assert_declines(
        &mut client,
        &emit_accept(&oversized),
        DeclineReason::IntErr,
        2,
    );
    assert_eq!(client_dev.live_dmbs(), 0, "the client gave back its DMB");
    assert_eq!(client_dev.attachments(), 0, "and attached nothing");
}

#[test]
fn confirm_with_other_release_declines_releaseerr() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = client(&config, devices, &lgrs, 0);
    let mut server = server(&config, devices, &lgrs, 0);
    let accept = accept_for(&mut client, &mut server);
    assert_eq!(accept.fce.unwrap().release, 1);
    // A Confirm that answers the first contact with release 0.
    let confirm = AcceptRepr {
        kind: AcceptKind::Confirm,
        length: 78 + 36,
        fce: Some(Fce {
            release: 0,
            ..accept.fce.unwrap()
        }),
        ..accept
    };
    assert_declines(
        &mut server,
        &emit_accept(&confirm),
        DeclineReason::ReleaseErr,
        2,
    );
    assert_eq!(lo.live_dmbs(), 0, "the server gave back its DMB");
}
