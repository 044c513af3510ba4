//! The receive path of an SMC-D connection under a hostile peer: arbitrary
//! sequences of peer-written CDC headers and ring bytes, delivered through a
//! loopback device into our own DMB exactly as a peer's `move_data` would,
//! interleaved with `handle_signal`, `recv`, `recv_with` and `send`. Every
//! header goes through the connection's validator.
//!
//! Nothing may panic, and:
//! * `recv`/`recv_with` deliver exactly the ring bytes at our consumer
//!   position (a shadow copy of what the peer wrote), never more than
//!   announced and never after EOF;
//! * the counts stay inside the rings (`bytes_available` ≤ own ring,
//!   `send_space` + `bytes_in_flight` = peer ring);
//! * a rejected header kills the connection for good (sticky error, nothing
//!   received or sent any more) and writes our abort flag into the peer's
//!   header;
//! * at the end every DMB and binding is given back to the device.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::RngCore;
use smcd_core::conn::{ConnError, Connection};
use smcd_core::cursor::Cursor;
use smcd_core::dmb::{CDC_HEADER_LEN_BYTES, DMB_MIN_SIZE_BYTES, DmbToken};
use smcd_core::ops::{self, Dmb, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::wire::cdc::{self, CdcHeader, ConnStateFlags, ProducerFlags};
use smcd_lo::{HeapMemory, LoopbackDevice, NoDoorbell};

/// A fixed-seed xorshift RNG for the device's GID and tokens.
struct Rng(u64);

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dst);
    }
}

type Device = LoopbackDevice<HeapMemory, Rng>;

/// Ring bytes of both DMBs (16 KiB DMBs).
const RING: usize = DMB_MIN_SIZE_BYTES - CDC_HEADER_LEN_BYTES;

/// The test's side of the connection: the peer's DMB and binding, the
/// cursors the peer has announced, and what it wrote into our ring.
struct Peer {
    dmb: Dmb,
    binding: PeerDmb,
    /// Our DMB's token (where the peer writes).
    target: DmbToken,
    /// The producer cursor of the peer's last well-formed header.
    prod: Cursor,
    /// The consumer cursor (of our sent data) of that header.
    cons: Cursor,
    /// Sticky flags the peer has sent so far.
    conn_flags: ConnStateFlags,
    /// Every byte the peer wrote into our ring, at its ring offset.
    shadow: Vec<u8>,
}

impl Peer {
    fn header(&self, hdr: &[u8; 32], dev: &Device) {
        // The device refuses nothing the peer may send as a header: it
        // stores the 32 bytes (cursor words atomically) and signals.
        dev.move_data(self.target, 0, hdr, true)
            .expect("a 32-byte header at offset 0");
    }

    fn data(&mut self, at: usize, bytes: &[u8], dev: &Device) {
        let at = at % RING;
        let bytes = &bytes[..bytes.len().min(RING - at)];
        dev.move_data(self.target, CDC_HEADER_LEN_BYTES + at, bytes, false)
            .expect("ring bytes inside the DMB");
        self.shadow[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Our flags as the connection last wrote them into the peer's header.
    fn our_flags(&self) -> ConnStateFlags {
        cdc::snapshot(self.dmb.mem(), 0)
            .expect("the peer's header")
            .conn_state_flags
    }
}

/// Take a little-endian `u16` from the front of `data` (0 when short).
fn take_u16(data: &mut &[u8]) -> u16 {
    let v = match *data {
        [a, b, ..] => u16::from_le_bytes([*a, *b]),
        [a] => u16::from(*a),
        [] => 0,
    };
    *data = data.get(2..).unwrap_or_default();
    v
}

fn take_u8(data: &mut &[u8]) -> u8 {
    let v = data.first().copied().unwrap_or(0);
    *data = data.get(1..).unwrap_or_default();
    v
}

/// What the connection must look like after every step: whatever the peer
/// wrote, the counts stay inside the rings.
fn check_counts(c: &Connection) {
    assert!(c.bytes_available() <= RING);
    assert!(c.send_space() <= RING);
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, mut data)) = input.split_first() else {
        return;
    };
    let dev: Device = LoopbackDevice::new(HeapMemory, Rng(0x5eed_c0de_f00d_1234), NoDoorbell);
    dev.set_nocopy(mode & 1 != 0);
    let nocopy = dev.supports_nocopy();
    let own = dev.register_dmb(DMB_MIN_SIZE_BYTES).unwrap();
    let theirs = dev.register_dmb(DMB_MIN_SIZE_BYTES).unwrap();
    let id = |dmb: &Dmb| PeerDmbId {
        gid: dev.local_gid(),
        token: dmb.token(),
        len: DMB_MIN_SIZE_BYTES,
    };
    let to_peer = dev.attach_dmb(&own, id(&theirs), nocopy).unwrap();
    let to_us = dev.attach_dmb(&theirs, id(&own), false).unwrap();
    let target = own.token();
    let mut conn = Connection::new(own, to_peer);
    let mut peer = Peer {
        dmb: theirs,
        binding: to_us,
        target,
        prod: Cursor::ZERO,
        cons: Cursor::ZERO,
        conn_flags: ConnStateFlags::empty(),
        shadow: vec![0; RING],
    };
    let ring = RING as u32;
    // How far we consumed our ring, and whether EOF was seen.
    let mut consumed = Cursor::ZERO;
    let mut eof = false;
    let mut buf = [0u8; 4096];

    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        let was_dead = conn.error().is_some();
        match op % 8 {
            // A header of arbitrary bytes.
            0 => {
                let mut hdr = [0u8; 32];
                let n = data.len().min(32);
                hdr[..n].copy_from_slice(&data[..n]);
                data = &data[n..];
                peer.header(&hdr, &dev);
            }
            // A well-formed header advancing the peer's cursors by
            // input-chosen amounts (possibly beyond what is allowed),
            // with input-chosen flags.
            1 => {
                let prod_by = u32::from(take_u16(&mut data));
                let cons_by = u32::from(take_u16(&mut data));
                let pflags = ProducerFlags::from_bits_retain(take_u8(&mut data));
                let cflags = ConnStateFlags::from_bits_retain(take_u8(&mut data));
                let hdr = CdcHeader {
                    prod: peer.prod.add(ring, prod_by % (ring + 2)),
                    cons: peer.cons.add(ring, cons_by % (ring + 2)),
                    prod_flags: pflags,
                    conn_state_flags: cflags | peer.conn_flags,
                };
                peer.prod = hdr.prod;
                peer.cons = hdr.cons;
                peer.conn_flags = hdr.conn_state_flags;
                peer.header(&hdr.to_bytes(), &dev);
            }
            // Ring bytes at an input-chosen offset.
            2 => {
                let at = usize::from(take_u16(&mut data));
                let len = usize::from(take_u8(&mut data)).min(data.len());
                let (bytes, rest) = data.split_at(len);
                data = rest;
                peer.data(at, bytes, &dev);
            }
            // The doorbell: pick up the header.
            3 => {
                let before = conn.bytes_available();
                match conn.handle_signal(&dev) {
                    Ok(()) => {
                        if !was_dead && conn.error().is_none() {
                            assert!(conn.bytes_available() >= before);
                        }
                    }
                    Err(ConnError::Violation(_)) => {
                        assert!(matches!(conn.error(), Some(ConnError::Violation(_))));
                        assert!(
                            peer.our_flags().contains(ConnStateFlags::PEER_CONN_ABORT),
                            "a rejected header sends our abort"
                        );
                    }
                    Err(e) => panic!("handle_signal: {e:?}"),
                }
            }
            // Receive by copy, or in place.
            4 | 5 => {
                let want = usize::from(take_u16(&mut data)) % (buf.len() + 1);
                let before = conn.bytes_available();
                let at = consumed.count as usize;
                let got = if op % 8 == 4 {
                    conn.recv(&dev, &mut buf[..want]).map(|n| {
                        assert!(n <= want);
                        (n, buf[..n].to_vec())
                    })
                } else {
                    let mut seen = Vec::new();
                    conn.recv_with(&dev, |bytes| {
                        seen.extend_from_slice(&bytes[..want.min(bytes.len())]);
                        want
                    })
                    .map(|n| (n, seen))
                };
                match got {
                    Ok((0, _)) if want > 0 => {
                        // EOF: only once the peer ended its sending, with nothing left.
                        assert!(conn.peer_done_writing());
                        assert_eq!(before, 0);
                        eof = true;
                    }
                    Ok((n, bytes)) => {
                        assert!(!eof || n == 0, "data after EOF");
                        assert!(n <= before, "more than announced");
                        assert_eq!(bytes.len(), n);
                        // The bytes at our consumer position, wrapping.
                        for (i, b) in bytes.iter().enumerate() {
                            assert_eq!(*b, peer.shadow[(at + i) % RING], "byte {i} at {at}");
                        }
                        assert_eq!(conn.bytes_available(), before - n);
                        consumed = consumed.add(ring, n as u32);
                    }
                    Err(ConnError::WouldBlock) => assert_eq!(before, 0),
                    Err(e) => assert_eq!(conn.error(), Some(e), "only a dead connection fails"),
                }
            }
            // Send, so that the peer's consumer cursor has something to cover.
            6 => {
                let len = usize::from(take_u16(&mut data)) % (buf.len() + 1);
                let space = conn.send_space();
                match conn.send(&dev, &buf[..len]) {
                    Ok(n) => assert_eq!(n, len.min(space)),
                    Err(ConnError::WouldBlock) => assert_eq!(space, 0),
                    Err(e @ (ConnError::PeerClosed | ConnError::WriteShutdown)) => {
                        assert!(conn.error().is_none(), "{e:?} on a dead connection")
                    }
                    Err(e) => assert_eq!(conn.error(), Some(e), "only a dead connection fails"),
                }
            }
            // In-place send (nocopy only).
            _ => {
                let len = usize::from(take_u16(&mut data));
                let space = conn.send_space();
                match conn.send_with(&dev, |room| len.min(room.len())) {
                    _ if !nocopy => {}
                    Ok(n) => assert!(n <= len.min(space)),
                    Err(ConnError::WouldBlock) => assert_eq!(space, 0),
                    Err(ConnError::PeerClosed | ConnError::WriteShutdown) => {}
                    Err(e) => assert_eq!(conn.error(), Some(e), "only a dead connection fails"),
                }
                if !nocopy {
                    assert_eq!(conn.send_with(&dev, |_| 0), Err(ConnError::NocopyRequired));
                }
            }
        }
        check_counts(&conn);
        if was_dead {
            // Nothing revives a dead connection.
            assert!(conn.error().is_some());
            assert!(conn.recv(&dev, &mut buf).is_err());
            assert!(conn.send(&dev, b"x").is_err());
        }
    }

    // Give everything back: our DMB and binding, then the peer's.
    let (own, to_peer) = conn.into_dmbs();
    ops::give_back(&dev, Some(own), Some(to_peer)).unwrap();
    ops::give_back(&dev, Some(peer.dmb), Some(peer.binding)).unwrap();
    let stats = dev.stats();
    assert_eq!((stats.dmbs_in_use, stats.attachments), (0, 0));
});
