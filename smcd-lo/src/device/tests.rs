use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_core::RngCore;
use smcd_core::dmb::{DmbError, DmbToken, Gid};
use smcd_core::ops::{Error, ErrorKind, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::sync::Ordering;

use super::*;
use crate::{CountingDoorbell, HeapMemory, StaticArena};

const KIB: usize = 1024;

/// An RNG that plays back `values`, then repeats the last one.
struct Script {
    values: Vec<u64>,
    next: usize,
}

fn script(values: &[u64]) -> Script {
    Script {
        values: values.to_vec(),
        next: 0,
    }
}

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        let v = self.values[self.next.min(self.values.len() - 1)];
        self.next += 1;
        v
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dst);
    }
}

/// `len` leaked bytes of `fill` starting on an 8-byte boundary (the global
/// allocator need not align a byte buffer: Miri does not).
fn aligned(len: usize, fill: u8) -> &'static mut [u8] {
    let buf = Box::leak(vec![fill; len + 8].into_boxed_slice());
    let skip = buf.as_ptr().align_offset(8);
    &mut buf[skip..skip + len]
}

fn arena(kib: usize) -> StaticArena {
    StaticArena::new(aligned(kib * KIB, 0))
}

type Lo<R = SmallRng, const N: usize = 8> = LoopbackDevice<StaticArena, R, CountingDoorbell, N>;

fn lo(kib: usize) -> Lo {
    LoopbackDevice::new(
        arena(kib),
        SmallRng::seed_from_u64(42),
        CountingDoorbell::new(),
    )
}

/// `len` zeroed, 8-aligned bytes that are nobody's DMB (leaked): the memory
/// of a forged handle.
fn foreign(len: usize) -> DmbMem {
    let buf = Box::leak(vec![0u8; len + 8].into_boxed_slice());
    let skip = buf.as_ptr().align_offset(8);
    DmbMem::from_static(&mut buf[skip..skip + len]).unwrap()
}

/// The peer DMB `token` of `len` bytes on `dev` (as an Accept names it).
fn id<D: SmcdOps>(dev: &D, token: DmbToken, len: usize) -> PeerDmbId {
    PeerDmbId {
        gid: dev.local_gid(),
        token,
        len,
    }
}

/// A header image with the given prod and cons words.
fn header(prod: u64, cons: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0] = 0xFE;
    h[8..16].copy_from_slice(&prod.to_ne_bytes());
    h[16..24].copy_from_slice(&cons.to_ne_bytes());
    h
}

#[test]
fn identity_comes_from_the_rng() {
    let dev: Lo<Script> =
        LoopbackDevice::new(arena(16), script(&[0xA, 0xB, 7]), CountingDoorbell::new());
    assert_eq!(dev.local_gid(), Gid::new(0xA, 0xB));
    assert_eq!(dev.chid(), Chid::LOOPBACK);
    assert!(dev.supports_v2() && dev.supports_nocopy());
    assert!(dev.query_remote_gid(Gid::new(0xA, 0xB)).is_ok());
    let err = dev.query_remote_gid(Gid::new(0xA, 0xC)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    // The next draw is the first token.
    let d = dev.register_dmb(16 * KIB).unwrap();
    assert_eq!(d.token(), DmbToken(7));
    dev.unregister_dmb(d).unwrap();
    assert_eq!(dev.stats().dmbs_in_use, 0);
}

#[test]
fn only_smc_d_sizes_are_registered() {
    let dev = lo(2 * 1024 + 64);
    for bad in [0, 16 * KIB - 1, 1024 * KIB + 1] {
        let err = dev.register_dmb(bad).unwrap_err();
        assert_eq!(err, LoError::UnsupportedSize(bad));
        assert_eq!(err.kind(), ErrorKind::NoMemory);
    }
    let small = dev.register_dmb(16 * KIB).unwrap();
    let big = dev.register_dmb(1024 * KIB).unwrap();
    assert_eq!((small.len(), big.len()), (16 * KIB, 1024 * KIB));
    assert_eq!((small.mem().len(), big.mem().len()), (16 * KIB, 1024 * KIB));
    let s = dev.stats();
    assert_eq!(
        (s.dmbs_registered, s.register_failures, s.dmbs_in_use),
        (2, 3, 2)
    );
}

#[test]
fn dmb_limit_fails_with_no_space() {
    let dev: Lo<SmallRng, 2> = LoopbackDevice::new(
        arena(64),
        SmallRng::seed_from_u64(1),
        CountingDoorbell::new(),
    );
    let a = dev.register_dmb(16 * KIB).unwrap();
    let _b = dev.register_dmb(16 * KIB).unwrap();
    let err = dev.register_dmb(16 * KIB).unwrap_err();
    assert_eq!((err, err.kind()), (LoError::DmbLimit, ErrorKind::NoSpace));
    dev.unregister_dmb(a).unwrap();
    let _c = dev.register_dmb(16 * KIB).unwrap();
    assert_eq!(dev.stats().dmbs_peak, 2);
}

#[test]
fn zero_and_colliding_tokens_are_redrawn() {
    let dev: Lo<Script> = LoopbackDevice::new(
        arena(64),
        script(&[1, 2, 0, 5, 5, 9, 5]),
        CountingDoorbell::new(),
    );
    let five = dev.register_dmb(16 * KIB).unwrap();
    let _nine = dev.register_dmb(16 * KIB).unwrap();
    assert_eq!((five.token(), _nine.token()), (DmbToken(5), DmbToken(9)));
    // From now on the RNG only repeats 5: registration gives up cleanly and
    // returns the memory it took.
    let err = dev.register_dmb(16 * KIB).unwrap_err();
    assert_eq!((err, err.kind()), (LoError::TokenDraws, ErrorKind::Other));
    assert_eq!(dev.stats().dmbs_in_use, 2);
    dev.unregister_dmb(five).unwrap();
    assert!(
        dev.register_dmb(32 * KIB).is_ok(),
        "the failed attempt freed its memory"
    );
}

#[test]
fn arena_exhaustion_and_reuse() {
    let dev = lo(48);
    let a = dev.register_dmb(32 * KIB).unwrap();
    let err = dev.register_dmb(32 * KIB).unwrap_err();
    assert_eq!(
        (err, err.kind()),
        (LoError::OutOfMemory(32 * KIB), ErrorKind::NoMemory)
    );
    let b = dev.register_dmb(16 * KIB).unwrap();
    a.mem().write(40, b"old").unwrap();
    let (a_token, a_region) = (a.token(), a.mem().region());
    dev.unregister_dmb(a).unwrap();
    let c = dev.register_dmb(32 * KIB).unwrap();
    assert_eq!(c.mem().region(), a_region, "freed block reused");
    let mut got = [1u8; 3];
    c.mem().read(40, &mut got).unwrap();
    assert_eq!(got, [0; 3], "reused memory is zeroed");
    assert_ne!(c.token(), a_token);
    dev.unregister_dmb(b).unwrap();
    dev.unregister_dmb(c).unwrap();
    assert_eq!(dev.stats().dmbs_in_use, 0);
}

#[test]
fn move_data_copies_into_the_ring_within_bounds() {
    let dev = lo(64);
    let d = dev.register_dmb(16 * KIB).unwrap();
    dev.move_data(d.token(), 32, b"abc", false).unwrap();
    dev.move_data(d.token(), 16 * KIB - 2, b"yz", false)
        .unwrap();
    let mut got = [0u8; 3];
    d.mem().read(32, &mut got).unwrap();
    assert_eq!(&got, b"abc");

    for (offset, len) in [(16 * KIB - 1, 2), (16 * KIB, 1), (usize::MAX, 1)] {
        let err = dev
            .move_data(d.token(), offset, &vec![0; len], false)
            .unwrap_err();
        assert!(matches!(err, LoError::OutOfBounds(_)), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::OutOfBounds);
    }
    // Data never goes into the header, and a signal needs the whole header.
    for (offset, len, signal) in [(8, 8, false), (0, 31, false), (0, 33, true), (32, 4, true)] {
        let err = dev
            .move_data(d.token(), offset, &vec![0; len], signal)
            .unwrap_err();
        assert_eq!(err, LoError::BadHeaderWrite { offset, len });
    }
    let err = dev
        .move_data(DmbToken(0xDEAD), 32, b"x", false)
        .unwrap_err();
    assert_eq!(err, LoError::Table(DmbToken(0xDEAD), DmbError::NotFound));
    assert_eq!(err.kind(), ErrorKind::InvalidToken);
    assert_eq!(dev.stats().bytes_moved, 5);
    assert_eq!(dev.doorbell().count(), 0);
}

#[test]
fn header_write_publishes_and_rings() {
    let dev = lo(64);
    let d = dev.register_dmb(16 * KIB).unwrap();
    dev.move_data(d.token(), 0, &header(0x11, 0x22), true)
        .unwrap();
    assert_eq!(d.mem().load_u64(8, Ordering::Acquire).unwrap(), 0x11);
    assert_eq!(d.mem().load_u64(16, Ordering::Acquire).unwrap(), 0x22);
    assert_eq!(
        (dev.doorbell().count(), dev.doorbell().last()),
        (1, Some(d.token()))
    );
    // Without signal the header is stored the same way, but nobody is told.
    dev.move_data(d.token(), 0, &header(0x33, 0x44), false)
        .unwrap();
    assert_eq!(d.mem().load_u64(8, Ordering::Acquire).unwrap(), 0x33);
    assert_eq!(dev.doorbell().count(), 1);
    dev.signal_dmb(d.token()).unwrap();
    assert_eq!(dev.doorbell().count(), 2);
    assert!(dev.signal_dmb(DmbToken(3)).is_err());
    let s = dev.stats();
    assert_eq!((s.signals, s.bytes_moved), (2, 64));
}

#[test]
fn unregister_while_attached_frees_at_last_detach() {
    // Room for exactly three 16 KiB DMBs: a fourth fits only once one is freed.
    let dev = lo(48);
    let recv = dev.register_dmb(16 * KIB).unwrap();
    let send = dev.register_dmb(16 * KIB).unwrap();
    let third = dev.register_dmb(16 * KIB).unwrap();
    let recv_token = recv.token();
    let recv_region = recv.mem().region();
    let peer = dev
        .attach_dmb(&send, id(&dev, recv_token, 16 * KIB), true)
        .unwrap();
    assert_eq!((peer.token(), peer.own_token()), (recv_token, send.token()));
    assert_eq!(peer.len(), 16 * KIB);
    let ring = peer.ring().unwrap();
    assert_eq!(
        ring.region(),
        recv_region.tail(32).unwrap(),
        "the ring, not the header"
    );
    assert_eq!(dev.stats().attachments, 1);
    // The mapping writes straight into the peer's ring.
    ring.write(0, b"mapped").unwrap();
    let mut got = [0u8; 6];
    recv.mem().read(32, &mut got).unwrap();
    assert_eq!(&got, b"mapped");
    // A DMB takes one sender only.
    assert_eq!(
        dev.attach_dmb(&third, id(&dev, recv_token, 16 * KIB), true)
            .unwrap_err(),
        LoError::Table(recv_token, DmbError::Bound)
    );
    assert_eq!(dev.stats().attachments, 1);
    assert_eq!(
        dev.register_dmb(16 * KIB).unwrap_err().kind(),
        ErrorKind::NoMemory
    );

    dev.unregister_dmb(recv).unwrap();
    // The memory stays for the mapper, but nobody reads it any more.
    ring.write(0, b"still mapped").unwrap();
    let err = dev.move_data(recv_token, 32, b"x", false).unwrap_err();
    assert_eq!(
        (err, err.kind()),
        (LoError::PeerGone(recv_token), ErrorKind::PeerGone)
    );
    assert_eq!(
        dev.signal_dmb(recv_token).unwrap_err().kind(),
        ErrorKind::PeerGone
    );
    assert_eq!(
        dev.register_dmb(16 * KIB).unwrap_err().kind(),
        ErrorKind::NoMemory
    );
    assert_eq!(dev.stats().dmbs_in_use, 3);
    // It takes no new binding: its old sender is still paired with it (a
    // pairing ends only by detach), a third DMB finds it unregistered; and
    // it cannot be unregistered twice.
    for (d, why) in [(&send, DmbError::Bound), (&third, DmbError::Unregistered)] {
        assert_eq!(
            dev.attach_dmb(d, id(&dev, recv_token, 16 * KIB), false)
                .unwrap_err(),
            LoError::Table(recv_token, why)
        );
    }
    let forged_again = Dmb::new(recv_token, foreign(16 * KIB)).unwrap();
    assert!(dev.unregister_dmb(forged_again).is_err());

    dev.detach_dmb(peer).unwrap();
    let s = dev.stats();
    assert_eq!((s.dmbs_in_use, s.attachments), (2, 0));
    // Gone: nothing is left to detach.
    let late = PeerDmb::new(
        send.token(),
        recv_token,
        16 * KIB,
        Some(foreign(16 * KIB - 32)),
    );
    let err = dev.detach_dmb(late.unwrap()).unwrap_err();
    assert_eq!(
        (err, err.kind()),
        (
            LoError::Table(recv_token, DmbError::NotFound),
            ErrorKind::InvalidToken
        )
    );
    let again = dev.register_dmb(16 * KIB).unwrap();
    assert_eq!(
        again.mem().region(),
        recv_region,
        "freed at the last detach"
    );
    let mut zeroed = [1u8; 12];
    again.mem().read(32, &mut zeroed).unwrap();
    assert_eq!(zeroed, [0; 12]);
    for d in [again, send, third] {
        dev.unregister_dmb(d).unwrap();
    }
    assert_eq!(dev.stats().dmbs_in_use, 0);
}

#[test]
fn a_dmb_takes_one_sender_and_a_pair_names_each_other() {
    let dev = lo(64);
    let (a, b, c) = (
        dev.register_dmb(16 * KIB).unwrap(),
        dev.register_dmb(16 * KIB).unwrap(),
        dev.register_dmb(16 * KIB).unwrap(),
    );
    let (ta, tb) = (a.token(), b.token());
    // Not its own peer, mapped or not.
    for map in [false, true] {
        assert_eq!(
            dev.attach_dmb(&a, id(&dev, ta, 16 * KIB), map).unwrap_err(),
            LoError::Table(ta, DmbError::SelfBind)
        );
    }
    // The announced length must be the DMB's.
    assert_eq!(
        dev.attach_dmb(&a, id(&dev, tb, 32 * KIB), false)
            .unwrap_err(),
        LoError::Table(tb, DmbError::LengthMismatch)
    );
    let a_to_b = dev.attach_dmb(&a, id(&dev, tb, 16 * KIB), false).unwrap();
    assert!(a_to_b.ring().is_none(), "copy mode maps nothing");
    assert_eq!(dev.stats().attachments, 0);
    // `b` has its sender, and `a` its peer.
    assert_eq!(
        dev.attach_dmb(&c, id(&dev, tb, 16 * KIB), true)
            .unwrap_err(),
        LoError::Table(tb, DmbError::Bound)
    );
    assert_eq!(
        dev.attach_dmb(&a, id(&dev, c.token(), 16 * KIB), false)
            .unwrap_err(),
        LoError::Table(c.token(), DmbError::Bound)
    );
    // `a` is paired with `b`: a third DMB cannot send into it, only `b` can.
    assert_eq!(
        dev.attach_dmb(&c, id(&dev, ta, 16 * KIB), false)
            .unwrap_err(),
        LoError::Table(ta, DmbError::Bound)
    );
    let b_to_a = dev.attach_dmb(&b, id(&dev, ta, 16 * KIB), true).unwrap();
    assert_eq!(dev.stats().attachments, 1);
    assert_eq!(
        dev.attach_dmb(&b, id(&dev, ta, 16 * KIB), true)
            .unwrap_err(),
        LoError::Table(ta, DmbError::Bound),
        "no second binding of the same pair"
    );
    assert_eq!(dev.stats().attachments, 1, "a refused attach maps nothing");
    // Once the pair is undone, its DMBs are free to pair again.
    dev.detach_dmb(b_to_a).unwrap();
    dev.detach_dmb(a_to_b).unwrap();
    let c_to_a = dev.attach_dmb(&c, id(&dev, ta, 16 * KIB), true).unwrap();
    dev.detach_dmb(c_to_a).unwrap();
    for d in [a, b, c] {
        dev.unregister_dmb(d).unwrap();
    }
    let s = dev.stats();
    assert_eq!((s.dmbs_in_use, s.attachments), (0, 0));
}

#[test]
fn nocopy_mappings_follow_the_switch() {
    let dev = lo(32);
    let (a, b) = (
        dev.register_dmb(16 * KIB).unwrap(),
        dev.register_dmb(16 * KIB).unwrap(),
    );
    dev.set_nocopy(false);
    assert!(!dev.supports_nocopy());
    let err = dev
        .attach_dmb(&a, id(&dev, b.token(), 16 * KIB), true)
        .unwrap_err();
    assert_eq!(
        (err, err.kind()),
        (LoError::NocopyOff, ErrorKind::Unsupported)
    );
    // The refused mapping bound nothing: the copy binding still works.
    let copy = dev
        .attach_dmb(&a, id(&dev, b.token(), 16 * KIB), false)
        .unwrap();
    assert!(copy.ring().is_none());
    dev.detach_dmb(copy).unwrap();
    dev.set_nocopy(true);
    let mapped = dev
        .attach_dmb(&a, id(&dev, b.token(), 16 * KIB), true)
        .unwrap();
    assert!(mapped.ring().is_some());
    dev.detach_dmb(mapped).unwrap();
    dev.unregister_dmb(a).unwrap();
    dev.unregister_dmb(b).unwrap();
    assert_eq!(dev.stats().dmbs_in_use, 0);
}

#[test]
#[allow(unsafe_code)] // a second view of a live ring, to detach it twice
fn detach_without_attach_is_rejected() {
    let dev = lo(32);
    let own = dev.register_dmb(16 * KIB).unwrap();
    let peer = dev.register_dmb(16 * KIB).unwrap();
    let ring = peer.mem().region().tail(32).unwrap();
    let mapping = dev
        .attach_dmb(&own, id(&dev, peer.token(), 16 * KIB), true)
        .unwrap();
    dev.detach_dmb(mapping).unwrap();
    // SAFETY: `peer` stays registered for the rest of the test, so its ring
    // is valid; the view is only handed to the device, which drops it.
    let again = PeerDmb::new(
        own.token(),
        peer.token(),
        16 * KIB,
        Some(unsafe { DmbMem::from_region(ring) }),
    )
    .unwrap();
    let err = dev.detach_dmb(again).unwrap_err();
    assert_eq!(err, LoError::Table(peer.token(), DmbError::NotAttached));
    assert_eq!(err.kind(), ErrorKind::InvalidToken);
    assert_eq!(dev.stats().attachments, 0);
    dev.unregister_dmb(own).unwrap();
    dev.unregister_dmb(peer).unwrap();
    assert_eq!(dev.stats().dmbs_in_use, 0);
}

#[test]
fn forged_and_foreign_handles_are_refused() {
    let dev = lo(48);
    // The same seed: the other device hands out the same tokens.
    let other = lo(32);
    let own = dev.register_dmb(16 * KIB).unwrap();
    let peer = dev.register_dmb(16 * KIB).unwrap();
    let (t_own, t_peer) = (own.token(), peer.token());
    let mapping = dev
        .attach_dmb(&own, id(&dev, t_peer, 16 * KIB), true)
        .unwrap();

    // A handle with a live token over other memory frees nothing.
    let forged = Dmb::new(t_peer, foreign(16 * KIB)).unwrap();
    assert_eq!(
        dev.unregister_dmb(forged).unwrap_err(),
        LoError::Table(t_peer, DmbError::Foreign)
    );
    // Nor does it bind anything in the name of the real one.
    let forged = Dmb::new(t_own, foreign(16 * KIB)).unwrap();
    let err = dev
        .attach_dmb(&forged, id(&dev, t_peer, 16 * KIB), false)
        .unwrap_err();
    assert_eq!(err, LoError::Table(t_peer, DmbError::Foreign));
    assert_eq!(err.kind(), ErrorKind::InvalidToken);
    // Another device's DMB is not this device's, even under the same token.
    let stranger = other.register_dmb(16 * KIB).unwrap();
    assert_eq!(stranger.token(), t_own);
    assert_eq!(
        dev.attach_dmb(&stranger, id(&dev, t_peer, 16 * KIB), false)
            .unwrap_err(),
        LoError::Table(t_peer, DmbError::Foreign)
    );
    assert_eq!(
        dev.unregister_dmb(stranger).unwrap_err(),
        LoError::Table(t_own, DmbError::Foreign)
    );
    // A forged mapping of the real pair cannot drop the real reference.
    let forged = PeerDmb::new(t_own, t_peer, 16 * KIB, Some(foreign(16 * KIB - 32))).unwrap();
    assert_eq!(
        dev.detach_dmb(forged).unwrap_err(),
        LoError::Table(t_peer, DmbError::Foreign)
    );
    // Nor can an unmapped (copy-mode) handle undo the mapped binding.
    let forged = PeerDmb::new(t_own, t_peer, 16 * KIB, None).unwrap();
    assert_eq!(
        dev.detach_dmb(forged).unwrap_err(),
        LoError::Table(t_peer, DmbError::Foreign)
    );
    let s = dev.stats();
    assert_eq!((s.dmbs_in_use, s.attachments), (2, 1));
    // The binding stands: a third DMB cannot send into the peer.
    let third = dev.register_dmb(16 * KIB).unwrap();
    assert_eq!(
        dev.attach_dmb(&third, id(&dev, t_peer, 16 * KIB), true)
            .unwrap_err(),
        LoError::Table(t_peer, DmbError::Bound)
    );
    dev.unregister_dmb(third).unwrap();
    // The real handles still work and still come back.
    dev.move_data(t_peer, 32, b"live", false).unwrap();
    let mut got = [0u8; 4];
    mapping.ring().unwrap().read(0, &mut got).unwrap();
    assert_eq!(&got, b"live");
    dev.detach_dmb(mapping).unwrap();
    dev.unregister_dmb(peer).unwrap();
    dev.unregister_dmb(own).unwrap();
    let s = dev.stats();
    assert_eq!((s.dmbs_in_use, s.attachments), (0, 0));
    assert_eq!(
        other.stats().dmbs_in_use,
        1,
        "the stranger was leaked, not freed"
    );
}

#[test]
fn heap_backed_device_works() {
    let dev: LoopbackDevice<HeapMemory, SmallRng> =
        LoopbackDevice::new(HeapMemory, SmallRng::seed_from_u64(3), NoDoorbell);
    let d = dev.register_dmb(1024 * KIB).unwrap();
    dev.move_data(d.token(), 1024 * KIB - 4, b"tail", false)
        .unwrap();
    dev.unregister_dmb(d).unwrap();
}

#[test]
fn two_threads_share_the_device() {
    let dev: Lo<SmallRng, 4> = LoopbackDevice::new(
        arena(64),
        SmallRng::seed_from_u64(9),
        CountingDoorbell::new(),
    );
    // Each round zeroes a 16 KiB DMB, which the interpreter does slowly.
    let rounds: u64 = if cfg!(miri) { 8 } else { 200 };
    std::thread::scope(|s| {
        for byte in [1u8, 2] {
            let dev = &dev;
            s.spawn(move || {
                for _ in 0..rounds {
                    let d = dev.register_dmb(16 * KIB).unwrap();
                    dev.move_data(d.token(), 32, &[byte; 8], false).unwrap();
                    dev.move_data(d.token(), 0, &header(1, 2), true).unwrap();
                    let mut got = [0u8; 8];
                    d.mem().read(32, &mut got).unwrap();
                    assert_eq!(got, [byte; 8]);
                    dev.unregister_dmb(d).unwrap();
                }
            });
        }
    });
    let s = dev.stats();
    let all = 2 * rounds;
    assert_eq!((s.dmbs_registered, s.dmbs_in_use, s.signals), (all, 0, all));
    assert_eq!(dev.doorbell().count() as u64, all);
}
