//! What a [`StdDevice`](super::StdDevice) knows: its own DMBs and the peer
//! DMBs its connections send into, with the pairing rules.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::{Duration, Instant};

use smcd_core::dmb::{DmbToken, Gid};
use smcd_core::mem::DmbRegion;
use smcd_core::ops::{Dmb, ErrorKind, PeerDmbId};

use super::bell::Bell;
use super::error::DeviceError;
use super::fetch::Offer;
use super::shm::{self, Mapping, OwnShm};

/// One of our DMBs.
#[derive(Debug)]
pub(super) struct Own {
    pub(super) map: Arc<Mapping>,
    pub(super) fd: Arc<OwnedFd>,
    pub(super) bell: Arc<OwnedFd>,
    /// (device, inode) of the memfd, to recognise it coming back.
    pub(super) identity: (u64, u64),
    /// Whether a peer already fetched it (a DMB is handed out once).
    pub(super) handed_out: bool,
    /// In-process pairing: the DMB of ours this one sends into.
    pub(super) peer: Option<u64>,
    /// In-process pairing: the DMB of ours that sends into this one.
    pub(super) bound_by: Option<u64>,
    /// Not paired yet: its handshake is running (counted in
    /// [`State::pending`]).
    pub(super) pending: bool,
}

impl Own {
    pub(super) fn create(len: usize) -> std::io::Result<Self> {
        let OwnShm { fd, map } = OwnShm::create(len)?;
        let bell = crate::fdfloor::lift(rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?);
        let identity = shm::identity(&fd)?;
        Ok(Self {
            map: Arc::new(map),
            fd: Arc::new(fd),
            bell: Arc::new(bell),
            identity,
            handed_out: false,
            peer: None,
            bound_by: None,
            pending: true,
        })
    }

    pub(super) fn bell(&self) -> Bell {
        Bell::new(Arc::clone(&self.map), Arc::clone(&self.bell))
    }
}

/// A peer DMB one of our DMBs sends into.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) map: Arc<Mapping>,
    bell: Arc<OwnedFd>,
    /// Our DMB that sends into it.
    own: DmbToken,
    /// Whether the connection writes its ring directly (nocopy).
    mapped: bool,
    /// Whether rings are held while the sender is corked ([`super::hold`]).
    corked: AtomicBool,
    /// Test-only: the memfd behind the mapping, for a hostile test peer.
    #[cfg(feature = "hostile-peer")]
    memfd: Arc<OwnedFd>,
}

impl Target {
    /// A peer process's DMB from its memfd and eventfd.
    pub(super) fn remote(
        own: DmbToken,
        memfd: OwnedFd,
        bell: OwnedFd,
        len: usize,
        mapped: bool,
    ) -> Result<(Self, (u64, u64)), DeviceError> {
        let io = |e: std::io::Error| DeviceError::io(ErrorKind::InvalidToken, "peer memfd", &e);
        let identity = shm::identity(&memfd).map_err(io)?;
        let map = shm::map_peer(&memfd, len)
            .map_err(io)?
            .map_err(|e| DeviceError::new(ErrorKind::InvalidToken, e.describe()))?;
        Ok((
            Self {
                map: Arc::new(map),
                bell: Arc::new(bell),
                own,
                mapped,
                corked: AtomicBool::new(false),
                #[cfg(feature = "hostile-peer")]
                memfd: Arc::new(memfd),
            },
            identity,
        ))
    }

    /// Test-only: the mapping and doorbell, for a hostile test peer.
    #[cfg(feature = "hostile-peer")]
    pub(super) fn tap(&self) -> super::tap::PeerTap {
        super::tap::PeerTap::new(
            Arc::clone(&self.map),
            Arc::clone(&self.bell),
            Arc::clone(&self.memfd),
        )
    }

    /// Whether the sender holds its rings ([`super::hold`]).
    pub(super) fn corked(&self) -> bool {
        self.corked.load(Ordering::Relaxed)
    }

    pub(super) fn set_corked(&self, on: bool) {
        self.corked.store(on, Ordering::Relaxed);
    }

    /// The receiver's doorbell if it waits for a ring: the header is
    /// published (release) before; the full fence orders it before reading
    /// the flag, pairing with the waiter's arm-then-recheck.
    pub(super) fn bell_if_armed(&self) -> Option<Arc<OwnedFd>> {
        fence(Ordering::SeqCst);
        (self.map.control().armed.load(Ordering::SeqCst) != 0).then(|| Arc::clone(&self.bell))
    }
}

/// Ring a doorbell (its eventfd counts the rings).
pub(super) fn ring(bell: &OwnedFd) {
    let _ = rustix::io::write(bell.as_fd(), &1u64.to_ne_bytes());
}

/// The hasher of the token tables: every send looks its target up, so it
/// must be fast; seeded per process, since a peer chooses its tokens.
pub(super) type TokenHash = foldhash::fast::RandomState;

/// The device's tables.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) own: HashMap<u64, Own, TokenHash>,
    pub(super) targets: HashMap<u64, Arc<Target>, TokenHash>,
    /// Peer devices whose socket accepted a connection lately: asking
    /// again for each handshake would cost the peer's device thread a
    /// wake-up. (A device that went away since fails the fetch instead.)
    reached: HashSet<Gid, TokenHash>,
    /// DMBs peers offered along with a fetch we granted, by (peer device,
    /// token), until their Confirm names them (`fetch` module docs), with
    /// the token of our DMB the fetch got: an offer goes when that DMB does
    /// (a peer killed before its Confirm must not leave its fds with us).
    offers: HashMap<(Gid, u64), (Instant, u64, Offer), TokenHash>,
    /// Fetches of our DMBs this device granted.
    pub(super) granted: u64,
    /// Our DMBs not paired yet ([`Own::pending`]).
    pub(super) pending: usize,
}

/// How long an offer waits for the Confirm that names it.
const OFFER_TTL: Duration = Duration::from_secs(10);

/// Offers kept at most (the oldest go first).
const OFFERS_MAX: usize = 1024;

/// Peer devices remembered as reachable, at most (then forgotten at once).
const REACHED_MAX: usize = 1024;

fn refused(what: &'static str) -> DeviceError {
    DeviceError::new(ErrorKind::InvalidToken, what)
}

impl State {
    /// Our DMB `own` as an offer to send with a fetch (its fds shared, so
    /// that the lock need not be held while the fetch runs); it counts as
    /// handed out from now on.
    pub(super) fn offer_of(
        &mut self,
        own: &Dmb,
    ) -> Option<(DmbToken, u64, Arc<OwnedFd>, Arc<OwnedFd>)> {
        let e = self.own_entry(own).ok()?;
        if e.handed_out {
            return None;
        }
        e.handed_out = true;
        Some((
            own.token(),
            e.map.region().len() as u64,
            Arc::clone(&e.fd),
            Arc::clone(&e.bell),
        ))
    }

    /// Keep the DMB `offer` the peer device `from` sent with its fetch of
    /// our DMB `ours`.
    pub(super) fn keep_offer(&mut self, from: Gid, ours: DmbToken, offer: Offer) {
        let now = Instant::now();
        self.offers
            .retain(|_, (at, _, _)| now.duration_since(*at) < OFFER_TTL);
        if self.offers.len() >= OFFERS_MAX {
            let oldest = self
                .offers
                .iter()
                .min_by_key(|(_, (at, _, _))| *at)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.offers.remove(&k);
            }
        }
        self.offers
            .insert((from, offer.token.0), (now, ours.0, offer));
    }

    /// Offers kept now.
    pub(super) fn offers_held(&self) -> usize {
        self.offers.len()
    }

    /// The memfd and eventfd the peer offered for `peer`, if its length
    /// matches.
    pub(super) fn take_offer(&mut self, peer: PeerDmbId) -> Option<(OwnedFd, OwnedFd)> {
        let (_, _, o) = self.offers.remove(&(peer.gid, peer.token.0))?;
        (o.len == peer.len as u64).then_some((o.memfd, o.bell))
    }

    /// Whether the peer device `gid` was reached lately.
    pub(super) fn reached(&self, gid: Gid) -> bool {
        self.reached.contains(&gid)
    }

    /// Remember that the peer device `gid` was reached.
    pub(super) fn remember_reached(&mut self, gid: Gid) {
        if self.reached.len() >= REACHED_MAX {
            self.reached.clear();
        }
        self.reached.insert(gid);
    }

    /// A random non-zero token that names nothing we know.
    pub(super) fn fresh_token(&self) -> DmbToken {
        loop {
            let t = rand::random::<u64>();
            if t != 0 && !self.own.contains_key(&t) && !self.targets.contains_key(&t) {
                return DmbToken(t);
            }
        }
    }

    /// Our entry for the handle `own`, if the handle is really ours.
    fn own_entry(&mut self, own: &Dmb) -> Result<&mut Own, DeviceError> {
        match self.own.get_mut(&own.token().0) {
            Some(e) if e.map.region() == own.mem().region() => Ok(e),
            _ => Err(refused("not a DMB handle of this device")),
        }
    }

    pub(super) fn unregister(
        &mut self,
        token: DmbToken,
        region: DmbRegion,
    ) -> Result<(), DeviceError> {
        match self.own.get(&token.0) {
            Some(e) if e.map.region() == region => {}
            _ => return Err(refused("not a DMB handle of this device")),
        }
        let Some(e) = self.own.remove(&token.0) else {
            return Err(refused("not a DMB handle of this device"));
        };
        if e.pending {
            self.pending = self.pending.saturating_sub(1);
        }
        // An offer that came with a fetch of this DMB and was never taken
        // (the handshake failed before its Confirm) goes with it.
        self.offers.retain(|_, (_, ours, _)| *ours != token.0);
        if let Some(p) = e.peer.and_then(|p| self.own.get_mut(&p)) {
            p.bound_by = None;
        }
        if let Some(s) = e.bound_by.and_then(|s| self.own.get_mut(&s)) {
            s.peer = None;
        }
        Ok(())
    }

    /// Pair our DMB `own` with another DMB of ours (two endpoints of this
    /// process): the rules of `smcd_core::dmb::DmbTable::attach`.
    pub(super) fn pair_local(
        &mut self,
        own: &Dmb,
        peer: PeerDmbId,
        map: bool,
    ) -> Result<Arc<Target>, DeviceError> {
        let (o, p) = (own.token().0, peer.token.0);
        if o == p {
            return Err(refused("a DMB cannot be its own peer"));
        }
        let mine = self.own_entry(own)?;
        if mine.peer.is_some() || mine.bound_by.is_some_and(|s| s != p) {
            return Err(refused("DMB already paired"));
        }
        let theirs = self.own.get_mut(&p).ok_or(refused("no such DMB"))?;
        if theirs.map.region().len() != peer.len {
            return Err(refused("peer DMB length differs"));
        }
        if theirs.bound_by.is_some()
            || theirs.peer.is_some_and(|t| t != o)
            || self.targets.contains_key(&p)
        {
            return Err(refused("peer DMB already paired"));
        }
        theirs.bound_by = Some(o);
        let target = Arc::new(Target {
            map: Arc::clone(&theirs.map),
            bell: Arc::clone(&theirs.bell),
            own: own.token(),
            mapped: map,
            corked: AtomicBool::new(false),
            #[cfg(feature = "hostile-peer")]
            memfd: Arc::clone(&theirs.fd),
        });
        self.pair_own(o, p);
        self.targets.insert(p, Arc::clone(&target));
        Ok(target)
    }

    /// Before fetching a peer process's DMB: `own` is ours and unpaired, and
    /// the token names no DMB of ours and no bound peer DMB.
    pub(super) fn check_remote(&mut self, own: &Dmb, peer: PeerDmbId) -> Result<(), DeviceError> {
        let mine = self.own_entry(own)?;
        if mine.peer.is_some() {
            return Err(refused("DMB already paired"));
        }
        if self.own.contains_key(&peer.token.0) || self.targets.contains_key(&peer.token.0) {
            return Err(refused("peer names a DMB of ours or one already bound"));
        }
        Ok(())
    }

    /// Keep a fetched peer DMB (after [`check_remote`](Self::check_remote)
    /// again, the lock having been released for the fetch): refused if the
    /// memfd is one of our own.
    pub(super) fn bind_remote(
        &mut self,
        own: &Dmb,
        peer: PeerDmbId,
        (target, identity): (Target, (u64, u64)),
    ) -> Result<Arc<Target>, DeviceError> {
        self.check_remote(own, peer)?;
        if self.own.values().any(|e| e.identity == identity) {
            return Err(refused("peer handed us one of our own DMBs"));
        }
        let target = Arc::new(target);
        self.targets.insert(peer.token.0, Arc::clone(&target));
        self.pair_own(own.token().0, peer.token.0);
        Ok(target)
    }

    /// Our DMB `own` sends into `peer` from now on: its handshake is done.
    fn pair_own(&mut self, own: u64, peer: u64) {
        if let Some(mine) = self.own.get_mut(&own) {
            mine.peer = Some(peer);
            if std::mem::take(&mut mine.pending) {
                self.pending = self.pending.saturating_sub(1);
            }
        }
    }

    pub(super) fn detach(
        &mut self,
        own: DmbToken,
        peer: DmbToken,
        ring: Option<DmbRegion>,
    ) -> Result<(), DeviceError> {
        let ok = match self.targets.get(&peer.0) {
            Some(t) => {
                t.own == own
                    && t.mapped == ring.is_some()
                    && ring.is_none_or(|r| {
                        t.map.region().tail(smcd_core::dmb::CDC_HEADER_LEN_BYTES) == Some(r)
                    })
            }
            None => false,
        };
        if !ok {
            return Err(refused("not a peer DMB handle of this device"));
        }
        self.targets.remove(&peer.0);
        if let Some(mine) = self.own.get_mut(&own.0) {
            if mine.peer == Some(peer.0) {
                mine.peer = None;
            }
        }
        if let Some(theirs) = self.own.get_mut(&peer.0) {
            if theirs.bound_by == Some(own.0) {
                theirs.bound_by = None;
            }
        }
        Ok(())
    }
}
