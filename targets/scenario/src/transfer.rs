//! Data both ways over an established pair of connections, then the close.

use smcd_core::conn::{ConnError, Connection};
use smcd_core::ops::SmcdOps;

use crate::checksum::Checksum;
use crate::pattern::Pattern;
use crate::summary::Failure;

/// Send sizes, cycled; none divides a ring, so writes straddle its end.
const SEND_CHUNKS: [usize; 3] = [1000, 1499, 777];
/// Receive sizes, cycled.
const RECV_CHUNKS: [usize; 2] = [1300, 613];
/// Largest entry of the two tables above.
const CHUNK_MAX: usize = 1499;
/// Rounds after which a transfer or close that has not finished counts as stalled.
const MAX_ROUNDS: usize = 10_000;

/// How the application hands bytes to and takes them from a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `send` / `recv`: copies from and into the caller's buffers.
    Copying,
    /// `send_with` / `recv_with`: the caller reads and writes the rings in place.
    InPlace,
}

/// Checksums of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sums {
    /// Of the bytes handed to the sender.
    pub(crate) sent: u32,
    /// Of the bytes the receiver got.
    pub(crate) received: u32,
}

/// One direction: a pattern stream from a sender to a receiver.
struct Flow {
    pattern: Pattern,
    to_generate: usize,
    to_receive: usize,
    pending: [u8; CHUNK_MAX],
    pending_at: usize,
    pending_len: usize,
    sent: Checksum,
    received: Checksum,
    turn: usize,
}

impl Flow {
    fn new(seed: u32, total: usize) -> Self {
        Self {
            pattern: Pattern::new(seed),
            to_generate: total,
            to_receive: total,
            pending: [0; CHUNK_MAX],
            pending_at: 0,
            pending_len: 0,
            sent: Checksum::new(),
            received: Checksum::new(),
            turn: 0,
        }
    }

    fn send_chunk(&self) -> usize {
        SEND_CHUNKS[self.turn % SEND_CHUNKS.len()]
    }

    fn recv_chunk(&self) -> usize {
        RECV_CHUNKS[self.turn % RECV_CHUNKS.len()]
    }

    fn send<D: SmcdOps>(
        &mut self,
        dev: &D,
        conn: &mut Connection,
        api: Api,
    ) -> Result<(), Failure> {
        match api {
            Api::Copying => {
                if self.pending_at == self.pending_len && self.to_generate > 0 {
                    let k = self.send_chunk().min(self.to_generate);
                    self.pattern.fill(&mut self.pending[..k]);
                    self.sent.update(&self.pending[..k]);
                    (self.pending_at, self.pending_len) = (0, k);
                    self.to_generate -= k;
                }
                let n = conn.send(dev, &self.pending[self.pending_at..self.pending_len])?;
                self.pending_at += n;
            }
            Api::InPlace => {
                let k = self.send_chunk().min(self.to_generate);
                if k > 0 {
                    let (pattern, sent) = (&mut self.pattern, &mut self.sent);
                    let n = conn.send_with(dev, |room| {
                        let len = k.min(room.len());
                        let room = &mut room[..len];
                        pattern.fill(room);
                        sent.update(room);
                        room.len()
                    })?;
                    self.to_generate -= n;
                }
            }
        }
        Ok(())
    }

    fn recv<D: SmcdOps>(
        &mut self,
        dev: &D,
        conn: &mut Connection,
        api: Api,
    ) -> Result<(), Failure> {
        let k = self.recv_chunk().min(self.to_receive);
        let received = &mut self.received;
        let got = match api {
            Api::Copying => {
                let mut buf = [0u8; CHUNK_MAX];
                conn.recv(dev, &mut buf[..k])
                    .inspect(|&n| received.update(&buf[..n]))
            }
            Api::InPlace => conn.recv_with(dev, |bytes| {
                let bytes = &bytes[..k.min(bytes.len())];
                received.update(bytes);
                bytes.len()
            }),
        };
        match got {
            Ok(0) if k > 0 => return Err(Failure::EarlyEof),
            Ok(n) => self.to_receive -= n,
            Err(ConnError::WouldBlock) => {}
            Err(e) => return Err(e.into()),
        }
        self.turn += 1;
        Ok(())
    }

    fn done(&self) -> bool {
        self.to_receive == 0
    }

    fn sums(&self) -> Sums {
        Sums {
            sent: self.sent.value(),
            received: self.received.value(),
        }
    }
}

/// Move `total` bytes from `a` to `b` and `total` bytes from `b` to `a`,
/// interleaved, through `api`. Returns the checksums (a→b, b→a).
pub(crate) fn both_ways<D: SmcdOps>(
    dev: &D,
    a: &mut Connection,
    b: &mut Connection,
    total: usize,
    seeds: (u32, u32),
    api: Api,
) -> Result<(Sums, Sums), Failure> {
    let mut ab = Flow::new(seeds.0, total);
    let mut ba = Flow::new(seeds.1, total);
    for _ in 0..MAX_ROUNDS {
        if ab.done() && ba.done() {
            return Ok((ab.sums(), ba.sums()));
        }
        ab.send(dev, a, api)?;
        b.handle_signal(dev)?;
        ab.recv(dev, b, api)?;
        ba.send(dev, b, api)?;
        a.handle_signal(dev)?;
        ba.recv(dev, a, api)?;
        // Consumer-cursor updates give the senders their space back.
        a.handle_signal(dev)?;
        b.handle_signal(dev)?;
    }
    Err(Failure::Stalled("data transfer"))
}

/// `a` closes first, `b` sees EOF and closes; both give their DMBs back.
pub(crate) fn close<D: SmcdOps>(
    dev: &D,
    mut a: Connection,
    mut b: Connection,
) -> Result<(), Failure> {
    a.close(dev)?;
    b.handle_signal(dev)?;
    if b.recv(dev, &mut [0u8; 1])? != 0 {
        return Err(Failure::NoEof);
    }
    b.close(dev)?;
    for _ in 0..MAX_ROUNDS {
        if a.is_closed() && b.is_closed() {
            a.release(dev)?;
            b.release(dev)?;
            return Ok(());
        }
        a.handle_signal(dev)?;
        b.handle_signal(dev)?;
    }
    Err(Failure::Stalled("close"))
}
