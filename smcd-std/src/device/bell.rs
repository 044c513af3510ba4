//! [`Bell`]: the doorbell of one of our DMBs, seen from its waiter.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use smcd_core::dmb::CDC_HEADER_LEN_BYTES;

use super::shm::Mapping;

/// The waiter's side of a DMB doorbell: an eventfd the peer writes after a
/// CDC header, but only while the flag in the DMB's control page is armed.
///
/// A waiter [`arm`](Self::arm)s, checks its connection once more, and only
/// then sleeps on [`fd`](Self::as_fd) (poll, epoll, …); after waking it
/// [`disarm`](Self::disarm)s and [`drain`](Self::drain)s. The sender
/// publishes its header before it reads the flag (with a full fence in
/// between), so a header written after the re-check always finds the flag
/// armed and rings.
#[derive(Debug, Clone)]
pub struct Bell {
    map: Arc<Mapping>,
    fd: Arc<OwnedFd>,
}

impl Bell {
    pub(super) fn new(map: Arc<Mapping>, fd: Arc<OwnedFd>) -> Self {
        Self { map, fd }
    }

    /// Ask the peer to ring from now on (counted: every `arm` needs its
    /// `disarm`, so a sleeper and a readiness registration can overlap).
    pub fn arm(&self) {
        self.map.control().armed.fetch_add(1, Ordering::SeqCst);
    }

    /// Withdraw one [`arm`](Self::arm).
    pub fn disarm(&self) {
        self.map.control().armed.fetch_sub(1, Ordering::SeqCst);
    }

    /// The DMB's CDC header as it is now: a spinning waiter compares it
    /// to tell, without taking any lock, when the peer wrote a new one.
    pub fn header(&self) -> [u8; CDC_HEADER_LEN_BYTES] {
        let mut h = [0u8; CDC_HEADER_LEN_BYTES];
        // SAFETY: the view is used within this call only, while `self.map`
        // keeps the mapping alive.
        let mem = unsafe { self.map.view() };
        // The header lies inside every DMB (at least 16 KiB), so the read
        // cannot fail; a failure would leave zeros, which only costs a
        // spinning waiter one extra look.
        let _ = mem.read(0, &mut h);
        h
    }

    /// Consume pending rings (the eventfd is non-blocking).
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(self.fd.as_fd(), &mut buf);
    }
}

impl AsFd for Bell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Bell {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
