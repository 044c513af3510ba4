//! The device socket: one thread per process that hands our DMBs to the
//! peers that name them (see [`fetch`](super::fetch)).

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

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
    fn admits(self, sock: &UnixStream) -> bool {
        match self {
            Self::AnyUser => true,
            Self::SameUser => rustix::net::sockopt::socket_peercred(sock)
                .is_ok_and(|cred| cred.uid == rustix::process::geteuid()),
        }
    }
}

/// Bind the device socket of `shared` and serve it from a thread of its own.
pub(super) fn start(shared: Arc<Shared>, policy: PeerPolicy) -> io::Result<()> {
    let addr = shared.place.device(shared.gid)?;
    let listener = UnixListener::bind_addr(&addr)?;
    std::thread::Builder::new()
        .name("smcd-device".into())
        .spawn(move || serve(&shared, &listener, policy))?;
    Ok(())
}

fn serve(shared: &Shared, listener: &UnixListener, policy: PeerPolicy) {
    let path = Place::path_of(&listener.local_addr().ok().unwrap_or_else(|| unreachable!()));
    for sock in listener.incoming() {
        let Ok(sock) = sock else { continue };
        if let Err(e) = answer_one(shared, &sock, policy) {
            tracing::debug!(error = %e, "device socket request failed");
        }
    }
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}

fn answer_one(shared: &Shared, sock: &UnixStream, policy: PeerPolicy) -> io::Result<()> {
    sock.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    sock.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let req = match fetch::read_request(sock)? {
        Some(Asked::Dmb(req)) => req,
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
            fetch::answer(sock, Status::Granted, &[e.fd.as_fd(), e.bell.as_fd()])
        }
        _ => {
            drop(st);
            fetch::answer(sock, Status::Unknown, &[])
        }
    }
}
