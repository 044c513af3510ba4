//! Shared pieces of the connection models (`ring_*`, `window_*`,
//! `close_*`): a two-DMB loom device and a connected pair over tiny rings.
// Each model file uses a different subset.
#![allow(dead_code)]

use loom::thread;
use smcd_core::conn::{ConnError, Connection};
use smcd_core::dmb::{CDC_HEADER_LEN_BYTES, Chid, DmbToken, Gid};
use smcd_core::mem::{DmbMem, DmbRegion};
use smcd_core::ops::{Dmb, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::wire::cdc;

/// Two loom-tracked DMBs with tokens 1 (A's) and 2 (B's). `move_data`
/// copies into the target DMB; a header write goes through
/// `wire::cdc::publish`, as every device must do it. `attach_dmb` binds the
/// other DMB (and maps its ring for nocopy); the handles are made from the
/// regions, which loom leaks, so every view of them stays valid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoomDev {
    regions: [DmbRegion; 2],
}

pub(crate) const A: DmbToken = DmbToken(1);
pub(crate) const B: DmbToken = DmbToken(2);

impl LoomDev {
    fn region(&self, token: DmbToken) -> Result<DmbRegion, ErrorKind> {
        let i = (token.0 as usize).wrapping_sub(1);
        self.regions.get(i).copied().ok_or(ErrorKind::InvalidToken)
    }

    /// A view of the DMB `token`.
    fn mem(&self, token: DmbToken) -> Result<DmbMem, ErrorKind> {
        // SAFETY: loom regions are leaked (valid forever) and reached only
        // through `DmbMem` views.
        self.region(token)
            .map(|r| unsafe { DmbMem::from_region(r) })
    }

    /// Our own DMB `token`, as the handshake would have registered it.
    fn own(&self, token: DmbToken) -> Dmb {
        Dmb::new(token, self.mem(token).unwrap()).unwrap()
    }
}

impl ErrorType for LoomDev {
    type Error = ErrorKind;
}

impl SmcdOps for LoomDev {
    fn local_gid(&self) -> Gid {
        Gid::new(1, 2)
    }
    fn chid(&self) -> Chid {
        Chid::LOOPBACK
    }
    fn supports_v2(&self) -> bool {
        true
    }
    fn query_remote_gid(&self, _gid: Gid) -> Result<(), ErrorKind> {
        Ok(())
    }
    fn register_dmb(&self, _size: usize) -> Result<Dmb, ErrorKind> {
        Err(ErrorKind::NoSpace)
    }
    fn unregister_dmb(&self, _dmb: Dmb) -> Result<(), ErrorKind> {
        Ok(())
    }
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), ErrorKind> {
        let mem = self.mem(token)?;
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
        true
    }
    fn attach_dmb(&self, own: &Dmb, id: PeerDmbId, map: bool) -> Result<PeerDmb, ErrorKind> {
        let (peer, len) = (id.token, id.len);
        if own.token() == peer {
            return Err(ErrorKind::InvalidToken);
        }
        let region = self.region(peer)?;
        let ring = match map {
            true => {
                let r = region
                    .tail(CDC_HEADER_LEN_BYTES)
                    .ok_or(ErrorKind::OutOfBounds)?;
                // SAFETY: as in `mem`: a leaked loom region.
                Some(unsafe { DmbMem::from_region(r) })
            }
            false => None,
        };
        PeerDmb::new(own.token(), peer, len, ring).map_err(|_| ErrorKind::InvalidToken)
    }
    fn detach_dmb(&self, _peer: PeerDmb) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// A connected pair A → B over rings of `ring` bytes (DMBs of 32 + `ring`).
pub(crate) fn pair(ring: usize, nocopy: bool) -> (LoomDev, Connection, Connection) {
    let len = CDC_HEADER_LEN_BYTES + ring;
    let dev = LoomDev {
        regions: [DmbRegion::loom_new(len), DmbRegion::loom_new(len)],
    };
    let conn = |own: DmbToken, peer: DmbToken| {
        let own = dev.own(own);
        let id = PeerDmbId {
            gid: dev.local_gid(),
            token: peer,
            len,
        };
        let peer = dev.attach_dmb(&own, id, nocopy).unwrap();
        Connection::new(own, peer)
    };
    (dev, conn(A, B), conn(B, A))
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
