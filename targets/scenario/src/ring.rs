//! Interim data path (until `smcd_core::conn` lands): one producer and one
//! consumer take turns on the ring of a DMB, reached only through
//! [`DmbMem`], with the producer cursor published in CDC-header bytes 8–15
//! by a release store and read back by an acquire load.

use smcd_core::dmb::CDC_HEADER_LEN_BYTES;
use smcd_core::mem::{DmbMem, MemError};
use smcd_core::sync::Ordering;

use crate::checksum::Checksum;
use crate::pattern::Pattern;

/// DMB offset of the producer cursor word (`spec/cdc.md` §2).
const PROD_CURSOR_OFFSET: usize = 8;
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
    pub(crate) wraps: u32,
    /// Checksum of the bytes the producer wrote.
    pub(crate) sent: u32,
    /// Checksum of the bytes the consumer read.
    pub(crate) received: u32,
}

/// Move `total` pattern bytes (stream `seed`) through the ring of `dmb`.
pub(crate) fn pump(dmb: DmbMem, total: usize, seed: u32) -> Result<Pumped, MemError> {
    let ring = dmb.len().saturating_sub(CDC_HEADER_LEN_BYTES);
    let mut pattern = Pattern::new(seed);
    let (mut sent, mut received) = (Checksum::new(), Checksum::new());
    let (mut produced, mut consumed) = (0usize, 0usize);
    let mut buf = [0u8; CHUNK_MAX];
    let mut turn = 0usize;
    while consumed < total {
        let free = ring - (produced - consumed);
        let n = SEND_CHUNKS[turn % SEND_CHUNKS.len()]
            .min(free)
            .min(total - produced);
        let chunk = &mut buf[..n];
        pattern.fill(chunk);
        sent.update(chunk);
        ring_io(dmb, ring, produced, chunk.len(), |off, range| {
            dmb.write(off, &chunk[range])
        })?;
        produced += n;
        let wrap = (produced / ring) as u64;
        let count = (produced % ring) as u64;
        dmb.store_u64(PROD_CURSOR_OFFSET, (wrap << 32) | count, Ordering::Release)?;

        let word = dmb.load_u64(PROD_CURSOR_OFFSET, Ordering::Acquire)?;
        let visible = (word >> 32) as usize * ring + (word & 0xffff_ffff) as usize;
        let m = RECV_CHUNKS[turn % RECV_CHUNKS.len()].min(visible - consumed);
        let chunk = &mut buf[..m];
        ring_io(dmb, ring, consumed, m, |off, range| {
            dmb.read(off, &mut chunk[range])
        })?;
        received.update(chunk);
        consumed += m;
        turn += 1;
    }
    Ok(Pumped {
        wraps: (produced / ring) as u32,
        sent: sent.value(),
        received: received.value(),
    })
}

/// Split `len` bytes at stream position `pos` into at most two DMB ranges
/// (before and after the ring's end) and run `io` on each.
fn ring_io(
    dmb: DmbMem,
    ring: usize,
    pos: usize,
    len: usize,
    mut io: impl FnMut(usize, core::ops::Range<usize>) -> Result<(), MemError>,
) -> Result<(), MemError> {
    let at = pos % ring;
    let first = len.min(ring - at);
    debug_assert!(dmb.len() >= CDC_HEADER_LEN_BYTES + ring);
    io(CDC_HEADER_LEN_BYTES + at, 0..first)?;
    if first < len {
        io(CDC_HEADER_LEN_BYTES, first..len)?;
    }
    Ok(())
}
