//! Helpers shared by the `clc_*` scenario tests.
#![allow(dead_code)]

use smcd_core::clc::testing::{FakeDevice, Pair};
use smcd_core::clc::{
    ClcConfig, ClcDevice, DeclinedBy, Devices, Established, Fallback, Handshake, HandshakeError,
    LinkGroups, Outcome,
};
use smcd_core::dmb::Gid;
use smcd_core::wire::clc::{ClcHeaderRepr, ClcMessage, DeclineReason, DeclineRepr};

#[path = "../common/hex.rs"]
mod hex;

/// The loopback GID of the spec's vectors.
pub(crate) const LO_GID: Gid = Gid::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);

/// The UEID of the spec's vectors.
pub(crate) const UEID: &str = "SMCD-TEST";

/// A host configured like the spec's vectors: one UEID, hostname "host1".
pub(crate) fn config() -> ClcConfig {
    ClcConfig::new()
        .with_ueid(UEID)
        .unwrap()
        .with_hostname("host1")
}

/// Leaks `dev` for the rest of the test and lists it alone.
pub(crate) fn one(dev: FakeDevice) -> (&'static FakeDevice, Devices<'static>) {
    let dev: &'static FakeDevice = Box::leak(Box::new(dev));
    (dev, list(&[dev]))
}

/// A device list of leaked devices, in this order.
pub(crate) fn list(devs: &[&'static FakeDevice]) -> Devices<'static> {
    let list: Vec<&'static dyn ClcDevice> = devs.iter().map(|d| *d as &dyn ClcDevice).collect();
    Devices::new(list.leak())
}

/// A client and a server started at 0, sharing `lgrs`.
pub(crate) fn pair<'a>(
    client_config: &'a ClcConfig,
    server_config: &'a ClcConfig,
    client: Devices<'a>,
    server: Devices<'a>,
    lgrs: &'a LinkGroups<8>,
) -> Pair<'a> {
    Pair::new(
        Handshake::client(client_config, client, lgrs, 0),
        Handshake::server(server_config, server, lgrs, 0),
    )
}

/// The bytes of `tests/vectors/<name>`.
pub(crate) fn vector(name: &str) -> Vec<u8> {
    hex::read(&format!(
        "{}/tests/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// The CLC messages at the start of a stream, up to and including a
/// Decline; stops at the first bytes that are not a CLC message.
pub(crate) fn messages(mut stream: &[u8]) -> Vec<ClcMessage> {
    let mut out = Vec::new();
    while let Ok(header) = ClcHeaderRepr::peek(stream) {
        let len = usize::from(header.length);
        let Ok(m) = ClcMessage::parse(stream) else {
            break;
        };
        let decline = matches!(m, ClcMessage::Decline(_));
        out.push(m);
        stream = &stream[len..];
        if decline {
            break;
        }
    }
    out
}

/// Lengths of the CLC messages at the start of a stream.
pub(crate) fn message_lengths(stream: &[u8]) -> Vec<usize> {
    messages(stream)
        .iter()
        .map(ClcMessage::buffer_len)
        .collect()
}

/// The last CLC message of a stream, which must be a Decline, and the bytes
/// after it.
pub(crate) fn decline_in(stream: &[u8]) -> (DeclineRepr, &[u8]) {
    let msgs = messages(stream);
    let clc_len: usize = msgs.iter().map(ClcMessage::buffer_len).sum();
    match msgs.last() {
        Some(ClcMessage::Decline(d)) => (*d, &stream[clc_len..]),
        other => panic!("no Decline at the end of the CLC bytes: {other:?}"),
    }
}

/// The outcome, which must be `Established`.
pub(crate) fn established(o: Option<Outcome>) -> Established {
    match o {
        Some(Outcome::Established(e)) => e,
        other => panic!("expected Established, got {other:?}"),
    }
}

/// The outcome, which must be a fallback.
pub(crate) fn fallback(o: Option<Outcome>) -> Fallback {
    match o {
        Some(Outcome::Fallback(f)) => f,
        other => panic!("expected Fallback, got {other:?}"),
    }
}

/// The outcome, which must be a hard error.
pub(crate) fn failed(o: Option<Outcome>) -> HandshakeError {
    match o {
        Some(Outcome::Failed(e)) => e,
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// Who sent the Decline in a fallback scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decliner {
    Client,
    Server,
}

/// Checks a fallback scenario end to end: both outcomes name `reason` with
/// the right decliner, the Decline on the wire parses with `wire` and has
/// `version` and `out_of_sync`, and application data written after the
/// Decline reaches the other side intact in both directions.
pub(crate) fn assert_fallback(
    pair: &mut Pair<'_>,
    by: Decliner,
    reason: DeclineReason,
    version: u8,
    out_of_sync: bool,
) {
    pair.drive();
    let (client_by, server_by) = match by {
        Decliner::Client => (DeclinedBy::Local, DeclinedBy::Peer),
        Decliner::Server => (DeclinedBy::Peer, DeclinedBy::Local),
    };
    let c = fallback(pair.client.poll_outcome());
    let s = fallback(pair.server.poll_outcome());
    assert_eq!((c.reason, c.declined_by), (reason, client_by));
    assert_eq!((s.reason, s.declined_by), (reason, server_by));

    let stream = match by {
        Decliner::Client => pair.client_wrote().to_vec(),
        Decliner::Server => pair.server_wrote().to_vec(),
    };
    let (d, after) = decline_in(&stream);
    assert_eq!(d.peer_diagnosis, reason);
    assert_eq!(d.version, version);
    assert_eq!(d.out_of_sync, out_of_sync);
    assert_eq!(d.os_type, if version >= 2 { 2 } else { 0 });
    assert!(after.is_empty(), "CLC bytes after the Decline");

    exchange_app_data(pair);
}

/// After a fallback both sides write application data on the same stream;
/// each must receive the other's bytes intact and no more CLC bytes appear.
pub(crate) fn exchange_app_data(pair: &mut Pair<'_>) {
    let to_server: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let to_client = b"GET / HTTP/1.0\r\n\r\n".to_vec();
    pair.client_send_app(&to_server);
    pair.server_send_app(&to_client);
    pair.drive();
    assert_eq!(pair.server_app, to_server);
    assert_eq!(pair.client_app, to_client);
    assert!(!pair.client.has_transmit() && !pair.server.has_transmit());
}

/// Application bytes a peer writes right after its last CLC message.
pub(crate) const APP: &[u8] = b"application bytes after the CLC handshake";

/// Feed `msg` followed by [`APP`] in one piece; returns the bytes consumed.
pub(crate) fn feed(h: &mut Handshake<'_>, msg: &[u8]) -> usize {
    let mut bytes = msg.to_vec();
    bytes.extend_from_slice(APP);
    h.handle_input(1, &bytes)
}

/// Everything `h` has to transmit.
pub(crate) fn drain(h: &mut Handshake<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while let Some(n) = h.poll_transmit(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// `h` got `msg` (+ [`APP`]) from a hand-made peer and must answer with
/// exactly one Decline of `reason`/`version`, leave [`APP`] unconsumed and
/// fall back.
pub(crate) fn assert_declines(
    h: &mut Handshake<'_>,
    msg: &[u8],
    reason: DeclineReason,
    version: u8,
) {
    assert_eq!(feed(h, msg), msg.len(), "the application bytes are not CLC");
    let sent = drain(h);
    let (d, after) = decline_in(&sent);
    assert!(after.is_empty());
    assert_eq!(messages(&sent).len(), 1, "only the Decline is sent");
    assert_eq!(
        (d.peer_diagnosis, d.version, d.out_of_sync),
        (reason, version, false)
    );
    let f = fallback(h.poll_outcome());
    assert_eq!((f.reason, f.declined_by), (reason, DeclinedBy::Local));
    assert_eq!(h.handle_input(2, APP), 0, "no CLC after a Decline");
}
