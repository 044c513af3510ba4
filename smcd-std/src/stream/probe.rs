//! Single non-blocking attempts and readiness queries on a stream, for
//! callers that multiplex many streams themselves (the preload shim's
//! `poll`/`select`/`epoll` and its `MSG_DONTWAIT`/`MSG_PEEK` calls).
//!
//! A child module of `stream`, so that it reuses the stream's private
//! machinery (`attempt`, `sync_ready`, the doorbell drain) instead of
//! copying it.

use std::io;

use rustix::event::{PollFd, PollFlags};
use smcd_core::endpoint::{EndpointError, Transport as EpTransport};

use super::{
    COPY_CHUNK, Dir, Look, Mode, SELF_RING, Smc, SmcStream, attempt, drain_rings, lock, map_conn,
};

/// What a stream could report now without waiting (see
/// [`SmcStream::readiness`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    /// A read would return bytes, EOF or an error.
    pub readable: bool,
    /// A write would accept bytes or fail.
    pub writable: bool,
    /// The peer ended its sending (EOF after the bytes still queued).
    pub read_closed: bool,
    /// The connection is gone (closed, reset, or the handshake failed).
    pub hangup: bool,
    /// A pending error (a failed handshake, a reset, an aborted connection).
    pub error: bool,
    /// The CLC handshake is still running.
    pub handshaking: bool,
}

/// Which readiness a caller waits for (see [`SmcStream::readiness`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    /// Readable (bytes, EOF, error).
    pub read: bool,
    /// Writable (room, error).
    pub write: bool,
}

impl Ready {
    fn satisfies(&self, want: Want) -> bool {
        (want.read && self.readable) || (want.write && self.writable) || self.hangup || self.error
    }
}

impl SmcStream {
    /// One non-blocking attempt of `op` after polling the endpoint: the
    /// non-blocking path of the stream's run loop (drain the doorbell when
    /// nothing is there, look once more, announce news again), whatever
    /// mode the stream is in. `Ok(None)` when it would block.
    fn once<T>(
        &self,
        dir: Dir,
        mut op: impl FnMut(&mut Smc) -> Result<T, EndpointError>,
    ) -> io::Result<Option<T>> {
        let Mode::Smc(m) = &self.inner.mode else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        let mut s = lock(m);
        let first = attempt(&mut s, &mut op, Look::Shared);
        self.sync_ready(&mut s, dir, &first);
        if let Some(v) = first? {
            return Ok(Some(v));
        }
        let edge = self.opts().edge;
        let bell = s
            .ready
            .as_ref()
            .and_then(|r| r.bell.clone())
            .filter(|_| !edge);
        if let Some(b) = &bell {
            s.news |= drain_rings(b);
        }
        let again = attempt(&mut s, &mut op, Look::Full);
        self.sync_ready(&mut s, dir, &again);
        if let Some(b) = &bell {
            if std::mem::take(&mut s.news) {
                let _ = rustix::io::write(b, &SELF_RING.to_ne_bytes());
            }
        }
        again
    }

    /// Read without waiting, whatever the stream's mode: `WouldBlock` when
    /// nothing is there yet.
    ///
    /// # Errors
    ///
    /// As [`Read::read`](std::io::Read::read) in non-blocking mode.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match &self.inner.mode {
            Mode::Plain(_) => {
                rustix::net::recv(&self.inner.tcp, buf, rustix::net::RecvFlags::DONTWAIT)
                    .map(|(n, _)| n)
                    .map_err(io::Error::from)
            }
            Mode::Smc(_) => self
                .once(Dir::Read, |s| read_op(s, buf))?
                .ok_or_else(|| io::ErrorKind::WouldBlock.into()),
        };
        if let Ok(n) = r {
            crate::stats::received(n);
        }
        r
    }

    /// Write without waiting, whatever the stream's mode: `WouldBlock` when
    /// nothing fits now.
    ///
    /// # Errors
    ///
    /// As [`Write::write`](std::io::Write::write) in non-blocking mode.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let r = match &self.inner.mode {
            Mode::Plain(_) => rustix::net::send(
                &self.inner.tcp,
                data,
                rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from),
            Mode::Smc(_) => self
                .once(Dir::Write, |s| s.ep.send(data))?
                .ok_or_else(|| io::ErrorKind::WouldBlock.into()),
        };
        if let Ok(n) = r {
            crate::stats::sent(n);
        }
        r
    }

    /// Copy received bytes into `buf` without consuming them (`MSG_PEEK`);
    /// `Ok(0)` at EOF. Blocks until something is there unless `nonblocking`
    /// (then `WouldBlock`). Over SMC-D at most the bytes up to the ring's
    /// end are seen at once.
    ///
    /// # Errors
    ///
    /// As [`Read::read`](std::io::Read::read).
    pub fn peek(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Mode::Plain(_) = &self.inner.mode {
            let mut flags = rustix::net::RecvFlags::PEEK;
            if nonblocking {
                flags |= rustix::net::RecvFlags::DONTWAIT;
            }
            return rustix::net::recv(&self.inner.tcp, buf, flags)
                .map(|(n, _)| n)
                .map_err(io::Error::from);
        }
        let op = |s: &mut Smc| peek_op(s, buf);
        if nonblocking {
            self.once(Dir::Read, op)?
                .ok_or_else(|| io::ErrorKind::WouldBlock.into())
        } else {
            self.run(Dir::Read, op)
        }
    }

    /// Bytes a read would return now without waiting (`FIONREAD`): over
    /// SMC-D the bytes in our ring, after a fallback what the TCP socket
    /// holds (and what the stream kept back); 0 while handshaking.
    ///
    /// # Errors
    ///
    /// The endpoint failed.
    pub fn bytes_readable(&self) -> io::Result<usize> {
        let Mode::Smc(_) = &self.inner.mode else {
            return Ok(0);
        };
        Ok(self
            .once(Dir::Read, |s| {
                if let Some(c) = s.ep.connection() {
                    return Ok(c.bytes_available());
                }
                if matches!(s.ep.transport(), EpTransport::Tcp(_)) {
                    let _ = fill_leftover(s);
                    return Ok(s.leftover.len());
                }
                Ok(0)
            })?
            .unwrap_or(0))
    }

    /// What the stream could report now, without waiting: polls the
    /// endpoint (which also drives a running handshake) and, when nothing
    /// that `want` asks for is ready, drains the doorbell so the readiness
    /// fd ([`AsFd`](std::os::fd::AsFd)) does not stay readable without cause — then looks once
    /// more, as a non-blocking call does.
    ///
    /// # Errors
    ///
    /// Never for a settled stream: failures are reported as `error`.
    pub fn readiness(&self, want: Want) -> io::Result<Ready> {
        let Mode::Smc(_) = &self.inner.mode else {
            return Ok(plain_ready(self));
        };
        let mut last = Ready::default();
        let got = self.once(Dir::Read, |s| ready_op(s, want, &mut last));
        Ok(settle_ready(got, last))
    }

    /// What the stream could report now, for a caller that is woken by
    /// edges — the shim's epoll, which registers the readiness fd
    /// edge-triggered and keeps its own level-triggered list: it looks at
    /// the shared memory only and, when that shows nothing `want` asks for
    /// and `full`, at the TCP stream and timers too (a system call). Unlike
    /// [`readiness`](Self::readiness) it never drains the doorbell, so it
    /// costs no system call when the peer's header answers the question.
    /// Returns, next to the readiness, whether the full look ran: a caller
    /// that saw a wake-up (which may have been the TCP socket's) asks for
    /// one until it ran.
    ///
    /// # Errors
    ///
    /// Never for a settled stream: failures are reported as `error`.
    pub fn readiness_on_edge(&self, want: Want, full: bool) -> io::Result<(Ready, bool)> {
        let Mode::Smc(m) = &self.inner.mode else {
            return Ok((plain_ready(self), true));
        };
        let mut last = Ready::default();
        let mut op = |s: &mut Smc| ready_op(s, want, &mut last);
        let mut s = lock(m);
        let first = attempt(&mut s, &mut op, Look::Shared);
        self.sync_ready(&mut s, Dir::Read, &first);
        if !full || !matches!(first, Ok(None)) {
            drop(s);
            return Ok((settle_ready(first, last), false));
        }
        let again = attempt(&mut s, &mut op, Look::Full);
        self.sync_ready(&mut s, Dir::Read, &again);
        drop(s);
        Ok((settle_ready(again, last), true))
    }

    /// Drive a running CLC handshake for at most `limit` (nothing for a
    /// settled stream); afterwards [`transport`](Self::transport) answers at
    /// once when it settled.
    pub fn settle(&self, limit: std::time::Duration) {
        self.settle_within(limit);
    }

    /// Let go of this handle without closing the connection or sending
    /// anything: for a process whose copy of the connection, inherited
    /// across `fork`, another process goes on using. The stream's memory
    /// stays mapped (it is shared with the other holder); the fds it owns
    /// in this process are returned, and the caller closes them. With other
    /// handles of this stream alive in this process nothing is returned and
    /// they keep it.
    pub fn abandon(self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        // Out of the registry first: a query holds a stream only while it
        // holds the registry, so after this no count but the handles' own.
        super::live::remove(self.inner.live);
        if std::sync::Arc::strong_count(&self.inner) > 1 {
            super::live::add(&self.inner);
            return Vec::new();
        }
        let mut fds = vec![self.inner.tcp.as_raw_fd()];
        if let Mode::Smc(m) = &self.inner.mode {
            let s = lock(m);
            fds.push(s.ep.stream().tcp().as_raw_fd());
            if let Some(r) = &s.ready {
                fds.push(r.epoll.as_raw_fd());
            }
        }
        std::mem::forget(self);
        fds
    }

    /// Whether the CLC handshake still runs.
    pub fn is_handshaking(&self) -> bool {
        match &self.inner.mode {
            Mode::Plain(_) => false,
            Mode::Smc(m) => lock(m).ep.is_handshaking(),
        }
    }
}

/// A readiness attempt: `Ok` when `want` is satisfied, the readiness seen
/// in `last` either way.
fn ready_op(s: &mut Smc, want: Want, last: &mut Ready) -> Result<Ready, EndpointError> {
    let r = ready_of(s);
    *last = r;
    if r.satisfies(want) {
        Ok(r)
    } else {
        Err(EndpointError::WouldBlock)
    }
}

/// The readiness a query reports after its attempt `got` (`last`: what it
/// saw): a failed endpoint is an error and a hang-up, and ready for all.
fn settle_ready(got: io::Result<Option<Ready>>, last: Ready) -> Ready {
    match got {
        Ok(Some(r)) => r,
        Ok(None) => last,
        Err(_) => Ready {
            error: true,
            hangup: true,
            readable: true,
            writable: true,
            ..Ready::default()
        },
    }
}

/// A read attempt: what `read_smc` does.
pub(super) fn read_op(s: &mut Smc, buf: &mut [u8]) -> Result<usize, EndpointError> {
    if s.read_shut {
        return Ok(0);
    }
    if !s.leftover.is_empty() {
        let n = buf.len().min(s.leftover.len());
        buf[..n].copy_from_slice(&s.leftover[..n]);
        s.leftover.drain(..n);
        return Ok(n);
    }
    s.ep.recv(buf)
}

/// A peek attempt: copy without consuming.
fn peek_op(s: &mut Smc, buf: &mut [u8]) -> Result<usize, EndpointError> {
    if s.read_shut {
        return Ok(0);
    }
    let dev = s.ep.host().device().clone();
    if let Some((conn, _)) = s.ep.connection_mut() {
        let mut copied = 0;
        conn.recv_with(&dev, |b| {
            copied = b.len().min(buf.len());
            buf[..copied].copy_from_slice(&b[..copied]);
            0
        })
        .map_err(map_conn)?;
        return Ok(copied);
    }
    if s.leftover.is_empty() && fill_leftover(s)? == 0 {
        return Ok(0);
    }
    let n = buf.len().min(s.leftover.len());
    buf[..n].copy_from_slice(&s.leftover[..n]);
    Ok(n)
}

/// After a fallback: move what the endpoint has into `leftover` (which the
/// reads take first); the bytes moved, 0 at EOF.
fn fill_leftover(s: &mut Smc) -> Result<usize, EndpointError> {
    let mut chunk = vec![0u8; COPY_CHUNK];
    let n = s.ep.recv(&mut chunk)?;
    s.leftover.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Readiness of a stream whose endpoint was just polled.
fn ready_of(s: &mut Smc) -> Ready {
    let mut r = Ready::default();
    match s.ep.transport() {
        EpTransport::Handshaking => r.handshaking = true,
        EpTransport::SmcD(_) => match s.ep.connection() {
            Some(c) => {
                r.readable = c.readable() || s.read_shut || !s.leftover.is_empty();
                r.writable = c.writable();
                r.read_closed = c.peer_done_writing();
                r.error = c.error().is_some();
                r.hangup = c.is_closed() || r.error;
            }
            None => {
                r.hangup = true;
                r.readable = true;
                r.writable = true;
            }
        },
        EpTransport::Tcp(_) => {
            r.readable = s.read_shut || !s.leftover.is_empty();
            if !r.readable {
                match fill_leftover(s) {
                    Ok(0) => {
                        r.readable = true;
                        r.read_closed = true;
                    }
                    Ok(_) => r.readable = true,
                    Err(EndpointError::WouldBlock) => {}
                    Err(_) => {
                        r.readable = true;
                        r.error = true;
                    }
                }
            }
            let tcp = s.ep.stream().tcp();
            let mut fds = [PollFd::new(tcp, PollFlags::OUT)];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if rustix::event::poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0) {
                let ev = fds[0].revents();
                r.writable = ev.contains(PollFlags::OUT) || ev.contains(PollFlags::ERR);
                r.hangup |= ev.contains(PollFlags::HUP);
                r.error |= ev.contains(PollFlags::ERR);
            }
        }
        EpTransport::Failed(_) | EpTransport::Closed => {
            r.error = true;
            r.hangup = true;
            r.readable = true;
            r.writable = true;
        }
    }
    r
}

/// Readiness of a plain TCP stream: its socket's.
fn plain_ready(s: &SmcStream) -> Ready {
    let mut fds = [PollFd::new(
        &s.inner.tcp,
        PollFlags::IN | PollFlags::OUT | PollFlags::RDHUP,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut r = Ready::default();
    if rustix::event::poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0) {
        let ev = fds[0].revents();
        r.readable = ev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR);
        r.writable = ev.intersects(PollFlags::OUT | PollFlags::ERR);
        r.read_closed = ev.contains(PollFlags::RDHUP);
        r.hangup = ev.contains(PollFlags::HUP);
        r.error = ev.contains(PollFlags::ERR);
    }
    r
}
