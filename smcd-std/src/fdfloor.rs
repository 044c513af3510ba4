//! Where the long-lived fds of smcd live: by default wherever the kernel
//! puts them (the lowest free number); with a floor set (the preload shim
//! does), each is moved to the lowest free number at or above it, so that
//! an application's own fd numbers stay as low as they would be without
//! smcd (programs size tables by their fd numbers: `select`'s
//! `FD_SETSIZE`, wrk's and redis's event loops).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

static FLOOR: AtomicI32 = AtomicI32::new(0);

/// Move smcd's fds to `floor` and above from now on (0: leave them).
pub(crate) fn set(floor: i32) {
    FLOOR.store(floor.max(0), Ordering::Relaxed);
}

/// `fd`, moved above the floor if there is one (unchanged if that fails).
pub(crate) fn lift(fd: OwnedFd) -> OwnedFd {
    let floor = FLOOR.load(Ordering::Relaxed);
    if floor <= 0 || fd.as_raw_fd() >= floor {
        return fd;
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, floor).unwrap_or(fd)
}
