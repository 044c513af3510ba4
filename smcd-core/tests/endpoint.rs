//! Endpoints end to end over a data-capable fake device: handshake, SMC-D
//! data both ways with ring wrap-around in copy and nocopy mode, the close
//! state machine to `Closed` with every resource given back, the peer going
//! away, and the endpoint mechanics of fallback and failure.

mod conn_util;

use conn_util::FakeDev;
use smcd_core::clc::testing::FakeDevice;
use smcd_core::clc::{ClcConfig, DeclinedBy, HandshakeError};
use smcd_core::conn::{CloseState, ConnError, SendMode};
use smcd_core::dmb::Gid;
use smcd_core::endpoint::testing::{Fixture, close_both, drive, transfer};
use smcd_core::endpoint::{
    ByteStream, Endpoint, EndpointError, Failure, Host, Pipe, Transport, pair,
};
use smcd_core::wire::clc::{ClcMessage, DeclineReason};

fn config() -> ClcConfig {
    ClcConfig::empty()
        .with_ueid("SMCD-TEST")
        .unwrap()
        .with_dmb_size(16 * 1024)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8 ^ seed).collect()
}

#[test]
fn smcd_moves_data_both_ways_with_wrap_and_closes_cleanly() {
    for nocopy in [false, true] {
        let dev = FakeDev::new(nocopy);
        let fx = Fixture::new(&dev, config());
        let (a, b) = fx.pipe.ends();
        let (mut client, mut server) = fx.pair();
        assert_eq!(drive(&mut client, &mut server, 1), (None, None));

        let (Transport::SmcD(ce), Transport::SmcD(se)) = (client.transport(), server.transport())
        else {
            panic!("not SMC-D: {:?}", client.transport());
        };
        let mode = if nocopy {
            SendMode::NoCopy
        } else {
            SendMode::Copy
        };
        assert_eq!((ce.mode, se.mode), (mode, mode));
        let (cc, sc) = (client.connection().unwrap(), server.connection().unwrap());
        assert_eq!((cc.mode(), sc.mode()), (mode, mode));
        assert_eq!(
            (cc.peer_token(), sc.peer_token()),
            (sc.own_token(), cc.own_token())
        );
        assert_eq!((ce.own_dmb_size, ce.peer_dmb_size), (16 * 1024, 16 * 1024));
        assert_eq!(cc.own_dmb_len(), 16 * 1024);
        let tokens = [cc.own_token(), sc.own_token()];
        // Nothing but CLC went over the pipe, and all of it was read.
        assert_eq!((a.unread(), b.unread()), (0, 0));

        // Several ring laps each way (ring = 16 KiB - 32); under Miri, which
        // interprets every byte copied, two and a bit.
        let (up_len, down_len) = if cfg!(miri) {
            (40_000, 35_001)
        } else {
            (100_000, 70_001)
        };
        let up = data(up_len, 0x5a);
        assert_eq!(transfer(&mut client, &mut server, &up, 5_000), up);
        let down = data(down_len, 0xa5);
        assert_eq!(transfer(&mut server, &mut client, &down, 7_777), down);
        assert_eq!(
            client.connection().unwrap().stats().bytes_sent,
            up.len() as u64
        );

        close_both(&mut client, &mut server);
        for t in tokens {
            assert!(!dev.is_registered(t), "DMB still registered");
            assert_eq!(dev.attach_count(t), 0, "DMB still attached");
        }
        assert_eq!(dev.registered(), 0);
        assert_eq!(fx.host.groups().in_use(), 0);
        // The transport still tells what the connection was.
        assert!(client.transport().is_smcd());
        assert!(client.connection().is_none(), "resources given back");
        assert!(matches!(client.send(b"x"), Err(EndpointError::Closed)));
    }
}

#[test]
fn peer_stream_eof_without_close_flag_aborts_the_connection() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (mut a, _) = fx.pipe.ends();
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    assert!(server.transport().is_smcd());

    // The client's TCP connection ends, its SMC-D connection says nothing.
    a.shutdown().unwrap();
    assert_eq!(server.poll(1), Ok(true));
    let conn = server.connection().unwrap();
    assert_eq!(conn.error(), Some(ConnError::Aborted));
    assert_eq!(conn.state(), CloseState::Closed);
    assert_eq!(
        server.recv(&mut [0u8; 4]),
        Err(EndpointError::Conn(ConnError::Aborted))
    );
    // The client sees our abort flag.
    client.poll(1).unwrap();
    assert_eq!(client.connection().unwrap().error(), Some(ConnError::Reset));
    let server_dmb = server.connection().unwrap().own_token();
    server.close().unwrap();
    assert!(server.is_closed());
    assert!(!dev.is_registered(server_dmb));
}

/// A peer that wrote and then died (its TCP stream ends, no close flag):
/// what it had announced is still delivered, in order, and the abort comes
/// after it — as TCP delivers what a dead peer sent before its end.
#[test]
fn bytes_a_peer_sent_before_it_died_are_delivered_before_the_abort() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (mut a, _) = fx.pipe.ends();
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    assert!(server.transport().is_smcd());

    client.send(b"last words").unwrap();
    // The header is taken in while the peer lives, the bytes stay unread.
    assert_eq!(server.poll_shared(), Ok(true));
    a.shutdown().unwrap();
    assert_eq!(server.poll(1), Ok(true));
    assert_eq!(
        server.connection().unwrap().error(),
        Some(ConnError::Aborted)
    );
    assert!(server.connection().unwrap().readable());
    let mut buf = [0u8; 4];
    let mut got = Vec::new();
    loop {
        match server.recv(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_eq!(e, EndpointError::Conn(ConnError::Aborted));
                break;
            }
        }
        assert!(got.len() <= 10, "more bytes than were sent");
    }
    assert_eq!(got, b"last words");
    let server_dmb = server.connection().unwrap().own_token();
    server.close().unwrap();
    assert!(server.is_closed());
    assert!(!dev.is_registered(server_dmb));
}

#[test]
fn poll_shared_takes_in_the_peer_header_but_leaves_the_stream_alone() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (mut a, _) = fx.pipe.ends();
    let (mut client, mut server) = fx.pair();
    // Outside SMC-D there is nothing to take in.
    assert_eq!(server.poll_shared(), Ok(false));
    drive(&mut client, &mut server, 0);
    assert!(server.transport().is_smcd());

    assert_eq!(server.poll_shared(), Ok(false));
    client.send(b"news").unwrap();
    assert_eq!(server.poll_shared(), Ok(true));
    let mut buf = [0u8; 8];
    assert_eq!(server.recv(&mut buf), Ok(4));

    // The client's TCP connection ends: only `poll` looks at the stream.
    a.shutdown().unwrap();
    assert_eq!(server.poll_shared(), Ok(false));
    assert_eq!(server.connection().unwrap().error(), None);
    assert_eq!(server.poll(1), Ok(true));
    assert_eq!(
        server.connection().unwrap().error(),
        Some(ConnError::Aborted)
    );
}

#[test]
fn peer_shutdown_then_eof_is_an_orderly_end() {
    let dev = FakeDev::new(false);
    let fx = Fixture::new(&dev, config());
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);

    client.send(b"last words").unwrap();
    client.shutdown_write().unwrap();
    drive(&mut client, &mut server, 0);
    let mut buf = [0u8; 32];
    assert_eq!(server.recv(&mut buf), Ok(10));
    assert_eq!(server.recv(&mut buf), Ok(0));
    assert_eq!(server.connection().unwrap().error(), None);
    // The server may still answer.
    assert_eq!(server.send(b"ack"), Ok(3));
    drive(&mut client, &mut server, 0);
    assert_eq!(client.recv(&mut buf), Ok(3));
    close_both(&mut server, &mut client);
}

#[test]
fn dropping_an_open_endpoint_aborts_and_gives_everything_back() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    let token = client.connection().unwrap().own_token();
    drop(client);
    assert!(!dev.is_registered(token));
    assert_eq!(
        fx.host.groups().in_use(),
        1,
        "the server still holds its reference"
    );
    server.poll(0).unwrap();
    assert_eq!(server.connection().unwrap().error(), Some(ConnError::Reset));
    drop(server);
    assert_eq!(fx.host.groups().in_use(), 0);
}

#[test]
fn bytes_right_behind_the_decline_reach_the_application() {
    let lo = FakeDevice::loopback(Gid::new(1, 2)).max_dmbs(0);
    let fx = Fixture::new(&lo, config());
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap(); // Proposal
    server.poll(0).unwrap(); // Decline MAX_DMB
    let Transport::Tcp(f) = server.transport() else {
        panic!("{:?}", server.transport())
    };
    assert_eq!(
        (f.reason, f.declined_by),
        (DeclineReason::MaxDmb, DeclinedBy::Local)
    );
    assert_eq!(f.reason.code(), 0x030d_0000);
    // The server's first bytes travel in the same read as its Decline.
    assert_eq!(server.send(b"hello"), Ok(5));
    client.poll(0).unwrap();
    let Transport::Tcp(f) = client.transport() else {
        panic!("{:?}", client.transport())
    };
    assert_eq!(f.declined_by, DeclinedBy::Peer);
    let mut buf = [0u8; 16];
    assert_eq!(client.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(client.recv(&mut buf), Err(EndpointError::WouldBlock));
    assert_eq!(lo.live_dmbs(), 0);
    assert_eq!(fx.host.groups().in_use(), 0);
}

#[test]
fn a_decline_waiting_for_room_goes_before_application_data() {
    let lo = FakeDevice::loopback(Gid::new(1, 2));
    let fx = Fixture::new(&lo, ClcConfig::empty()); // no UEID: NOUEID
    let (mut client, mut server) = fx.pair();
    let (mut raw, mut s_view) = fx.pipe.ends();
    client.poll(0).unwrap();
    // Fill the server → client direction so the Decline cannot go out yet.
    let mut filler = [0u8; 1024];
    assert_eq!(s_view.write(&filler[..1000]), Ok(1000));
    server.poll(0).unwrap();
    assert!(server.has_pending_output());
    assert!(matches!(server.transport(), Transport::Tcp(_)));
    assert_eq!(server.send(b"data"), Err(EndpointError::WouldBlock));
    // Drain the filler as the client's reader would.
    assert_eq!(raw.read(&mut filler[..1000]), Ok(1000));
    assert_eq!(server.send(b"data"), Ok(4));
    assert!(!server.has_pending_output());
    client.poll(0).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(client.recv(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"data");
}

#[test]
fn hard_errors_shut_the_stream_without_a_decline() {
    let lo = FakeDevice::loopback(Gid::new(1, 2));
    let fx = Fixture::new(&lo, config());
    let host = &fx.host;

    // Malformed: a Proposal-type header with a bad eyecatcher.
    let pipe = Pipe::<1024>::new();
    let (mut raw, b) = pipe.ends();
    let mut server = Endpoint::server(host, b, 0);
    let mut junk = [0u8; 64];
    junk[4] = 1; // type Proposal
    junk[5..7].copy_from_slice(&64u16.to_be_bytes());
    junk[7] = 0x20;
    raw.write(&junk).unwrap();
    let err = server.poll(0).unwrap_err();
    assert!(
        matches!(
            err,
            EndpointError::Failed(Failure::Handshake(HandshakeError::Protocol(_)))
        ),
        "{err:?}"
    );
    let mut buf = [0u8; 8];
    assert_eq!(raw.read(&mut buf), Ok(0), "no Decline, just EOF");
    assert_eq!(server.recv(&mut buf), Err(err));

    // Timeout: nobody speaks.
    let pipe = Pipe::<1024>::new();
    let (mut raw, b) = pipe.ends();
    let mut server = Endpoint::server(host, b, 100);
    assert_eq!(server.poll_timeout(), Some(6_100));
    assert_eq!(server.poll(6_099), Ok(false));
    assert_eq!(
        server.poll(6_100),
        Err(EndpointError::Failed(Failure::Handshake(
            HandshakeError::Timeout
        )))
    );
    assert_eq!(raw.read(&mut buf), Ok(0));

    // The stream ends during the handshake.
    let pipe = Pipe::<1024>::new();
    let (a, mut raw) = pipe.ends();
    let mut client = Endpoint::client(host, a, 0);
    client.poll(0).unwrap();
    raw.shutdown().unwrap();
    assert_eq!(
        client.poll(1),
        Err(EndpointError::Failed(Failure::StreamClosed))
    );
    assert_eq!(lo.live_dmbs(), 0);
    assert_eq!(fx.host.groups().in_use(), 0);
    let proposal = {
        let mut v = vec![0u8; 1024];
        let n = raw.read(&mut v).unwrap();
        v.truncate(n);
        v
    };
    assert!(matches!(
        ClcMessage::parse(&proposal),
        Ok(ClcMessage::Proposal(_))
    ));
}

#[test]
fn closing_during_the_handshake_gives_everything_back() {
    let lo = FakeDevice::loopback(Gid::new(1, 2));
    let fx = Fixture::new(&lo, config());
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap();
    server.poll(0).unwrap(); // Accept sent: the server holds a DMB and a group
    assert_eq!(lo.live_dmbs(), 1);
    server.close().unwrap();
    assert!(server.is_closed());
    assert!(matches!(server.transport(), Transport::Closed));
    assert_eq!(lo.live_dmbs(), 0);
    assert_eq!(fx.host.groups().in_use(), 0);
    // The client reads the Accept, but the server's DMB is gone: the device
    // refuses to bind the unknown token, so the client declines INTERR (a
    // peer DMB it must not write into), and then reads the server's EOF.
    drive(&mut client, &mut server, 0);
    let Transport::Tcp(f) = client.transport() else {
        panic!("{:?}", client.transport())
    };
    assert_eq!(
        (f.reason, f.declined_by),
        (DeclineReason::IntErr, DeclinedBy::Local)
    );
    assert_eq!(client.recv(&mut [0u8; 8]), Ok(0));
    assert_eq!(lo.live_dmbs(), 0);
    assert_eq!(fx.host.groups().in_use(), 0);
}

#[test]
fn pair_hands_back_two_handshaken_endpoints() {
    // SMC-D on a data-capable device.
    let dev = FakeDev::new(true);
    let host: Host<&FakeDev, 4> = Host::with_config(config(), &dev);
    let pipe = Pipe::<1024>::new();
    let (mut client, mut server) = pair(&host, &host, &pipe, 0).unwrap();
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert!(client.transport().is_smcd() && server.transport().is_smcd());
    let up = data(20_000, 7);
    assert_eq!(transfer(&mut client, &mut server, &up, 3_000), up);
    close_both(&mut client, &mut server);
    assert_eq!(dev.registered(), 0);
    assert_eq!(host.groups().in_use(), 0);

    // No common EID: both fall back on the pipe.
    let lo = FakeDevice::loopback(Gid::new(1, 2));
    let host: Host<_> = Host::with_config(ClcConfig::empty(), lo);
    let pipe = Pipe::<1024>::new();
    let (client, server) = pair(&host, &host, &pipe, 0).unwrap();
    assert!(matches!(client.transport(), Transport::Tcp(_)));
    assert!(matches!(server.transport(), Transport::Tcp(_)));
    assert_eq!(host.device().live_dmbs(), 0);
}

/// A peer that leaves SMC-D after the handshake by writing on the TCP
/// stream — a server whose attach of our DMB failed after our Confirm
/// declines and falls back to TCP — never reads our ring again: the
/// connection ends instead of waiting forever. (Found between processes at
/// the fd limit: the server fell back, the client stayed SMC-D, both hung.)
#[test]
fn bytes_on_the_stream_after_the_handshake_end_the_connection() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (mut a, _) = fx.pipe.ends();
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    assert!(server.transport().is_smcd());
    a.write(b"a Decline after the Confirm").unwrap();
    assert_eq!(server.poll(1), Ok(true));
    assert_eq!(
        server.connection().unwrap().error(),
        Some(ConnError::Aborted)
    );
    assert_eq!(
        server.recv(&mut [0u8; 4]),
        Err(EndpointError::Conn(ConnError::Aborted))
    );
}
