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

use smcd_core::conn::{ConnParams, Connection, SendMode};
use smcd_core::dmb::{CDC_HEADER_LEN_BYTES, Chid, DMB_MIN_SIZE_BYTES, DmbToken, Gid};
use smcd_core::mem::DmbMem;
use smcd_core::ops::{Dmb, ErrorKind, ErrorType, SmcdOps};
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
    /// The allocation behind `mem`, freed when the device is dropped.
    raw: *mut [u64],
    mem: DmbMem,
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
            // freed exactly once, here; connections hold `DmbMem` views only
            // while they borrow the device.
            drop(unsafe { Box::from_raw(e.raw) });
        }
    }
}

impl FakeDev {
    pub(crate) fn new(nocopy: bool) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            nocopy,
        }
    }

    pub(crate) fn mem(&self, token: DmbToken) -> DmbMem {
        self.with_entry(token, |e| e.mem).unwrap()
    }

    fn with_entry<R>(&self, token: DmbToken, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut inner = self.inner.lock().unwrap();
        inner.dmbs.iter_mut().find(|e| e.token == token).map(f)
    }

    /// The header currently in the DMB of `token`.
    pub(crate) fn header(&self, token: DmbToken) -> CdcHeader {
        cdc::snapshot(&self.mem(token), 0).unwrap()
    }

    /// Overwrite the header in the DMB of `token`, as a (hostile) peer would.
    pub(crate) fn inject(&self, token: DmbToken, hdr: &CdcHeader) {
        cdc::publish(&self.mem(token), 0, &hdr.to_bytes()).unwrap();
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
        // SAFETY: the allocation lives until the device is dropped and is
        // only accessed through `DmbMem` views.
        let mem = unsafe { DmbMem::from_raw_parts(ptr, size) }.map_err(|_| ErrorKind::Other)?;
        let mut inner = self.inner.lock().unwrap();
        let token = DmbToken(0x1000 + inner.dmbs.len() as u64);
        inner.dmbs.push(Entry {
            token,
            raw,
            mem,
            registered: true,
            attached: 0,
        });
        Ok(Dmb { token, mem })
    }

    fn unregister_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.with_entry(token, |e| std::mem::replace(&mut e.registered, false))
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
        let mem = {
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
                .map(|e| e.mem)
                .ok_or(ErrorKind::InvalidToken)?
        };
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

    fn attach_dmb(&self, token: DmbToken) -> Result<Dmb, ErrorKind> {
        if !self.nocopy {
            return Err(ErrorKind::Unsupported);
        }
        self.with_entry(token, |e| {
            e.attached += 1;
            Dmb { token, mem: e.mem }
        })
        .ok_or(ErrorKind::InvalidToken)
    }

    fn detach_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.with_entry(token, |e| e.attached = e.attached.checked_sub(1).unwrap())
            .ok_or(ErrorKind::InvalidToken)
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
        let conn = |own: Dmb, peer: Dmb| {
            let mode = if nocopy {
                SendMode::NoCopy(dev.attach_dmb(peer.token).unwrap())
            } else {
                SendMode::Copy
            };
            Connection::new(ConnParams {
                own,
                peer_token: peer.token,
                peer_dmb_len: peer.mem.len(),
                mode,
            })
            .unwrap()
        };
        let a = conn(da, db);
        let b = conn(db, da);
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
