//! End to end on the loopback device: forged handles cannot touch live
//! connections. In one address space every party reaches the shared device,
//! so code that learns a live DMB token (from the CLC bytes, or by guessing)
//! can build a [`Dmb`] or [`PeerDmb`] handle of its own with safe code. The
//! device must refuse those handles (`SmcdOps`: "compare token *and*
//! region") and leave the live connections as they were:
//!
//! * (a) `unregister_dmb` of a forged [`Dmb`] with a live token frees
//!   nothing, and the connection keeps moving data;
//! * (b) `detach_dmb` of a forged [`PeerDmb`] with a live token pair drops
//!   no mapping and dissolves no pairing;
//! * (c) with two connections up, a third DMB cannot bind either
//!   connection's DMB (nor a half-paired one during a handshake);
//! * (d) on a `StaticArena`, after (a) a new DMB never gets the live block.

mod e2e_util;

use e2e_util::{Lo, assert_all_given_back, config, loopback};
use rand::SeedableRng;
use rand::rngs::StdRng;
use smcd_core::dmb::{DmbError, DmbToken};
use smcd_core::endpoint::testing::{Fixture, close_both, drive, pair_on, transfer};
use smcd_core::endpoint::{ByteStream, Endpoint, HostRef, Pipe};
use smcd_core::mem::{DmbMem, DmbRegion};
use smcd_core::ops::{Dmb, Error, ErrorKind, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::stats::DeviceStats;
use smcd_lo::{LoError, LoopbackDevice, NoDoorbell, StaticArena};

const DMB: usize = 16 * 1024;
const HEADER: usize = 32;

/// `len` zeroed, 8-aligned bytes that are nobody's DMB (leaked): the memory
/// behind a forged handle.
fn forged_mem(len: usize) -> DmbMem {
    let buf = Box::leak(vec![0u8; len + 8].into_boxed_slice());
    let skip = buf.as_ptr().align_offset(8);
    DmbMem::from_static(&mut buf[skip..skip + len]).unwrap()
}

/// A handle claiming to be the DMB `token`.
fn forged_dmb(token: DmbToken) -> Dmb {
    Dmb::new(token, forged_mem(DMB)).unwrap()
}

/// A mapping claiming to be `own`'s binding of `peer`.
fn forged_mapping(own: DmbToken, peer: DmbToken) -> PeerDmb {
    PeerDmb::new(own, peer, DMB, Some(forged_mem(DMB - HEADER))).unwrap()
}

/// A copy-mode binding claiming to be `own`'s binding of `peer`.
fn forged_binding(own: DmbToken, peer: DmbToken) -> PeerDmb {
    PeerDmb::new(own, peer, DMB, None).unwrap()
}

/// The peer DMB `token` of `len` bytes on `dev` (as an Accept names it).
fn id<D: SmcdOps>(dev: &D, token: DmbToken, len: usize) -> PeerDmbId {
    PeerDmbId {
        gid: dev.local_gid(),
        token,
        len,
    }
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

/// (own, peer) tokens of an endpoint's connection.
fn tokens<H: HostRef, S: ByteStream>(ep: &Endpoint<H, S>) -> (DmbToken, DmbToken) {
    let c = ep.connection().expect("an SMC-D connection");
    (c.own_token(), c.peer_token())
}

/// Data still flows both ways, across ring wrap-around.
fn still_works<A: HostRef, B: HostRef, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<A, S>,
    b: &mut Endpoint<B, T>,
    seed: u8,
) {
    // More than a ring each way (wrap-around); three rings outside Miri.
    let laps = if cfg!(miri) { 1 } else { 3 };
    let up = payload(laps * DMB + 100, seed);
    assert_eq!(transfer(a, b, &up, 5_000), up);
    let down = payload((laps - 1).max(1) * DMB + 17, seed.wrapping_add(1));
    assert_eq!(transfer(b, a, &down, 3_000), down);
}

/// The stats that a refused handle must leave as they were.
fn holdings(s: DeviceStats) -> (u64, u64, u64) {
    (s.dmbs_in_use, s.attachments, s.dmbs_registered)
}

/// The region of the DMB `ep` receives into, learnt from a zero-copy
/// receive at ring offset 0 (so `peer` sends one byte first).
fn own_region<H: HostRef, S: ByteStream>(
    ep: &mut Endpoint<H, S>,
    peer: &mut Endpoint<H, S>,
) -> DmbRegion {
    assert_eq!(peer.send(b"?"), Ok(1));
    drive(peer, ep, 0);
    let (conn, dev) = ep.connection_mut().unwrap();
    let mut at = None;
    conn.recv_with(dev, |bytes| {
        at = Some(bytes.as_ptr());
        bytes.len()
    })
    .unwrap();
    let ring = at.expect("one byte was available");
    let base = core::ptr::NonNull::new(ring.wrapping_sub(HEADER).cast_mut()).unwrap();
    DmbRegion::new(base, DMB).unwrap()
}

fn overlaps(a: DmbRegion, b: DmbRegion) -> bool {
    let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
    a0 < b0 + b.len() && b0 < a0 + a.len()
}

// ----- (a) forged unregister ----------------------------------------------

fn forged_unregister_is_refused(nocopy: bool) {
    let lo: Lo = loopback(1);
    lo.set_nocopy(nocopy);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    let before = holdings(lo.stats());
    assert_eq!(before, (2, if nocopy { 2 } else { 0 }, 2));
    let (c_own, s_own) = (tokens(&client).0, tokens(&server).0);
    for token in [c_own, s_own] {
        let err = lo.unregister_dmb(forged_dmb(token)).unwrap_err();
        assert_eq!(err, LoError::Table(token, DmbError::Foreign));
        assert_eq!(err.kind(), ErrorKind::InvalidToken);
        // Not even with a length that matches nothing.
        let longer = Dmb::new(token, forged_mem(2 * DMB)).unwrap();
        assert_eq!(
            lo.unregister_dmb(longer).unwrap_err(),
            LoError::Table(token, DmbError::Foreign)
        );
        assert_eq!(holdings(lo.stats()), before, "nothing was freed");
    }
    // The DMBs are still registered: headers still reach them.
    still_works(&mut client, &mut server, 1);
    assert!(client.connection().unwrap().error().is_none());
    assert!(server.connection().unwrap().error().is_none());
    close_both(&mut client, &mut server);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn a_forged_unregister_frees_nothing_in_copy_mode() {
    forged_unregister_is_refused(false);
}

#[test]
fn a_forged_unregister_frees_nothing_in_nocopy_mode() {
    forged_unregister_is_refused(true);
}

// ----- (b) forged detach --------------------------------------------------

#[test]
fn a_forged_detach_drops_no_mapping() {
    let lo: Lo = loopback(2);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    let before = holdings(lo.stats());
    assert_eq!(before, (2, 2, 2));
    let (c_own, s_own) = tokens(&client);
    // Both real bindings (client → server and server → client), with a
    // forged ring and with none.
    for (own, peer) in [(c_own, s_own), (s_own, c_own)] {
        let err = lo.detach_dmb(forged_mapping(own, peer)).unwrap_err();
        assert_eq!(err, LoError::Table(peer, DmbError::Foreign));
        assert_eq!(err.kind(), ErrorKind::InvalidToken);
        assert_eq!(
            lo.detach_dmb(forged_binding(own, peer)).unwrap_err(),
            LoError::Table(peer, DmbError::Foreign)
        );
        assert_eq!(holdings(lo.stats()), before, "the mappings stay");
    }
    // The pairing stays too: no third DMB can bind into the connection.
    let third = lo.register_dmb(DMB).unwrap();
    for t in [c_own, s_own] {
        assert_eq!(
            lo.attach_dmb(&third, id(&lo, t, DMB), true).unwrap_err(),
            LoError::Table(t, DmbError::Bound)
        );
    }
    lo.unregister_dmb(third).unwrap();
    // The mapped rings are still the connection's send buffers.
    still_works(&mut client, &mut server, 2);
    close_both(&mut client, &mut server);
    assert_all_given_back(&lo, &fx.host);
}

#[test]
fn a_forged_mapping_of_a_copy_binding_is_refused() {
    let lo: Lo = loopback(3);
    lo.set_nocopy(false);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    let (c_own, s_own) = tokens(&client);
    for (own, peer) in [(c_own, s_own), (s_own, c_own)] {
        assert_eq!(
            lo.detach_dmb(forged_mapping(own, peer)).unwrap_err(),
            LoError::Table(peer, DmbError::Foreign)
        );
    }
    assert_eq!(holdings(lo.stats()), (2, 0, 2));
    still_works(&mut client, &mut server, 3);
    close_both(&mut client, &mut server);
    assert_all_given_back(&lo, &fx.host);
}

// ----- (c) third-party binding --------------------------------------------

#[test]
fn a_third_dmb_binds_into_neither_of_two_connections() {
    for nocopy in [false, true] {
        let lo: Lo = loopback(4);
        lo.set_nocopy(nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let (mut c1, mut s1) = fx.pair();
        drive(&mut c1, &mut s1, 0);
        let pipe = Pipe::<1024>::new();
        let (mut c2, mut s2) = pair_on(&fx.host, &fx.host, &pipe);
        drive(&mut c2, &mut s2, 0);
        let live = [tokens(&c1).0, tokens(&s1).0, tokens(&c2).0, tokens(&s2).0];
        let third = lo.register_dmb(DMB).unwrap();
        let before = holdings(lo.stats());
        assert_eq!(before, (5, if nocopy { 4 } else { 0 }, 5));
        for t in live {
            for map in [false, nocopy] {
                let err = lo.attach_dmb(&third, id(&lo, t, DMB), map).unwrap_err();
                assert_eq!(err, LoError::Table(t, DmbError::Bound), "{t} map {map}");
                assert_eq!(err.kind(), ErrorKind::InvalidToken);
            }
            // Nor can a connection's own DMB be impersonated to bind the third.
            assert_eq!(
                lo.attach_dmb(&forged_dmb(t), id(&lo, third.token(), DMB), false)
                    .unwrap_err(),
                LoError::Table(third.token(), DmbError::Foreign)
            );
        }
        assert_eq!(holdings(lo.stats()), before);
        assert_eq!(lo.stats().attachments, before.1, "no mapping was taken");
        still_works(&mut c1, &mut s1, 4);
        still_works(&mut s2, &mut c2, 5);
        close_both(&mut c1, &mut s1);
        close_both(&mut c2, &mut s2);
        lo.unregister_dmb(third).unwrap();
        assert_all_given_back(&lo, &fx.host);
    }
}

#[test]
fn a_third_dmb_binds_into_no_half_paired_dmb_during_a_handshake() {
    let lo: Lo = loopback(5);
    let fx = Fixture::new(&lo, config(DMB));
    let (mut client, mut server) = fx.pair();
    client.poll(0).unwrap(); // Proposal
    server.poll(0).unwrap(); // Accept
    client.poll(0).unwrap(); // the client binds the server's DMB, Confirm
    assert!(client.transport().is_smcd() && server.is_handshaking());
    // The server's DMB has its sender (the client) but no peer yet; the
    // client's DMB has its peer (the server's) but no sender yet.
    let (c_own, s_own) = tokens(&client);
    let third = lo.register_dmb(DMB).unwrap();
    for t in [s_own, c_own] {
        assert_eq!(
            lo.attach_dmb(&third, id(&lo, t, DMB), true).unwrap_err(),
            LoError::Table(t, DmbError::Bound)
        );
    }
    assert_eq!(lo.stats().attachments, 1);
    // The server still binds the client's DMB and the connection works.
    drive(&mut client, &mut server, 0);
    assert!(server.transport().is_smcd());
    assert_eq!(tokens(&server), (s_own, c_own));
    still_works(&mut client, &mut server, 6);
    close_both(&mut client, &mut server);
    lo.unregister_dmb(third).unwrap();
    assert_all_given_back(&lo, &fx.host);
}

// ----- (d) no live block handed out again ----------------------------------

type Arena = LoopbackDevice<StaticArena, StdRng, NoDoorbell, 8>;

fn arena_device(blocks: usize, seed: u64, nocopy: bool) -> Arena {
    let region = Box::leak(vec![0u8; blocks * DMB + 8].into_boxed_slice());
    let lo = LoopbackDevice::new(
        StaticArena::new(region),
        StdRng::seed_from_u64(seed),
        NoDoorbell,
    );
    lo.set_nocopy(nocopy);
    lo
}

#[test]
fn after_a_forged_unregister_a_new_dmb_never_gets_a_live_block() {
    for nocopy in [false, true] {
        // Room for the two live DMBs and exactly one more.
        let lo = arena_device(3, 6, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let (mut client, mut server) = fx.pair();
        drive(&mut client, &mut server, 0);
        let live = [
            own_region(&mut client, &mut server),
            own_region(&mut server, &mut client),
        ];
        assert!(!overlaps(live[0], live[1]));
        for ep in [&client, &server] {
            let token = tokens(ep).0;
            assert_eq!(
                lo.unregister_dmb(forged_dmb(token)).unwrap_err(),
                LoError::Table(token, DmbError::Foreign)
            );
        }
        let fresh = lo.register_dmb(DMB).unwrap();
        for r in live {
            assert!(
                !overlaps(fresh.mem().region(), r),
                "{:?} handed out over the live {r:?}",
                fresh.mem().region()
            );
        }
        // Writing the new DMB does not disturb either connection.
        fresh.mem().write(0, &[0xA5; DMB]).unwrap();
        still_works(&mut client, &mut server, 7);
        // The arena is full now: a fourth block does not exist.
        assert_eq!(
            lo.register_dmb(DMB).unwrap_err().kind(),
            ErrorKind::NoMemory
        );
        close_both(&mut client, &mut server);
        lo.unregister_dmb(fresh).unwrap();
        assert_all_given_back(&lo, &fx.host);
    }
}

#[test]
fn after_a_forged_unregister_a_full_arena_stays_full() {
    for nocopy in [false, true] {
        // Room for the two live DMBs only: had a forged unregister freed
        // one, it would be handed out again here.
        let lo = arena_device(2, 8, nocopy);
        let fx = Fixture::new(&lo, config(DMB));
        let (mut client, mut server) = fx.pair();
        drive(&mut client, &mut server, 0);
        for token in [tokens(&client).0, tokens(&server).0] {
            assert!(lo.unregister_dmb(forged_dmb(token)).is_err());
            let err = lo.register_dmb(DMB).unwrap_err();
            assert_eq!(err, LoError::OutOfMemory(DMB));
        }
        still_works(&mut client, &mut server, 9);
        close_both(&mut client, &mut server);
        assert_all_given_back(&lo, &fx.host);
        // Both blocks came back.
        let (a, b) = (lo.register_dmb(DMB).unwrap(), lo.register_dmb(DMB).unwrap());
        lo.unregister_dmb(a).unwrap();
        lo.unregister_dmb(b).unwrap();
    }
}
