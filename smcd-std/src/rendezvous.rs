//! The host-local rendezvous: how a client learns, before any CLC byte, that
//! the address it connects to is an smcd listener on this host, and how the
//! listener learns which accepted connections will speak CLC.
//!
//! A listener binds a datagram socket named after its address
//! ([`Place::rendezvous`]). A client that is about to connect binds its TCP
//! socket first and sends the listener an [`Announce`] with its local port;
//! the send fails when no such listener exists, and the client then stays
//! plain TCP. The datagram is queued before the client's SYN leaves, so the
//! listener finds it when it accepts that connection. Anyone else — a plain
//! `TcpStream`, a client on another host — sends nothing and gets plain TCP.
//!
//! Anyone on the host can send a datagram to an abstract socket, so each
//! announcement carries its sender's credentials (`SO_PASSCRED`, attached
//! by the kernel) and is [`Trust::Admitted`] only when the device's
//! [`PeerPolicy`] admits that sender. A listener checks that a connection
//! announced by anyone else really starts with CLC before it speaks CLC on
//! it (see `listener.rs`), so that another user's forged announcement for a
//! plain client's port does not divert that client.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use smcd_core::dmb::Gid;

use crate::device::PeerPolicy;
use crate::naming::Place;

const MAGIC: [u8; 4] = *b"SMCR";
const VERSION: u8 = 1;
const ANNOUNCE_BYTES: usize = 24;

/// How long an announcement waits for its connection.
const ANNOUNCE_TTL: Duration = Duration::from_secs(10);

/// How long a client waits for room in a listener's rendezvous queue
/// (`net.unix.max_dgram_qlen` datagrams) before it gives up on SMC-D. A
/// listener drains the queue when it accepts, so a burst of clients
/// (redis-benchmark's 50) waits for it to be scheduled: 100 ms lost one
/// connection of 101 to plain TCP in 2 of 5 runs on a loaded 2-core VM.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(1);

/// "A connection from local port `port` is coming, and it speaks CLC."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announce {
    pub(crate) port: u16,
    /// The announcing device (diagnostics only).
    pub(crate) from: Gid,
}

impl Announce {
    fn to_bytes(self) -> [u8; ANNOUNCE_BYTES] {
        let mut b = [0u8; ANNOUNCE_BYTES];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[6..8].copy_from_slice(&self.port.to_be_bytes());
        b[8..16].copy_from_slice(&self.from.gid.to_be_bytes());
        b[16..24].copy_from_slice(&self.from.gid_ext.to_be_bytes());
        b
    }

    fn parse(b: &[u8]) -> Option<Self> {
        if b.len() != ANNOUNCE_BYTES || b[..4] != MAGIC || b[4] != VERSION {
            return None;
        }
        let word = |at: usize| {
            b.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_be_bytes)
        };
        Some(Self {
            port: u16::from_be_bytes([b[6], b[7]]),
            from: Gid::new(word(8)?, word(16)?),
        })
    }
}

/// Tell the listener at `dest` (if it is an smcd listener on this host)
/// that our connection from `local_port` will speak CLC. `false` when no
/// listener took the announcement.
pub(crate) fn announce(place: &Place, dest: SocketAddr, local_port: u16, from: Gid) -> bool {
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    // A listener drains its queue only when it accepts: a full queue (a
    // flood) would block the send until the next connection — forever on an
    // idle listener. A burst of clients of a busy listener waits for it to
    // drain; after ANNOUNCE_WAIT, not queued means not announced, and both
    // ends use plain TCP.
    if sock.set_write_timeout(Some(ANNOUNCE_WAIT)).is_err() {
        return false;
    }
    let msg = Announce {
        port: local_port,
        from,
    }
    .to_bytes();
    let wildcard = SocketAddr::new(
        match dest {
            SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        },
        dest.port(),
    );
    [dest, wildcard].iter().any(|&a| {
        place
            .rendezvous(a)
            .and_then(|addr| sock.send_to_addr(&msg, &addr))
            .is_ok()
    })
}

/// Who sent an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// A process the device's policy admits.
    Admitted,
    /// Anyone else (another user under the default policy): perhaps a
    /// forger.
    Foreign,
}

/// A listener's rendezvous socket and the announcements it received.
#[derive(Debug)]
pub(crate) struct Rendezvous {
    sock: UnixDatagram,
    path: Option<std::path::PathBuf>,
    pending: HashMap<u16, (Instant, Trust)>,
    /// Whose announcements are [`Trust::Admitted`] (the device's policy).
    policy: PeerPolicy,
}

impl Rendezvous {
    /// Bind the rendezvous of a listener at `local`; `policy` tells whose
    /// announcements are admitted.
    pub(crate) fn bind(place: &Place, local: SocketAddr, policy: PeerPolicy) -> io::Result<Self> {
        let addr: UnixAddr = place.rendezvous(local)?;
        let path = Place::path_of(&addr);
        if let Some(p) = &path {
            // A socket left by a killed listener of the same address.
            let _ = std::fs::remove_file(p);
        }
        let sock = UnixDatagram::bind_addr(&addr)?;
        sock.set_nonblocking(true)?;
        rustix::net::sockopt::set_socket_passcred(&sock, true)?;
        Ok(Self {
            sock,
            path,
            pending: HashMap::new(),
            policy,
        })
    }

    /// Whether (and by whom) the connection from `peer_port` was announced;
    /// the announcement is used up.
    pub(crate) fn take(&mut self, peer_port: u16) -> Option<Trust> {
        self.drain();
        self.pending.remove(&peer_port).map(|(_, trust)| trust)
    }

    /// Keep the path socket's file when this is dropped (another process
    /// that inherited the socket still serves it).
    pub(crate) fn keep_path(&mut self) {
        self.path = None;
    }

    /// Receive the queued announcements and hand each port to `f`, for a
    /// caller that keeps the pending set itself (shared between the
    /// processes that inherited the socket across fork).
    pub(crate) fn recv_each(&self, mut f: impl FnMut(u16)) {
        while let Some(got) = self.recv_one() {
            if let Some((a, _)) = got {
                f(a.port);
            }
        }
    }

    fn drain(&mut self) {
        let now = Instant::now();
        while let Some(got) = self.recv_one() {
            if let Some((a, trust)) = got {
                self.pending.insert(a.port, (now + ANNOUNCE_TTL, trust));
            }
        }
        self.pending.retain(|_, (expiry, _)| *expiry > now);
    }

    /// The next queued datagram (`None`: the queue is empty): an
    /// announcement if it is well-formed, with whether the policy admits
    /// its sender.
    fn recv_one(&self) -> Option<Option<(Announce, Trust)>> {
        let mut buf = [0u8; 64];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match rustix::net::recvmsg(
                &self.sock,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::DONTWAIT,
            ) {
                Ok(got) => break got,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return None,
            }
        };
        let sender = control.drain().find_map(|m| match m {
            RecvAncillaryMessage::ScmCredentials(c) => Some(c.uid),
            _ => None,
        });
        let trust = match sender.is_some_and(|uid| self.policy.admits_uid(uid)) {
            true => Trust::Admitted,
            false => Trust::Foreign,
        };
        let announce = buf.get(..got.bytes).and_then(Announce::parse);
        Some(announce.map(|a| (a, trust)))
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_reach_only_their_listener() {
        let place = Place::Abstract;
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // A port nobody else uses in this test: the listener's own test name.
        let addr = SocketAddr::new(local.ip(), 47_123);
        let mut rv = Rendezvous::bind(&place, addr, PeerPolicy::SameUser).unwrap();
        assert!(announce(&place, addr, 5555, Gid::new(1, 2)));
        assert!(!announce(
            &place,
            SocketAddr::new(local.ip(), 47_124),
            5556,
            Gid::new(1, 2)
        ));
        assert_eq!(rv.take(5556), None);
        assert_eq!(rv.take(5555), Some(Trust::Admitted), "sent by this user");
        assert_eq!(rv.take(5555), None, "an announcement is used once");
        let a = Announce {
            port: 9,
            from: Gid::new(3, 4),
        };
        assert_eq!(Announce::parse(&a.to_bytes()), Some(a));
        assert_eq!(Announce::parse(&[0; 24]), None);
    }
}
