//! Peer DMB tokens a connection must not write into. On a loopback device
//! both ends of every connection share one DMB table, so a peer that names
//! one of *our* DMBs — this connection's own, another connection's own or
//! peer DMB, a stale one — in its Accept or Confirm would make us write into
//! memory that belongs to someone else. Every such token is refused before a
//! byte moves: Decline INTERR (PEER_DMB_INVALID), nothing established, and
//! everything the refused handshake took given back.

mod clc_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use clc_common::{
    Engine, LO_GID, Side, accept_for, assert_declines, client, config, emit_accept, messages, one,
    pair, resources, server, take,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use smcd_core::clc::testing::FakeDevice;
use smcd_core::clc::{ClcConfig, Context, Devices, LinkGroups, Outcome};
use smcd_core::dmb::{CDC_HEADER_LEN_BYTES, Chid, DmbTable, DmbToken, Gid};
use smcd_core::mem::{DmbMem, DmbRegion};
use smcd_core::ops::{Dmb, Error as _, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::wire::clc::{AcceptKind, AcceptRepr, ClcMessage, DeclineReason};

/// The Decline of a refused peer DMB: INTERR.
const PEER_DMB_INVALID: DeclineReason = DeclineReason::IntErr;

#[test]
fn peer_dmb_invalid_is_interr() {
    assert_eq!(PEER_DMB_INVALID.code(), 0x0999_0000);
}

/// Connection 1 on `devices`, established normally; both sides taken.
fn connection_1(
    config: &ClcConfig,
    devices: Devices<'static>,
    lgrs: &LinkGroups<8>,
) -> (Side, Side) {
    let mut p = pair(config, config, devices, devices, lgrs);
    p.drive();
    let (c, s) = (take(&mut p.client), take(&mut p.server));
    assert_eq!(c.conn.peer_token(), s.conn.own_token());
    assert_eq!(s.conn.peer_token(), c.conn.own_token());
    (c, s)
}

/// A connection-2 client gets its real Accept with the token replaced by
/// `token`: it must decline PEER_DMB_INVALID and give everything back.
fn client_refuses(
    config: &ClcConfig,
    devices: Devices<'static>,
    lgrs: &LinkGroups<8>,
    token: impl FnOnce() -> DmbToken,
) {
    let mut c = client(config, devices, lgrs, 0);
    let mut s = server(config, devices, lgrs, 0);
    let accept = accept_for(&mut c, &mut s);
    let forged = AcceptRepr {
        token: token(),
        ..accept
    };
    // Same length as the DMBs named: refused for the pairing, not the size.
    assert_eq!(forged.dmbe_size_bytes(), config.dmb_size());
    assert_declines(&mut c, &emit_accept(&forged), PEER_DMB_INVALID, 2);
    // The honest server of connection 2 gives its DMB back too.
    drop(s);
}

/// A connection-2 server gets a Confirm that names `token`: it must
/// decline PEER_DMB_INVALID and give everything back.
fn server_refuses(
    config: &ClcConfig,
    devices: Devices<'static>,
    lgrs: &LinkGroups<8>,
    token: impl FnOnce(&AcceptRepr) -> DmbToken,
) {
    let mut c = client(config, devices, lgrs, 0);
    let mut s = server(config, devices, lgrs, 0);
    let accept = accept_for(&mut c, &mut s);
    let confirm = AcceptRepr {
        kind: AcceptKind::Confirm,
        token: token(&accept),
        ..accept
    };
    assert_declines(&mut s, &emit_accept(&confirm), PEER_DMB_INVALID, 2);
    // The client never read the Accept: it holds nothing.
    drop(c);
}

#[test]
fn own_dmb_of_another_connection_is_refused() {
    // One loopback device shared by both connections, nocopy and copy: the
    // binding is checked in both modes.
    for copy in [false, true] {
        let mut dev = FakeDevice::loopback(LO_GID);
        if copy {
            dev = dev.without_nocopy().local_peers_only();
        }
        let (lo, devices) = one(dev);
        let lgrs = LinkGroups::<8>::new();
        let config = config();
        let (c1, s1) = connection_1(&config, devices, &lgrs);
        let held = (lo.live_dmbs(), lo.attachments());
        assert_eq!(held, (2, if copy { 0 } else { 2 }));
        let groups = (lgrs.connections(c1.lgr), lgrs.connections(s1.lgr));

        // Connection 1's own DMB (its client's) and its peer DMB (its
        // server's), named to connection 2's client and to its server.
        for named in [c1.conn.own_token(), c1.conn.peer_token()] {
            client_refuses(&config, devices, &lgrs, || named);
            assert_eq!((lo.live_dmbs(), lo.attachments()), held, "{named}");
            server_refuses(&config, devices, &lgrs, |_| named);
            assert_eq!((lo.live_dmbs(), lo.attachments()), held, "{named}");
        }
        // Connection 1 is untouched: same group references, and its handles
        // go back to the device as they came.
        assert_eq!((lgrs.connections(c1.lgr), lgrs.connections(s1.lgr)), groups);
        c1.release(devices, &lgrs);
        s1.release(devices, &lgrs);
        assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));
    }
}

#[test]
fn own_dmb_of_the_same_connection_is_refused() {
    for copy in [false, true] {
        let mut dev = FakeDevice::loopback(LO_GID);
        if copy {
            dev = dev.without_nocopy().local_peers_only();
        }
        let (lo, devices) = one(dev);
        let lgrs = LinkGroups::<8>::new();
        let config = config();
        // The server is handed its own DMB back (the token of its Accept).
        server_refuses(&config, devices, &lgrs, |accept| accept.token);
        // The client is handed the DMB it is about to register (a guess on a
        // real device, whose tokens are random).
        client_refuses(&config, devices, &lgrs, || lo.next_token());
        assert_eq!((lo.live_dmbs(), lo.attachments(), lgrs.in_use()), (0, 0, 0));
    }
}

// ----- the property ------------------------------------------------------

/// A loopback-like device on the crate's own [`DmbTable`]: the pairing
/// rules under test are the table's. Handshake only (no data path).
struct TableDevice {
    nocopy: bool,
    table: DmbTable<(), 64>,
    last_token: AtomicU64,
}

/// Zeroed 16 KiB regions for [`TableDevice`]s, leaked once and reused: a
/// region goes back here only when the table frees its DMB.
fn free_regions() -> &'static Mutex<Vec<DmbRegion>> {
    static FREE: OnceLock<Mutex<Vec<DmbRegion>>> = OnceLock::new();
    FREE.get_or_init(|| Mutex::new(Vec::new()))
}

/// The test DMB size.
const LEN: usize = 16 * 1024;

/// A view of a region of [`free_regions`]' leaked memory.
fn view(region: DmbRegion) -> DmbMem {
    // SAFETY: every region of `free_regions` is leaked (valid forever) and
    // reached only through `DmbMem` views; a region is handed out again only
    // after the table freed its DMB, i.e. no handle with a view remains.
    unsafe { DmbMem::from_region(region) }
}

impl TableDevice {
    fn new(nocopy: bool) -> Self {
        Self {
            nocopy,
            table: DmbTable::new(),
            last_token: AtomicU64::new(0),
        }
    }

    fn token(n: u64) -> DmbToken {
        DmbToken(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next_token(&self) -> DmbToken {
        Self::token(self.last_token.load(Ordering::Relaxed) + 1)
    }

    fn free(region: DmbRegion) {
        free_regions().lock().unwrap().push(region);
    }
}

impl ErrorType for TableDevice {
    type Error = ErrorKind;
}

impl SmcdOps for TableDevice {
    fn local_gid(&self) -> Gid {
        LO_GID
    }
    fn chid(&self) -> Chid {
        Chid::LOOPBACK
    }
    fn supports_v2(&self) -> bool {
        true
    }
    fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
        if gid == LO_GID {
            Ok(())
        } else {
            Err(ErrorKind::Unreachable)
        }
    }
    fn register_dmb(&self, size: usize) -> Result<Dmb, ErrorKind> {
        if size != LEN {
            return Err(ErrorKind::NoMemory);
        }
        let region = free_regions().lock().unwrap().pop();
        let region = region.unwrap_or_else(|| {
            let words: &'static mut [u64] = Vec::leak(vec![0u64; LEN / 8]);
            DmbMem::from_static(zerocopy::IntoBytes::as_mut_bytes(words))
                .unwrap()
                .region()
        });
        view(region).zero(0, LEN).unwrap();
        let token = Self::token(self.last_token.fetch_add(1, Ordering::Relaxed) + 1);
        if let Err(e) = self.table.register(token, region, ()) {
            Self::free(region);
            return Err(e.kind());
        }
        Dmb::new(token, view(region)).map_err(|_| ErrorKind::Other)
    }
    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), ErrorKind> {
        let freed = self
            .table
            .unregister(dmb.token(), dmb.mem().region())
            .map_err(|e| e.kind())?;
        if let Some(e) = freed {
            Self::free(e.region);
        }
        Ok(())
    }
    fn move_data(&self, _: DmbToken, _: usize, _: &[u8], _: bool) -> Result<(), ErrorKind> {
        Err(ErrorKind::Unsupported)
    }
    fn signal_dmb(&self, _: DmbToken) -> Result<(), ErrorKind> {
        Err(ErrorKind::Unsupported)
    }
    fn supports_nocopy(&self) -> bool {
        self.nocopy
    }
    fn attach_dmb(&self, own: &Dmb, id: PeerDmbId, map: bool) -> Result<PeerDmb, ErrorKind> {
        let PeerDmbId {
            gid,
            token: peer,
            len,
        } = id;
        if gid != LO_GID {
            return Err(ErrorKind::Unreachable);
        }
        if map && !self.nocopy {
            return Err(ErrorKind::Unsupported);
        }
        let entry = self
            .table
            .attach(own.token(), own.mem().region(), peer, len, map)
            .map_err(|e| e.kind())?;
        let ring = map.then(|| entry.region.tail(CDC_HEADER_LEN_BYTES).map(view));
        PeerDmb::new(own.token(), peer, len, ring.flatten()).map_err(|_| ErrorKind::Other)
    }
    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), ErrorKind> {
        let ring = peer.ring().map(DmbMem::region);
        let freed = self
            .table
            .detach(peer.own_token(), peer.token(), ring)
            .map_err(|e| e.kind())?;
        if let Some(e) = freed {
            Self::free(e.region);
        }
        Ok(())
    }
}

/// What the property needs to know of a device besides [`SmcdOps`].
trait Probe: SmcdOps + Sync {
    /// DMBs present (registered, or unregistered but still mapped).
    fn live(&self) -> usize;
    /// Nocopy mappings.
    fn mapped(&self) -> usize;
    /// The token of the next DMB registered.
    fn upcoming(&self) -> DmbToken;
}

impl Probe for FakeDevice {
    fn live(&self) -> usize {
        self.live_dmbs()
    }
    fn mapped(&self) -> usize {
        self.attachments()
    }
    fn upcoming(&self) -> DmbToken {
        self.next_token()
    }
}

impl Probe for TableDevice {
    fn live(&self) -> usize {
        self.table.len()
    }
    fn mapped(&self) -> usize {
        self.table.attachments() as usize
    }
    fn upcoming(&self) -> DmbToken {
        self.next_token()
    }
}

/// Which token the hostile side puts into an Accept or Confirm.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// The one the honest engine wrote.
    Honest,
    /// One of every token seen so far (own, other connections', hostile
    /// peers', stale), by index.
    Seen(usize),
    /// The token the device hands out next (for a client: its own DMB).
    Upcoming,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// A new session: the Proposal reaches the server, which answers.
    Start,
    /// An Accept reaches its client (a session by index among those waiting).
    Accept(usize, Pick),
    /// A Confirm reaches its server.
    Confirm(usize, Pick),
    /// An established side ends and gives everything back.
    Release(usize),
    /// A session's engines are dropped mid-handshake.
    Abandon(usize),
    /// A hostile peer registers a DMB of its own (to be named later).
    Hostile,
    /// A hostile peer gives its DMB back.
    HostileGone(usize),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => Just(Pick::Honest),
        5 => any::<usize>().prop_map(Pick::Seen),
        1 => Just(Pick::Upcoming),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Start),
        4 => (any::<usize>(), pick()).prop_map(|(s, p)| Op::Accept(s, p)),
        4 => (any::<usize>(), pick()).prop_map(|(s, p)| Op::Confirm(s, p)),
        1 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Abandon),
        1 => Just(Op::Hostile),
        1 => any::<usize>().prop_map(Op::HostileGone),
    ]
}

/// One handshake between two of our engines, with a hostile network
/// between them that may rewrite the token of the Accept and the Confirm.
struct Session<'a> {
    client: Option<Engine<'a>>,
    server: Option<Engine<'a>>,
    /// The server's Accept, until the client got it.
    accept: Option<AcceptRepr>,
    /// The client's Confirm, until the server got it.
    confirm: Option<AcceptRepr>,
}

/// How often the interesting things happened, over all cases.
#[derive(Debug, Default)]
struct Tally {
    established: AtomicU64,
    refused: AtomicU64,
    hostile_established: AtomicU64,
}

/// The one Accept/Confirm in `bytes`, or the Decline's reason.
fn answer(bytes: &[u8]) -> Result<AcceptRepr, DeclineReason> {
    match &messages(bytes)[..] {
        [ClcMessage::AcceptConfirm(a)] => Ok(*a),
        [ClcMessage::Decline(d)] => Err(d.peer_diagnosis),
        other => panic!("one Accept, Confirm or Decline expected: {other:?}"),
    }
}

/// The token `pick` stands for.
fn chosen(pick: Pick, honest: DmbToken, seen: &[DmbToken], dev: &impl Probe) -> DmbToken {
    match pick {
        Pick::Honest => honest,
        Pick::Seen(i) if !seen.is_empty() => seen[i % seen.len()],
        Pick::Seen(_) => honest,
        Pick::Upcoming => dev.upcoming(),
    }
}

/// A handshake that has just ended: its side if established (every token
/// of it joins `seen`), else the Decline must be PEER_DMB_INVALID.
fn settle(
    h: &mut Engine<'_>,
    sent: &[u8],
    sides: &mut Vec<(Side, bool)>,
    seen: &mut Vec<DmbToken>,
    tally: &Tally,
    tampered: bool,
) -> Result<(), TestCaseError> {
    match h.poll_outcome() {
        Some(Outcome::Established(info)) => {
            let side = resources(h, info);
            seen.extend([side.conn.own_token(), side.conn.peer_token()]);
            tally.established.fetch_add(1, Ordering::Relaxed);
            if tampered {
                tally.hostile_established.fetch_add(1, Ordering::Relaxed);
            }
            sides.push((side, tampered));
        }
        Some(Outcome::Fallback(f)) => {
            prop_assert_eq!(f.reason, PEER_DMB_INVALID);
            prop_assert_eq!(answer(sent), Err(PEER_DMB_INVALID));
            prop_assert!(h.take_established().is_none());
            tally.refused.fetch_add(1, Ordering::Relaxed);
        }
        other => prop_assert!(false, "unexpected outcome {:?}", other),
    }
    Ok(())
}

/// Every established connection sends into a DMB that no other
/// established connection owns or sends into, except that the two ends of
/// one connection send into each other's; no DMB is bound by two.
fn check(sides: &[(Side, bool)]) -> Result<(), TestCaseError> {
    for (i, (x, _)) in sides.iter().enumerate() {
        let (own, peer) = (x.conn.own_token(), x.conn.peer_token());
        prop_assert_ne!(own, peer, "bound to itself");
        for (y, _) in &sides[i + 1..] {
            let (y_own, y_peer) = (y.conn.own_token(), y.conn.peer_token());
            prop_assert_ne!(own, y_own, "one DMB owned twice");
            prop_assert_ne!(peer, y_peer, "one DMB bound by two connections");
            // Sending into the other's DMB makes the two one connection.
            prop_assert_eq!(
                peer == y_own,
                y_peer == own,
                "half a pairing: {:?} {}→{} and {:?} {}→{}",
                x.info.role,
                own,
                peer,
                y.info.role,
                y_own,
                y_peer
            );
        }
    }
    Ok(())
}

/// Run `ops` against sessions on `dev`.
fn run(dev: &impl Probe, ops: &[Op], tally: &Tally) -> Result<(), TestCaseError> {
    let config = ClcConfig::empty()
        .with_ueid("SMCD-TEST")
        .unwrap()
        .with_dmb_size(LEN);
    let lgrs = LinkGroups::<8>::new();
    let devices = Devices::one(dev);
    let ctx = Context::new(&config, devices, &lgrs);
    let mut sessions: Vec<Session<'_>> = Vec::new();
    let mut sides: Vec<(Side, bool)> = Vec::new();
    let mut hostile: Vec<Dmb> = Vec::new();
    let mut seen: Vec<DmbToken> = Vec::new();
    let mut buf = [0u8; 512];
    let mut drain = |h: &mut Engine<'_>| {
        let mut out = Vec::new();
        while let Some(n) = h.poll_transmit(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        out
    };

    for &op in ops {
        match op {
            Op::Start => {
                let mut c = smcd_core::clc::Handshake::client(ctx, 0);
                let mut s = smcd_core::clc::Handshake::server(ctx, 0);
                let proposal = drain(&mut c);
                prop_assert_eq!(s.handle_input(0, &proposal), proposal.len());
                let accept = answer(&drain(&mut s));
                prop_assert!(accept.is_ok(), "the server accepts: {:?}", accept);
                let accept = accept.ok();
                seen.extend(accept.map(|a| a.token));
                sessions.push(Session {
                    client: Some(c),
                    server: Some(s),
                    accept,
                    confirm: None,
                });
            }
            Op::Accept(i, pick) => {
                let waiting: Vec<usize> = (0..sessions.len())
                    .filter(|&k| sessions[k].client.is_some() && sessions[k].accept.is_some())
                    .collect();
                let Some(&k) = waiting.get(i % waiting.len().max(1)) else {
                    continue;
                };
                let session = &mut sessions[k];
                let accept = session.accept.take().unwrap();
                let token = chosen(pick, accept.token, &seen, dev);
                let forged = AcceptRepr { token, ..accept };
                let mut c = session.client.take().unwrap();
                let bytes = emit_accept(&forged);
                prop_assert_eq!(c.handle_input(1, &bytes), bytes.len());
                let sent = drain(&mut c);
                match answer(&sent) {
                    Ok(confirm) => {
                        seen.push(confirm.token);
                        session.confirm = Some(confirm);
                    }
                    Err(_) => {
                        // The server reads the Decline and gives up.
                        if let Some(s) = session.server.as_mut() {
                            prop_assert_eq!(s.handle_input(1, &sent), sent.len());
                            prop_assert!(matches!(s.poll_outcome(), Some(Outcome::Fallback(_))));
                        }
                        session.server = None;
                    }
                }
                settle(
                    &mut c,
                    &sent,
                    &mut sides,
                    &mut seen,
                    tally,
                    token != accept.token,
                )?;
            }
            Op::Confirm(i, pick) => {
                let waiting: Vec<usize> = (0..sessions.len())
                    .filter(|&k| sessions[k].server.is_some() && sessions[k].confirm.is_some())
                    .collect();
                let Some(&k) = waiting.get(i % waiting.len().max(1)) else {
                    continue;
                };
                let session = &mut sessions[k];
                let confirm = session.confirm.take().unwrap();
                let token = chosen(pick, confirm.token, &seen, dev);
                let forged = AcceptRepr { token, ..confirm };
                let mut s = session.server.take().unwrap();
                let bytes = emit_accept(&forged);
                prop_assert_eq!(s.handle_input(2, &bytes), bytes.len());
                let sent = drain(&mut s);
                if sent.is_empty() {
                    prop_assert!(!s.has_transmit());
                }
                settle(
                    &mut s,
                    &sent,
                    &mut sides,
                    &mut seen,
                    tally,
                    token != confirm.token,
                )?;
            }
            Op::Release(i) => {
                if !sides.is_empty() {
                    let (side, _) = sides.remove(i % sides.len());
                    side.release(devices, &lgrs);
                }
            }
            Op::Abandon(i) => {
                if !sessions.is_empty() {
                    let k = i % sessions.len();
                    sessions[k].client = None;
                    sessions[k].server = None;
                }
            }
            Op::Hostile => {
                let dmb = dev
                    .register_dmb(LEN)
                    .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                seen.push(dmb.token());
                hostile.push(dmb);
            }
            Op::HostileGone(i) => {
                if !hostile.is_empty() {
                    let dmb = hostile.remove(i % hostile.len());
                    prop_assert!(dev.unregister_dmb(dmb).is_ok());
                }
            }
        }
        check(&sides)?;
    }

    // Everything goes back: connections, engines, hostile DMBs.
    for (side, _) in sides {
        side.release(devices, &lgrs);
    }
    drop(sessions);
    for dmb in hostile {
        prop_assert!(dev.unregister_dmb(dmb).is_ok());
    }
    prop_assert_eq!((dev.live(), dev.mapped(), lgrs.in_use()), (0, 0, 0));
    Ok(())
}

#[test]
fn multi_session_tokens() {
    let tally = Tally::default();
    // Miri interprets every step (a handshake costs it about a second): a
    // few shorter cases there (about 25 operations in all).
    let (cases, max_ops) = if cfg!(miri) { (4, 12) } else { (256, 48) };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..4u8, proptest::collection::vec(op(), 1..max_ops));
    runner
        .run(&strategy, |(kind, ops)| match kind {
            0 => run(&FakeDevice::loopback(LO_GID), &ops, &tally),
            1 => run(
                &FakeDevice::loopback(LO_GID)
                    .without_nocopy()
                    .local_peers_only(),
                &ops,
                &tally,
            ),
            2 => run(&TableDevice::new(true), &ops, &tally),
            _ => run(&TableDevice::new(false), &ops, &tally),
        })
        .unwrap();
    // Not vacuous: handshakes were established, some with a rewritten
    // token (a hostile peer's own DMB), and rewritten tokens were refused.
    let (e, r, h) = (
        tally.established.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.hostile_established.load(Ordering::Relaxed),
    );
    if !cfg!(miri) {
        assert!(e > 100 && r > 100 && h > 0, "{tally:?}");
    }
}
