//! Driving a pair of endpoints: the handshake, data both ways, the close.

use smcd_core::conn::ConnError;
use smcd_core::endpoint::{ByteStream, Endpoint, EndpointError, HostRef};

use crate::checksum::Checksum;
use crate::pattern::Pattern;
use crate::summary::Failure;

/// Send sizes, cycled; none divides a ring, so writes straddle its end.
const SEND_CHUNKS: [usize; 3] = [1000, 1499, 777];
/// Receive sizes, cycled.
const RECV_CHUNKS: [usize; 2] = [1300, 613];
/// Largest entry of the two tables above.
const CHUNK_MAX: usize = 1499;
/// Rounds after which a step that has not finished counts as stalled.
const MAX_ROUNDS: usize = 10_000;
/// The endpoints' clock: the scenario never waits, so time stands still.
const NOW_MS: u64 = 0;

/// How the application hands bytes to and takes them from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `Endpoint::send` / `recv`: copies from and into the caller's buffers
    /// (SMC-D or, after a fallback, the stream).
    Copying,
    /// `Connection::send_with` / `recv_with`: the caller writes and reads
    /// the rings in place (SMC-D nocopy).
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

/// Poll both endpoints until neither makes progress (e.g. the handshake).
pub(crate) fn settle<H: HostRef, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<H, S>,
    b: &mut Endpoint<H, T>,
) -> Result<(), Failure> {
    for _ in 0..MAX_ROUNDS {
        let moved_a = a.poll(NOW_MS)?;
        let moved_b = b.poll(NOW_MS)?;
        if !moved_a && !moved_b {
            return Ok(());
        }
    }
    Err(Failure::Stalled("endpoint polling"))
}

/// Move `total` bytes from `a` to `b` and `total` bytes from `b` to `a`,
/// interleaved, through `api`. Returns the checksums (a→b, b→a).
pub(crate) fn both_ways<H: HostRef, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<H, S>,
    b: &mut Endpoint<H, T>,
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
        ab.send(a, api)?;
        b.poll(NOW_MS)?;
        ab.recv(b, api)?;
        ba.send(b, api)?;
        a.poll(NOW_MS)?;
        ba.recv(a, api)?;
        // Consumer-cursor updates give the senders their space back.
        a.poll(NOW_MS)?;
        b.poll(NOW_MS)?;
    }
    Err(Failure::Stalled("data transfer"))
}

/// `a` closes first, `b` sees end-of-stream and closes; both must end up
/// closed with their resources given back.
pub(crate) fn close<H: HostRef, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<H, S>,
    b: &mut Endpoint<H, T>,
) -> Result<(), Failure> {
    a.close()?;
    settle(a, b)?;
    if b.recv(&mut [0u8; 1])? != 0 {
        return Err(Failure::NoEof);
    }
    b.close()?;
    settle(a, b)?;
    if a.is_closed() && b.is_closed() {
        Ok(())
    } else {
        Err(Failure::Stalled("close"))
    }
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

    fn send<H: HostRef, S: ByteStream>(
        &mut self,
        ep: &mut Endpoint<H, S>,
        api: Api,
    ) -> Result<(), Failure> {
        let chunk = SEND_CHUNKS[self.turn % SEND_CHUNKS.len()].min(self.to_generate);
        match api {
            Api::Copying => {
                if self.pending_at == self.pending_len && chunk > 0 {
                    self.pattern.fill(&mut self.pending[..chunk]);
                    self.sent.update(&self.pending[..chunk]);
                    (self.pending_at, self.pending_len) = (0, chunk);
                    self.to_generate -= chunk;
                }
                if self.pending_at < self.pending_len {
                    match ep.send(&self.pending[self.pending_at..self.pending_len]) {
                        Ok(n) => self.pending_at += n,
                        Err(EndpointError::WouldBlock) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Api::InPlace if chunk > 0 => {
                let (conn, dev) = ep.connection_mut().ok_or(Failure::NoConnection)?;
                let (pattern, sent) = (&mut self.pattern, &mut self.sent);
                let sent = conn.send_with(dev, |room| {
                    let len = chunk.min(room.len());
                    let room = &mut room[..len];
                    pattern.fill(room);
                    sent.update(room);
                    len
                });
                match sent {
                    Ok(n) => self.to_generate -= n,
                    // The peer's ring is full: its consumer cursor gives room back.
                    Err(ConnError::WouldBlock) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Api::InPlace => {}
        }
        Ok(())
    }

    fn recv<H: HostRef, S: ByteStream>(
        &mut self,
        ep: &mut Endpoint<H, S>,
        api: Api,
    ) -> Result<(), Failure> {
        let want = RECV_CHUNKS[self.turn % RECV_CHUNKS.len()].min(self.to_receive);
        self.turn += 1;
        if want == 0 {
            return Ok(());
        }
        let received = &mut self.received;
        let got = match api {
            Api::Copying => {
                let mut buf = [0u8; CHUNK_MAX];
                ep.recv(&mut buf[..want])
                    .inspect(|&n| received.update(&buf[..n]))
            }
            Api::InPlace => {
                let (conn, dev) = ep.connection_mut().ok_or(Failure::NoConnection)?;
                conn.recv_with(dev, |bytes| {
                    let bytes = &bytes[..want.min(bytes.len())];
                    received.update(bytes);
                    bytes.len()
                })
                .map_err(EndpointError::Conn)
            }
        };
        match got {
            Ok(0) => Err(Failure::EarlyEof),
            Ok(n) => {
                self.to_receive -= n;
                Ok(())
            }
            Err(EndpointError::WouldBlock | EndpointError::Conn(ConnError::WouldBlock)) => Ok(()),
            Err(e) => Err(e.into()),
        }
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
