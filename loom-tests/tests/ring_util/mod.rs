//! Shared pieces of the connection models (`ring_*`, `window_*`,
//! `close_*`): smcd-lo's production `LoopbackDevice` over loom-tracked DMB
//! memory, and a connected pair over tiny rings.
//!
//! Under `cfg(smcd_loom)` the device's two spin locks (DMB table, memory
//! provider), its counters and its nocopy switch are loom types (they come
//! from `smcd_core::sync`), so every `move_data`, pin/unpin of the target
//! DMB, header publication and signal the connections make is explored by
//! loom — the models run the real device, not a stand-in.
// Each model file uses a different subset.
#![allow(dead_code)]

use loom::thread;
use rand_core::RngCore;
use smcd_core::conn::{ConnError, Connection};
use smcd_core::dmb::CDC_HEADER_LEN_BYTES;
use smcd_core::mem::{DmbMem, DmbRegion};
use smcd_core::ops::{Dmb, PeerDmbId, SmcdOps};
use smcd_core::wire::cdc::{self, CdcHeader};
use smcd_lo::{DmbMemory, LoopbackDevice, NoDoorbell};

/// DMB memory for the models: loom-tracked regions (one loom cell per byte),
/// which loom leaks, so `free` has nothing to give back.
#[derive(Debug)]
pub(crate) struct LoomMemory;

impl DmbMemory for LoomMemory {
    fn allocate(&mut self, size: usize) -> Option<DmbRegion> {
        Some(DmbRegion::loom_new(size))
    }

    unsafe fn free(&mut self, _region: DmbRegion) {}
}

/// A deterministic "RNG" for the GID and the tokens: 1, 2, 3, … (never 0,
/// never repeating), so every loom execution sees the same tokens.
#[derive(Debug)]
pub(crate) struct CountingRng(u64);

impl RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u64() as u8;
        }
    }
}

/// The production loopback device as the models use it: room for the two
/// DMBs of one pair (and two spare slots).
pub(crate) type LoomDev = LoopbackDevice<LoomMemory, CountingRng, NoDoorbell, 4>;

/// A connected pair A → B over rings of `ring` bytes (DMBs of 32 + `ring`),
/// set up the way the CLC engine does it: each side registers its DMB and
/// attaches the other's (mapped for nocopy). Also returns a view of A's own
/// DMB, for models that check A against what B published into it.
///
/// The device is leaked (`&'static`, `Copy` into every model thread), as
/// loom leaks the tracked DMB storage anyway.
pub(crate) fn pair_with_view(
    ring: usize,
    nocopy: bool,
) -> (&'static LoomDev, Connection, Connection, DmbMem) {
    let dev: &'static LoomDev = Box::leak(Box::new(LoopbackDevice::new(
        LoomMemory,
        CountingRng(0),
        NoDoorbell,
    )));
    let len = CDC_HEADER_LEN_BYTES + ring;
    let (a, b) = (
        dev.register_dmb(len).unwrap(),
        dev.register_dmb(len).unwrap(),
    );
    let id = |d: &Dmb| PeerDmbId {
        gid: dev.local_gid(),
        token: d.token(),
        len,
    };
    let a_to_b = dev.attach_dmb(&a, id(&b), nocopy).unwrap();
    let b_to_a = dev.attach_dmb(&b, id(&a), nocopy).unwrap();
    // SAFETY: the region is loom-tracked storage, leaked (valid forever) and
    // reached only through `DmbMem` views.
    let view = unsafe { DmbMem::from_region(a.mem().region()) };
    (
        dev,
        Connection::new(a, a_to_b),
        Connection::new(b, b_to_a),
        view,
    )
}

/// [`pair_with_view`] without the view.
pub(crate) fn pair(ring: usize, nocopy: bool) -> (&'static LoomDev, Connection, Connection) {
    let (dev, a, b, _) = pair_with_view(ring, nocopy);
    (dev, a, b)
}

/// The header the peer last published into `mem` (a DMB's own header).
pub(crate) fn header(mem: &DmbMem) -> CdcHeader {
    cdc::snapshot(mem, 0).unwrap()
}

/// Give both connections' DMBs back to the device (detach, unregister) and
/// check that it freed everything: no DMB, no attachment left.
pub(crate) fn release(dev: &LoomDev, a: Connection, b: Connection) {
    a.release(dev).unwrap();
    b.release(dev).unwrap();
    let stats = dev.stats();
    assert_eq!((stats.dmbs_in_use, stats.attachments), (0, 0));
}

/// Send all of `data`, waiting for window updates while the ring is full.
pub(crate) fn send_all(c: &mut Connection, dev: &LoomDev, data: &[u8]) {
    let mut sent = 0;
    while sent < data.len() {
        c.handle_signal(dev).unwrap();
        match c.send(dev, &data[sent..]) {
            Ok(n) => sent += n,
            Err(ConnError::WouldBlock) => thread::yield_now(),
            Err(e) => panic!("send: {e}"),
        }
    }
}

/// Receive into `out` until it holds `want` bytes or EOF; returns the last
/// non-data result (`Ok(0)` at EOF, `Ok(1)` when `want` was reached).
pub(crate) fn recv_until(
    c: &mut Connection,
    dev: &LoomDev,
    out: &mut Vec<u8>,
    want: usize,
    chunk: usize,
) -> Result<usize, ConnError> {
    let mut buf = vec![0u8; chunk];
    while out.len() < want {
        c.handle_signal(dev)?;
        match c.recv(dev, &mut buf) {
            Ok(0) => return Ok(0),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(ConnError::WouldBlock) => thread::yield_now(),
            Err(e) => return Err(e),
        }
    }
    Ok(1)
}
