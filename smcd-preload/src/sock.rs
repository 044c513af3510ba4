//! The state the shim attaches to an accelerated fd, and how sockets get
//! it: at `listen` (the rendezvous), at `connect` (announce, then the
//! client handshake) and at `accept` (the server handshake).

use core::ffi::c_int;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::sockopt;
use smcd_std::adopt::{ListenRendezvous, Role};
use smcd_std::{SmcConfig, SmcStream, TcpReason};

use crate::guard::{CResult, errno_of};
use crate::shared::Holder;
use crate::{config, real, table};

/// How long `accept` drives a new connection's handshake (an smcd client
/// answers in microseconds; a slower one finishes on first use).
const ACCEPT_HANDSHAKE: Duration = Duration::from_millis(100);

/// The state of one open socket (shared by its dups).
#[derive(Debug)]
pub(crate) struct Sock {
    /// The application's view of `O_NONBLOCK` (the kernel's flag stays set:
    /// smcd drives the TCP socket without blocking).
    pub(crate) nonblock: AtomicBool,
    pub(crate) kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// A listening socket with its rendezvous.
    Listener(Listener),
    /// A connection: connecting, or with its smcd stream.
    Conn(Conn),
    /// An epoll instance with accelerated fds registered in it.
    Epoll(crate::epoll::EpSet),
}

/// A listening socket's rendezvous, and the announcements it received
/// (shared by the processes that inherit the listener).
#[derive(Debug)]
pub(crate) struct Listener {
    rv: Option<ListenRendezvous>,
    ports: Option<crate::shared::Ports>,
    holder: Option<Holder>,
}

impl Listener {
    /// Whether the connection from `peer` (accepted on `local`) was
    /// announced by an smcd client of this host; used up.
    fn take(&self, local: SocketAddr, peer: SocketAddr) -> bool {
        let Some(rv) = &self.rv else {
            return false;
        };
        let Some(ports) = &self.ports else {
            return rv.take(local, peer);
        };
        rv.drain(|p| ports.announce(p));
        let same_host = peer.ip().is_loopback() || peer.ip() == local.ip();
        same_host && ports.take(peer.port())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let last = self.holder.take().is_none_or(Holder::release);
        if !last {
            // Another process of the family still listens: close our handle
            // of the rendezvous but leave its name (a path socket) to them.
            if let Some(rv) = self.rv.take() {
                rv.abandon();
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Conn {
    stream: OnceLock<SmcStream>,
    holder: OnceLock<Holder>,
    /// A non-blocking connect that was announced and is under way; taken
    /// when it completes (or fails: then the fd is plain TCP).
    connecting: Mutex<bool>,
}

impl Conn {
    fn set_stream(&self, s: SmcStream) {
        if self.stream.set(s).is_ok() {
            if let Some(h) = Holder::claim() {
                let _ = self.holder.set(h);
            }
        }
    }

    /// In a child after fork: hold this connection too.
    fn relock(&self) {
        if let Some(h) = self.holder.get() {
            h.relock();
        }
    }
}

impl Drop for Conn {
    /// This process's last fd of the connection went: close it for the
    /// peer — unless another process of the fork family still holds it.
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        let last = self.holder.take().is_none_or(Holder::release);
        if last {
            drop(stream);
            return;
        }
        for fd in stream.abandon() {
            // SAFETY: smcd-std forgot the owners of these fds and handed
            // them to us to close.
            let _ = unsafe { rustix::io::try_close(fd) };
        }
    }
}

impl Sock {
    /// In a child after fork: hold what the parent held.
    pub(crate) fn relock(&self) {
        match &self.kind {
            Kind::Conn(c) => c.relock(),
            Kind::Listener(l) => {
                if let Some(h) = &l.holder {
                    h.relock();
                }
            }
            Kind::Epoll(_) => {}
        }
    }

    fn conn(stream: Option<SmcStream>, nonblock: bool, connecting: bool) -> Arc<Self> {
        let conn = Conn::default();
        if let Some(s) = stream {
            conn.set_stream(s);
        }
        *conn
            .connecting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = connecting;
        Arc::new(Self {
            nonblock: AtomicBool::new(nonblock),
            kind: Kind::Conn(conn),
        })
    }

    /// The state of an epoll instance.
    pub(crate) fn epoll() -> Arc<Self> {
        Arc::new(Self {
            nonblock: AtomicBool::new(false),
            kind: Kind::Epoll(crate::epoll::EpSet::default()),
        })
    }

    /// Whether this is a connect under way (announced, not completed).
    pub(crate) fn is_connecting(&self) -> bool {
        match &self.kind {
            Kind::Conn(c) => {
                c.stream.get().is_none()
                    && *c
                        .connecting
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
            }
            _ => false,
        }
    }

    pub(crate) fn nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    /// The smcd stream of this socket, reached through `fd`: a connect
    /// under way is looked at (and the stream set up once it completed).
    /// `None`: a listener, a connect still running or failed — the kernel
    /// serves the call.
    pub(crate) fn stream(&self, fd: c_int) -> Option<&SmcStream> {
        let Kind::Conn(c) = &self.kind else {
            return None;
        };
        if let Some(s) = c.stream.get() {
            return Some(s);
        }
        let mut connecting = c
            .connecting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = c.stream.get() {
            return Some(s);
        }
        if !*connecting {
            return None;
        }
        match connected(fd) {
            None => None,
            Some(false) => {
                *connecting = false;
                None
            }
            Some(true) => {
                *connecting = false;
                match adopt(fd, Role::Client) {
                    Ok(s) => {
                        c.set_stream(s);
                        c.stream.get()
                    }
                    Err(e) => {
                        crate::guard::warn("connect", &format!("smcd stream not set up: {e}"));
                        None
                    }
                }
            }
        }
    }
}

/// A borrowed fd for a number the application passed.
pub(crate) fn fd_of(fd: c_int) -> BorrowedFd<'static> {
    // SAFETY: the application keeps `fd` open for the duration of the call
    // that passed it; the kernel reports EBADF otherwise.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Whether `fd` is a TCP stream socket of AF_INET or AF_INET6.
fn is_tcp(fd: c_int) -> bool {
    let fd = fd_of(fd);
    let stream = sockopt::socket_type(fd).is_ok_and(|t| t == rustix::net::SocketType::STREAM);
    let inet = sockopt::socket_domain(fd).is_ok_and(|d| {
        d == rustix::net::AddressFamily::INET || d == rustix::net::AddressFamily::INET6
    });
    let tcp = sockopt::socket_protocol(fd)
        .is_ok_and(|p| p.is_none_or(|p| p == rustix::net::ipproto::TCP));
    stream && inet && tcp
}

fn local_addr(fd: c_int) -> Option<SocketAddr> {
    rustix::net::getsockname(fd_of(fd))
        .ok()
        .and_then(|a| SocketAddr::try_from(a).ok())
}

fn peer_addr(fd: c_int) -> Option<SocketAddr> {
    rustix::net::getpeername(fd_of(fd))
        .ok()
        .flatten()
        .and_then(|a| SocketAddr::try_from(a).ok())
}

/// A connect under way: `None` still running, `Some(true)` connected,
/// `Some(false)` failed (the application reads why from `SO_ERROR`).
fn connected(fd: c_int) -> Option<bool> {
    let bfd = fd_of(fd);
    let mut fds = [PollFd::new(&bfd, PollFlags::OUT)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => None,
        Ok(_) => Some(peer_addr(fd).is_some()),
        Err(_) => Some(false),
    }
}

/// The kernel's `O_NONBLOCK` of `fd`.
fn kernel_nonblocking(fd: c_int) -> bool {
    rustix::fs::fcntl_getfl(fd_of(fd)).is_ok_and(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
}

/// An smcd stream on a duplicate of `fd` (which stays the application's).
fn adopt(fd: c_int, role: Role) -> std::io::Result<SmcStream> {
    let floor = crate::FD_FLOOR.load(std::sync::atomic::Ordering::Relaxed);
    let dup: OwnedFd = rustix::io::fcntl_dupfd_cloexec(fd_of(fd), floor)
        .or_else(|_| rustix::io::fcntl_dupfd_cloexec(fd_of(fd), 0))?;
    let tcp = TcpStream::from(dup);
    let stream = config().adopt(tcp, role)?;
    // Timeouts the socket had before it became a stream.
    let timeout = |which| sockopt::socket_timeout(fd_of(fd), which).ok().flatten();
    if let Some(t) = timeout(sockopt::Timeout::Recv) {
        let _ = stream.set_read_timeout(Some(t));
    }
    if let Some(t) = timeout(sockopt::Timeout::Send) {
        let _ = stream.set_write_timeout(Some(t));
    }
    Ok(stream)
}

/// The rendezvous of a listener, if it is worth one.
fn rendezvous_of(fd: c_int, cfg: &SmcConfig) -> Option<ListenRendezvous> {
    let local = local_addr(fd)?;
    match cfg.serve_rendezvous(local) {
        Ok(rv) => Some(rv),
        Err(e) => {
            crate::guard::warn("listen", &format!("no rendezvous, plain TCP only: {e}"));
            None
        }
    }
}

/// `listen` succeeded on `fd`: announce it on the rendezvous.
pub(crate) fn listened(fd: c_int) {
    if !table::trackable(fd) || table::get(fd).is_some() || !is_tcp(fd) {
        return;
    }
    let cfg = config();
    if !cfg.tries(local_addr(fd).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))) {
        return;
    }
    if let Some(rv) = rendezvous_of(fd, cfg) {
        let sock = Arc::new(Sock {
            nonblock: AtomicBool::new(kernel_nonblocking(fd)),
            kind: Kind::Listener(Listener {
                rv: Some(rv),
                ports: crate::shared::Ports::new(),
                holder: Holder::claim(),
            }),
        });
        let (_, old) = table::insert(fd, sock);
        drop(old);
    }
}

/// `accept` on a tracked listener returned `nfd`: set up SMC-D when the
/// client announced itself.
pub(crate) fn accepted(listener: &Sock, nfd: c_int, nonblock: bool) {
    let Kind::Listener(l) = &listener.kind else {
        return;
    };
    let (Some(local), Some(peer)) = (local_addr(nfd), peer_addr(nfd)) else {
        return;
    };
    if !table::trackable(nfd) || !l.take(local, peer) {
        smcd_std::adopt::count_plain(TcpReason::PlainClient);
        return;
    }
    if !config().tries(peer) {
        smcd_std::adopt::count_plain(TcpReason::Disabled);
        return;
    }
    match adopt(nfd, Role::Server) {
        Ok(s) => {
            s.settle(ACCEPT_HANDSHAKE);
            let (_, old) = table::insert(nfd, Sock::conn(Some(s), nonblock, false));
            drop(old);
        }
        Err(e) => crate::guard::warn("accept", &format!("smcd stream not set up: {e}")),
    }
}

/// The shim's `connect` on a socket without state.
///
/// # Safety
///
/// `addr`/`len` as for connect(2).
pub(crate) unsafe fn connect(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> CResult {
    // SAFETY: passed on as the application gave them.
    let pass = || crate::guard::cvt(unsafe { real::connect(fd, addr, len) } as isize);
    // SAFETY: as connect(2) reads it.
    let Some(dest) = (unsafe { sockaddr_of(addr, len) }) else {
        return pass();
    };
    if !table::trackable(fd) || table::get(fd).is_some() || !is_tcp(fd) {
        return pass();
    }
    let cfg = config();
    if !cfg.tries(dest) {
        return pass();
    }
    // The local port must be known before the SYN: bind an ephemeral one.
    let mut local = local_addr(fd);
    if let Some(a) = local.filter(|a| a.port() == 0) {
        if rustix::net::bind(fd_of(fd), &SocketAddr::new(a.ip(), 0)).is_err() {
            return pass();
        }
        local = local_addr(fd);
    }
    let Some(port) = local.map(|a| a.port()) else {
        return pass();
    };
    let announced = cfg.announce(dest, port).unwrap_or(false);
    if !announced {
        smcd_std::adopt::count_plain(TcpReason::NoSmcPeer);
        return pass();
    }
    let nonblock = kernel_nonblocking(fd);
    // SAFETY: as above.
    let r = unsafe { real::connect(fd, addr, len) };
    if r == 0 {
        let stream = adopt(fd, Role::Client).map_err(|e| errno_of(&e))?;
        if !nonblock {
            // Blocking connect: return with the handshake settled.
            if let Err(e) = stream.transport() {
                let _ = table::insert(fd, Sock::conn(Some(stream), nonblock, false));
                return Err(errno_of(&e));
            }
        }
        let (_, old) = table::insert(fd, Sock::conn(Some(stream), nonblock, false));
        drop(old);
        return Ok(0);
    }
    let e = real::errno();
    if e == libc::EINPROGRESS || e == libc::EINTR {
        // Finished on a later call on this fd (Sock::stream).
        let (_, old) = table::insert(fd, Sock::conn(None, nonblock, true));
        drop(old);
    }
    Err(e)
}

/// The address a C caller passed, for IPv4 and IPv6.
///
/// # Safety
///
/// `addr` points to `len` readable bytes (or is null).
pub(crate) unsafe fn sockaddr_of(
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: at least the family field is there for any valid address.
    let family = c_int::from(unsafe { (*addr).sa_family });
    match family {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: long enough, and sockaddr_in has alignment 4 like the
            // callers' buffers; read_unaligned copes with anything else.
            let a = unsafe { addr.cast::<libc::sockaddr_in>().read_unaligned() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above.
            let a = unsafe { addr.cast::<libc::sockaddr_in6>().read_unaligned() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
