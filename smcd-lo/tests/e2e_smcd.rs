//! End to end on the loopback device: two endpoints in one process, CLC over
//! an in-memory pipe, SMC-D established, data both ways with ring
//! wrap-around in copy and nocopy mode, the close state machine to `Closed`
//! on both sides, and every DMB given back to the device.

mod e2e_util;

use e2e_util::{DMB, Lo, assert_all_given_back, config, loopback};
use smcd_core::clc::{Role, SmcdInfo};
use smcd_core::conn::{CloseState, ConnError, SendMode};
use smcd_core::dmb::Chid;
use smcd_core::endpoint::testing::{Fixture, close_both, drive, pair_on, transfer};
use smcd_core::endpoint::{ByteStream, Endpoint, EndpointError, HostRef, Pipe, Transport};
use smcd_core::ops::{ErrorKind, SmcdOps};
use smcd_core::stats::DeviceStats;
use smcd_lo::FaultInjector;

fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn smcd(t: Transport) -> SmcdInfo {
    match t {
        Transport::SmcD(e) => e,
        other => panic!("expected SMC-D, got {other:?}"),
    }
}

fn state<H: HostRef, S: ByteStream>(ep: &Endpoint<H, S>) -> CloseState {
    ep.connection().unwrap().state()
}

/// The whole life of one connection on `dev`: handshake, data both ways
/// (several ring laps), close. `stats` reads the device's counters.
fn connection_lifecycle<D: SmcdOps + Sync>(dev: &D, stats: impl Fn() -> DeviceStats, nocopy: bool) {
    let fx = Fixture::new(dev, config(DMB));
    let (mut client, mut server) = fx.pair();
    assert_eq!(drive(&mut client, &mut server, 5), (None, None));

    let (c, s) = (smcd(client.transport()), smcd(server.transport()));
    assert_eq!((c.role, s.role), (Role::Client, Role::Server));
    let mode = if nocopy {
        SendMode::NoCopy
    } else {
        SendMode::Copy
    };
    for e in [&c, &s] {
        assert_eq!((e.version, e.release, e.chid), (2, 1, Chid::LOOPBACK));
        assert_eq!(e.mode, mode);
        assert!(e.first_contact);
        assert_eq!(e.eid.trimmed(), b"SMCD-E2E");
        assert_eq!((e.own_dmb_size, e.peer_dmb_size), (DMB, DMB));
        assert_eq!(e.peer_gid, dev.local_gid());
    }
    let (cc, sc) = (client.connection().unwrap(), server.connection().unwrap());
    assert_eq!((cc.mode(), sc.mode()), (mode, mode));
    assert_eq!((cc.own_dmb_len(), cc.peer_dmb_len()), (DMB, DMB));
    assert_eq!(
        (cc.peer_token(), sc.peer_token()),
        (sc.own_token(), cc.own_token())
    );
    assert_ne!(cc.own_token(), sc.own_token());
    // On first contact each side creates its own group (one table here).
    assert_ne!(c.link_id, s.link_id);
    assert_eq!(fx.host.groups().in_use(), 2);
    assert_eq!(stats().dmbs_in_use, 2);
    // Nocopy: each side maps the other's DMB; copy: nothing is mapped.
    assert_eq!(stats().attachments, if nocopy { 2 } else { 0 });

    // Many ring laps each way, in odd chunk sizes.
    let up = payload(300_000, 1);
    assert_eq!(transfer(&mut client, &mut server, &up, 4_099), up);
    let down = payload(123_457, 2);
    assert_eq!(transfer(&mut server, &mut client, &down, 10_007), down);
    // Both ways at once, more than a ring each, without draining in between.
    let (x, y) = (payload(40_000, 3), payload(40_000, 4));
    let (mut xs, mut ys, mut xr, mut yr) = (0, 0, Vec::new(), Vec::new());
    let mut buf = [0u8; 3_000];
    while xr.len() < x.len() || yr.len() < y.len() {
        if let Ok(n) = client.send(&x[xs..]) {
            xs += n;
        }
        if let Ok(n) = server.send(&y[ys..]) {
            ys += n;
        }
        drive(&mut client, &mut server, 5);
        if let Ok(n) = server.recv(&mut buf) {
            xr.extend_from_slice(&buf[..n]);
        }
        if let Ok(n) = client.recv(&mut buf) {
            yr.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!((xr, yr), (x, y));
    let cs = client.connection().unwrap().stats();
    assert_eq!(cs.bytes_sent, 340_000);
    assert_eq!(cs.bytes_received, 163_457);
    assert!(cs.buffer_full > 0 && cs.window_updates_received > 0);

    // Close (docs/protocol/close.md §5, "both close"): the client first.
    client.close().unwrap();
    drive(&mut client, &mut server, 5);
    assert_eq!(state(&client), CloseState::PeerCloseWait1);
    assert_eq!(state(&server), CloseState::AppCloseWait1);
    assert_eq!(server.recv(&mut buf), Ok(0), "EOF");
    assert_eq!(
        server.send(b"late"),
        Err(EndpointError::Conn(ConnError::PeerClosed))
    );
    server.close().unwrap();
    assert!(server.is_closed(), "the server is Closed at once");
    drive(&mut client, &mut server, 5);
    assert!(client.is_closed());
    assert_eq!(stats().dmbs_in_use, 0, "every DMB given back");
    assert_eq!(stats().attachments, 0, "every mapping detached");
    assert_eq!(fx.host.groups().in_use(), 0);
    assert_eq!(
        fx.host.groups().len(),
        2,
        "the idle link groups stay for reuse"
    );
}

#[test]
fn copy_mode_lifecycle() {
    let lo = loopback::<64>(1);
    lo.set_nocopy(false);
    connection_lifecycle(&lo, || lo.stats(), false);
}

#[test]
fn copy_mode_lifecycle_through_a_fault_injector() {
    // A device wrapper that passes everything on sees the same connection.
    let lo = loopback::<64>(9);
    lo.set_nocopy(false);
    let dev = FaultInjector::new(&lo);
    connection_lifecycle(&dev, || lo.stats(), false);
    let c = dev.calls();
    assert_eq!((c.register_dmb, c.unregister_dmb), (2, 2));
    assert_eq!((c.attach_dmb, c.detach_dmb), (2, 2));
}

#[test]
fn nocopy_mode_lifecycle() {
    let lo = loopback::<64>(2);
    connection_lifecycle(&lo, || lo.stats(), true);
}

#[test]
fn switching_nocopy_off_affects_only_later_connections() {
    let lo: Lo = loopback(10);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut c1, mut s1) = fx.pair();
    drive(&mut c1, &mut s1, 0);
    assert_eq!(smcd(c1.transport()).mode, SendMode::NoCopy);
    lo.set_nocopy(false);
    assert!(!lo.supports_nocopy());
    let pipe = Pipe::<1024>::new();
    let (mut c2, mut s2) = pair_on(&fx.host, &fx.host, &pipe);
    drive(&mut c2, &mut s2, 0);
    assert_eq!(smcd(c2.transport()).mode, SendMode::Copy);
    assert_eq!(smcd(s2.transport()).mode, SendMode::Copy);
    assert_eq!(c1.connection().unwrap().mode(), SendMode::NoCopy);
    assert_eq!(lo.stats().attachments, 2, "only the first pair maps");
    // Both keep working in their own modes.
    let data = payload(50_000, 11);
    assert_eq!(transfer(&mut c1, &mut s1, &data, 8_000), data);
    assert_eq!(transfer(&mut s2, &mut c2, &data, 8_000), data);
    close_both(&mut c1, &mut s1);
    close_both(&mut s2, &mut c2);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn later_connections_join_the_link_group() {
    let lo: Lo = loopback(3);
    let fx = Fixture::new(&lo, config(DMB));
    let mut server_group = None;
    for round in 0..3 {
        let pipe = Pipe::<1024>::new();
        let (mut client, mut server) = pair_on(&fx.host, &fx.host, &pipe);
        drive(&mut client, &mut server, 0);
        let (c, s) = (smcd(client.transport()), smcd(server.transport()));
        assert_eq!((c.first_contact, s.first_contact), (round == 0, round == 0));
        // Later connections, either role, join the group the first server
        // created (docs/protocol/handshake.md §5, one lgr for both ends).
        let id = *server_group.get_or_insert(s.link_id);
        assert_eq!(s.link_id, id);
        if round > 0 {
            assert_eq!(c.link_id, id);
        }
        let data = payload(20_000, round);
        assert_eq!(transfer(&mut client, &mut server, &data, 7_000), data);
        close_both(&mut server, &mut client);
        assert_eq!(lo.stats().dmbs_in_use, 0);
        assert_all_given_back(&lo, &fx.host);
    }
    assert_eq!(lo.stats().dmbs_registered, 6);
}

#[test]
fn clc_in_seven_byte_pieces_still_establishes() {
    let lo: Lo = loopback(4);
    let fx = Fixture::new(&lo, config(DMB));
    let pipe = Pipe::<7>::new(); // every CLC message crosses in 7-byte pieces
    let (a, b) = pipe.ends();
    let mut client = Endpoint::client(&fx.host, a, 0);
    let mut server = Endpoint::server(&fx.host, b, 0);
    assert_eq!(drive(&mut client, &mut server, 0), (None, None));
    assert!(client.transport().is_smcd() && server.transport().is_smcd());
    let data = payload(50_000, 5);
    assert_eq!(transfer(&mut server, &mut client, &data, 50_000), data);
    close_both(&mut client, &mut server);
    assert_eq!(lo.stats().dmbs_in_use, 0);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn lost_doorbells_do_not_lose_data() {
    // Endpoints read the header on every poll: a dropped signal loses nothing.
    let lo = FaultInjector::new(loopback::<64>(6));
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    lo.drop_signals(u32::MAX);
    let data = payload(100_000, 7);
    assert_eq!(transfer(&mut client, &mut server, &data, 9_000), data);
    assert!(lo.calls().dropped_signals > 10);
    close_both(&mut client, &mut server);
    assert_eq!(lo.inner().stats().dmbs_in_use, 0);
    assert_all_given_back(lo.inner(), &fx.host);
}

#[test]
fn a_killed_peer_is_seen_as_reset_and_everything_goes_back() {
    let lo: Lo = loopback(8);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    client.send(b"unread").unwrap();
    drop(client); // the process dies: abort, DMB back, stream silent
    // The client's DMB lives on while the server has it attached (nocopy).
    assert_eq!(lo.stats().dmbs_in_use, 2);
    assert_eq!(lo.stats().attachments, 1, "the client's mapping went back");
    assert_eq!(fx.host.groups().in_use(), 1);
    server.poll(0).unwrap();
    assert_eq!(
        server.recv(&mut [0u8; 8]),
        Err(EndpointError::Conn(ConnError::Reset))
    );
    assert_eq!(state(&server), CloseState::ProcessAbort);
    // Our abort flag cannot reach a dead peer (Linux: EPIPE); the
    // connection is closed and given back all the same.
    assert_eq!(
        server.close(),
        Err(EndpointError::Conn(ConnError::Device(ErrorKind::PeerGone)))
    );
    assert!(server.is_closed());
    assert_eq!(lo.stats().dmbs_in_use, 0);
    assert_all_given_back(&lo, &fx.host);
}
