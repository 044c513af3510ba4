//! Helpers shared by the `clc_*` scenario tests.
#![allow(dead_code)]

use smcd_core::clc::testing::{FakeDevice, Pair};
use smcd_core::clc::{
    ClcConfig, ClcContext, ClcDevice, Context, DeclinedBy, Devices, Fallback, Handshake,
    HandshakeError, LinkGroup, LinkGroups, Outcome, SmcdInfo,
};
use smcd_core::conn::Connection;
use smcd_core::dmb::Gid;
use smcd_core::wire::clc::{AcceptRepr, ClcHeaderRepr, ClcMessage, DeclineReason, DeclineRepr};

#[path = "../common/hex.rs"]
mod hex;

/// The loopback GID of the spec's vectors.
pub(crate) const LO_GID: Gid = Gid::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);

/// The UEID of the spec's vectors.
pub(crate) const UEID: &str = "SMCD-TEST";

/// A host configured like the spec's vectors: one UEID (and not the
/// default one), hostname "host1".
pub(crate) fn config() -> ClcConfig {
    ClcConfig::empty()
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

/// The engines of these tests: borrowed config, devices and link groups.
pub(crate) type Engine<'a> = Handshake<Context<'a>>;

/// A client engine started at `now_ms`.
pub(crate) fn client<'a, const N: usize>(
    config: &'a ClcConfig,
    devices: Devices<'a>,
    lgrs: &'a LinkGroups<N>,
    now_ms: u64,
) -> Engine<'a> {
    Handshake::client(Context::new(config, devices, lgrs), now_ms)
}

/// A server engine started at `now_ms`.
pub(crate) fn server<'a, const N: usize>(
    config: &'a ClcConfig,
    devices: Devices<'a>,
    lgrs: &'a LinkGroups<N>,
    now_ms: u64,
) -> Engine<'a> {
    Handshake::server(Context::new(config, devices, lgrs), now_ms)
}

/// A client and a server started at 0, sharing `lgrs`.
pub(crate) fn pair<'a>(
    client_config: &'a ClcConfig,
    server_config: &'a ClcConfig,
    client_devices: Devices<'a>,
    server_devices: Devices<'a>,
    lgrs: &'a LinkGroups<8>,
) -> Pair<Context<'a>> {
    Pair::new(
        client(client_config, client_devices, lgrs, 0),
        server(server_config, server_devices, lgrs, 0),
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
pub(crate) fn established(o: Option<Outcome>) -> SmcdInfo {
    match o {
        Some(Outcome::Established(e)) => e,
        other => panic!("expected Established, got {other:?}"),
    }
}

/// One established side: what it settled on and the resources it took.
#[derive(Debug)]
pub(crate) struct Side {
    pub(crate) info: SmcdInfo,
    pub(crate) conn: Connection,
    pub(crate) lgr: LinkGroup,
}

/// The outcome of `h`, which must be `Established`, and its resources:
/// handed over once, matching the outcome.
pub(crate) fn take(h: &mut Handshake<impl ClcContext>) -> Side {
    let info = established(h.poll_outcome());
    resources(h, info)
}

/// The resources of `h`, whose outcome was `Established(info)`: handed
/// over once, matching the outcome.
pub(crate) fn resources(h: &mut Handshake<impl ClcContext>, info: SmcdInfo) -> Side {
    let e = h
        .take_established()
        .expect("an established handshake hands over its resources");
    assert!(
        h.take_established().is_none(),
        "resources handed over twice"
    );
    assert_eq!(e.info(), info);
    let lgr = e.link_group();
    let (conn, group) = e.into_connection();
    assert_eq!(group, lgr);
    assert_eq!(conn.mode(), info.mode);
    assert_eq!(conn.own_dmb_len(), info.own_dmb_size);
    assert_eq!(conn.peer_dmb_len(), info.peer_dmb_size);
    assert_ne!(conn.own_token(), conn.peer_token(), "bound to itself");
    Side { info, conn, lgr }
}

impl Side {
    /// Give everything back: the DMBs through the device of `devices` the
    /// connection runs on, the link-group reference to `lgrs`.
    pub(crate) fn release<const N: usize>(self, devices: Devices<'_>, lgrs: &LinkGroups<N>) {
        let dev = devices
            .get(self.info.device)
            .expect("the connection's device");
        let (own, peer) = self.conn.into_dmbs();
        dev.give_back(Some(own), Some(peer))
            .expect("the device takes its handles back");
        lgrs.release(self.lgr);
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
    pair: &mut Pair<impl ClcContext>,
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
    assert!(pair.client.take_established().is_none());
    assert!(pair.server.take_established().is_none());

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
pub(crate) fn exchange_app_data(pair: &mut Pair<impl ClcContext>) {
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
pub(crate) fn feed(h: &mut Handshake<impl ClcContext>, msg: &[u8]) -> usize {
    let mut bytes = msg.to_vec();
    bytes.extend_from_slice(APP);
    h.handle_input(1, &bytes)
}

/// Everything `h` has to transmit.
pub(crate) fn drain(h: &mut Handshake<impl ClcContext>) -> Vec<u8> {
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
    h: &mut Handshake<impl ClcContext>,
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
    assert!(h.take_established().is_none());
    assert_eq!(h.handle_input(2, APP), 0, "no CLC after a Decline");
}

/// The bytes of an Accept or Confirm.
pub(crate) fn emit_accept(a: &AcceptRepr) -> Vec<u8> {
    let mut buf = vec![0u8; a.buffer_len()];
    a.emit(&mut buf).unwrap();
    buf
}

/// The Accept `server` answers to `client`'s Proposal (the client has not
/// seen it yet).
pub(crate) fn accept_for(
    client: &mut Handshake<impl ClcContext>,
    server: &mut Handshake<impl ClcContext>,
) -> AcceptRepr {
    let proposal = drain(client);
    assert_eq!(server.handle_input(0, &proposal), proposal.len());
    match &messages(&drain(server))[..] {
        [ClcMessage::AcceptConfirm(a)] => *a,
        other => panic!("{other:?}"),
    }
}
