//! Receiving (`docs/protocol/cdc.md` §6–7): processing the peer's header, handing
//! bytes to the application, and consumer-cursor (window) updates.

use super::ANY_SHUTDOWN;
use super::validate::RxView;
use super::window::WindowView;
use super::{Connection, lend, ring_offset, split, validate, window};
use crate::conn::{CloseState, ConnError, close};
use crate::ops::{ErrorKind, SmcdOps};
use crate::wire::cdc::{self, ConnStateFlags, ProducerFlags};

impl Connection {
    /// Process the peer's latest CDC header in our DMB (`docs/protocol/cdc.md` §6).
    ///
    /// Call it whenever the device signals our DMB; extra calls are cheap and
    /// harmless (an unchanged header is skipped). It credits new bytes and
    /// returned send space, records the peer's `write_blocked` /
    /// `cons_curs_upd_req` (a request is answered at once with a
    /// consumer-cursor header), and runs the passive-close transitions of
    /// `docs/protocol/close.md` §3. Afterwards query [`readable`](Self::readable),
    /// [`writable`](Self::writable) and [`state`](Self::state).
    ///
    /// Ignored (`Ok`) once the connection is closed or failed.
    ///
    /// # Errors
    ///
    /// [`ConnError::Violation`] if the header is invalid (among others: it
    /// moves the producer cursor after an earlier header ended the peer's
    /// sending): the connection is aborted (our abort flag is sent). [`ConnError::Device`] if answering
    /// an update request failed.
    pub fn handle_signal<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        if self.error.is_some() || self.state == CloseState::Closed {
            return Ok(());
        }
        let hdr = match cdc::snapshot(self.own.mem(), 0) {
            Ok(h) => h,
            Err(_) => return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds))),
        };
        let words = (hdr.prod_word(), hdr.cons_word());
        if words == self.last_words {
            return Ok(());
        }
        let view = RxView {
            own_ring: self.own_ring,
            peer_ring: self.peer_ring,
            rx_prod: self.rx_prod,
            rx_cons: self.rx_cons,
            bytes_to_rcv: self.bytes_to_rcv,
            in_flight: self.in_flight(),
            peer_flags: self.peer_conn_flags,
        };
        let moved = match validate::check(&view, &hdr) {
            Ok(m) => m,
            Err(v) => return Err(self.violation(dev, v)),
        };
        self.last_words = words;

        // §6 step 2: space given back.
        self.rx_cons = hdr.cons;
        if moved.cons_moved > 0 {
            self.peer_space += moved.cons_moved;
            crate::stats::bump(&mut self.stats.window_updates_received);
        }
        // §6 step 3: new bytes (an urgent byte is counted inline).
        self.rx_prod = hdr.prod;
        self.bytes_to_rcv += moved.prod_moved;
        self.peer_prod_flags = hdr.prod_flags;
        self.peer_conn_flags = hdr.conn_state_flags;

        // §6 step 4: answer an update request now (Linux defers it to the
        // next read or data header; the bytes on the wire are the same).
        if self
            .peer_prod_flags
            .contains(ProducerFlags::CONS_CURS_UPD_REQ)
        {
            self.send_window_update(dev)?;
        }

        // §6 step 5 and close.md §3.
        if self.peer_conn_flags.intersects(ANY_SHUTDOWN) {
            if self
                .peer_conn_flags
                .contains(ConnStateFlags::PEER_CONN_ABORT)
            {
                self.error = Some(ConnError::Reset);
                self.local_conn_flags |= ConnStateFlags::PEER_CONN_ABORT;
                crate::stats::bump(&mut self.stats.aborts);
            }
            self.state = close::on_peer_close(self.state, self.facts(), self.peer_conn_flags);
        }
        Ok(())
    }

    /// Copy received bytes into `buf`.
    ///
    /// Returns the number of bytes copied; `Ok(0)` only at EOF (the peer
    /// ended its sending and every byte was read) or for an empty `buf`.
    /// Consuming may write a consumer-cursor update (`docs/protocol/cdc.md` §7); if
    /// that write fails, the bytes are still returned and the connection
    /// reports the failure from then on.
    ///
    /// # Errors
    ///
    /// [`ConnError::WouldBlock`] when no bytes are there yet;
    /// [`ConnError::Closed`] after [`close`](Self::close); the sticky error
    /// of a failed connection ([`ConnError::Reset`], [`ConnError::Aborted`],
    /// [`ConnError::Violation`], [`ConnError::Device`]) — unread bytes are
    /// discarded then, as with a TCP reset.
    pub fn recv<D: SmcdOps>(&mut self, dev: &D, buf: &mut [u8]) -> Result<usize, ConnError> {
        crate::stats::bump(&mut self.stats.recv_calls);
        let avail = self.recv_ready()?;
        let n = avail.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        let (first, second) = split(self.own_ring, self.cons.count, n);
        let (a, rest) = buf.split_at_mut(first as usize);
        let b = rest.get_mut(..second as usize).unwrap_or_default();
        let copied = self
            .own
            .mem()
            .read(ring_offset(self.cons.count), a)
            .and_then(|()| self.own.mem().read(ring_offset(0), b));
        if copied.is_err() {
            return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds)));
        }
        self.consume(dev, n);
        Ok(n as usize)
    }

    /// Zero-copy receive: `f` sees received bytes in place in our DMB and
    /// returns how many it consumed (values above the slice length count as
    /// all of it).
    ///
    /// Because the ring wraps, `f` may see only the contiguous part of the
    /// available bytes; call again for the rest. At EOF `f` is not called
    /// and `Ok(0)` is returned. The bytes are peer-written shared memory:
    /// treat them as untrusted, and do not expect them to stay unchanged if
    /// the peer is hostile.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_with<D: SmcdOps>(
        &mut self,
        dev: &D,
        f: impl FnOnce(&[u8]) -> usize,
    ) -> Result<usize, ConnError> {
        crate::stats::bump(&mut self.stats.recv_calls);
        let avail = self.recv_ready()?;
        if avail == 0 {
            return Ok(0);
        }
        let (len, _) = split(self.own_ring, self.cons.count, avail);
        let at = ring_offset(self.cons.count);
        let taken = match lend::readable(self.own.mem(), at, len as usize, f) {
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX).min(len),
            Err(_) => return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds))),
        };
        self.consume(dev, taken);
        Ok(taken as usize)
    }

    /// Bytes available, `Ok(0)` at EOF, or why receiving is not possible.
    fn recv_ready(&self) -> Result<u32, ConnError> {
        if self.drain_after_abort && !self.app_closed && self.bytes_to_rcv > 0 {
            // The peer left (see `peer_left`): what it announced while it
            // was alive comes before the abort.
            Ok(self.bytes_to_rcv)
        } else if let Some(e) = self.recv_blocked_by() {
            Err(e)
        } else if self.bytes_to_rcv == 0 && !self.peer_done_writing() {
            Err(ConnError::WouldBlock)
        } else {
            Ok(self.bytes_to_rcv)
        }
    }

    /// The application consumed `n` bytes (`docs/protocol/cdc.md` §7).
    fn consume<D: SmcdOps>(&mut self, dev: &D, n: u32) {
        if n == 0 {
            return;
        }
        self.bytes_to_rcv -= n;
        self.cons = self.cons.add(self.own_ring, n);
        crate::stats::add(&mut self.stats.bytes_received, n);
        let view = WindowView {
            own_ring: self.own_ring,
            cons: self.cons,
            rx_confirmed: self.rx_confirmed,
            rx_prod: self.rx_prod,
            update_requested: self
                .peer_prod_flags
                .contains(ProducerFlags::CONS_CURS_UPD_REQ),
            peer_write_blocked: self.peer_prod_flags.contains(ProducerFlags::WRITE_BLOCKED),
        };
        // After an abort nobody reads our cursor any more.
        if self.error.is_none() && window::should_update(&view) {
            // A failure is recorded in `self.error` and reported by the next call.
            let _ = self.send_window_update(dev);
        }
        if self.bytes_to_rcv == 0 {
            self.peer_prod_flags.remove(ProducerFlags::WRITE_BLOCKED);
        }
    }

    /// A consumer-cursor-only header (`docs/protocol/cdc.md` §5 steps 5–6).
    fn send_window_update<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        self.write_header(dev)?;
        crate::stats::bump(&mut self.stats.window_updates_sent);
        Ok(())
    }
}
