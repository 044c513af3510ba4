//! Sending (`docs/protocol/cdc.md` §5): writing into the peer's ring, flow control
//! by its consumer cursor, and our CDC header.

use super::{Connection, lend, ring_offset, split};
use crate::conn::ConnError;
use crate::ops::{Error as _, ErrorKind, SmcdOps};
use crate::wire::cdc::{CdcHeader, ProducerFlags};

impl Connection {
    /// Send as much of `data` as the peer's ring has room for.
    ///
    /// Returns the number of bytes accepted — written into the peer's ring
    /// and announced with a CDC header before returning; `Ok(0)` only for an
    /// empty `data`.
    ///
    /// # Errors
    ///
    /// [`ConnError::WouldBlock`] when the peer's ring is full (wait for
    /// [`writable`](Self::writable)), [`ConnError::WriteShutdown`] after our
    /// `shutdown_write`/`close`,
    /// [`ConnError::PeerClosed`] after the peer closed, [`ConnError::Closed`]
    /// after [`close`](Self::close), the sticky error of a failed connection,
    /// or [`ConnError::Device`] if writing failed (the connection is then dead).
    pub fn send<D: SmcdOps>(&mut self, dev: &D, data: &[u8]) -> Result<usize, ConnError> {
        let Some(len) = self.send_len(data.len())? else {
            return Ok(0);
        };
        self.set_write_blocked(data.len());
        let (first, second) = split(self.peer_ring, self.prod.count, len);
        let (a, rest) = data.split_at(first as usize);
        let b = rest.get(..second as usize).unwrap_or_default();
        let at = self.prod.count;
        if let Err(e) = self.put(dev, at, a).and_then(|()| {
            if b.is_empty() {
                Ok(())
            } else {
                self.put(dev, 0, b)
            }
        }) {
            return Err(self.kill(e));
        }
        self.produce(dev, len)
    }

    /// Zero-copy send (nocopy mode only): `f` writes into the free space of
    /// the peer's ring in place and returns how many bytes it wrote (values
    /// above the slice length count as all of it).
    ///
    /// Because the ring wraps, `f` may get only the contiguous part of the
    /// free space; call again for the rest. When the ring is full `f` is not
    /// called and [`ConnError::WouldBlock`] is returned; `Ok(0)` means `f`
    /// wrote nothing.
    ///
    /// # Errors
    ///
    /// [`ConnError::NocopyRequired`] in copy mode; otherwise as [`send`](Self::send).
    pub fn send_with<D: SmcdOps>(
        &mut self,
        dev: &D,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, ConnError> {
        if self.peer.ring().is_none() {
            return Err(ConnError::NocopyRequired);
        }
        let Some(space) = self.send_len(usize::MAX)? else {
            return Ok(0);
        };
        let (room, _) = split(self.peer_ring, self.prod.count, space);
        let at = self.prod.count as usize;
        let written = match self
            .peer
            .ring()
            .map(|ring| lend::writable(ring, at, room as usize, f))
        {
            Some(Ok(n)) => u32::try_from(n).unwrap_or(u32::MAX).min(room),
            _ => return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds))),
        };
        if written == 0 {
            return Ok(0);
        }
        // `write_blocked` is judged on what the closure produced.
        self.set_write_blocked(written as usize);
        self.produce(dev, written)
    }

    /// Common start of a send (`docs/protocol/cdc.md` §5 step 1): the number of
    /// bytes to write (`None` = nothing to send), or
    /// [`ConnError::WouldBlock`] when the ring is full.
    fn send_len(&mut self, to_send: usize) -> Result<Option<u32>, ConnError> {
        crate::stats::bump(&mut self.stats.send_calls);
        if let Some(e) = self.send_blocked_by() {
            return Err(e);
        }
        if to_send == 0 {
            return Ok(None);
        }
        if self.peer_space == 0 {
            crate::stats::bump(&mut self.stats.buffer_full);
            return Err(ConnError::WouldBlock);
        }
        let to_send = u32::try_from(to_send).unwrap_or(u32::MAX);
        Ok(Some(to_send.min(self.peer_space)))
    }

    /// §5 step 2: `write_blocked` when the bytes to send fill or exceed the
    /// peer's free space (equality counts, `docs/protocol/cdc.md` §8 #14).
    fn set_write_blocked(&mut self, to_send: usize) {
        let blocked = to_send >= self.peer_space as usize;
        self.local_prod_flags
            .set(ProducerFlags::WRITE_BLOCKED, blocked);
    }

    /// Write ring bytes of the peer at ring offset `at`.
    fn put<D: SmcdOps>(&self, dev: &D, at: u32, data: &[u8]) -> Result<(), ConnError> {
        match self.peer.ring() {
            Some(ring) => ring
                .write(at as usize, data)
                .map_err(|_| ConnError::Device(ErrorKind::OutOfBounds)),
            None => dev
                .move_data(self.peer.token(), ring_offset(at), data, false)
                .map_err(|e| ConnError::Device(e.kind())),
        }
    }

    /// `len` bytes are in place: advance `prod` and announce them (§5 steps 4–6).
    fn produce<D: SmcdOps>(&mut self, dev: &D, len: u32) -> Result<usize, ConnError> {
        self.prod = self.prod.add(self.peer_ring, len);
        self.peer_space -= len;
        self.write_header(dev)?;
        crate::stats::add(&mut self.stats.bytes_sent, len);
        Ok(len as usize)
    }

    /// Write our header into the peer's DMB with a signal (§5 steps 5–6).
    /// A device failure kills the connection.
    pub(super) fn write_header<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        let hdr = CdcHeader {
            prod: self.prod,
            cons: self.cons,
            prod_flags: self.local_prod_flags,
            conn_state_flags: self.local_conn_flags,
        };
        match dev.move_data(self.peer.token(), 0, &hdr.to_bytes(), true) {
            Ok(()) => {
                self.sent_conn_flags = self.local_conn_flags;
                self.rx_confirmed = self.cons;
                self.peer_prod_flags
                    .remove(ProducerFlags::CONS_CURS_UPD_REQ);
                Ok(())
            }
            Err(e) => Err(self.kill(ConnError::Device(e.kind()))),
        }
    }
}
