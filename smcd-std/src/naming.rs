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

    /// The device sockets at this place now, every process's: in the
    /// abstract namespace the listening sockets of `/proc/net/unix` named
    /// `@smcd/dev/…`, in a directory its `dev-…` entries (which may be left
    /// over from a killed process: they refuse connections).
    pub(crate) fn devices(&self) -> Vec<net::SocketAddr> {
        match self {
            Self::Abstract => {
                let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
                let mut names: Vec<&str> = table.lines().filter_map(listening_device).collect();
                names.sort_unstable();
                names.dedup();
                names
                    .into_iter()
                    .filter_map(|n| net::SocketAddr::from_abstract_name(n).ok())
                    .collect()
            }
            Self::Dir(dir) => {
                let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("dev-"))
                    .map(|e| e.path())
                    .collect();
                paths.sort();
                paths
                    .into_iter()
                    .filter_map(|p| net::SocketAddr::from_pathname(p).ok())
                    .collect()
            }
        }
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

/// The abstract name (without `@`) of a line of `/proc/net/unix` that is a
/// listening device socket (`Num RefCount Protocol Flags Type St Inode
/// Path`; flag `__SO_ACCEPTCON` 0x10000 marks a listener, whose accepted
/// connections carry its name too).
fn listening_device(line: &str) -> Option<&str> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
    let name = fields.get(7)?.strip_prefix('@')?;
    (flags & 0x10000 != 0 && name.starts_with("smcd/dev/")).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::listening_device;

    #[test]
    fn proc_net_unix_lines() {
        let listener = "0000000000000000: 00000002 00000000 00010000 0001 01 41723 @smcd/dev/0a0b";
        assert_eq!(listening_device(listener), Some("smcd/dev/0a0b"));
        let accepted = "0000000000000000: 00000003 00000000 00000000 0001 03 41724 @smcd/dev/0a0b";
        assert_eq!(listening_device(accepted), None);
        let other = "0000000000000000: 00000002 00000000 00010000 0001 01 41725 @smcd/rv/any/80";
        assert_eq!(listening_device(other), None);
        assert_eq!(
            listening_device("Num RefCount Protocol Flags Type St Inode Path"),
            None
        );
        assert_eq!(listening_device(""), None);
    }
}
