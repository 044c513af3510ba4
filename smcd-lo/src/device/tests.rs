use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_core::RngCore;
use smcd_core::dmb::{DmbError, DmbToken, Gid};
use smcd_core::ops::{Error, ErrorKind, SmcdOps};
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

fn arena(kib: usize) -> StaticArena {
    StaticArena::new(Box::leak(vec![0u8; kib * KIB].into_boxed_slice()))
}

type Lo<R = SmallRng, const N: usize = 8> = LoopbackDevice<StaticArena, R, CountingDoorbell, N>;

fn lo(kib: usize) -> Lo {
    LoopbackDevice::new(
        arena(kib),
        SmallRng::seed_from_u64(42),
        CountingDoorbell::new(),
    )
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
    assert_eq!(dev.register_dmb(16 * KIB).unwrap().token, DmbToken(7));
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
    assert_eq!((small.mem.len(), big.mem.len()), (16 * KIB, 1024 * KIB));
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
    dev.register_dmb(16 * KIB).unwrap();
    let err = dev.register_dmb(16 * KIB).unwrap_err();
    assert_eq!((err, err.kind()), (LoError::DmbLimit, ErrorKind::NoSpace));
    dev.unregister_dmb(a.token).unwrap();
    dev.register_dmb(16 * KIB).unwrap();
    assert_eq!(dev.stats().dmbs_peak, 2);
}

#[test]
fn zero_and_colliding_tokens_are_redrawn() {
    let dev: Lo<Script> = LoopbackDevice::new(
        arena(64),
        script(&[1, 2, 0, 5, 5, 9, 5]),
        CountingDoorbell::new(),
    );
    assert_eq!(dev.register_dmb(16 * KIB).unwrap().token, DmbToken(5));
    assert_eq!(dev.register_dmb(16 * KIB).unwrap().token, DmbToken(9));
    // From now on the RNG only repeats 5: registration gives up cleanly and
    // returns the memory it took.
    let err = dev.register_dmb(16 * KIB).unwrap_err();
    assert_eq!((err, err.kind()), (LoError::TokenDraws, ErrorKind::Other));
    dev.unregister_dmb(DmbToken(5)).unwrap();
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
    a.mem.write(40, b"old").unwrap();
    dev.unregister_dmb(a.token).unwrap();
    let c = dev.register_dmb(32 * KIB).unwrap();
    assert_eq!(c.mem.as_ptr(), a.mem.as_ptr(), "freed block reused");
    let mut got = [1u8; 3];
    c.mem.read(40, &mut got).unwrap();
    assert_eq!(got, [0; 3], "reused memory is zeroed");
    assert_ne!(c.token, a.token);
    dev.unregister_dmb(b.token).unwrap();
    dev.unregister_dmb(c.token).unwrap();
    assert_eq!(dev.stats().dmbs_in_use, 0);
}

#[test]
fn move_data_copies_into_the_ring_within_bounds() {
    let dev = lo(64);
    let d = dev.register_dmb(16 * KIB).unwrap();
    dev.move_data(d.token, 32, b"abc", false).unwrap();
    dev.move_data(d.token, 16 * KIB - 2, b"yz", false).unwrap();
    let mut got = [0u8; 3];
    d.mem.read(32, &mut got).unwrap();
    assert_eq!(&got, b"abc");

    for (offset, len) in [(16 * KIB - 1, 2), (16 * KIB, 1), (usize::MAX, 1)] {
        let err = dev
            .move_data(d.token, offset, &vec![0; len], false)
            .unwrap_err();
        assert!(matches!(err, LoError::OutOfBounds(_)), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::OutOfBounds);
    }
    // Data never goes into the header, and a signal needs the whole header.
    for (offset, len, signal) in [(8, 8, false), (0, 31, false), (0, 33, true), (32, 4, true)] {
        let err = dev
            .move_data(d.token, offset, &vec![0; len], signal)
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
    dev.move_data(d.token, 0, &header(0x11, 0x22), true)
        .unwrap();
    assert_eq!(d.mem.load_u64(8, Ordering::Acquire).unwrap(), 0x11);
    assert_eq!(d.mem.load_u64(16, Ordering::Acquire).unwrap(), 0x22);
    assert_eq!(
        (dev.doorbell().count(), dev.doorbell().last()),
        (1, Some(d.token))
    );
    // Without signal the header is stored the same way, but nobody is told.
    dev.move_data(d.token, 0, &header(0x33, 0x44), false)
        .unwrap();
    assert_eq!(d.mem.load_u64(8, Ordering::Acquire).unwrap(), 0x33);
    assert_eq!(dev.doorbell().count(), 1);
    dev.signal_dmb(d.token).unwrap();
    assert_eq!(dev.doorbell().count(), 2);
    assert!(dev.signal_dmb(DmbToken(3)).is_err());
    let s = dev.stats();
    assert_eq!((s.signals, s.bytes_moved), (2, 64));
}

#[test]
fn unregister_while_attached_frees_at_last_detach() {
    // Room for exactly one 16 KiB DMB: a new one fits only once it is freed.
    let dev = lo(16);
    let own = dev.register_dmb(16 * KIB).unwrap();
    let peer = dev.attach_dmb(own.token).unwrap();
    assert_eq!(peer.mem.as_ptr(), own.mem.as_ptr());
    dev.attach_dmb(own.token).unwrap();

    dev.unregister_dmb(own.token).unwrap();
    // The memory stays for the attachers, but nobody reads it any more.
    peer.mem.write(32, b"still mapped").unwrap();
    let err = dev.move_data(own.token, 32, b"x", false).unwrap_err();
    assert_eq!(
        (err, err.kind()),
        (LoError::PeerGone(own.token), ErrorKind::PeerGone)
    );
    assert_eq!(
        dev.signal_dmb(own.token).unwrap_err().kind(),
        ErrorKind::PeerGone
    );
    assert_eq!(
        dev.attach_dmb(own.token).unwrap_err().kind(),
        ErrorKind::InvalidToken
    );
    assert_eq!(
        dev.unregister_dmb(own.token).unwrap_err().kind(),
        ErrorKind::InvalidToken
    );
    assert_eq!(
        dev.register_dmb(16 * KIB).unwrap_err().kind(),
        ErrorKind::NoMemory
    );

    dev.detach_dmb(own.token).unwrap();
    assert_eq!(dev.stats().dmbs_in_use, 1);
    dev.detach_dmb(own.token).unwrap();
    assert_eq!(dev.stats().dmbs_in_use, 0);
    assert_eq!(
        dev.detach_dmb(own.token).unwrap_err().kind(),
        ErrorKind::InvalidToken
    );
    let again = dev.register_dmb(16 * KIB).unwrap();
    assert_eq!(again.mem.as_ptr(), own.mem.as_ptr());
}

#[test]
fn detach_without_attach_is_rejected() {
    let dev = lo(16);
    let own = dev.register_dmb(16 * KIB).unwrap();
    let err = dev.detach_dmb(own.token).unwrap_err();
    assert_eq!(err, LoError::Table(own.token, DmbError::NotAttached));
    dev.unregister_dmb(own.token).unwrap();
}

#[test]
fn heap_backed_device_works() {
    let dev: LoopbackDevice<HeapMemory, SmallRng> =
        LoopbackDevice::new(HeapMemory, SmallRng::seed_from_u64(3), NoDoorbell);
    let d = dev.register_dmb(1024 * KIB).unwrap();
    dev.move_data(d.token, 1024 * KIB - 4, b"tail", false)
        .unwrap();
    dev.unregister_dmb(d.token).unwrap();
}

#[test]
fn two_threads_share_the_device() {
    let dev: Lo<SmallRng, 4> = LoopbackDevice::new(
        arena(64),
        SmallRng::seed_from_u64(9),
        CountingDoorbell::new(),
    );
    std::thread::scope(|s| {
        for byte in [1u8, 2] {
            let dev = &dev;
            s.spawn(move || {
                for _ in 0..200 {
                    let d = dev.register_dmb(16 * KIB).unwrap();
                    dev.move_data(d.token, 32, &[byte; 8], false).unwrap();
                    dev.move_data(d.token, 0, &header(1, 2), true).unwrap();
                    let mut got = [0u8; 8];
                    d.mem.read(32, &mut got).unwrap();
                    assert_eq!(got, [byte; 8]);
                    dev.unregister_dmb(d.token).unwrap();
                }
            });
        }
    });
    let s = dev.stats();
    assert_eq!((s.dmbs_registered, s.dmbs_in_use, s.signals), (400, 0, 400));
    assert_eq!(dev.doorbell().count(), 400);
}
