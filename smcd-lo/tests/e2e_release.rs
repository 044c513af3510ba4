//! End to end on the loopback device: every path by which a DMB can leave a
//! connection or a handshake gives it back. After each path the real
//! device holds no DMB and no nocopy mapping, and the host's link groups
//! count no connection: normal close (copy and nocopy), abort, dropping an
//! established endpoint, dropping an endpoint mid-handshake, a Decline after
//! resources were claimed (on either side), a first-contact mismatch
//! (SYNCERR, out of sync), a device failure mid-transfer, and a handshake
//! whose established resources nobody took.

mod e2e_util;

use std::sync::atomic::{AtomicU32, Ordering};

use e2e_util::{Lo, assert_all_given_back, config, fallback, loopback};
use smcd_core::clc::testing::Pair;
use smcd_core::clc::{CLC_WAIT_MS, DeclinedBy, Handshake, HandshakeError, Outcome};
use smcd_core::conn::{CloseState, ConnError, SendMode};
use smcd_core::endpoint::testing::{Fixture, close_both, drive, pair_on, transfer};
use smcd_core::endpoint::{EndpointError, Failure, Pipe};
use smcd_core::ops::ErrorKind;
use smcd_core::wire::clc::DeclineReason;
use smcd_lo::{FaultInjector, Op};

const DMB: usize = 16 * 1024;

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A loopback device in copy or nocopy mode.
fn device(seed: u64, nocopy: bool) -> Lo {
    let lo: Lo = loopback(seed);
    lo.set_nocopy(nocopy);
    lo
}

fn mode(nocopy: bool) -> SendMode {
    if nocopy {
        SendMode::NoCopy
    } else {
        SendMode::Copy
    }
}

// ----- normal close ------------------------------------------------------

fn normal_close(nocopy: bool) {
    let lo = device(1, nocopy);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    assert_eq!(client.connection().map(|c| c.mode()), Some(mode(nocopy)));
    let s = lo.stats();
    assert_eq!(
        (s.dmbs_in_use, s.attachments),
        (2, if nocopy { 2 } else { 0 })
    );
    assert_eq!(fx.host.groups().in_use(), 2);
    // Several laps of the 16 KiB rings each way; under Miri, which
    // interprets every byte copied, a lap and a bit.
    let data = payload(if cfg!(miri) { 20_000 } else { 60_000 }, 1);
    assert_eq!(transfer(&mut client, &mut server, &data, 5_000), data);
    assert_eq!(transfer(&mut server, &mut client, &data, 7_000), data);
    close_both(&mut client, &mut server);
    // Given back as soon as both are closed, before the endpoints go.
    assert_all_given_back(&lo, &fx.host);
    drop((client, server));
    assert_all_given_back(&lo, &fx.host);
    assert_eq!(lo.stats().dmbs_registered, 2);
}

#[test]
fn normal_close_in_copy_mode_gives_everything_back() {
    normal_close(false);
}

#[test]
fn normal_close_in_nocopy_mode_gives_everything_back() {
    normal_close(true);
}

#[test]
fn server_closing_first_gives_everything_back() {
    for nocopy in [false, true] {
        let lo = device(2, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let (mut client, mut server) = fx.pair();
        drive(&mut client, &mut server, 0);
        let data = payload(20_000, 2);
        assert_eq!(transfer(&mut client, &mut server, &data, 3_000), data);
        close_both(&mut server, &mut client);
        assert_all_given_back(&lo, &fx.host);
    }
}

// ----- abort -------------------------------------------------------------

#[test]
fn abort_gives_the_aborting_side_back_at_once_and_the_peer_on_close() {
    for nocopy in [false, true] {
        let lo = device(3, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let (mut client, mut server) = fx.pair();
        drive(&mut client, &mut server, 0);
        client.send(b"unread").unwrap();
        client.abort();
        assert!(client.is_closed() && client.connection().is_none());
        // The client's resources are back; its DMB lives on only while the
        // server maps it (nocopy).
        let s = lo.stats();
        assert_eq!(
            (s.dmbs_in_use, s.attachments),
            if nocopy { (2, 1) } else { (1, 0) }
        );
        assert_eq!(fx.host.groups().in_use(), 1);
        drive(&mut client, &mut server, 0);
        assert_eq!(
            server.recv(&mut [0u8; 8]),
            Err(EndpointError::Conn(ConnError::Reset))
        );
        assert_eq!(
            server.connection().unwrap().state(),
            CloseState::ProcessAbort
        );
        // The server's abort cannot reach the client's unregistered DMB;
        // the close completes anyway.
        let _ = server.close();
        assert!(server.is_closed());
        assert_all_given_back(&lo, &fx.host);
    }
}

#[test]
fn both_sides_aborting_give_everything_back() {
    for nocopy in [false, true] {
        let lo = device(4, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let (mut client, mut server) = fx.pair();
        drive(&mut client, &mut server, 0);
        server.abort();
        client.abort();
        assert!(client.is_closed() && server.is_closed());
        assert_all_given_back(&lo, &fx.host);
        drop((client, server));
        assert_all_given_back(&lo, &fx.host);
    }
}

// ----- dropping endpoints ------------------------------------------------

#[test]
fn dropping_established_endpoints_gives_everything_back() {
    for nocopy in [false, true] {
        let lo = device(5, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let (mut client, mut server) = fx.pair();
        drive(&mut client, &mut server, 0);
        client.send(b"in flight").unwrap();
        drop(server);
        assert_eq!(fx.host.groups().in_use(), 1);
        drop(client);
        assert_all_given_back(&lo, &fx.host);
    }
}

#[test]
fn dropping_the_client_after_its_proposal_leaves_the_server_to_give_back() {
    let lo = device(6, true);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap(); // Proposal
    // The client holds nothing before the Accept.
    assert_eq!(lo.stats().dmbs_registered, 0);
    drop(client);
    assert_all_given_back(&lo, &fx.host);
    server.poll(0).unwrap(); // Accept: the server registers its DMB
    assert_eq!(lo.stats().dmbs_in_use, 1);
    assert_eq!(fx.host.groups().in_use(), 1);
    assert_eq!(
        server.poll(CLC_WAIT_MS),
        Err(EndpointError::Failed(Failure::Handshake(
            HandshakeError::Timeout
        )))
    );
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn dropping_the_server_after_its_accept_gives_back_and_the_client_declines() {
    let lo = device(7, true);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap(); // Proposal
    server.poll(0).unwrap(); // Accept
    assert_eq!(lo.stats().dmbs_in_use, 1);
    drop(server); // mid-handshake: DMB and link group go back
    assert_all_given_back(&lo, &fx.host);
    // The client registers its DMB, cannot bind the Accept's (gone), declines.
    client.poll(0).unwrap();
    let f = fallback(client.transport());
    assert_eq!(
        (f.reason, f.declined_by),
        (DeclineReason::IntErr, DeclinedBy::Local)
    );
    assert_eq!(lo.stats().dmbs_registered, 2);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn dropping_both_mid_handshake_gives_everything_back() {
    let lo = device(8, true);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap();
    server.poll(0).unwrap();
    drop(client);
    drop(server);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn closing_mid_handshake_abandons_and_gives_back() {
    let lo = device(9, true);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap();
    server.poll(0).unwrap(); // the server holds its DMB
    server.close().unwrap();
    assert!(server.is_closed());
    assert_all_given_back(&lo, &fx.host);
    client.abort();
    assert!(client.is_closed());
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn established_handshakes_nobody_took_give_back_when_dropped() {
    for nocopy in [false, true] {
        let lo = device(10, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let mut p = Pair::new(
            Handshake::client(&fx.host, 0),
            Handshake::server(&fx.host, 0),
        );
        p.drive();
        assert!(matches!(
            p.client.poll_outcome(),
            Some(Outcome::Established(_))
        ));
        assert!(matches!(
            p.server.poll_outcome(),
            Some(Outcome::Established(_))
        ));
        let s = lo.stats();
        assert_eq!(
            (s.dmbs_in_use, s.attachments),
            (2, if nocopy { 2 } else { 0 })
        );
        assert_eq!(fx.host.groups().in_use(), 2);
        drop(p);
        assert_all_given_back(&lo, &fx.host);
    }
}

#[test]
fn a_taken_connection_goes_back_through_release() {
    let lo = device(11, true);
    let fx = Fixture::new(&lo, config(DMB));
    let mut p = Pair::new(
        Handshake::client(&fx.host, 0),
        Handshake::server(&fx.host, 0),
    );
    p.drive();
    let (conn, lgr) = p.client.take_established().unwrap().into_connection();
    assert!(p.client.take_established().is_none(), "taken once");
    drop(p); // the server's resources go back with its engine
    let s = lo.stats();
    assert_eq!((s.dmbs_in_use, s.attachments), (2, 1));
    assert_eq!(fx.host.groups().connections(lgr), Some(1));
    conn.release(&lo).unwrap();
    fx.host.groups().release(lgr);
    assert_all_given_back(&lo, &fx.host);
}

// ----- Decline after a claim -------------------------------------------------

#[test]
fn client_declining_after_the_server_registered_gives_both_back() {
    let lo = device(12, true);
    let dev = FaultInjector::new(&lo);
    let fx = Fixture::new(&dev, config(DMB));
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap(); // Proposal
    server.poll(0).unwrap(); // Accept: the server holds a DMB and a group
    assert_eq!(lo.stats().dmbs_in_use, 1);
    assert_eq!(fx.host.groups().in_use(), 1);
    dev.fail_register(ErrorKind::NoSpace, 1);
    drive(&mut client, &mut server, 0);
    let (c, s) = (fallback(client.transport()), fallback(server.transport()));
    assert_eq!(
        (c.reason, c.declined_by, s.declined_by),
        (DeclineReason::MaxDmb, DeclinedBy::Local, DeclinedBy::Peer)
    );
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn client_attach_failure_declines_and_gives_both_back() {
    let lo = device(13, true);
    // The device switches nocopy off just before the client's attach (the
    // first one of the handshake): the mapping the client asks for fails.
    let dev = FaultInjector::with_hook(&lo, |op| {
        if op == Op::AttachDmb {
            lo.set_nocopy(false);
        }
    });
    let fx = Fixture::new(&dev, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    let (c, s) = (fallback(client.transport()), fallback(server.transport()));
    assert_eq!(
        (c.reason, c.declined_by, s.declined_by),
        (DeclineReason::Mem, DeclinedBy::Local, DeclinedBy::Peer)
    );
    let calls = dev.calls();
    assert_eq!((calls.register_dmb, calls.attach_dmb), (2, 1));
    assert_eq!((calls.unregister_dmb, calls.detach_dmb), (2, 0));
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn server_attach_failure_after_the_client_established_gives_both_back() {
    let lo = device(14, true);
    // The second attach of the handshake is the server's (at the Confirm).
    let attaches = AtomicU32::new(0);
    let dev = FaultInjector::with_hook(&lo, |op| {
        if op == Op::AttachDmb && attaches.fetch_add(1, Ordering::Relaxed) == 1 {
            lo.set_nocopy(false);
        }
    });
    let fx = Fixture::new(&dev, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    // The client finished CLC with the Confirm; the server declines after it.
    assert!(client.transport().is_smcd());
    let s = fallback(server.transport());
    assert_eq!(
        (s.reason, s.declined_by),
        (DeclineReason::Mem, DeclinedBy::Local)
    );
    // Only the client's mapping of the server's DMB keeps that DMB.
    let st = lo.stats();
    assert_eq!((st.dmbs_in_use, st.attachments), (2, 1));
    assert_eq!(fx.host.groups().in_use(), 1);
    // The server goes away as TCP; the client sees the stream end and aborts.
    server.close().unwrap();
    drive(&mut client, &mut server, 0);
    assert_eq!(
        client.connection().unwrap().state(),
        CloseState::Closed,
        "aborted on the stream's end"
    );
    let _ = client.close();
    assert!(client.is_closed());
    assert_all_given_back(&lo, &fx.host);
}

// ----- first-contact mismatch -------------------------------------------------

#[test]
fn first_contact_mismatch_gives_back_and_the_out_of_sync_group_goes_with_its_last_connection() {
    let lo = device(15, true);
    let fx = Fixture::new(&lo, config(DMB)); // the server's host
    // A first connection, kept open: the server's group is in use.
    let old_client = fx.second_host();
    let pipe1 = Pipe::<1024>::new();
    let (mut c1, mut s1) = pair_on(&old_client, &fx.host, &pipe1);
    drive(&mut c1, &mut s1, 0);
    assert!(c1.transport().is_smcd() && s1.transport().is_smcd());

    // A client without that group: the server joins it (first contact 0),
    // the client cannot and declines SYNCERR, out of sync.
    let fresh = fx.second_host();
    let pipe2 = Pipe::<1024>::new();
    let (mut c2, mut s2) = pair_on(&fresh, &fx.host, &pipe2);
    drive(&mut c2, &mut s2, 0);
    let (c, s) = (fallback(c2.transport()), fallback(s2.transport()));
    assert_eq!(
        (c.reason, c.declined_by, s.declined_by),
        (DeclineReason::SyncErr, DeclinedBy::Local, DeclinedBy::Peer)
    );
    drop((c2, s2));
    // Only the first connection's resources are held.
    let st = lo.stats();
    assert_eq!((st.dmbs_in_use, st.attachments), (2, 2));
    assert_eq!((fresh.groups().in_use(), fresh.groups().len()), (0, 0));
    assert_eq!(fx.host.groups().in_use(), 1);

    // The first connection still works, and its end removes the group.
    let data = payload(30_000, 15);
    assert_eq!(transfer(&mut c1, &mut s1, &data, 4_000), data);
    close_both(&mut c1, &mut s1);
    assert_all_given_back(&lo, &fx.host);
    assert_all_given_back(&lo, &old_client);
    assert_eq!(fx.host.groups().len(), 0, "the out-of-sync group is gone");
    assert_eq!(old_client.groups().len(), 1, "the client's group idles");
}

#[test]
fn first_contact_mismatch_on_an_idle_group_gives_everything_back() {
    for nocopy in [false, true] {
        let lo = device(16, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let old_client = fx.second_host();
        let pipe = Pipe::<1024>::new();
        let (mut c, mut s) = pair_on(&old_client, &fx.host, &pipe);
        drive(&mut c, &mut s, 0);
        close_both(&mut c, &mut s);
        drop((c, s));
        let fresh = fx.second_host();
        let pipe = Pipe::<1024>::new();
        let (mut c, mut s) = pair_on(&fresh, &fx.host, &pipe);
        drive(&mut c, &mut s, 0);
        assert_eq!(fallback(c.transport()).reason, DeclineReason::SyncErr);
        assert_all_given_back(&lo, &fx.host);
        assert_all_given_back(&lo, &fresh);
        assert_eq!(fx.host.groups().len(), 0);
    }
}

// ----- device failure --------------------------------------------------------

fn device_failure_mid_transfer(nocopy: bool, failures: u32) {
    let lo = device(17, nocopy);
    let dev = FaultInjector::new(&lo);
    let fx = Fixture::new(&dev, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    let data = payload(40_000, 17);
    assert_eq!(transfer(&mut client, &mut server, &data, 6_000), data);
    dev.fail_move_data(ErrorKind::Other, failures);
    assert_eq!(
        client.send(&data[..1_000]),
        Err(EndpointError::Conn(ConnError::Device(ErrorKind::Other)))
    );
    let conn = client.connection().unwrap();
    assert_eq!(
        (conn.state(), conn.error()),
        (
            CloseState::Closed,
            Some(ConnError::Device(ErrorKind::Other))
        )
    );
    // Nothing is given back before the application lets go.
    assert_eq!(lo.stats().dmbs_in_use, 2);
    drop(client);
    assert_eq!(fx.host.groups().in_use(), 1);
    drop(server);
    assert_all_given_back(&lo, &fx.host);
    assert!(dev.calls().injected_failures >= 1);
}

#[test]
fn device_failure_mid_transfer_then_drop_gives_back_in_copy_mode() {
    device_failure_mid_transfer(false, 1);
}

#[test]
fn device_failure_mid_transfer_then_drop_gives_back_in_nocopy_mode() {
    device_failure_mid_transfer(true, 1);
}

#[test]
fn a_device_that_keeps_failing_still_takes_everything_back() {
    // Every later move fails too: neither side's abort header gets through.
    device_failure_mid_transfer(false, u32::MAX);
    device_failure_mid_transfer(true, u32::MAX);
}

#[test]
fn device_failure_then_close_gives_back_on_both_sides() {
    for nocopy in [false, true] {
        let lo = device(18, nocopy);
        let dev = FaultInjector::new(&lo);
        let fx = Fixture::new(&dev, config(DMB));
        let (mut client, mut server) = fx.pair();
        drive(&mut client, &mut server, 0);
        dev.fail_move_data(ErrorKind::PeerGone, 1);
        assert!(server.send(b"lost").is_err());
        // The failed side closes at once; the client learns from the stream.
        let _ = server.close();
        assert!(server.is_closed());
        drive(&mut client, &mut server, 0);
        assert_eq!(client.connection().unwrap().state(), CloseState::Closed);
        let _ = client.close();
        assert!(client.is_closed());
        assert_all_given_back(&lo, &fx.host);
    }
}

#[test]
fn a_full_ring_is_would_block_not_a_failure() {
    let lo = device(19, false);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    let data = payload(DMB, 19);
    let sent = client.send(&data).unwrap();
    assert_eq!(sent, DMB - 32, "exactly the peer's ring");
    assert_eq!(client.send(&data), Err(EndpointError::WouldBlock));
    assert_eq!(client.connection().unwrap().error(), None);
    drop((client, server));
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn repeated_connections_reuse_the_same_memory() {
    // A small arena: leaks would exhaust it within a few rounds.
    for nocopy in [false, true] {
        let region = Box::leak(vec![0u8; 2 * DMB + 8].into_boxed_slice());
        let lo: Lo = smcd_lo::LoopbackDevice::new(
            smcd_lo::StaticArena::new(region),
            <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(20),
            smcd_lo::NoDoorbell,
        );
        lo.set_nocopy(nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        // Under Miri, which interprets every handshake, each of the four
        // endings twice: still far past the two rounds a leak would last.
        let rounds: u8 = if cfg!(miri) { 8 } else { 20 };
        for round in 0..rounds {
            let pipe = Pipe::<1024>::new();
            let (mut c, mut s) = pair_on(&fx.host, &fx.host, &pipe);
            drive(&mut c, &mut s, 0);
            assert!(c.transport().is_smcd(), "round {round}");
            match round % 4 {
                0 => close_both(&mut c, &mut s),
                1 => c.abort(),
                2 => drop(s),
                _ => {
                    let _ = s.close();
                }
            }
        }
        assert_all_given_back(&lo, &fx.host);
        assert_eq!(lo.stats().dmbs_registered, 2 * u64::from(rounds));
        assert_eq!(lo.stats().dmbs_peak, 2);
    }
}
