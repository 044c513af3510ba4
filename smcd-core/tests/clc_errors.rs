//! Hard errors (`docs/protocol/handshake.md` §6): malformed messages and CLC
//! timeouts end the handshake without a Decline and without fallback, and
//! every resource taken so far is given back.

mod clc_common;

use clc_common::{
    Engine, LO_GID, client, config, drain, failed, messages, one, pair, server, take, vector,
};
use smcd_core::clc::testing::FakeDevice;
use smcd_core::clc::{
    CLC_WAIT_MS, ClcContext, Devices, Handshake, HandshakeError, LinkGroups, ProtocolError,
};
use smcd_core::dmb::Chid;
use smcd_core::wire::clc::{ClcMessage, ClcType, WireError};

/// The protocol error of a failed handshake.
fn protocol_error(h: &mut Handshake<impl ClcContext>) -> ProtocolError {
    match failed(h.poll_outcome()) {
        HandshakeError::Protocol(e) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// What `ClcMessage::parse` says about `bytes`.
fn wire_error(bytes: &[u8]) -> WireError {
    ClcMessage::parse(bytes).unwrap_err()
}

#[test]
fn malformed_proposals_fail_the_server_silently() {
    for name in [
        "bad-proposal-length-plus1.hex",
        "bad-proposal-eid-cnt-9.hex",
        "bad-proposal-iparea-offset-41.hex",
        "bad-proposal-v2-ext-offset-173.hex",
        "bad-proposal-trailer.hex",
        "bad-proposal-v1-typev1-n.hex",
    ] {
        let (lo, devices) = one(FakeDevice::loopback(LO_GID));
        let lgrs = LinkGroups::<8>::new();
        let config = config();
        let mut server = server(&config, devices, &lgrs, 0);
        let bad = vector(name);
        // One byte at a time: the error comes with the last byte.
        for (i, b) in bad.iter().enumerate() {
            assert!(server.is_handshaking(), "{name}: ended early at {i}");
            assert_eq!(server.handle_input(0, std::slice::from_ref(b)), 1);
        }
        assert_eq!(
            protocol_error(&mut server),
            ProtocolError::Malformed(wire_error(&bad)),
            "{name}"
        );
        assert!(drain(&mut server).is_empty(), "{name}: no Decline");
        assert_eq!(server.poll_timeout(), None);
        assert_eq!((lo.live_dmbs(), lgrs.len()), (0, 0));
    }
}

/// A client that sent its Proposal over loopback gets `answer`; returns
/// the error and the bytes consumed.
fn client_answered_with(answer: &[u8]) -> (ProtocolError, usize) {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut client = client(&config, devices, &lgrs, 0);
    drain(&mut client);
    let used = client.handle_input(1, answer);
    assert!(drain(&mut client).is_empty(), "no Decline");
    assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));
    (protocol_error(&mut client), used)
}

#[test]
fn short_accept_or_malformed_decline_fails_the_client() {
    for name in ["bad-accept-v2-short.hex", "bad-decline-v2-length-28.hex"] {
        let bad = vector(name);
        assert_eq!(
            client_answered_with(&bad),
            (ProtocolError::Malformed(wire_error(&bad)), bad.len()),
            "{name}"
        );
    }
}

#[test]
fn accept_naming_an_unoffered_chid_fails_the_client() {
    let mut accept = vector("clc-accept-v2-fce-loopback.hex");
    accept[32..34].copy_from_slice(&[0x01, 0x23]);
    assert_eq!(
        client_answered_with(&accept),
        (ProtocolError::ChidNotOffered(Chid(0x0123)), accept.len())
    );
}

#[test]
fn proposal_sent_to_a_client_is_a_protocol_error() {
    // Rule H2 fails on the header: the rest is never read.
    let proposal = vector("clc-proposal-v2-loopback.hex");
    assert_eq!(
        client_answered_with(&proposal),
        (
            ProtocolError::Malformed(WireError::UnexpectedType {
                r#type: 1,
                expected: Some(ClcType::Accept)
            }),
            8
        )
    );
}

#[test]
fn non_clc_bytes_fail_after_the_header() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut server = server(&config, devices, &lgrs, 0);
    assert_eq!(server.handle_input(0, b"GET / HTTP/1.1\r\n\r\n"), 8);
    assert!(matches!(
        protocol_error(&mut server),
        ProtocolError::Malformed(WireError::BadEyecatcher { .. })
    ));
    assert!(drain(&mut server).is_empty());
}

/// A server that answered a real Proposal with its Accept at `now_ms`.
struct Accepted<'a> {
    server: Engine<'a>,
    accept: Vec<u8>,
}

fn accepted<'a>(
    config: &'a smcd_core::clc::ClcConfig,
    devices: Devices<'a>,
    lgrs: &'a LinkGroups<8>,
    now_ms: u64,
) -> Accepted<'a> {
    let mut client = client(config, devices, lgrs, 0);
    let mut server = server(config, devices, lgrs, 0);
    let proposal = drain(&mut client);
    assert_eq!(server.handle_input(now_ms, &proposal), proposal.len());
    let accept = drain(&mut server);
    assert_eq!(messages(&accept).len(), 1);
    Accepted { server, accept }
}

#[test]
fn v1_confirm_after_v2_accept_fails_the_server() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut a = accepted(&config, devices, &lgrs, 0);
    assert_eq!(lo.live_dmbs(), 1);
    let mut confirm = vector("clc-accept-v1-smcd.hex");
    confirm[4] = 3; // the v1 Accept vector as a Confirm
    assert_eq!(a.server.handle_input(1, &confirm), confirm.len());
    assert_eq!(
        protocol_error(&mut a.server),
        ProtocolError::VersionMismatch {
            accept: 2,
            confirm: 1
        }
    );
    assert!(drain(&mut a.server).is_empty());
    assert_eq!((lo.live_dmbs(), lgrs.in_use()), (0, 0));
    assert!(!a.accept.is_empty());
}

#[test]
fn client_times_out_waiting_for_the_accept() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.deliver_to_client = false;
    p.drive();
    assert_eq!(p.client.poll_timeout(), Some(CLC_WAIT_MS));
    p.advance(CLC_WAIT_MS - 1);
    assert!(p.client.is_handshaking());
    p.advance(1);
    assert_eq!(failed(p.client.poll_outcome()), HandshakeError::Timeout);
    assert_eq!(p.client.poll_timeout(), None);
    // Only the Proposal was sent: no Decline on a timeout.
    assert_eq!(messages(p.client_wrote()).len(), 1);
    p.drive();
    assert_eq!(messages(p.client_wrote()).len(), 1);
    // The server meanwhile waits for a Confirm that never comes.
    p.advance(CLC_WAIT_MS);
    assert_eq!(failed(p.server.poll_outcome()), HandshakeError::Timeout);
    assert_eq!((lo.live_dmbs(), lgrs.in_use()), (0, 0));
}

#[test]
fn server_times_out_waiting_for_the_proposal() {
    let (_, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut server = server(&config, devices, &lgrs, 500);
    assert_eq!(server.poll_timeout(), Some(500 + CLC_WAIT_MS));
    server.handle_timeout(500 + CLC_WAIT_MS - 1);
    assert!(server.is_handshaking());
    server.handle_timeout(500 + CLC_WAIT_MS);
    assert_eq!(failed(server.poll_outcome()), HandshakeError::Timeout);
    assert!(drain(&mut server).is_empty());
}

#[test]
fn confirm_timer_starts_at_the_proposal() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();
    let mut a = accepted(&config, devices, &lgrs, 1_000);
    assert_eq!(a.server.poll_timeout(), Some(1_000 + CLC_WAIT_MS));
    a.server.handle_timeout(1_000 + CLC_WAIT_MS);
    assert_eq!(failed(a.server.poll_outcome()), HandshakeError::Timeout);
    assert_eq!((lo.live_dmbs(), lgrs.in_use()), (0, 0));
}

#[test]
fn dropping_an_engine_gives_back_what_it_holds() {
    let (lo, devices) = one(FakeDevice::loopback(LO_GID));
    let lgrs = LinkGroups::<8>::new();
    let config = config();

    // Mid-handshake: the server holds a DMB and a group reference.
    let a = accepted(&config, devices, &lgrs, 0);
    assert_eq!((lo.live_dmbs(), lgrs.in_use()), (1, 1));
    drop(a);
    assert_eq!((lo.live_dmbs(), lgrs.in_use()), (0, 0));

    // Established but the outcome never taken: given back as well.
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    assert_eq!((lo.live_dmbs(), lo.attachments()), (2, 2));
    drop(p);
    assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));

    // A taken outcome without its resources taken: given back as well.
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    assert!(p.client.poll_outcome().is_some());
    assert!(p.server.poll_outcome().is_some());
    drop(p);
    assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));

    // Taken resources belong to the caller.
    let mut p = pair(&config, &config, devices, devices, &lgrs);
    p.drive();
    let c = take(&mut p.client);
    drop(p);
    // The client's DMB, and the server's, unregistered but still attached.
    assert_eq!((lo.live_dmbs(), lo.attachments()), (2, 1));
    assert_eq!(lgrs.connections(c.lgr), Some(1));
    c.release(devices, &lgrs);
    assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));
}
