//! End to end on the loopback device: the hard errors of a handshake end the
//! way Linux ends them (`docs/protocol/handshake.md` §6) — a malformed message is a
//! protocol error and a missing message a timeout; neither sends a Decline
//! or falls back, the stream is closed, and the device holds nothing.
//! Time is a fake clock passed to `poll`.

mod e2e_util;

use e2e_util::{DMB, Lo, assert_all_given_back, config, loopback, read_all, split_clc, vector};
use smcd_core::clc::{CLC_WAIT_MS, HandshakeError, ProtocolError};
use smcd_core::endpoint::testing::Fixture;
use smcd_core::endpoint::{ByteStream, Endpoint, EndpointError, Failure, Transport};
use smcd_core::wire::clc::ClcMessage;

fn failed(t: Transport) -> Failure {
    match t {
        Transport::Failed(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn protocol_error(t: Transport) -> ProtocolError {
    match failed(t) {
        Failure::Handshake(HandshakeError::Protocol(p)) => p,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn malformed_proposal_drops_the_connection_without_a_decline() {
    for name in ["bad-proposal-trailer.hex", "bad-proposal-eid-cnt-9.hex"] {
        let lo: Lo = loopback(1);
        let fx = Fixture::new(&lo, config(DMB));
        let pipe = &fx.pipe;
        let (mut raw, b) = pipe.ends();
        let mut server = Endpoint::server(&fx.host, b, 0);
        raw.write(&vector(name)).unwrap();
        raw.write(b"app data").unwrap();
        assert!(matches!(
            server.poll(0),
            Err(EndpointError::Failed(Failure::Handshake(
                HandshakeError::Protocol(ProtocolError::Malformed(_))
            )))
        ));
        protocol_error(server.transport());
        assert_eq!(read_all(&mut raw), b"", "{name}: EOF, no Decline");
        assert!(matches!(
            server.recv(&mut [0u8; 8]),
            Err(EndpointError::Failed(_))
        ));
        assert_eq!(lo.stats().dmbs_registered, 0);
        assert_all_given_back(&lo, &fx.host);
    }
}

#[test]
fn malformed_accept_fails_the_client_without_a_decline() {
    let lo: Lo = loopback(2);
    let fx = Fixture::new(&lo, config(DMB));
    let pipe = &fx.pipe;
    let (a, mut raw) = pipe.ends();
    let mut client = Endpoint::client(&fx.host, a, 0);
    client.poll(0).unwrap();
    raw.write(&vector("bad-accept-v2-short.hex")).unwrap();
    assert!(client.poll(1).is_err());
    protocol_error(client.transport());
    let written = read_all(&mut raw);
    let (msgs, rest) = split_clc(&written);
    assert!(matches!(msgs.as_slice(), [ClcMessage::Proposal(_)]));
    assert!(rest.is_empty(), "nothing after the Proposal");
    assert_eq!(lo.stats().dmbs_in_use, 0);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn client_times_out_after_six_seconds_without_an_accept() {
    let lo: Lo = loopback(3);
    let fx = Fixture::new(&lo, config(DMB));
    let pipe = &fx.pipe;
    let (a, mut raw) = pipe.ends();
    let mut client = Endpoint::client(&fx.host, a, 1_000);
    client.poll(1_000).unwrap();
    assert_eq!(client.poll_timeout(), Some(1_000 + CLC_WAIT_MS));
    assert_eq!(client.poll(6_999), Ok(false));
    assert!(client.is_handshaking());
    assert_eq!(
        client.poll(7_000),
        Err(EndpointError::Failed(Failure::Handshake(
            HandshakeError::Timeout
        )))
    );
    let written = read_all(&mut raw);
    let (msgs, rest) = split_clc(&written);
    assert!(matches!(msgs.as_slice(), [ClcMessage::Proposal(_)]));
    assert!(rest.is_empty(), "no Decline after a timeout");
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn server_times_out_waiting_for_the_confirm_and_gives_back_its_dmb() {
    let lo: Lo = loopback(4);
    let fx = Fixture::new(&lo, config(DMB));
    let pipe = &fx.pipe;
    let (a, b) = pipe.ends();
    let mut client = Endpoint::client(&fx.host, a, 0);
    let mut server = Endpoint::server(&fx.host, b, 0);
    client.poll(0).unwrap(); // Proposal
    server.poll(10).unwrap(); // Accept; the Confirm never comes
    assert_eq!(lo.stats().dmbs_in_use, 1);
    assert_eq!(server.poll_timeout(), Some(10 + CLC_WAIT_MS));
    assert_eq!(
        server.poll(10 + CLC_WAIT_MS),
        Err(EndpointError::Failed(Failure::Handshake(
            HandshakeError::Timeout
        )))
    );
    assert_eq!(lo.stats().dmbs_in_use, 0);
    assert_eq!(fx.host.groups().in_use(), 0);
    assert_all_given_back(&lo, &fx.host);
    // The stream was closed: no Decline after the Accept, just EOF.
    let (mut raw, _) = pipe.ends();
    let written = read_all(&mut raw);
    let (msgs, rest) = split_clc(&written);
    assert!(matches!(msgs.as_slice(), [ClcMessage::AcceptConfirm(_)]));
    assert!(rest.is_empty());
    drop(client);
}
