//! Streams and listeners around sockets that someone else created and
//! connected: the preload shim keeps the application's fd a kernel TCP
//! socket and hands smcd a duplicate of it.
//!
//! The same rules as [`SmcStream::connect`] and [`SmcListener`]: a client
//! announces its local port on the listener's rendezvous *before* its SYN
//! ([`SmcConfig::announce`]), and only a connection that was announced
//! speaks CLC ([`ListenRendezvous::take`]); everyone else is plain TCP.
//!
//! [`SmcListener`]: crate::SmcListener

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;

use smcd_core::endpoint::Endpoint;
use smcd_core::ops::SmcdOps;

use crate::config::SmcConfig;
use crate::rendezvous::{self, Rendezvous};
use crate::stream::SmcStream;
use crate::tcp::TcpWire;
use crate::transport::{TcpReason, Transport};
use crate::wait::now_ms;

pub use crate::stream::probe::{Ready, Want};

/// Which end of the CLC handshake an adopted socket plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The connecting side (it announced itself, then connected).
    Client,
    /// The accepting side (its listener took the announcement).
    Server,
}

/// The rendezvous of a listening socket that smcd did not create (see
/// [`SmcConfig::serve_rendezvous`]): it collects the announcements of smcd
/// clients; the socket is unbound when this is dropped.
#[derive(Debug)]
pub struct ListenRendezvous {
    inner: Mutex<Rendezvous>,
    local: SocketAddr,
}

impl ListenRendezvous {
    /// The listener's address the rendezvous is named after.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether the connection accepted from `peer` (on local address
    /// `local`) was announced by an smcd client of this host; the
    /// announcement is used up. Only then may it speak CLC.
    pub fn take(&self, local: SocketAddr, peer: SocketAddr) -> bool {
        let same_host = peer.ip().is_loopback() || peer.ip() == local.ip();
        same_host
            && self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(peer.port())
                .is_some()
    }
}

impl ListenRendezvous {
    /// Receive the queued announcements and hand each announced port to
    /// `f`, for a caller that keeps the pending set itself — e.g. in memory
    /// shared by the processes that inherited the listener across fork, any
    /// of which may accept the announced connection. (Use either this or
    /// [`take`](Self::take) on one rendezvous.)
    pub fn drain(&self, f: impl FnMut(u16)) {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv_each(f);
    }
}

impl ListenRendezvous {
    /// Close this process's handle of the rendezvous socket but leave its
    /// name (a path socket's file) to the other processes that inherited it
    /// across fork and still listen.
    pub fn abandon(self) {
        self.inner
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keep_path();
    }
}

/// Keep smcd's long-lived fds (duplicates of sockets, memfds, eventfds,
/// epoll sets) at `floor` and above from now on, so that an application's
/// own fd numbers stay as low as without smcd (0, the default: anywhere).
pub fn set_fd_floor(floor: i32) {
    crate::fdfloor::set(floor);
}

/// Read every process-wide `SMCD_*` setting from the environment now (the
/// device's place and peer policy), for a program that may clear its
/// environment before its first smcd connection. Configurations read
/// theirs in [`SmcConfig::from_env`].
pub fn read_env_now() {
    let _ = crate::config::device_env();
}

thread_local! {
    /// The registry of live streams and the counters, held by the forking
    /// thread from [`before_fork`] to the handler after it.
    static HELD_FOR_FORK: std::cell::RefCell<Option<crate::stats::ForkHold>> =
        const { std::cell::RefCell::new(None) };
}

/// Before `fork` (a `pthread_atfork` prepare handler): take the locks that
/// another thread of this process may hold — the device thread answering
/// `smcd ss` holds the registry of live streams and the counters for a
/// moment — so that the child never inherits them locked. Release them with
/// [`after_fork_in_parent`] in the parent and [`after_fork_in_child`] in the
/// child, on the same thread.
pub fn before_fork() {
    let hold = crate::stats::hold_for_fork();
    let _ = HELD_FOR_FORK.try_with(|h| *h.borrow_mut() = Some(hold));
}

/// After `fork`, in the parent: release what [`before_fork`] took.
pub fn after_fork_in_parent() {
    let _ = HELD_FOR_FORK.try_with(|h| h.borrow_mut().take());
}

/// In a child after `fork`: the random generator is reseeded (GIDs and
/// tokens must differ from the parent's and the siblings'), the process
/// device's thread did not survive,
/// so the next stream or listener starts a new device (streams inherited
/// from the parent keep the one they have), and the counters of
/// [`stats`](crate::stats) start from zero (the parent reports its own).
/// Pair it with [`SmcConfig::detached`] for the configurations the child
/// goes on using. What [`before_fork`] took is released first.
pub fn after_fork_in_child() {
    let _ = HELD_FOR_FORK.try_with(|h| h.borrow_mut().take());
    // The child inherited its parent's random state: without a reseed every
    // sibling would draw the same GID and the same DMB tokens.
    if rand::rng().reseed().is_err() {
        tracing::warn!("cannot reseed the random generator after fork");
    }
    crate::config::forget_process_device();
    crate::stats::reset();
}

impl SmcConfig {
    /// The same configuration on a host of its own, started on first use
    /// (after [`after_fork_in_child`]: on the child's new device).
    #[must_use]
    pub fn detached(&self) -> Self {
        let nocopy = self.nocopy;
        self.clone().nocopy(nocopy)
    }

    /// Whether SMC-D may be tried with `addr` (not disabled, allowed by the
    /// destination policy).
    pub fn tries(&self, addr: SocketAddr) -> bool {
        self.allows(addr)
    }

    /// Tell the listener at `dest` that our connection from `local_port`
    /// will speak CLC; call it after binding and before connecting.
    /// `Ok(false)`: no smcd listener on this host took it (stay plain TCP).
    ///
    /// # Errors
    ///
    /// The process device could not be started.
    pub fn announce(&self, dest: SocketAddr, local_port: u16) -> io::Result<bool> {
        if !self.allows(dest) {
            return Ok(false);
        }
        let host = self.host()?;
        let dev = host.device();
        Ok(rendezvous::announce(
            dev.place(),
            dest,
            local_port,
            dev.local_gid(),
        ))
    }

    /// Announce a listening socket bound to `local` on the host-local
    /// rendezvous, so that smcd clients speak CLC with it.
    ///
    /// # Errors
    ///
    /// SMC-D is disabled, the device could not be started, or the
    /// rendezvous socket could not be bound.
    pub fn serve_rendezvous(&self, local: SocketAddr) -> io::Result<ListenRendezvous> {
        if self.disabled {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "SMC-D is disabled",
            ));
        }
        let host = self.host()?;
        let (place, policy) = (host.device().place().clone(), host.device().policy());
        Ok(ListenRendezvous {
            inner: Mutex::new(Rendezvous::bind(&place, local, policy)?),
            local,
        })
    }

    /// An smcd stream on a connected TCP socket whose connection was
    /// announced (client) or taken from a rendezvous (server). The CLC
    /// handshake starts now and finishes on the stream's first calls (or
    /// [`SmcStream::transport`]); `tcp` is switched to non-blocking mode
    /// (the stream waits on its own terms), and the stream keeps it.
    ///
    /// # Errors
    ///
    /// The device could not be started, or `tcp` not duplicated.
    pub fn adopt(&self, tcp: TcpStream, role: Role) -> io::Result<SmcStream> {
        let host = self.host()?;
        let wire = TcpWire::new(TcpStream::from(crate::fdfloor::lift(
            tcp.try_clone()?.into(),
        )))?;
        let ep = match role {
            Role::Client => Endpoint::client(host, wire, now_ms()),
            Role::Server => Endpoint::server(host, wire, now_ms()),
        };
        Ok(SmcStream::smc(tcp, ep, self))
    }
}

/// Count a connection that stays plain TCP without an smcd stream (its
/// transport is known at once), as [`stats`](crate::stats) does for
/// plain [`SmcStream`]s.
pub fn count_plain(why: TcpReason) {
    crate::stats::connection(&Transport::Tcp(why));
}
