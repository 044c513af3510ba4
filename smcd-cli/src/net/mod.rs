//! `smcd echo-server`, `smcd echo-client` and `smcd chk`: SMC-D between
//! processes through `smcd-std`, with plain TCP (and Unix-domain sockets,
//! for comparison) as the other transports.
//!
//! Exit status of these commands: see each command's help and `docs/cli.md`.

pub(crate) mod chk;
pub(crate) mod echo_client;
pub(crate) mod echo_server;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use smcd_std::{SmcConfig, SmcStream};

use crate::args::SmcArgs;

/// Exit status: a failure outside the data check (connect, I/O, a peer that
/// died, bad arguments).
pub(crate) const EXIT_ERROR: u8 = 2;

/// Bytes of each read buffer of the echo commands.
const BUF_BYTES: usize = 256 * 1024;

/// Where to listen or connect: a TCP address (`HOST:PORT`) or, with
/// `unix:PATH`, a Unix-domain stream socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Addr {
    /// `HOST:PORT`, resolved when used.
    Tcp(String),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl std::str::FromStr for Addr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path (unix:/tmp/echo.sock)".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if !s.contains(':') {
            return Err(format!("{s:?} is not HOST:PORT or unix:PATH"));
        }
        Ok(Self::Tcp(s.to_owned()))
    }
}

impl SmcArgs {
    /// The environment's configuration (`SMCD_*`) with these options on top.
    pub(crate) fn config(&self) -> SmcConfig {
        let mut c = SmcConfig::from_env();
        if self.copy {
            c = c.nocopy(false);
        }
        if self.nocopy {
            c = c.nocopy(true);
        }
        if let Some(n) = self.dmb_size {
            c = c.dmb_size(n);
        }
        c
    }
}

/// A byte count with an optional binary suffix: `4096`, `64K`, `256M`,
/// `1G` (also `KiB`, `MiB`, `GiB`; case-insensitive).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &lower[digits.len()..] {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        other => return Err(format!("unknown suffix {other:?} (use K, M, G or T)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{t:?} is not a byte count (e.g. 4096, 64K, 256M, 1G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{t:?} is too large"))
}

/// A DMB size: 16K … 1M.
pub(crate) fn parse_dmb_size(s: &str) -> Result<usize, String> {
    let n = parse_bytes(s)?;
    if !(16 << 10..=1 << 20).contains(&n) {
        return Err(format!("{n} is outside 16K … 1M (16384 … 1048576)"));
    }
    usize::try_from(n).map_err(|_| "too large".into())
}

/// One connection of the echo commands.
#[derive(Debug)]
pub(crate) enum Conn {
    /// SMC-D or TCP (`smcd-std` decides).
    Smc(SmcStream),
    /// A Unix-domain stream.
    Unix(UnixStream),
}

impl Conn {
    /// Connect to `addr` with `config` (every resolved address in turn),
    /// within `timeout` per address.
    pub(crate) fn connect(config: &SmcConfig, addr: &Addr, timeout: Duration) -> io::Result<Self> {
        match addr {
            Addr::Unix(path) => UnixStream::connect(path).map(Self::Unix),
            Addr::Tcp(a) => {
                let mut last = None;
                for sa in a.to_socket_addrs()? {
                    match config.connect_timeout(&sa, timeout) {
                        Ok(s) => return Ok(Self::Smc(s)),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("{a}: no address"))
                }))
            }
        }
    }

    /// The transport, as the echo commands print it (`smc-d …`, `tcp (…)`,
    /// `unix`); completes the handshake of an accepted stream.
    pub(crate) fn transport(&self) -> io::Result<String> {
        match self {
            Self::Smc(s) => Ok(s.transport()?.to_string()),
            Self::Unix(_) => Ok("unix".into()),
        }
    }

    /// Whether the stream speaks SMC-D (after [`transport`](Self::transport)).
    pub(crate) fn is_smcd(&self) -> bool {
        match self {
            Self::Smc(s) => s.transport().is_ok_and(|t| t.is_smcd()),
            Self::Unix(_) => false,
        }
    }

    /// A second handle to the connection.
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        match self {
            Self::Smc(s) => s.try_clone().map(Self::Smc),
            Self::Unix(s) => s.try_clone().map(Self::Unix),
        }
    }

    /// Shut down one or both directions.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Self::Smc(s) => s.shutdown(how),
            Self::Unix(s) => s.shutdown(how),
        }
    }

    /// The peer, for log lines.
    pub(crate) fn peer(&self) -> String {
        match self {
            Self::Smc(s) => s
                .peer_addr()
                .map_or_else(|_| "?".into(), |a: SocketAddr| a.to_string()),
            Self::Unix(_) => "unix".into(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Smc(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Smc(s) => s.write(data),
            Self::Unix(s) => s.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("256m"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("1X").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("99999999999T").is_err());
        assert_eq!(parse_dmb_size("1M"), Ok(1 << 20));
        assert!(parse_dmb_size("8K").is_err());
        assert!(parse_dmb_size("2M").is_err());
    }

    #[test]
    fn addresses_are_tcp_or_unix() {
        assert_eq!(
            "127.0.0.1:7".parse::<Addr>(),
            Ok(Addr::Tcp("127.0.0.1:7".into()))
        );
        assert_eq!(
            "unix:/tmp/s".parse::<Addr>(),
            Ok(Addr::Unix("/tmp/s".into()))
        );
        assert!("unix:".parse::<Addr>().is_err());
        assert!("localhost".parse::<Addr>().is_err());
    }
}
