//! Shutdown, close and abort (`docs/protocol/close.md`), failure handling, and
//! giving the buffers back to the device.

use super::Connection;
use super::close::{self, CloseAction, CloseFacts};
use crate::conn::{ConnError, Violation};
use crate::ops::{Dmb, Error as _, PeerDmb, SmcdOps};
use crate::wire::cdc::ConnStateFlags;

impl Connection {
    pub(super) fn facts(&self) -> CloseFacts {
        CloseFacts::new(self.sent_conn_flags, self.peer_conn_flags, self.app_closed)
    }

    /// Set a close flag and write it (a close-state-machine action).
    fn perform<D: SmcdOps>(&mut self, dev: &D, action: CloseAction) -> Result<(), ConnError> {
        let flag = match action {
            CloseAction::SendDoneWriting => ConnStateFlags::PEER_DONE_WRITING,
            CloseAction::SendClose if self.bytes_to_rcv == 0 => ConnStateFlags::PEER_CONN_CLOSED,
            CloseAction::SendClose | CloseAction::SendAbort => {
                crate::stats::bump(&mut self.stats.aborts);
                ConnStateFlags::PEER_CONN_ABORT
            }
        };
        self.local_conn_flags |= flag;
        self.write_header(dev)
    }

    /// Shut down our write side (`shutdown(SHUT_WR)`, `docs/protocol/close.md` §2):
    /// in [`CloseState::Active`](super::CloseState::Active) or [`CloseState::AppCloseWait1`](super::CloseState::AppCloseWait1) a
    /// done-writing header is sent; otherwise nothing happens.
    ///
    /// There is nothing to flush: every byte a send accepted is already in
    /// the peer's ring. A driver also shuts down the TCP connection's write side.
    ///
    /// # Errors
    ///
    /// [`ConnError::Closed`] after [`close`](Self::close); the sticky error
    /// of a failed connection; [`ConnError::Device`] if the header write failed.
    pub fn shutdown_write<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        if let Some(e) = self.recv_blocked_by() {
            return Err(e);
        }
        let (action, next) = close::on_shutdown_write(self.state);
        if let Some(a) = action {
            self.perform(dev, a)?;
        }
        self.state = next;
        Ok(())
    }

    /// The application closes the connection (`close()` / SHUT_RDWR,
    /// `docs/protocol/close.md` §1).
    ///
    /// Sends the close header the state requires: `peer_conn_closed`, or
    /// `peer_conn_abort` when received bytes are still unread (and always
    /// after the peer aborted). Afterwards keep calling
    /// [`handle_signal`](Self::handle_signal) until [`is_closed`](Self::is_closed),
    /// then [`release`](Self::release). A driver also shuts down the TCP
    /// connection. Calling it again is harmless.
    ///
    /// # Errors
    ///
    /// [`ConnError::Device`] if the header write failed; the connection is
    /// then closed locally ([`CloseState::Closed`](super::CloseState::Closed)).
    pub fn close<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        self.app_closed = true;
        let (action, next) = close::on_close(self.state, self.facts());
        if let Some(a) = action {
            self.perform(dev, a)?;
        }
        self.state = next;
        Ok(())
    }

    /// Abort the connection locally (`docs/protocol/close.md` §4), e.g. because the
    /// device is going away: an abort header is sent (unless the peer
    /// already aborted or the device failed) and the state becomes
    /// [`CloseState::Closed`](super::CloseState::Closed). From then on calls report [`ConnError::Aborted`]
    /// (unless another error came first). No-op in a state that is already
    /// closed.
    pub fn abort<D: SmcdOps>(&mut self, dev: &D) {
        let next = close::on_local_abort(self.state);
        if next == self.state {
            return;
        }
        crate::stats::bump(&mut self.stats.aborts);
        self.abort_with(dev, ConnError::Aborted);
        self.state = next;
    }

    /// The peer left without closing — its process died: the TCP stream
    /// ended while it had sent neither done-writing nor close. The
    /// connection is aborted as by [`abort`](Self::abort), except that the
    /// bytes the peer announced before it left (their headers were valid)
    /// stay readable: [`recv`](Self::recv) returns them first and
    /// [`ConnError::Aborted`] after them, as TCP delivers what a dead peer
    /// sent before its end. A connection that had already failed stays as
    /// it was (no draining after a violation).
    pub fn peer_left<D: SmcdOps>(&mut self, dev: &D) {
        let healthy = self.error.is_none();
        self.abort(dev);
        self.drain_after_abort = healthy && self.error == Some(ConnError::Aborted);
    }

    /// Record `e` (unless an error is already recorded), set our abort flag
    /// and try to tell the peer, unless it aborted itself or the device failed.
    fn abort_with<D: SmcdOps>(&mut self, dev: &D, e: ConnError) {
        let tell_peer = !matches!(self.error, Some(ConnError::Device(_)))
            && !self
                .peer_conn_flags
                .contains(ConnStateFlags::PEER_CONN_ABORT);
        self.error.get_or_insert(e);
        self.local_conn_flags |= ConnStateFlags::PEER_CONN_ABORT;
        if tell_peer {
            // Best effort: a failure only records a device error, which is
            // not reported over the first one.
            let _ = self.write_header(dev);
        }
    }

    /// The peer broke the protocol: abort and tell it.
    pub(super) fn violation<D: SmcdOps>(&mut self, dev: &D, v: Violation) -> ConnError {
        crate::stats::bump(&mut self.stats.aborts);
        self.abort_with(dev, ConnError::Violation(v));
        self.state = close::on_local_abort(self.state);
        ConnError::Violation(v)
    }

    /// A device operation failed: the connection is dead (§5 step 7).
    pub(super) fn kill(&mut self, e: ConnError) -> ConnError {
        if self.error.is_none() {
            crate::stats::bump(&mut self.stats.aborts);
            self.error = Some(e);
        }
        self.local_conn_flags |= ConnStateFlags::PEER_CONN_ABORT;
        self.state = close::on_local_abort(self.state);
        e
    }

    /// Give the buffers back to the device: detach the peer's DMB, then
    /// unregister our own ([`ops::give_back`](crate::ops::give_back), the one
    /// release path). Call once the connection is finished — normally when
    /// [`is_closed`](Self::is_closed) after [`close`](Self::close), or right
    /// after [`abort`](Self::abort).
    ///
    /// # Errors
    ///
    /// [`ConnError::Device`] with the first failure; both steps are attempted.
    pub fn release<D: SmcdOps>(self, dev: &D) -> Result<(), ConnError> {
        let (own, peer) = self.into_dmbs();
        crate::ops::give_back(dev, Some(own), Some(peer)).map_err(|e| ConnError::Device(e.kind()))
    }

    /// The two DMB handles, for a caller that gives them back itself.
    pub fn into_dmbs(self) -> (Dmb, PeerDmb) {
        (self.own, self.peer)
    }
}
