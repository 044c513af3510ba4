//! [`DmbTable`]: a device's registry of DMBs, token → DMB, with the
//! owner/attacher reference counting of loopback-ism (`spec/loopback.md` §2, §4).
//!
//! # Concurrency design
//!
//! A device is shared by every connection (and thread) that uses it, so all
//! methods take `&self`. The entries sit behind one small spin lock built on
//! [`crate::sync`] atomics (acquire on lock, release on unlock), so every
//! operation is a short critical section that loom models in full. References
//! are plain counters inside the lock — no separate atomic refcounts — which
//! makes "freed exactly once" structural: the one call that drops the last
//! reference removes the entry under the lock and returns it to its caller,
//! who then frees the memory; a concurrent [`attach`](DmbTable::attach) either
//! ran before (and holds a reference, so the entry is not freed) or runs after
//! and finds no entry.
//!
//! Entries are kept sorted by token, so lookups (one per CDC header write)
//! are a binary search; register and unregister shift the entries behind the
//! slot (rare: once per connection).

use core::fmt;

use heapless::Vec;

use super::lock::SpinLock;
use super::{CDC_HEADER_LEN_BYTES, DMB_MAX_SIZE_BYTES, DmbToken};
use crate::mem::DmbMem;
use crate::ops::{Error, ErrorKind};

/// Why a [`DmbTable`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DmbError {
    /// All `N` slots are in use, or the DMB's attach counter is saturated.
    Full,
    /// No DMB with this token (never registered, or already freed).
    NotFound,
    /// Token 0 is reserved and never names a DMB.
    InvalidToken,
    /// The token already names a DMB; draw another one.
    TokenInUse,
    /// The DMB is longer than [`DMB_MAX_SIZE_BYTES`].
    TooLarge,
    /// The DMB cannot even hold the CDC header and one ring byte.
    TooSmall,
    /// The owner already unregistered the DMB: it lives on only for its
    /// current attachers, takes no new attachment and no second unregister.
    Unregistered,
    /// `detach` of a DMB nobody is attached to.
    NotAttached,
}

impl fmt::Display for DmbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DmbError::Full => "DMB table full or attach count saturated",
            DmbError::NotFound => "no DMB with this token",
            DmbError::InvalidToken => "DMB token 0 is reserved",
            DmbError::TokenInUse => "DMB token already in use",
            DmbError::TooLarge => "DMB larger than 1 MiB",
            DmbError::TooSmall => "DMB too small for the CDC header and a ring",
            DmbError::Unregistered => "DMB already unregistered by its owner",
            DmbError::NotAttached => "DMB is not attached",
        })
    }
}

impl core::error::Error for DmbError {}

impl Error for DmbError {
    /// The device-level class: a full table is the DMB limit (Decline
    /// MAX_DMB), a size the table cannot hold is a memory problem, every
    /// token problem is Linux's EINVAL.
    fn kind(&self) -> ErrorKind {
        match self {
            DmbError::Full => ErrorKind::NoSpace,
            DmbError::TooLarge | DmbError::TooSmall => ErrorKind::NoMemory,
            DmbError::NotFound
            | DmbError::InvalidToken
            | DmbError::TokenInUse
            | DmbError::Unregistered
            | DmbError::NotAttached => ErrorKind::InvalidToken,
        }
    }
}

/// What a [`DmbTable`] knows about one DMB (a snapshot).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DmbEntry<O> {
    /// The DMB's token.
    pub token: DmbToken,
    /// The DMB's memory.
    pub mem: DmbMem,
    /// What the registering party stored with the DMB (a connection id, a
    /// client handle, `()`): the table only keeps and returns it.
    pub owner: O,
    /// Whether the owner still holds its reference (has not unregistered).
    pub registered: bool,
    /// Number of nocopy attachments (references besides the owner's).
    pub attached: u32,
}

impl<O> DmbEntry<O> {
    fn references(&self) -> u32 {
        self.attached.saturating_add(u32::from(self.registered))
    }
}

/// Up to `N` DMBs by token, each with owner data `O` and a reference count.
///
/// The owner's reference is taken by [`register`](Self::register) and dropped
/// by [`unregister`](Self::unregister); nocopy senders take and drop theirs
/// with [`attach`](Self::attach) / [`detach`](Self::detach). The call that
/// drops the last reference gets the entry back (`Ok(Some(entry))`) and must
/// free its memory; that happens exactly once per DMB. Tokens come from the
/// caller (a device draws random ones and redraws on
/// [`DmbError::TokenInUse`]), so the table needs no RNG.
///
/// ```
/// use smcd_core::dmb::{DmbError, DmbTable, DmbToken};
/// use smcd_core::mem::DmbMem;
///
/// let buf: &'static mut [u64] = Box::leak(vec![0u64; 2048].into_boxed_slice());
/// let mem = DmbMem::from_static(zerocopy::IntoBytes::as_mut_bytes(buf)).unwrap();
///
/// let table: DmbTable<(), 4> = DmbTable::new();
/// let t = DmbToken(0x5eed);
/// table.register(t, mem, ()).unwrap();
/// assert_eq!(table.register(t, mem, ()), Err(DmbError::TokenInUse));
///
/// table.attach(t).unwrap(); // a nocopy peer maps it
/// assert!(table.unregister(t).unwrap().is_none()); // still attached: kept
/// let freed = table.detach(t).unwrap(); // last reference
/// assert_eq!(freed.map(|e| e.token), Some(t)); // the caller frees `mem` now
/// assert_eq!(table.lookup(t).unwrap_err(), DmbError::NotFound);
/// ```
#[derive(Debug)]
pub struct DmbTable<O, const N: usize> {
    entries: SpinLock<Vec<DmbEntry<O>, N>>,
}

impl<O: Copy, const N: usize> Default for DmbTable<O, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Copy, const N: usize> DmbTable<O, N> {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            entries: SpinLock::new(Vec::new()),
        }
    }

    /// The most DMBs the table holds.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of DMBs present (registered, or unregistered but still attached).
    pub fn len(&self) -> usize {
        self.entries.with(|e| e.len())
    }

    /// Whether no DMB is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add the DMB `mem` under `token`, holding the owner's reference.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`] for token 0, [`DmbError::TokenInUse`] if the
    /// token is taken, [`DmbError::TooLarge`] / [`DmbError::TooSmall`] for a
    /// DMB over 1 MiB or not longer than the CDC header, [`DmbError::Full`]
    /// when `N` DMBs are present.
    pub fn register(&self, token: DmbToken, mem: DmbMem, owner: O) -> Result<(), DmbError> {
        valid(token)?;
        if mem.len() > DMB_MAX_SIZE_BYTES {
            return Err(DmbError::TooLarge);
        }
        if mem.len() <= CDC_HEADER_LEN_BYTES {
            return Err(DmbError::TooSmall);
        }
        let entry = DmbEntry {
            token,
            mem,
            owner,
            registered: true,
            attached: 0,
        };
        self.entries.with(|entries| match search(entries, token) {
            Ok(_) => Err(DmbError::TokenInUse),
            Err(at) => entries.insert(at, entry).map_err(|_| DmbError::Full),
        })
    }

    /// A snapshot of the DMB named by `token`.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`] for token 0, [`DmbError::NotFound`] if absent.
    pub fn lookup(&self, token: DmbToken) -> Result<DmbEntry<O>, DmbError> {
        valid(token)?;
        self.entries.with(|entries| {
            let at = search(entries, token).map_err(|_| DmbError::NotFound)?;
            entries.get(at).copied().ok_or(DmbError::NotFound)
        })
    }

    /// Drop the owner's reference. `Ok(Some(entry))` when it was the last one:
    /// the entry is gone and the caller must free `entry.mem`.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`], [`DmbError::NotFound`], or
    /// [`DmbError::Unregistered`] if the owner already unregistered it.
    pub fn unregister(&self, token: DmbToken) -> Result<Option<DmbEntry<O>>, DmbError> {
        self.release(token, |e| {
            if !e.registered {
                return Err(DmbError::Unregistered);
            }
            e.registered = false;
            Ok(())
        })
    }

    /// Take an attacher's reference (nocopy: the peer's DMB becomes our send
    /// buffer) and return the entry as it is after the attach.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`], [`DmbError::NotFound`],
    /// [`DmbError::Unregistered`] once the owner has unregistered (the DMB is
    /// being torn down), [`DmbError::Full`] if the counter is saturated.
    pub fn attach(&self, token: DmbToken) -> Result<DmbEntry<O>, DmbError> {
        valid(token)?;
        self.entries.with(|entries| {
            let at = search(entries, token).map_err(|_| DmbError::NotFound)?;
            let e = entries.get_mut(at).ok_or(DmbError::NotFound)?;
            if !e.registered {
                return Err(DmbError::Unregistered);
            }
            e.attached = e.attached.checked_add(1).ok_or(DmbError::Full)?;
            Ok(*e)
        })
    }

    /// Drop an attacher's reference. `Ok(Some(entry))` when it was the last
    /// one: the entry is gone and the caller must free `entry.mem`.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`], [`DmbError::NotFound`], or
    /// [`DmbError::NotAttached`] if nobody is attached.
    pub fn detach(&self, token: DmbToken) -> Result<Option<DmbEntry<O>>, DmbError> {
        self.release(token, |e| {
            e.attached = e.attached.checked_sub(1).ok_or(DmbError::NotAttached)?;
            Ok(())
        })
    }

    /// Drop one reference with `drop_ref`; remove and return the entry when
    /// none is left.
    fn release(
        &self,
        token: DmbToken,
        drop_ref: impl FnOnce(&mut DmbEntry<O>) -> Result<(), DmbError>,
    ) -> Result<Option<DmbEntry<O>>, DmbError> {
        valid(token)?;
        self.entries.with(|entries| {
            let at = search(entries, token).map_err(|_| DmbError::NotFound)?;
            let e = entries.get_mut(at).ok_or(DmbError::NotFound)?;
            drop_ref(e)?;
            if e.references() > 0 {
                return Ok(None);
            }
            Ok(Some(entries.remove(at)))
        })
    }
}

fn valid(token: DmbToken) -> Result<(), DmbError> {
    if token.0 == 0 {
        Err(DmbError::InvalidToken)
    } else {
        Ok(())
    }
}

/// Position of `token` (`Ok`) or where it would be inserted (`Err`).
fn search<O>(entries: &[DmbEntry<O>], token: DmbToken) -> Result<usize, usize> {
    entries.binary_search_by_key(&token, |e| e.token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::OwnedDmb;
    use std::vec::Vec;

    /// Buffers of one test; views of them are valid until the end of the test.
    #[derive(Default)]
    struct Bufs(Vec<OwnedDmb>);

    impl Bufs {
        fn mem(&mut self, len: usize) -> DmbMem {
            self.0.push(OwnedDmb::new(len));
            self.0.last().unwrap().mem()
        }
    }

    const T1: DmbToken = DmbToken(0x1111);
    const T2: DmbToken = DmbToken(0x2222);
    const T3: DmbToken = DmbToken(0x3333);

    #[test]
    fn register_lookup_unregister() {
        let mut b = Bufs::default();
        let t: DmbTable<u32, 4> = DmbTable::new();
        let m = b.mem(64);
        t.register(T2, m, 7).unwrap();
        t.register(T1, b.mem(64), 8).unwrap();
        assert_eq!(t.len(), 2);
        let e = t.lookup(T2).unwrap();
        assert_eq!(
            (e.token, e.owner, e.registered, e.attached),
            (T2, 7, true, 0)
        );
        assert_eq!(e.mem.as_ptr(), m.as_ptr());
        assert_eq!(t.lookup(T1).unwrap().owner, 8);
        let freed = t.unregister(T2).unwrap().unwrap();
        assert_eq!(freed.mem.as_ptr(), m.as_ptr());
        assert_eq!(t.lookup(T2).unwrap_err(), DmbError::NotFound);
        assert_eq!(t.unregister(T2).unwrap_err(), DmbError::NotFound);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn capacity_and_token_errors() {
        let mut b = Bufs::default();
        let t: DmbTable<(), 2> = DmbTable::new();
        assert_eq!(t.capacity(), 2);
        assert_eq!(
            t.register(DmbToken(0), b.mem(64), ()),
            Err(DmbError::InvalidToken)
        );
        t.register(T1, b.mem(64), ()).unwrap();
        assert_eq!(t.register(T1, b.mem(64), ()), Err(DmbError::TokenInUse));
        t.register(T3, b.mem(64), ()).unwrap();
        assert_eq!(t.register(T2, b.mem(64), ()), Err(DmbError::Full));
        assert_eq!(DmbError::Full.kind(), ErrorKind::NoSpace);
        // A freed slot is reusable.
        assert!(t.unregister(T1).unwrap().is_some());
        t.register(T2, b.mem(64), ()).unwrap();
        assert_eq!(t.lookup(DmbToken(0)).unwrap_err(), DmbError::InvalidToken);
        assert_eq!(t.attach(DmbToken(0)).unwrap_err(), DmbError::InvalidToken);
        assert_eq!(t.detach(DmbToken(0)).unwrap_err(), DmbError::InvalidToken);
    }

    #[test]
    fn sizes_are_bounded() {
        let mut b = Bufs::default();
        let t: DmbTable<(), 2> = DmbTable::new();
        assert_eq!(t.register(T1, b.mem(32), ()), Err(DmbError::TooSmall));
        assert_eq!(
            t.register(T1, b.mem(DMB_MAX_SIZE_BYTES + 8), ()),
            Err(DmbError::TooLarge)
        );
        t.register(T1, b.mem(DMB_MAX_SIZE_BYTES), ()).unwrap();
        t.register(T2, b.mem(40), ()).unwrap();
    }

    #[test]
    fn unregister_while_attached_frees_at_last_detach() {
        let mut b = Bufs::default();
        let t: DmbTable<(), 4> = DmbTable::new();
        t.register(T1, b.mem(64), ()).unwrap();
        assert_eq!(t.attach(T1).unwrap().attached, 1);
        assert_eq!(t.attach(T1).unwrap().attached, 2);
        assert!(t.unregister(T1).unwrap().is_none());
        // Owner gone: the DMB stays for the attachers, but takes no new ones.
        let e = t.lookup(T1).unwrap();
        assert!(!e.registered);
        assert_eq!(t.attach(T1).unwrap_err(), DmbError::Unregistered);
        assert_eq!(t.unregister(T1).unwrap_err(), DmbError::Unregistered);
        assert!(t.detach(T1).unwrap().is_none());
        let freed = t.detach(T1).unwrap().unwrap();
        assert_eq!(
            (freed.token, freed.attached, freed.registered),
            (T1, 0, false)
        );
        assert_eq!(t.detach(T1).unwrap_err(), DmbError::NotFound);
        assert!(t.is_empty());
    }

    #[test]
    fn detach_needs_an_attachment() {
        let mut b = Bufs::default();
        let t: DmbTable<(), 4> = DmbTable::new();
        t.register(T1, b.mem(64), ()).unwrap();
        assert_eq!(t.detach(T1).unwrap_err(), DmbError::NotAttached);
        t.attach(T1).unwrap();
        assert!(t.detach(T1).unwrap().is_none());
        // The owner still holds it.
        assert!(t.lookup(T1).unwrap().registered);
        assert!(t.unregister(T1).unwrap().is_some());
    }

    #[test]
    fn many_tokens_stay_findable() {
        let mut b = Bufs::default();
        let t: DmbTable<u64, 64> = DmbTable::new();
        let m = b.mem(64);
        // Insert in a scrambled order; every token must be found with its owner.
        for i in 0..64u64 {
            let tok = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            t.register(DmbToken(tok), m, i).unwrap();
        }
        for i in 0..64u64 {
            let tok = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            assert_eq!(t.lookup(DmbToken(tok)).unwrap().owner, i);
        }
        for i in (0..64u64).step_by(2) {
            let tok = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            assert!(t.unregister(DmbToken(tok)).unwrap().is_some());
        }
        for i in 0..64u64 {
            let tok = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            assert_eq!(t.lookup(DmbToken(tok)).is_ok(), i % 2 == 1);
        }
    }

    #[test]
    fn two_threads_share_the_table() {
        let mut b = Bufs::default();
        let t: DmbTable<u8, 2> = DmbTable::new();
        let mems = [(1u8, b.mem(64)), (2u8, b.mem(64))];
        std::thread::scope(|s| {
            for (owner, m) in mems {
                let t = &t;
                s.spawn(move || {
                    let tok = DmbToken(u64::from(owner));
                    for _ in 0..50 {
                        t.register(tok, m, owner).unwrap();
                        assert_eq!(t.lookup(tok).unwrap().owner, owner);
                        t.attach(tok).unwrap();
                        assert!(t.unregister(tok).unwrap().is_none());
                        let freed = t.detach(tok).unwrap().unwrap();
                        assert_eq!(freed.mem.as_ptr(), m.as_ptr());
                    }
                });
            }
        });
        assert!(t.is_empty());
    }

    #[test]
    fn errors_display_and_map_to_kinds() {
        assert_eq!(DmbError::NotFound.kind(), ErrorKind::InvalidToken);
        assert_eq!(DmbError::TooLarge.kind(), ErrorKind::NoMemory);
        assert_eq!(
            std::format!("{}", DmbError::TokenInUse),
            "DMB token already in use"
        );
    }
}
