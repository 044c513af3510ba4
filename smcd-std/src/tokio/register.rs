//! Registering with the runtime's reactor: the one unsafe step of the
//! tokio adapter, for the few types whose fd is known to stay put.
#![allow(unsafe_code)] // audited: `Stable` holds only for the types below

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ::tokio::io::Interest;
use ::tokio::io::unix::AsyncFd;

/// A std stream with its readiness fd, fixed when it was registered.
#[derive(Debug)]
pub(crate) struct Ready {
    stream: crate::SmcStream,
    fd: RawFd,
}

impl Ready {
    /// `stream` and its readiness fd (which this creates if need be).
    pub(crate) fn new(stream: crate::SmcStream) -> io::Result<Self> {
        let fd = stream.ready_fd()?.as_raw_fd();
        Ok(Self { stream, fd })
    }

    pub(crate) fn stream(&self) -> &crate::SmcStream {
        &self.stream
    }

    pub(crate) fn into_stream(self) -> crate::SmcStream {
        self.stream
    }
}

impl AsRawFd for Ready {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// What `AsyncFd::register_with_interest` requires: `as_raw_fd` returns
/// one fd, open and of one file description, for the value's whole life.
pub(crate) trait Stable: AsRawFd {}

// `Ready` returns the fd that `ready_fd` gave; `ready_fd` caches an SMC
// stream's epoll set (never reset) or returns the TCP socket, and the
// stream (owned by `Ready`) keeps both open for its life.
impl Stable for Ready {}
// An owned fd is open until dropped and its number does not change.
impl Stable for OwnedFd {}
// A listener's fd is its TCP socket, owned for the listener's life.
impl Stable for crate::SmcListener {}

/// Register `inner` with the current runtime for `interest`.
pub(crate) fn register<T: Stable>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T: Stable` (see the impls above): the fd is valid, open and
    // unchanged while the `AsyncFd` owns `inner`.
    Ok(unsafe { AsyncFd::register_with_interest(inner, interest) }?)
}
