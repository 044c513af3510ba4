//! The transports of `smcd bench` behind one listener, dialer and
//! connection type: TCP, Unix-domain sockets, smcd-std SMC-D (copy and
//! nocopy) and the raw shared-memory ring.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use smcd_std::{SmcConfig, SmcListener, SmcStream};

use super::kinds::{Transport, Wait, smc_config};
use super::raw::{self, RawConn, RawListener};

/// Longest a connect (TCP connect and SMC-D handshake) may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Name of the socket in the Unix-domain transport's directory.
const UDS_NAME: &str = "bench.sock";
/// Bytes between the cache lines an in-place reader touches.
const LINE_BYTES: usize = 64;

/// How a process of one run reaches its peer.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) transport: Transport,
    pub(crate) dmb_size: usize,
    pub(crate) wait: Wait,
}

impl Setup {
    /// The SMC-D configuration of this run (`None` for the other transports).
    fn smc(&self) -> Option<SmcConfig> {
        match self.transport {
            Transport::SmcDCopy => Some(smc_config(false, self.dmb_size, self.wait)),
            Transport::SmcDNocopy => Some(smc_config(true, self.dmb_size, self.wait)),
            Transport::Tcp | Transport::Uds | Transport::Raw => None,
        }
    }

    /// Whether the throughput receiver reads in place (nocopy SMC-D, raw).
    fn in_place(&self) -> bool {
        matches!(self.transport, Transport::SmcDNocopy | Transport::Raw)
    }
}

/// A listening endpoint of any transport.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Uds(UnixListener),
    Smc(SmcListener, bool),
    Raw(RawListener),
}

impl Listener {
    /// Listen on 127.0.0.1 (a fresh port), in `uds_dir` for the Unix socket;
    /// returns the address the client process connects to.
    pub(crate) fn bind(setup: &Setup, uds_dir: Option<&Path>) -> io::Result<(Self, String)> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        match (setup.transport, setup.smc()) {
            (_, Some(config)) => {
                let l = config.bind(loopback)?;
                let addr = l.local_addr()?.to_string();
                Ok((Self::Smc(l, setup.in_place()), addr))
            }
            (Transport::Tcp, None) => {
                let l = TcpListener::bind(loopback)?;
                let addr = l.local_addr()?.to_string();
                Ok((Self::Tcp(l), addr))
            }
            (Transport::Uds, None) => {
                let dir = uds_dir.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "uds needs a directory")
                })?;
                let path = dir.join(UDS_NAME);
                let l = UnixListener::bind(&path)?;
                Ok((Self::Uds(l), path.display().to_string()))
            }
            (_, None) => {
                let (l, addr) = RawListener::bind()?;
                Ok((Self::Raw(l), addr))
            }
        }
    }

    /// Accept one connection; an SMC-D connection that fell back to TCP is
    /// an error.
    pub(crate) fn accept(&self) -> io::Result<Conn> {
        match self {
            Self::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
            Self::Uds(l) => Ok(Conn::Uds(l.accept()?.0)),
            Self::Smc(l, in_place) => {
                let (s, _) = l.accept()?;
                require_smcd(&s)?;
                Ok(Conn::Smc(s, *in_place))
            }
            Self::Raw(l) => Ok(Conn::Raw(l.accept()?)),
        }
    }
}

/// What a client process needs to open connections to its server (one
/// SMC-D configuration for all, so that they share one host).
#[derive(Debug)]
pub(crate) struct Dialer {
    setup: Setup,
    addr: String,
    smc: Option<SmcConfig>,
}

impl Dialer {
    pub(crate) fn new(setup: &Setup, addr: &str) -> Self {
        Self {
            setup: setup.clone(),
            addr: addr.to_owned(),
            smc: setup.smc(),
        }
    }

    /// One new connection; an SMC-D connection that fell back to TCP is an
    /// error (its figures would be TCP's).
    pub(crate) fn dial(&self) -> io::Result<Conn> {
        match (&self.smc, self.setup.transport) {
            (Some(config), _) => {
                let s = config.connect_timeout(&self.socket_addr()?, CONNECT_LIMIT)?;
                require_smcd(&s)?;
                Ok(Conn::Smc(s, self.setup.in_place()))
            }
            (None, Transport::Tcp) => {
                let s = TcpStream::connect_timeout(&self.socket_addr()?, CONNECT_LIMIT)?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
            (None, Transport::Uds) => {
                Ok(Conn::Uds(UnixStream::connect(PathBuf::from(&self.addr))?))
            }
            (None, _) => Ok(Conn::Raw(raw::connect(&self.addr)?)),
        }
    }

    fn socket_addr(&self) -> io::Result<SocketAddr> {
        self.addr.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{:?} is not an IP address and port", self.addr),
            )
        })
    }
}

/// Fail unless `s` speaks SMC-D.
fn require_smcd(s: &SmcStream) -> io::Result<()> {
    let t = s.transport()?;
    if t.is_smcd() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "the SMC-D connection fell back to {t}: its figures would be TCP's"
    )))
}

/// One connection of any transport.
#[derive(Debug)]
pub(crate) enum Conn {
    Tcp(TcpStream),
    Uds(UnixStream),
    /// An SMC-D stream and whether the throughput receiver reads in place.
    Smc(SmcStream, bool),
    Raw(RawConn),
}

impl Conn {
    /// Shut down the write side: the peer reads EOF after the bytes sent.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Write),
            Self::Uds(s) => s.shutdown(Shutdown::Write),
            Self::Smc(s, _) => s.shutdown(Shutdown::Write),
            Self::Raw(c) => c.shutdown_write(),
        }
    }

    /// Take in the next received bytes the way the throughput receiver
    /// does: `read` into `buf` (TCP, UDS, SMC-D copy), or in place in the
    /// receive buffer (SMC-D nocopy, raw), loading one byte of every
    /// 64-byte line into `fold`. Returns the bytes taken; 0 at EOF.
    pub(crate) fn consume(&mut self, buf: &mut [u8], fold: &mut u64) -> io::Result<usize> {
        let touch = |bytes: &[u8], fold: &mut u64| {
            let sum = bytes
                .iter()
                .step_by(LINE_BYTES)
                .fold(0u64, |a, &b| a.wrapping_add(u64::from(b)));
            *fold = black_box(fold.wrapping_add(sum));
            bytes.len()
        };
        match self {
            Self::Smc(s, true) => s.read_with(|b| touch(b, fold)),
            Self::Raw(c) => c.read_with(|b| touch(b, fold)),
            _ => self.read(buf),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Uds(s) => s.read(buf),
            Self::Smc(s, _) => s.read(buf),
            Self::Raw(c) => c.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(data),
            Self::Uds(s) => s.write(data),
            Self::Smc(s, _) => s.write(data),
            Self::Raw(c) => c.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
