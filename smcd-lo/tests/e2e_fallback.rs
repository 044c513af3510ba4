//! End to end on the loopback device: every SMC-D fallback between two
//! in-process endpoints (or an endpoint and a Linux-like peer speaking raw
//! bytes) ends in a Decline with the Linux reason code, and the application
//! data then flows over the same pipe in both directions. Nothing stays
//! registered on the device.

mod e2e_util;

use e2e_util::{
    DMB, Lo, assert_all_given_back, assert_both_fell_back, config, decline_in, fallback, loopback,
    read_all, vector,
};
use smcd_core::clc::{ClcConfig, DeclinedBy};
use smcd_core::endpoint::testing::{Fixture, close_both, drive, pair_on, transfer};
use smcd_core::endpoint::{ByteStream, Endpoint, HostRef, Pipe};
use smcd_core::ops::{ErrorKind, SmcdOps};
use smcd_core::wire::clc::{DeclineReason, ProposalRepr, SmcType};
use smcd_lo::FaultInjector;

/// Application data both ways over the fallen-back endpoints.
fn data_flows<A: HostRef, B: HostRef, S: ByteStream, T: ByteStream>(
    client: &mut Endpoint<A, S>,
    server: &mut Endpoint<B, T>,
) {
    let up: Vec<u8> = (0..5_000u32).map(|i| i as u8).collect();
    assert_eq!(transfer(client, server, &up, 333), up);
    let down: Vec<u8> = (0..3_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(transfer(server, client, &down, 1_000), down);
    close_both(client, server);
}

#[test]
fn without_any_ueid_the_server_declines_noueid() {
    let lo: Lo = loopback(1);
    // Linux on x86/arm64 without a UEID.
    let fx = Fixture::new(&lo, ClcConfig::empty());
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    assert_both_fell_back(
        client.transport(),
        server.transport(),
        DeclineReason::NoUeid,
        true,
    );
    assert_eq!(DeclineReason::NoUeid.code(), 0x0303_0008);
    data_flows(&mut client, &mut server);
    assert_eq!(lo.stats().dmbs_registered, 0);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn server_at_its_dmb_limit_declines_max_dmb() {
    let lo: Lo<1> = loopback(2);
    let held = lo.register_dmb(DMB).unwrap(); // the device is full
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    assert_both_fell_back(
        client.transport(),
        server.transport(),
        DeclineReason::MaxDmb,
        true,
    );
    assert_eq!(DeclineReason::MaxDmb.code(), 0x030d_0000);
    assert_eq!(lo.stats().register_failures, 1);
    data_flows(&mut client, &mut server);
    assert_eq!(fx.host.groups().in_use(), 0);
    lo.unregister_dmb(held).unwrap();
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn client_hitting_the_dmb_limit_declines_max_dmb_and_the_server_gives_back() {
    let lo = FaultInjector::new(loopback::<64>(3));
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap(); // Proposal
    server.poll(0).unwrap(); // Accept: the server holds a DMB
    assert_eq!(lo.inner().stats().dmbs_in_use, 1);
    lo.fail_register(ErrorKind::NoSpace, 1);
    drive(&mut client, &mut server, 0);
    assert_both_fell_back(
        client.transport(),
        server.transport(),
        DeclineReason::MaxDmb,
        false,
    );
    assert_eq!(lo.inner().stats().dmbs_in_use, 0);
    data_flows(&mut client, &mut server);
    assert_all_given_back(lo.inner(), &fx.host);
}

#[test]
fn first_contact_mismatch_declines_syncerr() {
    let lo: Lo = loopback(4);
    let fx = Fixture::new(&lo, config(DMB)); // the server's host

    // A first connection leaves a link group in the server's table.
    let old_client = fx.second_host();
    let pipe = Pipe::<1024>::new();
    let (mut c, mut s) = pair_on(&old_client, &fx.host, &pipe);
    drive(&mut c, &mut s, 0);
    assert!(c.transport().is_smcd() && s.transport().is_smcd());
    close_both(&mut c, &mut s);
    drop((c, s));

    // A client that lost its groups: the server joins its group (first
    // contact 0), the client has none and declines SYNCERR, out of sync.
    let fresh = fx.second_host();
    let pipe = Pipe::<1024>::new();
    let (mut c, mut s) = pair_on(&fresh, &fx.host, &pipe);
    drive(&mut c, &mut s, 0);
    assert_both_fell_back(c.transport(), s.transport(), DeclineReason::SyncErr, false);
    data_flows(&mut c, &mut s);
    drop((c, s));
    // The Decline was marked out of sync: the server dropped its group.
    assert_eq!(fx.host.groups().len(), 0, "the out-of-sync group is gone");
    assert_eq!(fresh.groups().len(), 0, "the client created none");
    assert_all_given_back(&lo, &fx.host);

    // Both sides start over with a first contact.
    let pipe = Pipe::<1024>::new();
    let (mut c, mut s) = pair_on(&fresh, &fx.host, &pipe);
    drive(&mut c, &mut s, 0);
    assert!(c.transport().is_smcd() && s.transport().is_smcd());
    close_both(&mut c, &mut s);
    drop((c, s));
    assert_all_given_back(&lo, &fx.host);
    assert_all_given_back(&lo, &fresh);
    assert_eq!(old_client.groups().in_use(), 0);
}

/// A Linux-like client writes `proposal` and then application data; the
/// server endpoint declines with `reason` in a Decline of `version`, and
/// the data flows both ways.
fn raw_client_is_declined(proposal: &[u8], reason: DeclineReason, version: u8) {
    let lo: Lo = loopback(5);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut raw, b) = fx.pipe.ends();
    let mut server = Endpoint::server(&fx.host, b, 0);
    raw.write(proposal).unwrap();
    raw.write(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    server.poll(0).unwrap();
    let f = fallback(server.transport());
    assert_eq!((f.reason, f.declined_by), (reason, DeclinedBy::Local));
    let mut buf = [0u8; 64];
    assert_eq!(server.recv(&mut buf), Ok(18));
    assert_eq!(&buf[..18], b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(server.send(b"HTTP/1.0 200 OK\r\n"), Ok(17));
    server.close().unwrap();
    let answer = read_all(&mut raw);
    let (decline, rest) = decline_in(&answer);
    assert_eq!((decline.peer_diagnosis, decline.version), (reason, version));
    assert!(!decline.out_of_sync);
    assert_eq!(rest, b"HTTP/1.0 200 OK\r\n");
    assert_eq!(lo.stats().dmbs_registered, 0);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn peer_offering_only_smcd_v1_is_declined_nosmcddev_v1() {
    raw_client_is_declined(
        &vector("clc-proposal-v1-smcd.hex"),
        DeclineReason::NoSmcdDev,
        1,
    );
}

#[test]
fn peer_offering_only_smcr_is_declined_nosmcddev() {
    // Vector B as a host with RoCE but no ISM would send it: SMC-R v1 only.
    let mut p = ProposalRepr::parse(&vector("clc-proposal-v2-loopback.hex")).unwrap();
    p.typev1 = SmcType::R;
    p.typev2 = SmcType::N;
    p.ip_prefix = Some(smcd_core::wire::clc::IpPrefix {
        outgoing_subnet: std::net::Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 8,
        ipv6_prefixes: heapless::Vec::new(),
    });
    p.v2_ext = None;
    p.smcd_v2_ext = None;
    p.set_canonical_offsets();
    let mut bytes = vec![0u8; p.buffer_len()];
    p.emit(&mut bytes).unwrap();
    raw_client_is_declined(&bytes, DeclineReason::NoSmcdDev, 2);
}

#[test]
fn peer_without_eid_is_declined_noueid() {
    raw_client_is_declined(
        &vector("declined-proposal-no-eid.hex"),
        DeclineReason::NoUeid,
        2,
    );
}
