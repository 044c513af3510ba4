//! The receive path of an SMC-D connection under a hostile peer, as a model
//! that both the `conn_rx` fuzz target (`fuzz/`, through [`run`] on raw
//! bytes) and the proptest `conn_rx_model` (through [`run_ops`] on generated
//! operations) drive: arbitrary sequences of peer-written CDC headers and
//! ring bytes, delivered through a loopback device into our own DMB exactly
//! as a peer's `move_data` would, interleaved with `handle_signal`, `recv`,
//! `recv_with`, `send` and `send_with`. Every header goes through the
//! connection's validator.
//!
//! Nothing may panic, and:
//! * `recv`/`recv_with` deliver exactly the ring bytes at our consumer
//!   position (a shadow copy of what the peer wrote), never more than a
//!   header that passed validation announced, and never after EOF;
//! * the counts stay inside the rings (`bytes_available` ≤ own ring,
//!   `send_space` ≤ peer ring);
//! * every error is typed, and an error other than "would block" or a
//!   closed direction comes only from a dead connection;
//! * a rejected header kills the connection for good (sticky error, nothing
//!   received or sent any more) and writes our abort flag into the peer's
//!   header;
//! * at the end every DMB and binding is given back to the device.

use rand_core::RngCore;
use smcd_core::conn::{ConnError, Connection};
use smcd_core::cursor::{self, Cursor};
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

/// Bytes one receive or send asks for at most.
const CHUNK: usize = 4096;

/// One step of the simulated peer, or of our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// A header of arbitrary bytes.
    RawHeader([u8; 32]),
    /// A well-formed header advancing the peer's cursors by these amounts
    /// (taken modulo ring + 2: possibly beyond what is allowed), with these
    /// flags (the sticky ones sent before kept).
    Header {
        prod_by: u16,
        cons_by: u16,
        prod_flags: u8,
        conn_flags: u8,
    },
    /// Ring bytes at an offset (taken modulo the ring, cut at its end).
    Data { at: u16, bytes: Vec<u8> },
    /// The doorbell: pick up the header.
    Signal,
    /// Receive by copy, up to this many bytes (modulo `CHUNK + 1`).
    Recv(u16),
    /// Receive in place, consuming up to this many bytes.
    RecvWith(u16),
    /// Send by copy, this many bytes (modulo `CHUNK + 1`).
    Send(u16),
    /// Send in place (nocopy only), this many bytes at most.
    SendWith(u16),
    /// What a conforming peer does: fill this share (of 255) of the room it
    /// has in our ring with fresh bytes, acknowledge this share of what we
    /// sent it, and publish the header (flags as before).
    Honest { prod_share: u8, cons_share: u8 },
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

impl Op {
    /// The next operation encoded at the front of `data` (an op byte, then
    /// its arguments; missing bytes read as zero).
    fn decode(op: u8, data: &mut &[u8]) -> Op {
        match op % 9 {
            0 => {
                let mut hdr = [0u8; 32];
                let n = data.len().min(32);
                hdr[..n].copy_from_slice(&data[..n]);
                *data = &data[n..];
                Op::RawHeader(hdr)
            }
            1 => Op::Header {
                prod_by: take_u16(data),
                cons_by: take_u16(data),
                prod_flags: take_u8(data),
                conn_flags: take_u8(data),
            },
            2 => {
                let at = take_u16(data);
                let len = usize::from(take_u8(data)).min(data.len());
                let (bytes, rest) = data.split_at(len);
                *data = rest;
                Op::Data {
                    at,
                    bytes: bytes.to_vec(),
                }
            }
            3 => Op::Signal,
            4 => Op::Recv(take_u16(data)),
            5 => Op::RecvWith(take_u16(data)),
            6 => Op::Send(take_u16(data)),
            7 => Op::SendWith(take_u16(data)),
            _ => Op::Honest {
                prod_share: take_u8(data),
                cons_share: take_u8(data),
            },
        }
    }
}

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

    /// Our header as the connection last wrote it into the peer's DMB.
    fn ours(&self) -> CdcHeader {
        cdc::snapshot(self.dmb.mem(), 0).expect("the peer's header")
    }

    /// Our flags as the connection last wrote them into the peer's header.
    fn our_flags(&self) -> ConnStateFlags {
        self.ours().conn_state_flags
    }

    /// A conforming peer's next header: `prod_share`/255 of its room in our
    /// ring (up to what we consumed, `consumed`) filled with bytes counted
    /// from `fill`, `cons_share`/255 of our unacknowledged bytes taken.
    fn honest(&mut self, dev: &Device, consumed: Cursor, shares: (u8, u8), fill: &mut u8) {
        let ring = RING as u32;
        let share = |of: u32, s: u8| (u64::from(of) * u64::from(s) / 255) as u32;
        let room = ring.saturating_sub(cursor::diff(ring, consumed, self.prod));
        let n = share(room, shares.0);
        let bytes: Vec<u8> = (0..n)
            .map(|_| {
                *fill = fill.wrapping_add(1);
                *fill
            })
            .collect();
        let at = self.prod.count as usize;
        let first = bytes.len().min(RING.saturating_sub(at));
        self.data(at, &bytes[..first], dev);
        self.data(0, &bytes[first..], dev);
        let unacked = cursor::diff(ring, self.cons, self.ours().prod).min(ring);
        let hdr = CdcHeader {
            prod: self.prod.add(ring, n),
            cons: self.cons.add(ring, share(unacked, shares.1)),
            prod_flags: ProducerFlags::empty(),
            conn_state_flags: self.conn_flags,
        };
        self.prod = hdr.prod;
        self.cons = hdr.cons;
        self.header(&hdr.to_bytes(), dev);
    }
}

/// What the connection must look like after every step: whatever the peer
/// wrote, the counts stay inside the rings.
fn check_counts(c: &Connection) {
    assert!(c.bytes_available() <= RING);
    assert!(c.send_space() <= RING);
}

/// Our connection, the simulated peer and what we have seen of it.
struct Model {
    dev: Device,
    nocopy: bool,
    conn: Connection,
    peer: Peer,
    /// How far we consumed our ring, and whether EOF was seen.
    consumed: Cursor,
    eof: bool,
    buf: [u8; CHUNK],
    /// The last byte value an honest header filled in.
    fill: u8,
}

impl Model {
    fn new(nocopy: bool) -> Self {
        let dev: Device = LoopbackDevice::new(HeapMemory, Rng(0x5eed_c0de_f00d_1234), NoDoorbell);
        dev.set_nocopy(nocopy);
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
        let conn = Connection::new(own, to_peer);
        let peer = Peer {
            dmb: theirs,
            binding: to_us,
            target,
            prod: Cursor::ZERO,
            cons: Cursor::ZERO,
            conn_flags: ConnStateFlags::empty(),
            shadow: vec![0; RING],
        };
        Self {
            dev,
            nocopy,
            conn,
            peer,
            consumed: Cursor::ZERO,
            eof: false,
            buf: [0; CHUNK],
            fill: 0,
        }
    }

    fn step(&mut self, op: Op) {
        let ring = RING as u32;
        let (dev, conn, peer) = (&self.dev, &mut self.conn, &mut self.peer);
        let was_dead = conn.error().is_some();
        match op {
            Op::RawHeader(hdr) => peer.header(&hdr, dev),
            Op::Header {
                prod_by,
                cons_by,
                prod_flags,
                conn_flags,
            } => {
                let hdr = CdcHeader {
                    prod: peer.prod.add(ring, u32::from(prod_by) % (ring + 2)),
                    cons: peer.cons.add(ring, u32::from(cons_by) % (ring + 2)),
                    prod_flags: ProducerFlags::from_bits_retain(prod_flags),
                    conn_state_flags: ConnStateFlags::from_bits_retain(conn_flags)
                        | peer.conn_flags,
                };
                peer.prod = hdr.prod;
                peer.cons = hdr.cons;
                peer.conn_flags = hdr.conn_state_flags;
                peer.header(&hdr.to_bytes(), dev);
            }
            Op::Data { at, bytes } => peer.data(usize::from(at), &bytes, dev),
            Op::Honest {
                prod_share,
                cons_share,
            } => peer.honest(dev, self.consumed, (prod_share, cons_share), &mut self.fill),
            Op::Signal => {
                let before = conn.bytes_available();
                match conn.handle_signal(dev) {
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
            Op::Recv(want) | Op::RecvWith(want) => {
                let want = usize::from(want) % (CHUNK + 1);
                let before = conn.bytes_available();
                let at = self.consumed.count as usize;
                let got = if matches!(op, Op::Recv(_)) {
                    let buf = &mut self.buf;
                    conn.recv(dev, &mut buf[..want]).map(|n| {
                        assert!(n <= want);
                        (n, buf[..n].to_vec())
                    })
                } else {
                    let mut seen = Vec::new();
                    conn.recv_with(dev, |bytes| {
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
                        self.eof = true;
                    }
                    Ok((n, bytes)) => {
                        assert!(!self.eof || n == 0, "data after EOF");
                        assert!(n <= before, "more than announced");
                        assert_eq!(bytes.len(), n);
                        // The bytes at our consumer position, wrapping.
                        for (i, b) in bytes.iter().enumerate() {
                            assert_eq!(*b, peer.shadow[(at + i) % RING], "byte {i} at {at}");
                        }
                        assert_eq!(conn.bytes_available(), before - n);
                        self.consumed = self.consumed.add(ring, n as u32);
                    }
                    Err(ConnError::WouldBlock) => assert_eq!(before, 0),
                    Err(e) => assert_eq!(conn.error(), Some(e), "only a dead connection fails"),
                }
            }
            Op::Send(len) => {
                let len = usize::from(len) % (CHUNK + 1);
                let space = conn.send_space();
                match conn.send(dev, &self.buf[..len]) {
                    Ok(n) => assert_eq!(n, len.min(space)),
                    Err(ConnError::WouldBlock) => assert_eq!(space, 0),
                    Err(e @ (ConnError::PeerClosed | ConnError::WriteShutdown)) => {
                        assert!(conn.error().is_none(), "{e:?} on a dead connection")
                    }
                    Err(e) => assert_eq!(conn.error(), Some(e), "only a dead connection fails"),
                }
            }
            Op::SendWith(len) => {
                let len = usize::from(len);
                let space = conn.send_space();
                match conn.send_with(dev, |room| len.min(room.len())) {
                    _ if !self.nocopy => {}
                    Ok(n) => assert!(n <= len.min(space)),
                    Err(ConnError::WouldBlock) => assert_eq!(space, 0),
                    Err(ConnError::PeerClosed | ConnError::WriteShutdown) => {}
                    Err(e) => assert_eq!(conn.error(), Some(e), "only a dead connection fails"),
                }
                if !self.nocopy {
                    assert_eq!(conn.send_with(dev, |_| 0), Err(ConnError::NocopyRequired));
                }
            }
        }
        check_counts(conn);
        if was_dead {
            // Nothing revives a dead connection.
            assert!(conn.error().is_some());
            assert!(conn.recv(dev, &mut self.buf).is_err());
            assert!(conn.send(dev, b"x").is_err());
        }
    }

    /// Give everything back: our DMB and binding, then the peer's.
    fn finish(self) {
        let (own, to_peer) = self.conn.into_dmbs();
        ops::give_back(&self.dev, Some(own), Some(to_peer)).unwrap();
        ops::give_back(&self.dev, Some(self.peer.dmb), Some(self.peer.binding)).unwrap();
        let stats = self.dev.stats();
        assert_eq!((stats.dmbs_in_use, stats.attachments), (0, 0));
    }
}

/// Run `ops` on a fresh connection (nocopy or copy mode), checking every
/// invariant after each step.
pub(crate) fn run_ops(nocopy: bool, ops: impl IntoIterator<Item = Op>) {
    let mut model = Model::new(nocopy);
    for op in ops {
        model.step(op);
    }
    model.finish();
}

/// Run the operations encoded in `input`: the first byte picks the mode
/// (bit 0: nocopy), then each operation is an op byte (modulo 9, in the
/// order of [`Op`]'s variants) followed by its arguments.
pub(crate) fn run(input: &[u8]) {
    let Some((&mode, mut data)) = input.split_first() else {
        return;
    };
    let ops = std::iter::from_fn(|| {
        let (&op, rest) = data.split_first()?;
        data = rest;
        Some(Op::decode(op, &mut data))
    });
    run_ops(mode & 1 != 0, ops);
}
