//! Interim data path (until `smcd_core::conn` and the loopback device land):
//! one producer and one consumer take turns on the ring of a DMB, reached
//! only through [`DmbMem`], with [`Cursor`] arithmetic and the CDC header
//! written by [`cdc::publish`] and read back by [`cdc::snapshot`].

use smcd_core::cursor::{Cursor, diff};
use smcd_core::dmb::CDC_HEADER_LEN_BYTES;
use smcd_core::mem::{DmbMem, MemError};
use smcd_core::wire::cdc::{self, CdcHeader};

use crate::checksum::Checksum;
use crate::pattern::Pattern;
use crate::summary::Failure;

/// Producer write sizes, cycled; none divides the ring, so writes straddle its end.
const SEND_CHUNKS: [usize; 3] = [1000, 1499, 777];
/// Consumer read sizes, cycled.
const RECV_CHUNKS: [usize; 2] = [1300, 613];
/// Largest entry of the two tables above.
const CHUNK_MAX: usize = 1499;

/// What one direction moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pumped {
    /// Times the producer crossed the end of the ring.
    pub(crate) wraps: u16,
    /// Checksum of the bytes the producer wrote.
    pub(crate) sent: u32,
    /// Checksum of the bytes the consumer read.
    pub(crate) received: u32,
}

/// Move `total` pattern bytes (stream `seed`) through the ring of `dmb`.
pub(crate) fn pump(dmb: DmbMem, total: usize, seed: u32) -> Result<Pumped, Failure> {
    let ring = dmb.len().saturating_sub(CDC_HEADER_LEN_BYTES);
    let ring_u32 = u32::try_from(ring).map_err(|_| Failure::ArenaTooSmall)?;
    let mut pattern = Pattern::new(seed);
    let (mut sent, mut received) = (Checksum::new(), Checksum::new());
    let (mut prod, mut cons) = (Cursor::ZERO, Cursor::ZERO);
    let (mut produced, mut consumed) = (0usize, 0usize);
    let mut buf = [0u8; CHUNK_MAX];
    let mut turn = 0usize;
    while consumed < total {
        let free = ring - diff(ring_u32, cons, prod) as usize;
        let n = SEND_CHUNKS[turn % SEND_CHUNKS.len()]
            .min(free)
            .min(total - produced);
        let chunk = &mut buf[..n];
        pattern.fill(chunk);
        sent.update(chunk);
        ring_io(ring, prod, n, |off, range| dmb.write(off, &chunk[range]))?;
        prod = prod.add(ring_u32, n as u32);
        produced += n;
        let header = CdcHeader {
            prod,
            ..CdcHeader::default()
        };
        cdc::publish(&dmb, 0, &header.to_bytes())?;

        let seen = cdc::snapshot(&dmb, 0)?.prod.validate(ring_u32)?;
        let m = RECV_CHUNKS[turn % RECV_CHUNKS.len()].min(diff(ring_u32, cons, seen) as usize);
        let chunk = &mut buf[..m];
        ring_io(ring, cons, m, |off, range| dmb.read(off, &mut chunk[range]))?;
        received.update(chunk);
        cons = cons.add(ring_u32, m as u32);
        consumed += m;
        turn += 1;
    }
    Ok(Pumped {
        wraps: prod.wrap,
        sent: sent.value(),
        received: received.value(),
    })
}

/// Split `len` bytes at cursor `at` into at most two DMB ranges (before and
/// after the ring's end) and run `io` on each.
fn ring_io(
    ring: usize,
    at: Cursor,
    len: usize,
    mut io: impl FnMut(usize, core::ops::Range<usize>) -> Result<(), MemError>,
) -> Result<(), MemError> {
    let at = at.count as usize;
    let first = len.min(ring - at);
    io(CDC_HEADER_LEN_BYTES + at, 0..first)?;
    if first < len {
        io(CDC_HEADER_LEN_BYTES, first..len)?;
    }
    Ok(())
}
