#![allow(unsafe_code)] // audited: views of shared mappings, each with a SAFETY note
//! [`StdDevice`]: this process as an SMC-D device of the host.
//!
//! Every process that uses smcd is one device with a random 128-bit GID and
//! CHID 0xFFFF (loopback-ism). Its DMBs are sealed memfds mapped shared
//! (module `shm`); a peer process obtains one over this device's Unix socket
//! (module `fetch`) by naming its token — which only travels in our Accept or
//! Confirm — and passing the credential policy. Two endpoints of one process
//! share the device, and then pair their DMBs inside it the way the loopback
//! device of `smcd-lo` does.
//!
//! A DMB's doorbell is an eventfd handed to the peer with the memfd; the
//! peer writes it after a CDC header only while the receiver has armed the
//! flag in the DMB's control page (see [`Bell`]).

mod bell;
mod error;
mod fetch;
mod hold;
mod report;
mod server;
mod shm;
mod state;
#[cfg(feature = "hostile-peer")]
mod tap;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use smcd_core::dmb::{
    CDC_HEADER_LEN_BYTES, Chid, DMB_MAX_SIZE_BYTES, DMB_MIN_SIZE_BYTES, DmbToken, Gid,
};
use smcd_core::mem::DmbMem;
use smcd_core::ops::{Dmb, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::wire::cdc;

pub use bell::Bell;
pub use error::DeviceError;
pub use hold::{held_count, release_held};
pub(crate) use report::ask as ask_report;
pub use server::PeerPolicy;
#[cfg(feature = "hostile-peer")]
#[doc(hidden)]
pub use tap::PeerTap;

use crate::naming::Place;
use state::{Own, State, Target};

/// How long a fetch from a peer's device socket may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The most DMBs one process holds (Linux: 5000 per loopback device); a
/// device may be set to fewer ([`StdDevice::set_max_dmbs`]).
pub const MAX_DMBS: usize = 5000;

/// The most DMBs of ours that no connection has paired yet, i.e. that
/// belong to handshakes still running (an accepting side registers its DMB
/// on the Proposal and pairs it on the Confirm). A client that proposes and
/// never confirms holds one until its handshake times out; beyond this
/// limit `register_dmb` fails with `NoSpace`, so new handshakes decline
/// with `MAX_DMB` (0x030d0000) and carry their data over TCP, and the rest
/// of [`MAX_DMBS`] stays for connections that complete.
pub const MAX_PENDING_DMBS: usize = 256;

#[derive(Debug)]
struct Shared {
    gid: Gid,
    place: Place,
    /// Who may obtain our DMBs (and so who we offer ours to).
    policy: PeerPolicy,
    /// The device socket (non-blocking): served by the device thread, and
    /// by any of our threads that spins in a handshake.
    listener: UnixListener,
    /// The most DMBs of ours registered at once (at most [`MAX_DMBS`]).
    max_dmbs: AtomicUsize,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// This process's SMC-D device (a cheap handle: clones share the device).
///
/// `nocopy` is per handle, so hosts with different send modes share one
/// device.
#[derive(Debug, Clone)]
pub struct StdDevice {
    shared: Arc<Shared>,
    nocopy: bool,
}

impl StdDevice {
    /// A new device at `place`, serving its DMBs to peers that pass `policy`
    /// (its socket is served by one thread for the life of the process).
    ///
    /// # Errors
    ///
    /// The device socket could not be bound or its thread not started.
    pub fn start(place: Place, policy: PeerPolicy) -> io::Result<Self> {
        let gid = Gid::new(rand::random::<u64>() | 1, rand::random::<u64>());
        let listener = server::bind(&place, gid)?;
        let shared = Arc::new(Shared {
            gid,
            place,
            policy,
            listener,
            max_dmbs: AtomicUsize::new(MAX_DMBS),
            state: Mutex::new(State::default()),
        });
        server::start(Arc::clone(&shared))?;
        Ok(Self {
            shared,
            nocopy: true,
        })
    }

    /// The same device, sending in nocopy (`true`) or copy mode.
    #[must_use]
    pub fn with_nocopy(&self, nocopy: bool) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            nocopy,
        }
    }

    /// Who may obtain our DMBs (and whose announcements a listener on this
    /// device believes).
    pub fn policy(&self) -> PeerPolicy {
        self.shared.policy
    }

    /// Where this device's and its peers' sockets live.
    pub fn place(&self) -> &Place {
        &self.shared.place
    }

    /// Answer a request waiting on the device socket, if there is one (a
    /// thread spinning in a handshake calls this: the peer's fetch is then
    /// answered at once rather than after the device thread woke up).
    pub fn serve_pending(&self) {
        server::serve_pending(&self.shared);
    }

    /// Hold (`on`) or release the doorbell rings of sends into the bound
    /// peer DMB `token` — the cork of its connection: while held, headers
    /// are still published but the ring waits for the uncork (one ring if
    /// any was held) or for [`release_held`].
    ///
    /// # Errors
    ///
    /// `InvalidToken` when no peer DMB `token` is bound.
    pub fn hold_rings(&self, token: DmbToken, on: bool) -> Result<(), DeviceError> {
        let t = self.with_target(token, Arc::clone)?;
        hold::set(&t, on);
        Ok(())
    }

    /// The doorbell of our DMB `own`, for a waiter.
    pub fn bell(&self, own: DmbToken) -> Option<Bell> {
        self.shared.lock().own.get(&own.0).map(Own::bell)
    }

    /// Hold at most `max` DMBs from now on (clamped to 1 … [`MAX_DMBS`]);
    /// registering more fails with "no space", so that new connections
    /// fall back to TCP with MAX_DMB. DMBs held already stay.
    pub fn set_max_dmbs(&self, max: usize) {
        self.shared
            .max_dmbs
            .store(max.clamp(1, MAX_DMBS), Ordering::Relaxed);
    }

    /// DMBs of ours registered now.
    pub fn dmbs_in_use(&self) -> usize {
        self.shared.lock().own.len()
    }

    /// Fetches of our DMBs over the device socket this device granted so
    /// far (a connection between two processes takes one: the DMB of the
    /// other direction rides along with it as an offer).
    pub fn fetches_granted(&self) -> u64 {
        self.shared.lock().granted
    }

    /// DMBs of ours registered but not yet paired with a peer's (their
    /// handshakes are running; at most [`MAX_PENDING_DMBS`]).
    pub fn dmbs_pending(&self) -> usize {
        self.shared.lock().pending
    }

    /// DMBs peers offered with a fetch that no Confirm took yet.
    pub fn offers_held(&self) -> usize {
        self.shared.lock().offers_held()
    }

    /// Peer DMBs bound now (mapped or not).
    pub fn peers_bound(&self) -> usize {
        self.shared.lock().targets.len()
    }

    /// Run `f` on the bound peer DMB `token` (under the device's lock:
    /// `f` must be short).
    fn with_target<T>(
        &self,
        token: DmbToken,
        f: impl FnOnce(&Arc<Target>) -> T,
    ) -> Result<T, DeviceError> {
        self.shared
            .lock()
            .targets
            .get(&token.0)
            .map(f)
            .ok_or(DeviceError::new(
                ErrorKind::InvalidToken,
                "no bound peer DMB with this token",
            ))
    }

    /// Test-only: raw access to the bound peer DMB `token`.
    #[cfg(feature = "hostile-peer")]
    #[doc(hidden)]
    pub fn peer_tap(&self, token: DmbToken) -> Option<PeerTap> {
        self.with_target(token, |t| t.tap()).ok()
    }

    /// Get the memfd and eventfd of a peer's DMB from its device socket,
    /// offering our DMB `own` of the same connection along with the request.
    fn fetch(&self, own: &Dmb, peer: PeerDmbId) -> Result<(OwnedFd, OwnedFd), DeviceError> {
        let unreachable =
            |e: io::Error| DeviceError::io(ErrorKind::Unreachable, "peer device socket", &e);
        let addr = self.shared.place.device(peer.gid).map_err(unreachable)?;
        let sock = UnixStream::connect_addr(&addr).map_err(unreachable)?;
        sock.set_read_timeout(Some(FETCH_TIMEOUT))
            .map_err(unreachable)?;
        sock.set_write_timeout(Some(FETCH_TIMEOUT))
            .map_err(unreachable)?;
        let req = fetch::Request {
            token: peer.token,
            len: peer.len as u64,
            from: self.shared.gid,
        };
        // We neither map the memory of a process our policy does not admit
        // nor offer ours to it: a peer of another user gets a fallback.
        if !self.shared.policy.admits(&sock) {
            return Err(DeviceError::new(
                ErrorKind::InvalidToken,
                "the peer's device runs as a user our policy does not admit",
            ));
        }
        let mine = self.shared.lock().offer_of(own);
        let offer = mine
            .as_ref()
            .map(|(token, len, memfd, bell)| fetch::OwnOffer {
                token: *token,
                len: *len,
                memfd: memfd.as_fd(),
                bell: bell.as_fd(),
            });
        match fetch::ask(sock, req, offer) {
            Ok(Ok(fds)) => Ok(fds),
            Ok(Err(status)) => Err(DeviceError::new(ErrorKind::InvalidToken, status.describe())),
            Err(e) => Err(unreachable(e)),
        }
    }
}

impl ErrorType for StdDevice {
    type Error = DeviceError;
}

impl SmcdOps for StdDevice {
    fn local_gid(&self) -> Gid {
        self.shared.gid
    }

    fn chid(&self) -> Chid {
        Chid::LOOPBACK
    }

    fn supports_v2(&self) -> bool {
        true
    }

    /// Our own GID (endpoints of this process), or a device whose socket
    /// accepts a connection.
    fn query_remote_gid(&self, gid: Gid) -> Result<(), DeviceError> {
        if gid == self.shared.gid || self.shared.lock().reached(gid) {
            return Ok(());
        }
        let addr = self
            .shared
            .place
            .device(gid)
            .map_err(|e| DeviceError::io(ErrorKind::Unreachable, "peer device socket", &e))?;
        UnixStream::connect_addr(&addr)
            .map(drop)
            .map_err(|e| DeviceError::io(ErrorKind::Unreachable, "peer device socket", &e))?;
        self.shared.lock().remember_reached(gid);
        Ok(())
    }

    fn register_dmb(&self, size: usize) -> Result<Dmb, DeviceError> {
        if !(DMB_MIN_SIZE_BYTES..=DMB_MAX_SIZE_BYTES).contains(&size) {
            return Err(DeviceError::new(
                ErrorKind::NoMemory,
                "DMB size outside 16 KiB … 1 MiB",
            ));
        }
        {
            let mut st = self.shared.lock();
            if st.own.len() >= self.shared.max_dmbs.load(Ordering::Relaxed) {
                return Err(DeviceError::new(
                    ErrorKind::NoSpace,
                    "DMB limit of the process reached",
                ));
            }
            if st.pending >= MAX_PENDING_DMBS {
                return Err(DeviceError::new(
                    ErrorKind::NoSpace,
                    "limit of DMBs in running handshakes reached",
                ));
            }
            // Reserved now, so that concurrent registrations cannot pass
            // the limit together while the memfd is made.
            st.pending += 1;
        }
        let own = Own::create(size).map_err(|e| {
            self.shared.lock().pending -= 1;
            DeviceError::io(ErrorKind::NoMemory, "DMB memfd", &e)
        })?;
        let mut st = self.shared.lock();
        let token = st.fresh_token();
        // SAFETY: the view lives in the handle, which comes back through
        // `unregister_dmb` (dropping it) before the entry and its mapping go.
        let mem = unsafe { own.map.view() };
        let dmb = Dmb::new(token, mem).map_err(|_| {
            st.pending -= 1;
            DeviceError::new(ErrorKind::NoMemory, "DMB size")
        })?;
        st.own.insert(token.0, own);
        Ok(dmb)
    }

    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), DeviceError> {
        let (token, region) = (dmb.token(), dmb.mem().region());
        drop(dmb);
        self.shared.lock().unregister(token, region)
    }

    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), DeviceError> {
        let bad = DeviceError::new(
            ErrorKind::OutOfBounds,
            "move_data outside the ring or a misplaced header",
        );
        if signal != (offset == 0 && data.len() == CDC_HEADER_LEN_BYTES) {
            return Err(bad);
        }
        let bell = self.with_target(token, |target| {
            // SAFETY: the table's entry keeps the mapping alive while the
            // view is used (the lock is held).
            let mem: DmbMem = unsafe { target.map.view() };
            cdc::store(&mem, offset, data).map_err(|_| bad)?;
            let held = signal && hold::keep(target);
            Ok(if signal && !held {
                target.bell_if_armed()
            } else {
                None
            })
        })??;
        // The eventfd is written outside the lock.
        if let Some(b) = bell {
            state::ring(&b);
        }
        Ok(())
    }

    fn signal_dmb(&self, token: DmbToken) -> Result<(), DeviceError> {
        if let Some(b) = self.with_target(token, |t| t.bell_if_armed())? {
            state::ring(&b);
        }
        Ok(())
    }

    fn supports_nocopy(&self) -> bool {
        self.nocopy
    }

    fn attach_dmb(&self, own: &Dmb, peer: PeerDmbId, map: bool) -> Result<PeerDmb, DeviceError> {
        if map && !self.nocopy {
            return Err(DeviceError::new(
                ErrorKind::Unsupported,
                "nocopy is off for this host",
            ));
        }
        let target = if peer.gid == self.shared.gid {
            self.shared.lock().pair_local(own, peer, map)?
        } else {
            self.shared.lock().check_remote(own, peer)?;
            // The peer may have offered its DMB with its own fetch of ours.
            let offered = self.shared.lock().take_offer(peer);
            let (memfd, bell) = match offered {
                Some(fds) => fds,
                None => self.fetch(own, peer)?,
            };
            let target = Target::remote(own.token(), memfd, bell, peer.len, map)?;
            self.shared.lock().bind_remote(own, peer, target)?
        };
        let ring = match map {
            // SAFETY: the target entry keeps the mapping alive until the
            // handle comes back through `detach_dmb`, which drops it first.
            true => target
                .map
                .region()
                .tail(CDC_HEADER_LEN_BYTES)
                .map(|r| unsafe { DmbMem::from_region(r) }),
            false => None,
        };
        PeerDmb::new(own.token(), peer.token, peer.len, ring)
            .map_err(|_| DeviceError::new(ErrorKind::InvalidToken, "peer DMB size"))
    }

    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), DeviceError> {
        let (own, token) = (peer.own_token(), peer.token());
        let ring = peer.ring().map(DmbMem::region);
        drop(peer);
        self.shared.lock().detach(own, token, ring)
    }
}
