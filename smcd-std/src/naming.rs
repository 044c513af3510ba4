//! Where smcd's host-local sockets live: the abstract Unix namespace by
//! default (nothing in the file system, gone with the process), or a
//! directory of path sockets when `SMCD_RENDEZVOUS_DIR` is set (containers
//! that share a volume but not a network namespace).

use std::io;
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net;
use std::path::PathBuf;

use smcd_core::dmb::Gid;

/// Environment variable naming the rendezvous directory.
pub const RENDEZVOUS_DIR_ENV: &str = "SMCD_RENDEZVOUS_DIR";

/// Where the sockets of this process and its peers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Abstract Unix socket names (`@smcd/…`).
    Abstract,
    /// Path sockets in this directory.
    Dir(PathBuf),
}

impl Place {
    /// `SMCD_RENDEZVOUS_DIR` if set and not empty, else [`Place::Abstract`].
    pub fn from_env() -> Self {
        match std::env::var_os(RENDEZVOUS_DIR_ENV) {
            Some(dir) if !dir.is_empty() => Self::Dir(PathBuf::from(dir)),
            _ => Self::Abstract,
        }
    }

    fn addr(&self, name: &str) -> io::Result<net::SocketAddr> {
        match self {
            Self::Abstract => net::SocketAddr::from_abstract_name(format!("smcd/{name}")),
            Self::Dir(dir) => net::SocketAddr::from_pathname(dir.join(name.replace('/', "-"))),
        }
    }

    /// The device socket of the device `gid`.
    pub(crate) fn device(&self, gid: Gid) -> io::Result<net::SocketAddr> {
        self.addr(&format!("dev/{gid}"))
    }

    /// The rendezvous socket of a listener bound to `addr` (the unspecified
    /// address names the port's wildcard socket).
    pub(crate) fn rendezvous(&self, addr: SocketAddr) -> io::Result<net::SocketAddr> {
        let host = if addr.ip().is_unspecified() {
            "any".to_owned()
        } else {
            addr.ip().to_string()
        };
        self.addr(&format!("rv/{host}/{}", addr.port()))
    }

    /// The path of a path socket, to remove it when its owner goes.
    pub(crate) fn path_of(addr: &net::SocketAddr) -> Option<PathBuf> {
        addr.as_pathname().map(PathBuf::from)
    }
}
