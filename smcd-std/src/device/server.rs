//! The device socket: one thread per process that hands our DMBs to the
//! peers that name them (see [`fetch`](super::fetch)).

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use smcd_core::dmb::Gid;

use super::Shared;
use super::fetch::{self, Asked, Status};
use super::report;
use crate::naming::Place;

/// How long a peer may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// Which processes may obtain our DMBs (checked with `SO_PEERCRED` on the
/// device socket, besides knowing the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerPolicy {
    /// Only processes of our own effective uid (the default).
    #[default]
    SameUser,
    /// Any process that knows the token.
    AnyUser,
}

impl PeerPolicy {
    /// Whether the process at the other end of `sock` passes.
    pub(super) fn admits(self, sock: &UnixStream) -> bool {
        match self {
            Self::AnyUser => true,
            Self::SameUser => rustix::net::sockopt::socket_peercred(sock)
                .is_ok_and(|cred| self.admits_uid(cred.uid)),
        }
    }

    /// Whether a process running as `uid` passes.
    pub(crate) fn admits_uid(self, uid: rustix::process::Uid) -> bool {
        match self {
            Self::AnyUser => true,
            Self::SameUser => uid == rustix::process::geteuid(),
        }
    }
}

/// How long a request may keep a spinning application thread that
/// answers it (a peer writes its request right after it connects).
const SPINNER_REQUEST_TIMEOUT: Duration = Duration::from_millis(5);

/// Bind the device socket of the device `gid` at `place`, non-blocking.
pub(super) fn bind(place: &Place, gid: Gid) -> io::Result<UnixListener> {
    let listener = UnixListener::bind_addr(&place.device(gid)?)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serve the device socket of `shared` from a thread of its own.
pub(super) fn start(shared: Arc<Shared>) -> io::Result<()> {
    crate::quiet::spawn("smcd-device", move || serve(&shared))?;
    Ok(())
}

fn serve(shared: &Shared) {
    let listener = &shared.listener;
    loop {
        let mut fds = [PollFd::new(listener, PollFlags::IN)];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                tracing::warn!(error = %e, "device socket: poll failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Another thread of ours may have taken the connection first.
        while let Ok((sock, _)) = listener.accept() {
            if let Err(e) = answer_one(shared, &sock, false) {
                tracing::debug!(error = %e, "device socket request failed");
            }
        }
    }
}

/// Answer one request waiting on the device socket, if there is one.
pub(super) fn serve_pending(shared: &Shared) {
    if let Ok((sock, _)) = shared.listener.accept() {
        if let Err(e) = answer_one(shared, &sock, true) {
            tracing::debug!(error = %e, "device socket request failed");
        }
    }
}

/// Answer the request on `sock`; `spinner`: from an application thread
/// (see [`serve_pending`]), not the device thread.
fn answer_one(shared: &Shared, sock: &UnixStream, spinner: bool) -> io::Result<()> {
    let timeout = if spinner {
        SPINNER_REQUEST_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    let policy = shared.policy;
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    let (req, offer) = match fetch::read_request(sock)? {
        Some(Asked::Dmb(req, offer)) => (req, offer),
        // Reports are the device thread's work, not a spinning caller's.
        Some(Asked::Report(_)) if spinner => {
            return fetch::answer(sock, Status::Busy, &[]);
        }
        Some(Asked::Report(what)) => return report::answer(sock, what),
        None => return fetch::answer(sock, Status::Malformed, &[]),
    };
    if !policy.admits(sock) {
        tracing::warn!("device socket: a process of another user asked for a DMB");
        return fetch::answer(sock, Status::Denied, &[]);
    }
    let mut st = shared.lock();
    match st.own.get_mut(&req.token.0) {
        Some(e) if !e.handed_out && e.map.region().len() as u64 == req.len => {
            e.handed_out = true;
            fetch::answer(sock, Status::Granted, &[e.fd.as_fd(), e.bell.as_fd()])?;
            st.granted += 1;
            if let Some(o) = offer {
                st.keep_offer(req.from, req.token, o);
            }
            Ok(())
        }
        _ => {
            drop(st);
            fetch::answer(sock, Status::Unknown, &[])
        }
    }
}
