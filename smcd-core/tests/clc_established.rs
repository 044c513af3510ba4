//! Handshakes that end in SMC-D: first contact, link-group reuse, device
//! choice, DMB sizes, EIDs; the Proposal against the spec's vector B.

mod clc_common;

use clc_common::{
    LO_GID, Side, UEID, client, config, drain, established, message_lengths, one, pair, server,
    take, vector,
};
use smcd_core::clc::testing::{FakeDevice, Pair};
use smcd_core::clc::{ClcConfig, ClcDevice, Devices, LinkGroups, Role};
use smcd_core::conn::SendMode;
use smcd_core::dmb::{Chid, Gid};
use smcd_core::wire::clc::{AcceptRepr, ClcMessage, Eid};

/// The Accept/Confirm a side wrote (its only CLC message after the first).
fn accept_confirm(stream: &[u8]) -> AcceptRepr {
    match clc_common::messages(stream).last() {
        Some(ClcMessage::AcceptConfirm(a)) => *a,
        other => panic!("no Accept/Confirm: {other:?}"),
    }
}

#[test]
fn first_contact_then_reuse_share_one_link_group() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();

    // First connection: both sides create a link group.
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    let c = take(&mut p.client);
    let s = take(&mut p.server);
    let (ci, si) = (c.info, s.info);
    assert_eq!((ci.role, si.role), (Role::Client, Role::Server));
    assert!(ci.first_contact && si.first_contact);
    assert_eq!((ci.peer_gid, si.peer_gid), (LO_GID, LO_GID));
    assert_eq!((ci.chid, si.chid), (Chid::LOOPBACK, Chid::LOOPBACK));
    // Each side sends into the other's DMB, named in the Accept / Confirm.
    assert_eq!(c.conn.peer_token(), s.conn.own_token());
    assert_eq!(s.conn.peer_token(), c.conn.own_token());
    assert_eq!(accept_confirm(p.server_wrote()).token, s.conn.own_token());
    assert_eq!(accept_confirm(p.client_wrote()).token, c.conn.own_token());
    assert_eq!((ci.peer_dmb_size, si.peer_dmb_size), (64 * 1024, 64 * 1024));
    assert_eq!((ci.own_dmb_size, si.own_dmb_size), (64 * 1024, 64 * 1024));
    assert_eq!(c.conn.own_dmb_len(), 64 * 1024);
    assert_eq!(ci.eid, Eid::from_text(UEID).unwrap());
    assert_eq!(si.eid, ci.eid);
    assert_eq!((ci.version, ci.release, ci.features), (2, 1, 1));
    assert_eq!((si.version, si.release, si.features), (2, 1, 1));
    assert_eq!(ci.peer_hostname.unwrap().trimmed(), b"host1");
    assert_eq!(si.peer_hostname.unwrap().trimmed(), b"host1");
    assert_eq!((ci.mode, si.mode), (SendMode::NoCopy, SendMode::NoCopy));
    assert_eq!(
        (c.conn.mode(), s.conn.mode()),
        (SendMode::NoCopy, SendMode::NoCopy)
    );
    // Proposal 224 (vector B's shape), first-contact Accept/Confirm 130 each.
    assert_eq!(message_lengths(p.client_wrote()), [224, 130]);
    assert_eq!(message_lengths(p.server_wrote()), [130]);
    assert_eq!(p.server_wrote()[7], 0x29);
    assert_eq!(lo.live_dmbs(), 2);
    assert_eq!(lo.attachments(), 2);
    let server_lgr = s.lgr;
    assert_ne!(c.lgr, server_lgr);
    assert_eq!((ci.link_id, si.link_id), (c.lgr.id(), server_lgr.id()));
    // The engines hold nothing any more: the connections own the DMBs.
    drop(p);
    assert_eq!((lo.live_dmbs(), lo.attachments()), (2, 2));

    // Second connection: both join the server's (oldest) group.
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    let c2 = take(&mut p.client);
    let s2 = take(&mut p.server);
    assert!(!c2.info.first_contact && !s2.info.first_contact);
    assert_eq!(c2.lgr, server_lgr);
    assert_eq!(s2.lgr, server_lgr);
    assert_eq!(c2.conn.peer_token(), s2.conn.own_token());
    assert_eq!(s2.conn.peer_token(), c2.conn.own_token());
    let accept = accept_confirm(p.server_wrote());
    let confirm = accept_confirm(p.client_wrote());
    assert_eq!(accept.linkid, confirm.linkid);
    assert_eq!(accept.linkid, server_lgr.id().0);
    assert!(!accept.first_contact && accept.fce.is_none());
    assert_eq!(message_lengths(p.server_wrote()), [78]);
    assert_eq!(message_lengths(p.client_wrote()), [224, 78]);
    assert_eq!(p.server_wrote()[7], 0x21);
    // Release and features come from the group.
    assert_eq!((c2.info.release, c2.info.features), (1, 1));
    assert_eq!(lgrs.connections(server_lgr), Some(3));
    assert_eq!(lgrs.len(), 2);
    assert_eq!((lo.live_dmbs(), lo.attachments()), (4, 4));

    // Everything goes back through the device and the table.
    for side in [c, s, c2, s2] {
        side.release(devices, &lgrs);
    }
    assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));
}

/// Two connections between the same two hosts start together: the second
/// reaches the server before the first's Confirm, and its Accept reaches
/// the client before the first's (as when one event loop serves both). The
/// server must not send `first_contact` 0 for the first's group before it
/// is confirmed: the client does not know it yet and would decline with
/// SYNCERR.
#[test]
fn concurrent_first_contacts_both_establish_whatever_order_the_accepts_arrive() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let (client_lgrs, server_lgrs) = (LinkGroups::<8>::new(), LinkGroups::<8>::new());
    let config = config();
    let (mut c1, mut c2) = (
        client(&config, devices, &client_lgrs, 0),
        client(&config, devices, &client_lgrs, 0),
    );
    let (mut s1, mut s2) = (
        server(&config, devices, &server_lgrs, 0),
        server(&config, devices, &server_lgrs, 0),
    );
    let proposal = drain(&mut c1);
    assert_eq!(s1.handle_input(1, &proposal), proposal.len());
    let accept1 = drain(&mut s1);
    let proposal = drain(&mut c2);
    assert_eq!(s2.handle_input(1, &proposal), proposal.len());
    let accept2 = drain(&mut s2);
    // Its group is the first's, not confirmed yet: a first contact again.
    assert!(
        accept_confirm(&accept2).first_contact,
        "named an unconfirmed group"
    );
    assert_eq!(
        accept_confirm(&accept2).linkid,
        accept_confirm(&accept1).linkid
    );
    assert_eq!(c2.handle_input(2, &accept2), accept2.len());
    let confirm2 = drain(&mut c2);
    assert_eq!(c1.handle_input(2, &accept1), accept1.len());
    let confirm1 = drain(&mut c1);
    assert_eq!(s2.handle_input(3, &confirm2), confirm2.len());
    assert_eq!(s1.handle_input(3, &confirm1), confirm1.len());
    let sides = [take(&mut c1), take(&mut s1), take(&mut c2), take(&mut s2)];
    // A third connection joins the confirmed group.
    let mut p = Pair::new(
        client(&config, devices, &client_lgrs, 4),
        server(&config, devices, &server_lgrs, 4),
    );
    p.drive();
    let (c3, s3) = (take(&mut p.client), take(&mut p.server));
    assert!(!c3.info.first_contact && !s3.info.first_contact);
    assert_eq!(s3.lgr, sides[1].lgr);
    drop(p);
    for (i, side) in sides.into_iter().chain([c3, s3]).enumerate() {
        side.release(
            devices,
            if i % 2 == 0 {
                &client_lgrs
            } else {
                &server_lgrs
            },
        );
    }
    assert_eq!(
        (lo.live_dmbs(), client_lgrs.in_use(), server_lgrs.in_use()),
        (0, 0, 0)
    );
}

#[test]
fn one_byte_at_a_time() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut p = pair(&config, &config, devices, devices, &lgrs).byte_by_byte();
    p.drive();
    let c = take(&mut p.client);
    let s = take(&mut p.server);
    assert_eq!(c.conn.peer_token(), s.conn.own_token());
    assert_eq!(s.conn.peer_token(), c.conn.own_token());
    assert_eq!(message_lengths(p.client_wrote()), [224, 130]);
}

#[test]
fn proposal_is_vector_b() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = client(&config, devices, &lgrs, 0);
    let mut buf = [0u8; 1024];
    let n = client.poll_transmit(&mut buf).unwrap();
    assert_eq!(&buf[..n], vector("clc-proposal-v2-loopback.hex"));
    assert_eq!(client.poll_transmit(&mut buf), None);
}

#[test]
fn bytes_after_confirm_are_left_to_the_caller() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = client(&config, devices, &lgrs, 0);
    let mut server = server(&config, devices, &lgrs, 0);
    let mut buf = [0u8; 1024];
    let n = client.poll_transmit(&mut buf).unwrap();
    assert_eq!(server.handle_input(1, &buf[..n]), n);
    let n = server.poll_transmit(&mut buf).unwrap();
    assert_eq!(client.handle_input(2, &buf[..n]), n);
    let n = client.poll_transmit(&mut buf).unwrap();
    buf[n..n + 5].copy_from_slice(b"extra");
    assert_eq!(server.handle_input(3, &buf[..n + 5]), n);
    assert!(!server.is_handshaking());
    assert_eq!(server.handle_input(4, b"more"), 0);
    established(server.poll_outcome());
    assert!(
        server.poll_outcome().is_none(),
        "the outcome is handed out once"
    );
    // The resources too, once.
    assert!(server.take_established().is_some());
    assert!(server.take_established().is_none());
}

/// A whole handshake between two device lists: both sides and the bytes
/// the client wrote.
fn establish(
    client: &[&dyn ClcDevice],
    server: &[&dyn ClcDevice],
    lgrs: &LinkGroups<8>,
) -> (Side, Side, Vec<u8>) {
    let config = config();
    let mut p = pair(
        &config,
        &config,
        Devices::new(client),
        Devices::new(server),
        lgrs,
    );
    p.drive();
    let c = take(&mut p.client);
    let s = take(&mut p.server);
    (c, s, p.client_wrote().to_vec())
}

/// Two native ISM-like devices that reach each other, plus loopback.
struct TwoHosts {
    client_ism: FakeDevice,
    server_ism: FakeDevice,
    lo: FakeDevice,
}

impl TwoHosts {
    const ISM_CHID: Chid = Chid(0x0123);

    fn new() -> Self {
        let a = Gid::new(0x1122_3344_5566_7788, 0);
        let b = Gid::new(0x8877_6655_4433_2211, 0);
        Self {
            client_ism: FakeDevice::ism(a.gid, Self::ISM_CHID).reaching(b),
            server_ism: FakeDevice::ism(b.gid, Self::ISM_CHID).reaching(a),
            lo: FakeDevice::loopback(LO_GID),
        }
    }
}

#[test]
fn ism_like_device_is_offered_and_chosen_before_loopback() {
    let hosts = TwoHosts::new();
    // Slice order puts loopback first; priority puts the ISM device first.
    let client_list: [&dyn ClcDevice; 2] = [&hosts.lo, &hosts.client_ism];
    let server_list: [&dyn ClcDevice; 2] = [&hosts.lo, &hosts.server_ism];
    let lgrs = LinkGroups::new();
    let (c, s, client_wrote) = establish(&client_list, &server_list, &lgrs);
    let proposal = match &clc_common::messages(&client_wrote)[0] {
        ClcMessage::Proposal(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    let offered: Vec<(Gid, Chid)> = proposal.smcd_v2_ext.unwrap().devices().collect();
    assert_eq!(
        offered,
        [
            (hosts.client_ism.gid(), TwoHosts::ISM_CHID),
            (LO_GID, Chid::LOOPBACK)
        ]
    );
    assert_eq!((c.info.device, s.info.device), (1, 1));
    assert_eq!(c.info.chid, TwoHosts::ISM_CHID);
    assert_eq!(c.info.peer_gid, hosts.server_ism.gid());
    assert_eq!(s.info.peer_gid, hosts.client_ism.gid());
    assert_eq!((c.info.mode, s.info.mode), (SendMode::Copy, SendMode::Copy));
    assert_eq!(
        (c.conn.mode(), s.conn.mode()),
        (SendMode::Copy, SendMode::Copy)
    );
    // Two hosts: each DMB on its own device, bound (not mapped) by the peer.
    assert_eq!(c.conn.peer_token(), s.conn.own_token());
    assert_eq!(s.conn.peer_token(), c.conn.own_token());
    assert_eq!(hosts.lo.live_dmbs(), 0);
    assert_eq!(
        (hosts.client_ism.live_dmbs(), hosts.server_ism.live_dmbs()),
        (1, 1)
    );
    assert_eq!(hosts.client_ism.attachments(), 0);
    c.release(Devices::new(&client_list), &lgrs);
    s.release(Devices::new(&server_list), &lgrs);
    assert_eq!(
        (hosts.client_ism.live_dmbs(), hosts.server_ism.live_dmbs()),
        (0, 0)
    );
    assert_eq!(lgrs.in_use(), 0);
}

#[test]
fn server_moves_on_when_a_device_cannot_take_a_dmb() {
    let mut hosts = TwoHosts::new();
    hosts.server_ism = hosts.server_ism.max_dmbs(0);
    let client_list: [&dyn ClcDevice; 2] = [&hosts.client_ism, &hosts.lo];
    let server_list: [&dyn ClcDevice; 2] = [&hosts.server_ism, &hosts.lo];
    let lgrs = LinkGroups::new();
    let (c, s, _) = establish(&client_list, &server_list, &lgrs);
    assert_eq!((s.info.chid, c.info.chid), (Chid::LOOPBACK, Chid::LOOPBACK));
    assert_eq!(s.info.device, 1);
    // The failed device's link group reference was given back, and the
    // group (never confirmed) went with it.
    assert_eq!(hosts.server_ism.live_dmbs(), 0);
    assert_eq!(lgrs.len(), 2);
    assert_eq!(lgrs.in_use(), 2);
    assert_eq!(hosts.lo.live_dmbs(), 2);
    c.release(Devices::new(&client_list), &lgrs);
    s.release(Devices::new(&server_list), &lgrs);
    assert_eq!((hosts.lo.live_dmbs(), hosts.lo.attachments()), (0, 0));
    assert_eq!(lgrs.in_use(), 0);
}

#[test]
fn dmb_size_steps_down_on_no_memory() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID).max_dmb_size(32 * 1024));
    let lgrs = LinkGroups::<8>::new();
    let config = config().with_dmb_size(256 * 1024);
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    let c = take(&mut p.client);
    let s = take(&mut p.server);
    assert_eq!(lo.registered_sizes(), [32 * 1024, 32 * 1024]);
    assert_eq!(
        (c.info.peer_dmb_size, s.info.peer_dmb_size),
        (32 * 1024, 32 * 1024)
    );
    assert_eq!(
        (c.conn.own_dmb_len(), s.conn.own_dmb_len()),
        (32 * 1024, 32 * 1024)
    );
    assert_eq!(accept_confirm(p.server_wrote()).dmbe_size, 1);
    c.release(devices, &lgrs);
    s.release(devices, &lgrs);
    assert_eq!((lo.live_dmbs(), lo.attachments()), (0, 0));
}

#[test]
fn seid_is_negotiated_when_both_enable_the_same() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let seid = Eid::from_text("IBM-SYSZ-ISMSEID00000000ABCD1234").unwrap();
    let config = ClcConfig::empty().with_seid(seid);
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    assert_eq!(established(p.client.poll_outcome()).eid, seid);
    assert_eq!(established(p.server.poll_outcome()).eid, seid);
}

#[test]
fn default_config_negotiates_the_default_ueid() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = ClcConfig::default();
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    let c = take(&mut p.client);
    let s = take(&mut p.server);
    let eid = Eid::from_text(smcd_core::clc::DEFAULT_UEID).unwrap();
    assert_eq!((c.info.eid, s.info.eid), (eid, eid));
    c.release(devices, &lgrs);
    s.release(devices, &lgrs);
    assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));
}
