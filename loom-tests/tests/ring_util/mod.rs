//! Shared pieces of the connection models (`ring_*`, `window_*`,
//! `close_*`): a two-DMB loom device and a connected pair over tiny rings.
// Each model file uses a different subset.
#![allow(dead_code)]

use loom::thread;
use smcd_core::conn::{ConnError, ConnParams, Connection, SendMode};
use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::mem::DmbMem;
use smcd_core::ops::{Dmb, ErrorKind, ErrorType, SmcdOps};
use smcd_core::wire::cdc;

/// Two loom-tracked DMBs with tokens 1 (A's) and 2 (B's). `move_data`
/// copies into the target DMB; a header write goes through
/// `wire::cdc::publish`, as every device must do it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoomDev {
    mems: [DmbMem; 2],
}

pub(crate) const A: DmbToken = DmbToken(1);
pub(crate) const B: DmbToken = DmbToken(2);

impl LoomDev {
    fn dmb(&self, token: DmbToken) -> Result<Dmb, ErrorKind> {
        let i = (token.0 as usize).wrapping_sub(1);
        self.mems
            .get(i)
            .map(|&mem| Dmb { token, mem })
            .ok_or(ErrorKind::InvalidToken)
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
    fn unregister_dmb(&self, _token: DmbToken) -> Result<(), ErrorKind> {
        Ok(())
    }
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), ErrorKind> {
        let mem = self.dmb(token)?.mem;
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
    fn attach_dmb(&self, token: DmbToken) -> Result<Dmb, ErrorKind> {
        self.dmb(token)
    }
    fn detach_dmb(&self, _token: DmbToken) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// A connected pair A → B over rings of `ring` bytes (DMBs of 32 + `ring`).
pub(crate) fn pair(ring: usize, nocopy: bool) -> (LoomDev, Connection, Connection) {
    let len = 32 + ring;
    let dev = LoomDev {
        mems: [DmbMem::loom_new(len), DmbMem::loom_new(len)],
    };
    let conn = |own: DmbToken, peer: DmbToken| {
        let mode = if nocopy {
            SendMode::NoCopy(dev.attach_dmb(peer).unwrap())
        } else {
            SendMode::Copy
        };
        Connection::new(ConnParams {
            own: dev.dmb(own).unwrap(),
            peer_token: peer,
            peer_dmb_len: len,
            mode,
        })
        .unwrap()
    };
    (dev, conn(A, B), conn(B, A))
}

/// Send all of `data`, waiting for window updates when the ring is full.
pub(crate) fn send_all(c: &mut Connection, dev: &LoomDev, data: &[u8]) {
    let mut sent = 0;
    while sent < data.len() {
        c.handle_signal(dev).unwrap();
        let n = c.send(dev, &data[sent..]).unwrap();
        if n == 0 {
            thread::yield_now();
        }
        sent += n;
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
