//! A minimal in-test SMC-D device and a connected pair of connections.
//!
//! `FakeDev` keeps DMBs in heap memory reached only through `DmbMem`,
//! copies on `move_data`, publishes headers with `wire::cdc::publish`, and
//! records every move so tests can assert what went over the "wire".
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::ptr::NonNull;
use std::sync::Mutex;
use std::vec::Vec;

use smcd_core::conn::Connection;
use smcd_core::dmb::{CDC_HEADER_LEN_BYTES, Chid, DMB_MIN_SIZE_BYTES, DmbToken, Gid};
use smcd_core::mem::{DmbMem, DmbRegion};
use smcd_core::ops::{Dmb, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::wire::cdc::{self, CdcHeader};

/// One `move_data` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Move {
    pub(crate) token: DmbToken,
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) signal: bool,
}

struct Entry {
    token: DmbToken,
    /// The allocation behind `region`, freed when the device is dropped.
    raw: *mut [u64],
    region: DmbRegion,
    registered: bool,
    attached: u32,
}

#[derive(Default)]
struct Inner {
    dmbs: Vec<Entry>,
    moves: Vec<Move>,
    /// Fail every `move_data` from now on with this kind.
    fail: Option<ErrorKind>,
}

pub(crate) struct FakeDev {
    inner: Mutex<Inner>,
    nocopy: bool,
}

// SAFETY: the raw pointers in `Inner` are owned allocations, only touched
// through `DmbMem` (itself Send + Sync) and freed in `Drop`; `Inner` is
// behind a mutex.
unsafe impl Send for FakeDev {}
// SAFETY: as above.
unsafe impl Sync for FakeDev {}

impl Drop for FakeDev {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap();
        for e in inner.dmbs.drain(..) {
            // SAFETY: `raw` came from `Box::into_raw` in `register_dmb` and is
            // freed exactly once, here. Handles that outlive the device are
            // never used again (the tests drop them with it).
            drop(unsafe { Box::from_raw(e.raw) });
        }
    }
}

/// A view of `region`, which lies in an allocation of a live `FakeDev`.
fn view(region: DmbRegion) -> DmbMem {
    // SAFETY: every region handed to `view` lies in an allocation the
    // device frees only when it is dropped, after all uses of the views it
    // made (they live in handles and in calls on the device), and the memory
    // is only ever reached through `DmbMem` views.
    unsafe { DmbMem::from_region(region) }
}

impl FakeDev {
    pub(crate) fn new(nocopy: bool) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            nocopy,
        }
    }

    /// Run `f` on the memory of the DMB `token`, as a (hostile) peer sees it.
    pub(crate) fn with_mem<R>(&self, token: DmbToken, f: impl FnOnce(&DmbMem) -> R) -> R {
        let region = self.with_entry(token, |e| e.region).unwrap();
        f(&view(region))
    }

    fn with_entry<R>(&self, token: DmbToken, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut inner = self.inner.lock().unwrap();
        inner.dmbs.iter_mut().find(|e| e.token == token).map(f)
    }

    /// The header currently in the DMB of `token`.
    pub(crate) fn header(&self, token: DmbToken) -> CdcHeader {
        self.with_mem(token, |m| cdc::snapshot(m, 0).unwrap())
    }

    /// Overwrite the header in the DMB of `token`, as a (hostile) peer would.
    pub(crate) fn inject(&self, token: DmbToken, hdr: &CdcHeader) {
        self.with_mem(token, |m| cdc::publish(m, 0, &hdr.to_bytes()).unwrap());
    }

    /// Take the recorded moves.
    pub(crate) fn take_moves(&self) -> Vec<Move> {
        std::mem::take(&mut self.inner.lock().unwrap().moves)
    }

    pub(crate) fn fail_moves(&self, kind: Option<ErrorKind>) {
        self.inner.lock().unwrap().fail = kind;
    }

    pub(crate) fn is_registered(&self, token: DmbToken) -> bool {
        self.with_entry(token, |e| e.registered).unwrap()
    }

    pub(crate) fn attach_count(&self, token: DmbToken) -> u32 {
        self.with_entry(token, |e| e.attached).unwrap()
    }

    /// Registered DMBs (not yet unregistered by their owner).
    pub(crate) fn registered(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        inner.dmbs.iter().filter(|e| e.registered).count()
    }
}

impl ErrorType for FakeDev {
    type Error = ErrorKind;
}

impl SmcdOps for FakeDev {
    fn local_gid(&self) -> Gid {
        Gid::new(0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210)
    }

    fn chid(&self) -> Chid {
        Chid::LOOPBACK
    }

    fn supports_v2(&self) -> bool {
        true
    }

    fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
        if gid == self.local_gid() {
            Ok(())
        } else {
            Err(ErrorKind::Unreachable)
        }
    }

    fn register_dmb(&self, size: usize) -> Result<Dmb, ErrorKind> {
        let raw = Box::into_raw(vec![0u64; size.div_ceil(8)].into_boxed_slice());
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or(ErrorKind::NoMemory)?;
        let region = DmbRegion::new(ptr, size).map_err(|_| ErrorKind::Other)?;
        let mut inner = self.inner.lock().unwrap();
        let token = DmbToken(0x1000 + inner.dmbs.len() as u64);
        inner.dmbs.push(Entry {
            token,
            raw,
            region,
            registered: true,
            attached: 0,
        });
        Dmb::new(token, view(region)).map_err(|_| ErrorKind::NoMemory)
    }

    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), ErrorKind> {
        let region = dmb.mem().region();
        self.with_entry(dmb.token(), |e| {
            e.region == region && std::mem::replace(&mut e.registered, false)
        })
        .filter(|&was| was)
        .map(|_| ())
        .ok_or(ErrorKind::InvalidToken)
    }

    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), ErrorKind> {
        let region = {
            let mut inner = self.inner.lock().unwrap();
            if let Some(kind) = inner.fail {
                return Err(kind);
            }
            inner.moves.push(Move {
                token,
                offset,
                len: data.len(),
                signal,
            });
            inner
                .dmbs
                .iter()
                .find(|e| e.token == token && e.registered)
                .map(|e| e.region)
                .ok_or(ErrorKind::InvalidToken)?
        };
        let mem = view(region);
        if signal {
            cdc::publish(&mem, offset, data).map_err(|_| ErrorKind::OutOfBounds)
        } else {
            mem.write(offset, data).map_err(|_| ErrorKind::OutOfBounds)
        }
    }

    fn signal_dmb(&self, _token: DmbToken) -> Result<(), ErrorKind> {
        Ok(())
    }

    fn supports_nocopy(&self) -> bool {
        self.nocopy
    }

    fn attach_dmb(&self, own: &Dmb, id: PeerDmbId, map: bool) -> Result<PeerDmb, ErrorKind> {
        let PeerDmbId {
            gid,
            token: peer,
            len,
        } = id;
        if gid != self.local_gid() {
            return Err(ErrorKind::Unreachable);
        }
        if map && !self.nocopy {
            return Err(ErrorKind::Unsupported);
        }
        let own_ok = self
            .with_entry(own.token(), |e| {
                e.registered && e.region == own.mem().region()
            })
            .unwrap_or(false);
        if !own_ok || own.token() == peer {
            return Err(ErrorKind::InvalidToken);
        }
        let ring = self
            .with_entry(peer, |e| {
                if !e.registered || e.region.len() != len {
                    return Err(ErrorKind::InvalidToken);
                }
                if !map {
                    return Ok(None);
                }
                e.attached += 1;
                Ok(e.region.tail(CDC_HEADER_LEN_BYTES))
            })
            .ok_or(ErrorKind::InvalidToken)??;
        PeerDmb::new(own.token(), peer, len, ring.map(view)).map_err(|_| ErrorKind::InvalidToken)
    }

    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), ErrorKind> {
        let Some(ring) = peer.ring().map(DmbMem::region) else {
            return Ok(());
        };
        self.with_entry(peer.token(), |e| {
            if e.region.tail(CDC_HEADER_LEN_BYTES) != Some(ring) {
                return Err(ErrorKind::InvalidToken);
            }
            e.attached = e.attached.checked_sub(1).ok_or(ErrorKind::InvalidToken)?;
            Ok(())
        })
        .ok_or(ErrorKind::InvalidToken)?
    }
}

/// Size of the DMBs of [`Pair::new`]: the smallest real DMB (ring 16352).
pub(crate) const DMB: usize = DMB_MIN_SIZE_BYTES;
pub(crate) const RING: usize = DMB - CDC_HEADER_LEN_BYTES;

/// Two connections A and B over one device.
pub(crate) struct Pair {
    pub(crate) dev: FakeDev,
    pub(crate) a: Connection,
    pub(crate) b: Connection,
}

impl Pair {
    pub(crate) fn new(nocopy: bool) -> Self {
        Self::with_sizes(DMB, DMB, nocopy)
    }

    /// A with a DMB of `a_len` bytes, B with `b_len`.
    pub(crate) fn with_sizes(a_len: usize, b_len: usize, nocopy: bool) -> Self {
        let dev = FakeDev::new(nocopy);
        let da = dev.register_dmb(a_len).unwrap();
        let db = dev.register_dmb(b_len).unwrap();
        // Each side binds the other's DMB, as the handshake would.
        let id = |d: &Dmb| PeerDmbId {
            gid: dev.local_gid(),
            token: d.token(),
            len: d.len(),
        };
        let pa = dev.attach_dmb(&da, id(&db), nocopy).unwrap();
        let pb = dev.attach_dmb(&db, id(&da), nocopy).unwrap();
        let a = Connection::new(da, pa);
        let b = Connection::new(db, pb);
        dev.take_moves();
        Self { dev, a, b }
    }

    /// Deliver pending signals to both sides.
    pub(crate) fn pump(&mut self) {
        self.b.handle_signal(&self.dev).unwrap();
        self.a.handle_signal(&self.dev).unwrap();
    }

    /// The header A last wrote (into B's DMB).
    pub(crate) fn a_header(&self) -> CdcHeader {
        self.dev.header(self.b.own_token())
    }

    /// The header B last wrote (into A's DMB).
    pub(crate) fn b_header(&self) -> CdcHeader {
        self.dev.header(self.a.own_token())
    }
}

/// A deterministic byte pattern: byte `i` of a stream.
pub(crate) fn pattern(start: usize, len: usize) -> Vec<u8> {
    (start..start + len).map(|i| (i % 251) as u8).collect()
}
