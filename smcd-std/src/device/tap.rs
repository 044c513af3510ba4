//! Test-only (feature `hostile-peer`): raw access to a peer's DMB that this
//! process has mapped, so a test process can play a hostile peer that writes
//! arbitrary bytes into the header and ring it was given. Not part of the
//! API: the feature exists for smcd's own reliability tests.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use smcd_core::mem::{DmbMem, MemError};
use smcd_core::wire::cdc::{self, CdcError, CdcHeader};

use super::shm::Mapping;
use super::state;

/// A peer DMB as this process mapped it, kept mapped while the tap lives
/// (even after the stream that bound it is gone).
#[doc(hidden)]
#[derive(Debug)]
pub struct PeerTap {
    map: Arc<Mapping>,
    bell: Arc<OwnedFd>,
    memfd: Arc<OwnedFd>,
}

impl PeerTap {
    pub(super) fn new(map: Arc<Mapping>, bell: Arc<OwnedFd>, memfd: Arc<OwnedFd>) -> Self {
        Self { map, bell, memfd }
    }

    /// The memfd behind the mapping, as the peer received it (to try
    /// resizing or unsealing it).
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }

    fn with_mem<T>(&self, f: impl FnOnce(&DmbMem) -> T) -> T {
        // SAFETY: the view is dropped before this call returns, and `self`
        // keeps the mapping alive meanwhile.
        let mem = unsafe { self.map.view() };
        f(&mem)
    }

    /// Bytes of the DMB (header and ring).
    pub fn len(&self) -> usize {
        self.map.region().len()
    }

    /// Whether the DMB has no bytes (never).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copy `bytes` to `offset`, byte-wise, anywhere in the DMB (header
    /// included): no publication order, no atomic words.
    ///
    /// # Errors
    ///
    /// The range is not inside the DMB.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> Result<(), MemError> {
        self.with_mem(|m| m.write(offset, bytes))
    }

    /// Publish `hdr` at offset 0 the way a conforming peer does.
    ///
    /// # Errors
    ///
    /// Never for a DMB (the header fits).
    pub fn publish(&self, hdr: &CdcHeader) -> Result<(), CdcError> {
        self.with_mem(|m| cdc::publish(m, 0, &hdr.to_bytes()))
    }

    /// The header as the DMB's receiver would read it now.
    ///
    /// # Errors
    ///
    /// Never for a DMB (the header fits).
    pub fn header(&self) -> Result<CdcHeader, MemError> {
        self.with_mem(|m| cdc::snapshot(m, 0))
    }

    /// Ring the receiver's doorbell whether it waits or not.
    pub fn ring(&self) {
        state::ring(&self.bell);
    }

    /// Ring the receiver's doorbell if it waits for it.
    pub fn signal(&self) {
        // Same rule as a real send: only while the receiver armed it.
        if self
            .map
            .control()
            .armed
            .load(std::sync::atomic::Ordering::SeqCst)
            != 0
        {
            state::ring(&self.bell);
        }
    }
}
