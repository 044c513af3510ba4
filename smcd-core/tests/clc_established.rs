//! Handshakes that end in SMC-D: first contact, link-group reuse, device
//! choice, DMB sizes, EIDs; the Proposal against the spec's vector B.

mod clc_common;

use clc_common::{LO_GID, UEID, config, established, message_lengths, one, pair, vector};
use smcd_core::clc::testing::FakeDevice;
use smcd_core::clc::{ClcConfig, ClcDevice, Devices, Established, Handshake, LinkGroups, Role};
use smcd_core::conn::{Connection, SendMode};
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
    let c = established(p.client.poll_outcome());
    let s = established(p.server.poll_outcome());
    assert_eq!((c.role, s.role), (Role::Client, Role::Server));
    assert!(c.first_contact && s.first_contact);
    assert_eq!((c.peer_gid, s.peer_gid), (LO_GID, LO_GID));
    assert_eq!((c.chid, s.chid), (Chid::LOOPBACK, Chid::LOOPBACK));
    assert_eq!(c.peer_token, s.dmb.token);
    assert_eq!(s.peer_token, c.dmb.token);
    assert_eq!((c.peer_dmb_size, s.peer_dmb_size), (64 * 1024, 64 * 1024));
    assert_eq!(c.dmb.mem.len(), 64 * 1024);
    assert_eq!(c.eid, Eid::from_text(UEID).unwrap());
    assert_eq!(s.eid, c.eid);
    assert_eq!((c.version, c.release, c.features), (2, 1, 1));
    assert_eq!((s.version, s.release, s.features), (2, 1, 1));
    assert_eq!(c.peer_hostname.unwrap().trimmed(), b"host1");
    assert_eq!(s.peer_hostname.unwrap().trimmed(), b"host1");
    assert!(matches!(c.mode, SendMode::NoCopy(d) if d.token == s.dmb.token));
    assert!(matches!(s.mode, SendMode::NoCopy(d) if d.token == c.dmb.token));
    // Everything a data-path connection needs.
    Connection::new(c.conn_params()).unwrap();
    Connection::new(s.conn_params()).unwrap();
    // Proposal 224 (vector B's shape), first-contact Accept/Confirm 130 each.
    assert_eq!(message_lengths(p.client_wrote()), [224, 130]);
    assert_eq!(message_lengths(p.server_wrote()), [130]);
    assert_eq!(p.server_wrote()[7], 0x29);
    assert_eq!(lo.live_dmbs(), 2);
    assert_eq!(lo.attachments(), 2);
    let server_lgr = s.link_group;
    assert_ne!(c.link_group, server_lgr);
    drop(p);

    // Second connection: both join the server's (oldest) group.
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    let c2 = established(p.client.poll_outcome());
    let s2 = established(p.server.poll_outcome());
    assert!(!c2.first_contact && !s2.first_contact);
    assert_eq!(c2.link_group, server_lgr);
    assert_eq!(s2.link_group, server_lgr);
    let accept = accept_confirm(p.server_wrote());
    let confirm = accept_confirm(p.client_wrote());
    assert_eq!(accept.linkid, confirm.linkid);
    assert_eq!(accept.linkid, server_lgr.id().0);
    assert!(!accept.first_contact && accept.fce.is_none());
    assert_eq!(message_lengths(p.server_wrote()), [78]);
    assert_eq!(message_lengths(p.client_wrote()), [224, 78]);
    assert_eq!(p.server_wrote()[7], 0x21);
    // Release and features come from the group.
    assert_eq!((c2.release, c2.features), (1, 1));
    assert_eq!(lgrs.connections(server_lgr), Some(3));
    assert_eq!(lgrs.len(), 2);
}

#[test]
fn one_byte_at_a_time() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut p = pair(&config, &config, devices, devices, &lgrs).byte_by_byte();
    p.drive();
    let c = established(p.client.poll_outcome());
    let s = established(p.server.poll_outcome());
    assert_eq!(c.peer_token, s.dmb.token);
    assert_eq!(s.peer_token, c.dmb.token);
    assert_eq!(message_lengths(p.client_wrote()), [224, 130]);
}

#[test]
fn proposal_is_vector_b() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = Handshake::client(&config, devices, &lgrs, 0);
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
    let mut client = Handshake::client(&config, devices, &lgrs, 0);
    let mut server = Handshake::server(&config, devices, &lgrs, 0);
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
}

/// A whole handshake between two device lists: both outcomes and the bytes
/// the client wrote.
fn establish(
    client: &[&dyn ClcDevice],
    server: &[&dyn ClcDevice],
    lgrs: &LinkGroups<8>,
) -> (Established, Established, Vec<u8>) {
    let config = config();
    let mut p = pair(
        &config,
        &config,
        Devices::new(client),
        Devices::new(server),
        lgrs,
    );
    p.drive();
    let c = established(p.client.poll_outcome());
    let s = established(p.server.poll_outcome());
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
    let (c, s, client_wrote) = establish(&client_list, &server_list, &LinkGroups::new());
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
    assert_eq!((c.device, s.device), (1, 1));
    assert_eq!(c.chid, TwoHosts::ISM_CHID);
    assert_eq!(c.peer_gid, hosts.server_ism.gid());
    assert_eq!(s.peer_gid, hosts.client_ism.gid());
    assert!(matches!(c.mode, SendMode::Copy));
    assert!(matches!(s.mode, SendMode::Copy));
    assert_eq!(hosts.lo.live_dmbs(), 0);
}

#[test]
fn server_moves_on_when_a_device_cannot_take_a_dmb() {
    let mut hosts = TwoHosts::new();
    hosts.server_ism = hosts.server_ism.max_dmbs(0);
    let client_list: [&dyn ClcDevice; 2] = [&hosts.client_ism, &hosts.lo];
    let server_list: [&dyn ClcDevice; 2] = [&hosts.server_ism, &hosts.lo];
    let lgrs = LinkGroups::new();
    let (c, s, _) = establish(&client_list, &server_list, &lgrs);
    assert_eq!((s.chid, c.chid), (Chid::LOOPBACK, Chid::LOOPBACK));
    assert_eq!(s.device, 1);
    // The failed device's link group reference was given back.
    assert_eq!(hosts.server_ism.live_dmbs(), 0);
    assert_eq!(lgrs.len(), 3);
}

#[test]
fn dmb_size_steps_down_on_no_memory() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID).max_dmb_size(32 * 1024));
    let lgrs = LinkGroups::<8>::new();
    let config = config().with_dmb_size(256 * 1024);
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    let c = established(p.client.poll_outcome());
    let s = established(p.server.poll_outcome());
    assert_eq!(lo.registered_sizes(), [32 * 1024, 32 * 1024]);
    assert_eq!((c.peer_dmb_size, s.peer_dmb_size), (32 * 1024, 32 * 1024));
    assert_eq!(accept_confirm(p.server_wrote()).dmbe_size, 1);
}

#[test]
fn seid_is_negotiated_when_both_enable_the_same() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let seid = Eid::from_text("IBM-SYSZ-ISMSEID00000000ABCD1234").unwrap();
    let config = ClcConfig::new().with_seid(seid);
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    assert_eq!(established(p.client.poll_outcome()).eid, seid);
    assert_eq!(established(p.server.poll_outcome()).eid, seid);
}
