//! Connecting: announce to the listener's rendezvous before the SYN, then
//! run the CLC handshake only when the announcement was taken.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use smcd_core::endpoint::Endpoint;
use smcd_core::ops::SmcdOps;

use crate::config::SmcConfig;
use crate::rendezvous;
use crate::stream::SmcStream;
use crate::tcp::TcpWire;
use crate::transport::TcpReason;
use crate::wait::now_ms;

impl SmcConfig {
    /// Connect to `addr` with this configuration (each resolved address in
    /// turn, like `TcpStream::connect`).
    ///
    /// # Errors
    ///
    /// As [`SmcStream::connect`].
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<SmcStream> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match self.connect_one(a, None) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            )
        }))
    }

    /// Connect to `addr` within `timeout` (TCP connect and CLC handshake).
    ///
    /// # Errors
    ///
    /// As [`SmcStream::connect_timeout`].
    pub fn connect_timeout(&self, addr: &SocketAddr, timeout: Duration) -> io::Result<SmcStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "zero timeout"));
        }
        self.connect_one(*addr, Some(timeout))
    }

    fn connect_one(&self, addr: SocketAddr, timeout: Option<Duration>) -> io::Result<SmcStream> {
        let deadline = timeout.map(|t| Instant::now() + t);
        if !self.allows(addr) {
            return Ok(SmcStream::plain(
                tcp_connect(addr, deadline)?,
                TcpReason::Disabled,
            ));
        }
        let host = self.host()?;
        let dev = host.device();
        let mut draws = 0;
        let (tcp, announced) = loop {
            let sock = bound_socket(addr)?;
            let local = rustix::net::getsockname(&sock)?;
            let port = SocketAddr::try_from(local)
                .map(|a| a.port())
                .map_err(|_| io::ErrorKind::InvalidData)?;
            let announced = rendezvous::announce(dev.place(), addr, port, dev.local_gid());
            match finish_connect(sock, addr, deadline) {
                Ok(tcp) => break (tcp, announced),
                // The drawn port has a connection to `addr` already (its
                // announcement expires unused at the listener).
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable && draws < PORT_DRAWS => {
                    draws += 1;
                }
                Err(e) => return Err(e),
            }
        };
        if !announced {
            return Ok(SmcStream::plain(tcp, TcpReason::NoSmcPeer));
        }
        let wire = TcpWire::new(tcp.try_clone()?)?;
        let stream = SmcStream::smc(tcp, Endpoint::client(host, wire, now_ms()), self);
        if let Some(d) = deadline {
            let left = d
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            stream.set_read_timeout(Some(left))?;
        }
        let handshake = stream.transport();
        stream.set_read_timeout(None)?;
        handshake.map(|_| stream)
    }
}

/// A TCP socket for `dest`'s family, bound to an ephemeral port (so the
/// port is known before the SYN).
///
/// The port is drawn here, with `SO_REUSEADDR`, rather than by binding port
/// 0: the kernel's search for a port 0 checks each candidate against every
/// socket on it, TIME_WAIT ones included, which made short-lived
/// connections cost milliseconds of CPU once thousands had closed. A drawn
/// port is checked once, and connect still refuses a 4-tuple in use.
fn bound_socket(dest: SocketAddr) -> io::Result<OwnedFd> {
    let (family, any) = match dest {
        SocketAddr::V4(_) => (AddressFamily::INET, SocketAddr::from(([0, 0, 0, 0], 0))),
        SocketAddr::V6(_) => (AddressFamily::INET6, SocketAddr::from(([0u16; 8], 0))),
    };
    let sock = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&sock, true)?;
    let (low, high) = ephemeral_ports();
    for _ in 0..PORT_DRAWS {
        let mut at = any;
        at.set_port(rand::random_range(low..=high));
        match rustix::net::bind(&sock, &at) {
            Ok(()) => return Ok(sock),
            Err(rustix::io::Errno::ADDRINUSE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::net::bind(&sock, &any)?;
    Ok(sock)
}

/// Ports [`bound_socket`] draws before it lets the kernel choose.
const PORT_DRAWS: usize = 16;

/// The kernel's ephemeral port range (`ip_local_port_range`).
fn ephemeral_ports() -> (u16, u16) {
    static RANGE: std::sync::OnceLock<(u16, u16)> = std::sync::OnceLock::new();
    *RANGE.get_or_init(|| {
        let read = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
        let mut it = read
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::parse::<u16>);
        match (it.next(), it.next()) {
            (Some(Ok(low)), Some(Ok(high))) if low > 0 && low <= high => (low, high),
            _ => (32768, 60999),
        }
    })
}

/// Connect `sock` to `dest`, by `deadline` if there is one.
fn finish_connect(
    sock: OwnedFd,
    dest: SocketAddr,
    deadline: Option<Instant>,
) -> io::Result<TcpStream> {
    let Some(deadline) = deadline else {
        loop {
            match rustix::net::connect(&sock, &dest) {
                Ok(()) => return Ok(TcpStream::from(sock)),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    };
    let tcp = TcpStream::from(sock);
    tcp.set_nonblocking(true)?;
    match rustix::net::connect(&tcp, &dest) {
        Ok(()) => {}
        Err(rustix::io::Errno::INPROGRESS) => loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let ts = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&tcp, PollFlags::OUT)];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => {}
                Ok(_) => match tcp.take_error()? {
                    Some(e) => return Err(e),
                    None => break,
                },
                Err(e) => return Err(e.into()),
            }
        },
        Err(e) => return Err(e.into()),
    }
    tcp.set_nonblocking(false)?;
    Ok(tcp)
}

fn tcp_connect(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    match deadline {
        None => TcpStream::connect(addr),
        Some(d) => TcpStream::connect_timeout(
            &addr,
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ),
    }
}
