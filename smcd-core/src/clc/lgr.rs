//! Link groups: first contact and reuse (`docs/protocol/handshake.md` §5).
//!
//! An SMC-D link group is keyed by (local device, peer GID). The first
//! connection to a peer creates one (`first_contact` = 1, a fresh 4-byte
//! [`LinkId`]); later connections on the same key join it (`first_contact` =
//! 0, same id). The role is not part of the key, so in one process a client
//! joins the group a server created and both sides name the same `linkid`.
//!
//! # Sharing
//!
//! One [`LinkGroups`] table serves every handshake of a host (one engine per
//! connection). Engines borrow it as `&dyn LinkGroupTable`; all access goes
//! through a spin lock held only for a short scan of at most `N` slots, so the
//! table can live in a `static` and be used from several threads.
//!
//! # Lifetime of a group
//!
//! An engine takes a reference on the group of its connection and hands it to
//! the caller in [`Established`](super::Established); the caller calls
//! [`LinkGroups::release`] when that connection ends. A group without
//! connections stays in the table for later reuse (Linux keeps idle groups for
//! a delay); when the table is full, creating a group evicts an idle one. A
//! group is removed for good when a peer reports it out of sync
//! ([`LinkGroups::terminate`]); it disappears once its last connection is
//! released.
//!
//! A group a server created stays *unconfirmed* until the Confirm of its
//! first contact arrives: until then the client may not have read the
//! Accept that created it, and a second connection's Accept could reach the
//! client first. A server that joins an unconfirmed group therefore sends
//! that Accept with `first_contact` 1 again (the client creates a group of
//! its own, as for any first contact) instead of 0, which the client could
//! only answer with SYNCERR. Linux serialises first contacts instead.

use core::fmt;

use crate::sync::SpinLock;

use super::devices::ClcDevice;
use super::messages::{FEATURE_MASK, wire_gid};
use super::outcome::{Outcome, Role};
use crate::dmb::{Chid, Gid};
use crate::stats::ClcStats;

/// Opaque 4-byte link-group id (`linkid` of Accept/Confirm); never interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkId(pub [u8; 4]);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

/// Step between consecutive link ids. Linux 6.12 counts in steps of 256 and
/// sends the counter in host order; this table imitates an x86 host
/// (`00 01 00 00`, `00 02 00 00`, …), which is as good as any opaque value.
const LINK_ID_STEP: u32 = 256;

/// A counted reference to one link group, held by one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkGroup {
    slot: usize,
    id: LinkId,
}

impl LinkGroup {
    /// The group's wire id.
    pub fn id(&self) -> LinkId {
        self.id
    }
}

/// What identifies a link group: the local device and the peer's GID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LgrKey {
    /// Local device CHID.
    pub(crate) chid: Chid,
    /// Local device GID.
    pub(crate) local: Gid,
    /// Peer GID (128 bits for emulated devices).
    pub(crate) peer: Gid,
}

/// What the creator of a link group negotiated, for connections joining it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LgrInfo {
    /// Negotiated release.
    pub(crate) release: u8,
    /// Negotiated feature mask.
    pub(crate) features: u16,
}

impl LgrInfo {
    /// The group's terms for a negotiated `release`: the feature mask is the
    /// `offered` bits this engine supports, and only exists from release 1.
    pub(crate) fn negotiated(release: u8, offered: u16) -> Self {
        Self {
            release,
            features: if release >= 1 {
                offered & FEATURE_MASK
            } else {
                0
            },
        }
    }
}

impl LgrKey {
    /// The key of a group on local device `dev` with peer `peer`.
    pub(crate) fn of(dev: &dyn ClcDevice, peer: Gid) -> Self {
        let chid = dev.channel();
        Self {
            chid,
            local: wire_gid(dev.gid(), chid),
            peer,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: LgrKey,
    info: LgrInfo,
    id: LinkId,
    conns: u32,
    out_of_sync: bool,
    /// The first contact that created it was confirmed (or the client
    /// created it from an Accept).
    confirmed: bool,
}

#[derive(Debug)]
struct Inner<const N: usize> {
    slots: [Option<Entry>; N],
    last_id: u32,
}

impl<const N: usize> Inner<N> {
    fn entry(&mut self, lgr: LinkGroup) -> Option<&mut Entry> {
        match self.slots.get_mut(lgr.slot) {
            Some(Some(e)) if e.id == lgr.id => Some(e),
            _ => None,
        }
    }

    fn fresh_id(&mut self) -> LinkId {
        // At most N ids are live, so N + 1 candidates contain a free one.
        for _ in 0..=N {
            self.last_id = self.last_id.wrapping_add(LINK_ID_STEP);
            let id = LinkId(self.last_id.to_le_bytes());
            if self.last_id != 0 && !self.slots.iter().flatten().any(|e| e.id == id) {
                return id;
            }
        }
        LinkId(self.last_id.to_le_bytes())
    }

    /// The oldest in-sync group of `key`, a confirmed one if there is one,
    /// with a reference taken; and whether it is confirmed.
    fn join(&mut self, key: LgrKey) -> Option<(LinkGroup, LgrInfo, bool)> {
        let joinable = |e: &Entry| e.key == key && !e.out_of_sync;
        let slot = self
            .slots
            .iter()
            .position(|s| matches!(s, Some(e) if joinable(e) && e.confirmed))
            .or_else(|| {
                self.slots
                    .iter()
                    .position(|s| matches!(s, Some(e) if joinable(e)))
            })?;
        let e = self.slots.get_mut(slot)?.as_mut()?;
        e.conns = e.conns.saturating_add(1);
        Some((LinkGroup { slot, id: e.id }, e.info, e.confirmed))
    }

    fn free_if_dead(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            if matches!(s, Some(e) if (e.out_of_sync || !e.confirmed) && e.conns == 0) {
                *s = None;
            }
        }
    }
}

/// A fixed-capacity table of up to `N` link groups, shareable between threads.
///
/// Every handshake engine of a host shares this table, so it also counts how
/// their handshakes ended: [`clc_stats`](Self::clc_stats) (under a lock of
/// its own; no global state).
///
/// ```
/// use smcd_core::clc::LinkGroups;
///
/// static LINK_GROUPS: LinkGroups<16> = LinkGroups::new();
/// assert_eq!(LINK_GROUPS.len(), 0);
/// ```
#[derive(Debug)]
pub struct LinkGroups<const N: usize> {
    inner: SpinLock<Inner<N>>,
    stats: SpinLock<ClcStats>,
}

impl<const N: usize> Default for LinkGroups<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LinkGroups<N> {
    crate::sync::const_unless_loom! {
        /// An empty table.
        pub fn new() -> Self {
            Self {
                inner: SpinLock::new(Inner {
                    slots: [None; N],
                    last_id: 0,
                }),
                stats: SpinLock::new(ClcStats::new()),
            }
        }
    }

    /// A snapshot of how the handshakes using this table ended, by role.
    ///
    /// ```
    /// use smcd_core::clc::LinkGroups;
    ///
    /// let groups = LinkGroups::<4>::new();
    /// assert_eq!(groups.clc_stats().client.established(), 0);
    /// ```
    pub fn clc_stats(&self) -> ClcStats {
        self.stats.with(|s| *s)
    }

    /// Number of link groups in the table (idle ones included).
    pub fn len(&self) -> usize {
        self.inner.with(|i| i.slots.iter().flatten().count())
    }

    /// Whether the table holds no link group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of link groups with at least one connection.
    pub fn in_use(&self) -> usize {
        self.inner
            .with(|i| i.slots.iter().flatten().filter(|e| e.conns > 0).count())
    }

    /// Connections currently counted on `lgr`, or `None` if the group is gone.
    pub fn connections(&self, lgr: LinkGroup) -> Option<u32> {
        self.inner.with(|i| i.entry(lgr).map(|e| e.conns))
    }

    /// Drop one connection's reference (call when that connection ends).
    ///
    /// The group stays for reuse unless it was terminated. Releasing a
    /// reference to a group that is gone does nothing.
    pub fn release(&self, lgr: LinkGroup) {
        self.inner.with(|inner| {
            if let Some(e) = inner.entry(lgr) {
                e.conns = e.conns.saturating_sub(1);
            }
            inner.free_if_dead(lgr.slot);
        });
    }

    /// Mark `lgr` out of sync: no handshake joins it again, and it is removed
    /// once its last connection is released (`docs/protocol/handshake.md` §5,
    /// "out-of-sync Decline received").
    pub fn terminate(&self, lgr: LinkGroup) {
        self.inner.with(|inner| {
            if let Some(e) = inner.entry(lgr) {
                e.out_of_sync = true;
            }
            inner.free_if_dead(lgr.slot);
        });
    }
}

/// A link-group table as the handshake engines use it; implemented by
/// [`LinkGroups`]. Sealed: its methods are internal to the engine.
pub trait LinkGroupTable: sealed::Table + Sync {}

impl<const N: usize> LinkGroupTable for LinkGroups<N> {}

// The sealed trait names crate-private types on purpose: it can neither be
// named nor implemented outside this crate.
#[allow(private_interfaces)]
pub(crate) mod sealed {
    use super::{LgrInfo, LgrKey, LinkGroup, Outcome, Role};

    /// The engine's view of a link-group table.
    pub trait Table {
        /// Join the oldest in-sync group of `key` (a confirmed one first),
        /// taking a reference; the bool: whether it is confirmed.
        fn join(&self, key: LgrKey) -> Option<(LinkGroup, LgrInfo, bool)>;
        /// Create a group for `key` with a fresh id, taking a reference;
        /// `None` when every slot holds a group in use. `confirmed`: false
        /// for a server's first contact until [`confirm`](Self::confirm).
        fn create(&self, key: LgrKey, info: LgrInfo, confirmed: bool) -> Option<LinkGroup>;
        /// A first contact on `lgr` was confirmed.
        fn confirm(&self, lgr: LinkGroup);
        /// Drop a reference.
        fn release(&self, lgr: LinkGroup);
        /// Mark out of sync (removed after the last release).
        fn terminate(&self, lgr: LinkGroup);
        /// Count a handshake of `role` that ended with `outcome`.
        fn record(&self, role: Role, outcome: &Outcome);
    }
}

#[allow(private_interfaces)] // see `sealed`
impl<const N: usize> sealed::Table for LinkGroups<N> {
    fn join(&self, key: LgrKey) -> Option<(LinkGroup, LgrInfo, bool)> {
        self.inner.with(|inner| inner.join(key))
    }

    fn confirm(&self, lgr: LinkGroup) {
        self.inner.with(|inner| {
            if let Some(e) = inner.entry(lgr) {
                e.confirmed = true;
            }
        });
    }

    fn create(&self, key: LgrKey, info: LgrInfo, confirmed: bool) -> Option<LinkGroup> {
        self.inner.with(|inner| {
            let slot = inner.slots.iter().position(Option::is_none).or_else(|| {
                inner
                    .slots
                    .iter()
                    .position(|s| matches!(s, Some(e) if e.conns == 0))
            })?;
            let id = inner.fresh_id();
            let s = inner.slots.get_mut(slot)?;
            *s = Some(Entry {
                key,
                info,
                id,
                conns: 1,
                out_of_sync: false,
                confirmed,
            });
            Some(LinkGroup { slot, id })
        })
    }

    fn release(&self, lgr: LinkGroup) {
        LinkGroups::release(self, lgr);
    }

    fn terminate(&self, lgr: LinkGroup) {
        LinkGroups::terminate(self, lgr);
    }

    fn record(&self, role: Role, outcome: &Outcome) {
        self.stats.with(|s| s.record(role, outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Table;
    use super::*;

    const INFO: LgrInfo = LgrInfo {
        release: 1,
        features: 1,
    };

    fn key(peer: u64) -> LgrKey {
        LgrKey {
            chid: Chid::LOOPBACK,
            local: Gid::new(1, 2),
            peer: Gid::new(peer, 7),
        }
    }

    #[test]
    fn create_then_join_same_key() {
        let t = LinkGroups::<4>::new();
        assert_eq!(t.join(key(1)), None);
        let a = t.create(key(1), INFO, true).unwrap();
        assert_eq!(a.id(), LinkId([0, 1, 0, 0]));
        let (b, info, confirmed) = t.join(key(1)).unwrap();
        assert_eq!(a, b);
        assert!(confirmed);
        assert_eq!(info, INFO);
        assert_eq!(t.connections(a), Some(2));
        assert_eq!(t.join(key(2)), None);
        let c = t.create(key(2), INFO, true).unwrap();
        assert_eq!(c.id(), LinkId([0, 2, 0, 0]));
    }

    #[test]
    fn join_prefers_oldest_group() {
        let t = LinkGroups::<4>::new();
        let first = t.create(key(1), INFO, true).unwrap();
        let _second = t.create(key(1), INFO, true).unwrap();
        assert_eq!(t.join(key(1)), Some((first, INFO, true)));
    }

    #[test]
    fn joins_say_whether_the_group_is_confirmed_and_prefer_confirmed_ones() {
        let t = LinkGroups::<4>::new();
        let a = t.create(key(1), INFO, false).unwrap();
        assert_eq!(t.join(key(1)), Some((a, INFO, false)));
        let b = t.create(key(1), INFO, true).unwrap();
        assert_eq!(t.join(key(1)), Some((b, INFO, true)));
        t.confirm(a);
        assert_eq!(t.join(key(1)), Some((a, INFO, true)));
        assert_eq!(t.connections(a), Some(3));
    }

    #[test]
    fn unconfirmed_group_goes_with_its_last_connection() {
        let t = LinkGroups::<4>::new();
        let a = t.create(key(1), INFO, false).unwrap();
        t.release(a);
        assert_eq!((t.len(), t.connections(a)), (0, None));
    }

    #[test]
    fn released_group_stays_for_reuse() {
        let t = LinkGroups::<4>::new();
        let a = t.create(key(1), INFO, true).unwrap();
        assert_eq!(t.in_use(), 1);
        t.release(a);
        assert_eq!(t.connections(a), Some(0));
        assert_eq!((t.in_use(), t.len()), (0, 1));
        assert_eq!(t.join(key(1)), Some((a, INFO, true)));
    }

    #[test]
    fn terminated_group_is_never_joined_and_freed_at_last_release() {
        let t = LinkGroups::<4>::new();
        let a = t.create(key(1), INFO, true).unwrap();
        t.terminate(a);
        assert_eq!(t.join(key(1)), None);
        assert_eq!(t.len(), 1);
        t.release(a);
        assert_eq!(t.len(), 0);
        // A stale handle does nothing.
        t.release(a);
        t.terminate(a);
        assert_eq!(t.connections(a), None);
    }

    #[test]
    fn full_table_evicts_idle_group_only() {
        let t = LinkGroups::<2>::new();
        let a = t.create(key(1), INFO, true).unwrap();
        let b = t.create(key(2), INFO, true).unwrap();
        assert_eq!(t.create(key(3), INFO, true), None);
        t.release(a);
        let c = t.create(key(3), INFO, true).unwrap();
        assert_ne!(c.id(), a.id());
        assert_eq!(t.connections(a), None);
        assert_eq!(t.connections(b), Some(1));
    }

    #[test]
    fn ids_stay_unique_across_counter_wrap() {
        let t = LinkGroups::<2>::new();
        t.inner.with(|i| i.last_id = u32::MAX - 255 - 256);
        let a = t.create(key(1), INFO, true).unwrap();
        let b = t.create(key(2), INFO, true).unwrap();
        assert_ne!(a.id(), b.id());
        assert_ne!(b.id(), LinkId([0; 4]));
    }
}
