//! [`DmbTable`]: a device's registry of DMBs, token → DMB, with the
//! owner/attacher reference counting of loopback-ism (`docs/protocol/loopback.md` §2, §4).
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
//! # Who may send into a DMB
//!
//! Every connection binds its peer's DMB ([`attach`](DmbTable::attach)),
//! mapped or not, and the table keeps the binding in both entries. A DMB
//! sends into at most one peer DMB and receives from at most one sender, and
//! the two sides of a pair must name each other. So a peer that names one of
//! our own DMBs — its own again, one of our other connections', one another
//! sender already writes into — is refused before a byte moves, although in
//! one address space both ends share the device and its table.
//!
//! Entries are kept sorted by token, so lookups (one per CDC header write)
//! are a binary search; register and unregister shift the entries behind the
//! slot (rare: once per connection).

use core::fmt;

use heapless::Vec;

use super::{CDC_HEADER_LEN_BYTES, DMB_MAX_SIZE_BYTES, DmbToken};
use crate::mem::DmbRegion;
use crate::ops::{Error, ErrorKind};
use crate::sync::SpinLock;

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
    /// The handle's memory is not the memory registered under its token (a
    /// handle of another device, or a forged one).
    Foreign,
    /// A DMB named as its own peer.
    SelfBind,
    /// The binding would give a DMB a second sender or a second peer, or
    /// pair two DMBs that do not name each other.
    Bound,
    /// The peer DMB's registered length differs from the one announced.
    LengthMismatch,
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
            DmbError::Foreign => "handle does not match the registered DMB",
            DmbError::SelfBind => "a DMB cannot be its own peer",
            DmbError::Bound => "DMB already paired with another connection",
            DmbError::LengthMismatch => "peer DMB length differs from the announced one",
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
            | DmbError::NotAttached
            | DmbError::Foreign
            | DmbError::SelfBind
            | DmbError::Bound
            | DmbError::LengthMismatch => ErrorKind::InvalidToken,
        }
    }
}

/// What a [`DmbTable`] knows about one DMB (a snapshot).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DmbEntry<O> {
    /// The DMB's token.
    pub token: DmbToken,
    /// Where the DMB's memory lies (no access: see [`DmbRegion`]).
    pub region: DmbRegion,
    /// What the registering party stored with the DMB (a connection id, a
    /// client handle, `()`): the table only keeps and returns it.
    pub owner: O,
    /// Whether the owner still holds its reference (has not unregistered).
    pub registered: bool,
    /// Number of nocopy mappings (references besides the owner's).
    pub attached: u32,
    /// The peer DMB this DMB's connection sends into, once bound.
    pub peer: Option<DmbToken>,
    /// The DMB whose connection sends into this one, once bound.
    pub bound_by: Option<DmbToken>,
    /// Whether the binding by `bound_by` maps this DMB (nocopy); meaningless
    /// while `bound_by` is `None`.
    pub mapped: bool,
}

impl<O> DmbEntry<O> {
    fn references(&self) -> u32 {
        self.attached.saturating_add(u32::from(self.registered))
    }
}

/// Up to `N` DMBs by token, each with owner data `O`, a reference count and
/// the pairing of sender and receiver.
///
/// The owner's reference is taken by [`register`](Self::register) and dropped
/// by [`unregister`](Self::unregister); connections bind their peer's DMB
/// with [`attach`](Self::attach), which with `map` (nocopy) also takes a
/// reference, and undo it with [`detach`](Self::detach). The call that drops
/// the last reference gets the entry back (`Ok(Some(entry))`) and must free
/// its memory; that happens exactly once per DMB. Tokens come from the
/// caller (a device draws random ones and redraws on
/// [`DmbError::TokenInUse`]), so the table needs no RNG.
///
/// ```
/// use smcd_core::dmb::{DmbError, DmbTable, DmbToken};
/// use smcd_core::mem::DmbMem;
///
/// let leak = |n| Box::leak(vec![0u64; n].into_boxed_slice());
/// let a = DmbMem::from_static(zerocopy::IntoBytes::as_mut_bytes(leak(2048))).unwrap();
/// let b = DmbMem::from_static(zerocopy::IntoBytes::as_mut_bytes(leak(2048))).unwrap();
/// let (ta, tb) = (DmbToken(0xa), DmbToken(0xb));
///
/// let table: DmbTable<(), 4> = DmbTable::new();
/// table.register(ta, a.region(), ()).unwrap();
/// table.register(tb, b.region(), ()).unwrap();
/// assert_eq!(table.register(ta, a.region(), ()), Err(DmbError::TokenInUse));
///
/// // `a`'s connection maps `b` (nocopy); `b`'s connection binds `a` (copy).
/// table.attach(ta, a.region(), tb, 16 * 1024, true).unwrap();
/// table.attach(tb, b.region(), ta, 16 * 1024, false).unwrap();
/// assert_eq!(
///     table.attach(ta, a.region(), ta, 16 * 1024, false).unwrap_err(),
///     DmbError::SelfBind
/// );
///
/// assert!(table.unregister(tb, b.region()).unwrap().is_none()); // still mapped: kept
/// let ring = b.region().tail(32);
/// let freed = table.detach(ta, tb, ring).unwrap(); // last reference
/// assert_eq!(freed.map(|e| e.token), Some(tb)); // the caller frees `b` now
/// assert_eq!(table.lookup(tb).unwrap_err(), DmbError::NotFound);
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

    /// Number of DMBs present (registered, or unregistered but still mapped).
    pub fn len(&self) -> usize {
        self.entries.with(|e| e.len())
    }

    /// Whether no DMB is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of the nocopy mappings of every DMB present.
    pub fn attachments(&self) -> u64 {
        self.entries
            .with(|e| e.iter().map(|d| u64::from(d.attached)).sum())
    }

    /// Add the DMB at `region` under `token`, holding the owner's reference.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`] for token 0, [`DmbError::TokenInUse`] if the
    /// token is taken, [`DmbError::TooLarge`] / [`DmbError::TooSmall`] for a
    /// DMB over 1 MiB or not longer than the CDC header, [`DmbError::Full`]
    /// when `N` DMBs are present.
    pub fn register(&self, token: DmbToken, region: DmbRegion, owner: O) -> Result<(), DmbError> {
        valid(token)?;
        if region.len() > DMB_MAX_SIZE_BYTES {
            return Err(DmbError::TooLarge);
        }
        if region.len() <= CDC_HEADER_LEN_BYTES {
            return Err(DmbError::TooSmall);
        }
        let entry = DmbEntry {
            token,
            region,
            owner,
            registered: true,
            attached: 0,
            peer: None,
            bound_by: None,
            mapped: false,
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
        self.entries
            .with(|entries| find(entries, token).map(|at| entries.get(at).copied()))?
            .ok_or(DmbError::NotFound)
    }

    /// Drop the owner's reference to the DMB `token` at `region`.
    /// `Ok(Some(entry))` when it was the last reference: the entry is gone
    /// and the caller must free `entry.region`.
    ///
    /// The pairing is not undone here but by each side's
    /// [`detach`](Self::detach): the connection that sends into this DMB
    /// still holds its binding, and its own DMB stays paired with this one
    /// until it lets go, so that no third connection can bind that DMB while
    /// its owner still reads it.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`], [`DmbError::NotFound`],
    /// [`DmbError::Foreign`] if `region` is not the registered memory, or
    /// [`DmbError::Unregistered`] if the owner already unregistered it.
    pub fn unregister(
        &self,
        token: DmbToken,
        region: DmbRegion,
    ) -> Result<Option<DmbEntry<O>>, DmbError> {
        valid(token)?;
        self.entries.with(|entries| {
            let at = find(entries, token)?;
            let e = entries.get_mut(at).ok_or(DmbError::NotFound)?;
            if e.region != region {
                return Err(DmbError::Foreign);
            }
            if !e.registered {
                return Err(DmbError::Unregistered);
            }
            e.registered = false;
            Ok(take_if_unused(entries, at))
        })
    }

    /// Bind the DMB `peer` (announced as `len` bytes) as the send target of
    /// our DMB `own` at `own_region`; with `map`, also take a mapping
    /// reference on it. Returns the peer's entry as it is after the call.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`] for token 0, [`DmbError::SelfBind`] if the
    /// two are the same, [`DmbError::NotFound`] / [`DmbError::Unregistered`]
    /// if either is absent or dying, [`DmbError::Foreign`] if `own_region` is
    /// not `own`'s memory, [`DmbError::LengthMismatch`] for a wrong `len`,
    /// [`DmbError::Bound`] if either side is paired otherwise already, and
    /// [`DmbError::Full`] if the mapping counter is saturated.
    pub fn attach(
        &self,
        own: DmbToken,
        own_region: DmbRegion,
        peer: DmbToken,
        len: usize,
        map: bool,
    ) -> Result<DmbEntry<O>, DmbError> {
        valid(own)?;
        valid(peer)?;
        if own == peer {
            return Err(DmbError::SelfBind);
        }
        self.entries.with(|entries| {
            let o = find(entries, own)?;
            let p = find(entries, peer)?;
            let mine = entries.get(o).ok_or(DmbError::NotFound)?;
            if mine.region != own_region {
                return Err(DmbError::Foreign);
            }
            if !mine.registered {
                return Err(DmbError::Unregistered);
            }
            if mine.peer.is_some() || mine.bound_by.is_some_and(|s| s != peer) {
                return Err(DmbError::Bound);
            }
            let theirs = entries.get_mut(p).ok_or(DmbError::NotFound)?;
            if !theirs.registered {
                return Err(DmbError::Unregistered);
            }
            if theirs.region.len() != len {
                return Err(DmbError::LengthMismatch);
            }
            if theirs.bound_by.is_some() || theirs.peer.is_some_and(|t| t != own) {
                return Err(DmbError::Bound);
            }
            if map {
                theirs.attached = theirs.attached.checked_add(1).ok_or(DmbError::Full)?;
            }
            theirs.bound_by = Some(own);
            theirs.mapped = map;
            let snapshot = *theirs;
            if let Some(mine) = entries.get_mut(o) {
                mine.peer = Some(peer);
            }
            Ok(snapshot)
        })
    }

    /// Undo [`attach`](Self::attach) of `peer` by `own`; `mapped` is the
    /// ring region the mapping handed out (the DMB minus its CDC header), if
    /// it took one. `Ok(Some(entry))` when that was the peer DMB's last
    /// reference: the entry is gone and the caller must free `entry.region`.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`] for token 0; for a mapped binding
    /// [`DmbError::NotFound`] if the peer DMB is gone,
    /// [`DmbError::Foreign`] if `mapped` is not its ring, and
    /// [`DmbError::NotAttached`] if nobody maps it; [`DmbError::Foreign`]
    /// also for `mapped: None` while `own`'s binding of `peer` is mapped (a
    /// forged copy-mode handle cannot undo a nocopy binding).
    pub fn detach(
        &self,
        own: DmbToken,
        peer: DmbToken,
        mapped: Option<DmbRegion>,
    ) -> Result<Option<DmbEntry<O>>, DmbError> {
        valid(own)?;
        valid(peer)?;
        self.entries.with(|entries| {
            let p = find(entries, peer);
            if let Some(ring) = mapped {
                let e = p
                    .as_ref()
                    .ok()
                    .and_then(|&at| entries.get_mut(at))
                    .ok_or(DmbError::NotFound)?;
                if e.region.tail(CDC_HEADER_LEN_BYTES) != Some(ring) {
                    return Err(DmbError::Foreign);
                }
                e.attached = e.attached.checked_sub(1).ok_or(DmbError::NotAttached)?;
            } else if let Some(e) = p.as_ref().ok().and_then(|&at| entries.get(at)) {
                if e.bound_by == Some(own) && e.mapped {
                    return Err(DmbError::Foreign);
                }
            }
            unlink(entries, peer, |e| &mut e.bound_by, own);
            unlink(entries, own, |e| &mut e.peer, peer);
            Ok(p.ok().and_then(|at| take_if_unused(entries, at)))
        })
    }
}

impl<O: Copy, const N: usize> DmbTable<O, N> {
    /// Hold a short-lived reference on a DMB whose owner still holds it
    /// (a device writing into it), so its memory cannot go meanwhile.
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`], [`DmbError::NotFound`],
    /// [`DmbError::Unregistered`] once the owner gave it back,
    /// [`DmbError::Full`] if the counter is saturated.
    pub fn pin(&self, token: DmbToken) -> Result<DmbEntry<O>, DmbError> {
        valid(token)?;
        self.entries.with(|entries| {
            let e = find(entries, token)
                .and_then(|at| entries.get_mut(at).ok_or(DmbError::NotFound))?;
            if !e.registered {
                return Err(DmbError::Unregistered);
            }
            e.attached = e.attached.checked_add(1).ok_or(DmbError::Full)?;
            Ok(*e)
        })
    }

    /// Drop a reference taken by [`pin`](Self::pin); `Ok(Some(entry))` when
    /// it was the last one (the caller frees `entry.region`).
    ///
    /// # Errors
    ///
    /// [`DmbError::InvalidToken`], [`DmbError::NotFound`],
    /// [`DmbError::NotAttached`] without a reference.
    pub fn unpin(&self, token: DmbToken) -> Result<Option<DmbEntry<O>>, DmbError> {
        valid(token)?;
        self.entries.with(|entries| {
            let at = find(entries, token)?;
            let e = entries.get_mut(at).ok_or(DmbError::NotFound)?;
            e.attached = e.attached.checked_sub(1).ok_or(DmbError::NotAttached)?;
            Ok(take_if_unused(entries, at))
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

/// Position of `token`, or [`DmbError::NotFound`].
fn find<O>(entries: &[DmbEntry<O>], token: DmbToken) -> Result<usize, DmbError> {
    search(entries, token).map_err(|_| DmbError::NotFound)
}

/// Clear the link `field` of the entry `token` if it names `other`.
fn unlink<O>(
    entries: &mut [DmbEntry<O>],
    token: DmbToken,
    field: fn(&mut DmbEntry<O>) -> &mut Option<DmbToken>,
    other: DmbToken,
) {
    if let Some(e) = find(entries, token).ok().and_then(|at| entries.get_mut(at)) {
        let link = field(e);
        if *link == Some(other) {
            *link = None;
        }
    }
}

/// Remove and return the entry at `at` if no reference is left on it.
fn take_if_unused<O, const N: usize>(
    entries: &mut Vec<DmbEntry<O>, N>,
    at: usize,
) -> Option<DmbEntry<O>> {
    match entries.get(at) {
        Some(e) if e.references() == 0 => Some(entries.remove(at)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::leaked;

    /// A fresh region of `len` bytes (leaked: valid for the whole test run).
    fn region(len: usize) -> DmbRegion {
        leaked(len).region()
    }

    /// The ring part of a DMB region, as a mapping hands it out.
    fn ring(r: DmbRegion) -> Option<DmbRegion> {
        r.tail(CDC_HEADER_LEN_BYTES)
    }

    const T1: DmbToken = DmbToken(0x1111);
    const T2: DmbToken = DmbToken(0x2222);
    const T3: DmbToken = DmbToken(0x3333);
    const LEN: usize = 64;

    #[test]
    fn register_lookup_unregister() {
        let t: DmbTable<u32, 4> = DmbTable::new();
        let m = region(LEN);
        t.register(T2, m, 7).unwrap();
        t.register(T1, region(LEN), 8).unwrap();
        assert_eq!(t.len(), 2);
        let e = t.lookup(T2).unwrap();
        assert_eq!(
            (e.token, e.owner, e.registered, e.attached),
            (T2, 7, true, 0)
        );
        assert_eq!(e.region, m);
        assert_eq!(t.lookup(T1).unwrap().owner, 8);
        let freed = t.unregister(T2, m).unwrap().unwrap();
        assert_eq!(freed.region, m);
        assert_eq!(t.lookup(T2).unwrap_err(), DmbError::NotFound);
        assert_eq!(t.unregister(T2, m).unwrap_err(), DmbError::NotFound);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn unregister_checks_the_memory() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let m = region(LEN);
        t.register(T1, m, ()).unwrap();
        // Someone who knows the token but holds other memory cannot free it.
        assert_eq!(
            t.unregister(T1, region(LEN)).unwrap_err(),
            DmbError::Foreign
        );
        assert!(t.lookup(T1).unwrap().registered);
        assert!(t.unregister(T1, m).unwrap().is_some());
    }

    #[test]
    fn capacity_and_token_errors() {
        let t: DmbTable<(), 2> = DmbTable::new();
        assert_eq!(t.capacity(), 2);
        assert_eq!(
            t.register(DmbToken(0), region(LEN), ()),
            Err(DmbError::InvalidToken)
        );
        let m1 = region(LEN);
        t.register(T1, m1, ()).unwrap();
        assert_eq!(t.register(T1, region(LEN), ()), Err(DmbError::TokenInUse));
        t.register(T3, region(LEN), ()).unwrap();
        assert_eq!(t.register(T2, region(LEN), ()), Err(DmbError::Full));
        assert_eq!(DmbError::Full.kind(), ErrorKind::NoSpace);
        // A freed slot is reusable.
        assert!(t.unregister(T1, m1).unwrap().is_some());
        t.register(T2, region(LEN), ()).unwrap();
        assert_eq!(t.lookup(DmbToken(0)).unwrap_err(), DmbError::InvalidToken);
        assert_eq!(
            t.attach(DmbToken(0), m1, T2, LEN, false).unwrap_err(),
            DmbError::InvalidToken
        );
        assert_eq!(
            t.detach(T2, DmbToken(0), None).unwrap_err(),
            DmbError::InvalidToken
        );
    }

    #[test]
    fn sizes_are_bounded() {
        let t: DmbTable<(), 2> = DmbTable::new();
        assert_eq!(t.register(T1, region(32), ()), Err(DmbError::TooSmall));
        let big = DmbRegion::new(
            core::ptr::NonNull::<u64>::dangling().cast(),
            DMB_MAX_SIZE_BYTES + 8,
        )
        .unwrap();
        assert_eq!(t.register(T1, big, ()), Err(DmbError::TooLarge));
        t.register(T2, region(40), ()).unwrap();
    }

    /// Two DMBs of one pair, registered.
    fn pair(t: &DmbTable<(), 4>) -> (DmbRegion, DmbRegion) {
        let (a, b) = (region(LEN), region(LEN));
        t.register(T1, a, ()).unwrap();
        t.register(T2, b, ()).unwrap();
        (a, b)
    }

    #[test]
    fn a_pair_binds_each_other_once() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, b) = pair(&t);
        let e = t.attach(T1, a, T2, LEN, false).unwrap();
        assert_eq!((e.token, e.bound_by, e.attached), (T2, Some(T1), 0));
        assert_eq!(t.attach(T2, b, T1, LEN, true).unwrap().attached, 1);
        assert_eq!(t.lookup(T1).unwrap().peer, Some(T2));
        // Neither side takes a second binding.
        assert_eq!(
            t.attach(T1, a, T2, LEN, false).unwrap_err(),
            DmbError::Bound
        );
        assert!(t.detach(T2, T1, ring(a)).unwrap().is_none());
        assert!(t.detach(T1, T2, None).unwrap().is_none());
        let (e1, e2) = (t.lookup(T1).unwrap(), t.lookup(T2).unwrap());
        assert_eq!((e1.peer, e1.bound_by, e1.attached), (None, None, 0));
        assert_eq!((e2.peer, e2.bound_by, e2.attached), (None, None, 0));
    }

    #[test]
    fn bindings_that_would_cross_connections_are_refused() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, b) = pair(&t);
        let c = region(LEN);
        t.register(T3, c, ()).unwrap();
        assert_eq!(
            t.attach(T1, a, T1, LEN, false).unwrap_err(),
            DmbError::SelfBind
        );
        t.attach(T1, a, T2, LEN, false).unwrap();
        t.attach(T2, b, T1, LEN, false).unwrap();
        // A third DMB may send neither into T1 nor into T2: both have their sender.
        assert_eq!(
            t.attach(T3, c, T1, LEN, false).unwrap_err(),
            DmbError::Bound
        );
        assert_eq!(t.attach(T3, c, T2, LEN, true).unwrap_err(), DmbError::Bound);
        assert_eq!(t.lookup(T2).unwrap().attached, 0);
        // Wrong memory for the own token, wrong announced length.
        assert_eq!(
            t.attach(T3, a, T1, LEN, false).unwrap_err(),
            DmbError::Foreign
        );
        t.detach(T2, T1, None).unwrap();
        assert_eq!(
            t.attach(T3, c, T1, 2 * LEN, false).unwrap_err(),
            DmbError::LengthMismatch
        );
        // T1 still names T2 as its peer: T3 cannot pair with it.
        assert_eq!(
            t.attach(T3, c, T1, LEN, false).unwrap_err(),
            DmbError::Bound
        );
    }

    #[test]
    fn unregister_while_mapped_frees_at_last_detach() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, b) = pair(&t);
        assert_eq!(t.attach(T2, b, T1, LEN, true).unwrap().attached, 1);
        assert!(t.unregister(T1, a).unwrap().is_none());
        // Owner gone: the DMB stays for its mapper, but takes no new binding;
        // the mapper's binding stays until it detaches.
        let e = t.lookup(T1).unwrap();
        assert!(!e.registered);
        assert_eq!(e.bound_by, Some(T2));
        assert_eq!(t.lookup(T2).unwrap().peer, Some(T1));
        assert_eq!(t.unregister(T1, a).unwrap_err(), DmbError::Unregistered);
        let freed = t.detach(T2, T1, ring(a)).unwrap().unwrap();
        assert_eq!(
            (freed.token, freed.attached, freed.registered),
            (T1, 0, false)
        );
        assert_eq!(t.detach(T2, T1, ring(a)).unwrap_err(), DmbError::NotFound);
        assert_eq!(t.lookup(T2).unwrap().peer, None);
        assert!(t.unregister(T2, b).unwrap().is_some());
        assert!(t.is_empty());
    }

    #[test]
    fn a_dmb_stays_paired_while_its_peer_goes_away() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, b) = pair(&t);
        let c = region(LEN);
        t.register(T3, c, ()).unwrap();
        // T1 and T2 are one connection (copy mode both ways).
        t.attach(T1, a, T2, LEN, false).unwrap();
        t.attach(T2, b, T1, LEN, false).unwrap();
        // T2's side ends: detach, unregister (freed: nobody maps it).
        t.detach(T2, T1, None).unwrap();
        assert!(t.unregister(T2, b).unwrap().is_some());
        // T1's owner still reads T1 and still holds its binding to T2: a
        // third DMB may not send into T1, nor may T1 pair again.
        assert_eq!(t.lookup(T1).unwrap().peer, Some(T2));
        assert_eq!(
            t.attach(T3, c, T1, LEN, false).unwrap_err(),
            DmbError::Bound
        );
        // Until T1 lets go of T2, whose entry is gone already.
        assert!(t.detach(T1, T2, None).unwrap().is_none());
        assert_eq!(t.lookup(T1).unwrap().peer, None);
        t.attach(T3, c, T1, LEN, false).unwrap();
    }

    #[test]
    fn unregister_before_detach_keeps_the_peer_bound() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, _) = pair(&t);
        let c = region(LEN);
        t.register(T3, c, ()).unwrap();
        t.attach(T1, a, T2, LEN, false).unwrap();
        // T1's owner gives its DMB back before its binding to T2: T2 still
        // has its sender until the binding is detached.
        assert!(t.unregister(T1, a).unwrap().is_some());
        assert_eq!(
            t.attach(T3, c, T2, LEN, false).unwrap_err(),
            DmbError::Bound
        );
        t.detach(T1, T2, None).unwrap();
        assert_eq!(t.lookup(T2).unwrap().bound_by, None);
        t.attach(T3, c, T2, LEN, false).unwrap();
    }

    #[test]
    fn detach_checks_the_mapped_ring() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, b) = pair(&t);
        t.attach(T2, b, T1, LEN, true).unwrap();
        // A forged mapping of other memory cannot drop the real one's reference.
        assert_eq!(
            t.detach(T2, T1, ring(region(LEN))).unwrap_err(),
            DmbError::Foreign
        );
        assert!(t.unregister(T1, a).unwrap().is_none());
        assert_eq!(t.lookup(T1).unwrap().attached, 1);
        assert!(t.detach(T2, T1, ring(a)).unwrap().is_some());
    }

    #[test]
    fn pins_keep_a_dmb_until_unpinned() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, _) = pair(&t);
        t.pin(T1).unwrap();
        assert!(t.unregister(T1, a).unwrap().is_none());
        assert_eq!(t.pin(T1).unwrap_err(), DmbError::Unregistered);
        assert!(t.unpin(T1).unwrap().is_some());
        assert_eq!(t.unpin(T1).unwrap_err(), DmbError::NotFound);
    }

    #[test]
    fn detach_needs_a_mapping() {
        let t: DmbTable<(), 4> = DmbTable::new();
        let (a, b) = pair(&t);
        assert_eq!(
            t.detach(T2, T1, ring(a)).unwrap_err(),
            DmbError::NotAttached
        );
        t.attach(T2, b, T1, LEN, true).unwrap();
        assert_eq!(t.attachments(), 1);
        assert!(t.detach(T2, T1, ring(a)).unwrap().is_none());
        assert_eq!(t.attachments(), 0);
        // The owner still holds it.
        assert!(t.lookup(T1).unwrap().registered);
        assert!(t.unregister(T1, a).unwrap().is_some());
    }

    #[test]
    fn many_tokens_stay_findable() {
        let t: DmbTable<u64, 64> = DmbTable::new();
        let m = region(LEN);
        let tok = |i: u64| DmbToken(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        // Insert in a scrambled order; every token must be found with its owner.
        for i in 0..64u64 {
            t.register(tok(i), m, i).unwrap();
        }
        for i in 0..64u64 {
            assert_eq!(t.lookup(tok(i)).unwrap().owner, i);
        }
        for i in (0..64u64).step_by(2) {
            assert!(t.unregister(tok(i), m).unwrap().is_some());
        }
        for i in 0..64u64 {
            assert_eq!(t.lookup(tok(i)).is_ok(), i % 2 == 1);
        }
    }

    #[test]
    fn two_threads_share_the_table() {
        let t: DmbTable<u8, 4> = DmbTable::new();
        let regions = [
            (1u8, region(LEN), region(LEN)),
            (2u8, region(LEN), region(LEN)),
        ];
        std::thread::scope(|s| {
            for (owner, mine, theirs) in regions {
                let t = &t;
                s.spawn(move || {
                    let (a, b) = (DmbToken(u64::from(owner)), DmbToken(u64::from(owner) << 8));
                    for _ in 0..50 {
                        t.register(a, mine, owner).unwrap();
                        t.register(b, theirs, owner).unwrap();
                        assert_eq!(t.lookup(a).unwrap().owner, owner);
                        t.attach(a, mine, b, LEN, true).unwrap();
                        assert!(t.unregister(b, theirs).unwrap().is_none());
                        let freed = t.detach(a, b, ring(theirs)).unwrap().unwrap();
                        assert_eq!(freed.region, theirs);
                        assert!(t.unregister(a, mine).unwrap().is_some());
                    }
                });
            }
        });
        assert!(t.is_empty());
    }

    #[test]
    fn errors_display_and_map_to_kinds() {
        assert_eq!(DmbError::NotFound.kind(), ErrorKind::InvalidToken);
        assert_eq!(DmbError::Bound.kind(), ErrorKind::InvalidToken);
        assert_eq!(DmbError::TooLarge.kind(), ErrorKind::NoMemory);
        assert_eq!(
            std::format!("{}", DmbError::TokenInUse),
            "DMB token already in use"
        );
    }
}
