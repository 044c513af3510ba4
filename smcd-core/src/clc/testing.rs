//! Test doubles for the handshake (feature `test-util`): a configurable
//! [`FakeDevice`] and an in-memory client/server [`Pair`] with a fake clock,
//! in the style of quinn-proto's `tests/util.rs`.
//!
//! Both are for tests only: they use `std`, leak a little memory once, and
//! panic on misuse (a panic is a test failure).
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::vec::Vec;

use super::context::ClcContext;
use super::handshake::Handshake;
use crate::dmb::{Chid, DmbToken, Gid};
use crate::mem::{DmbMem, DmbRegion};
use crate::ops::{Dmb, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
use crate::wire::clc::bufsize;

/// Number of DMB size classes (16 KiB … 1 MiB).
const SIZE_CLASSES: usize = 7;

/// One zeroed, leaked region per size class, shared by every fake DMB of
/// that size. The handshake never touches DMB memory, so sharing is fine and
/// keeps fuzzing from leaking per iteration.
#[allow(unsafe_code)] // views of leaked memory, shared on purpose
fn pool(size: usize) -> Option<DmbMem> {
    static POOL: OnceLock<Vec<DmbRegion>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        (0..SIZE_CLASSES)
            .map(|c| {
                let words = bufsize::decode(c as u8) / 8;
                let words: &'static mut [u64] = Vec::leak(std::vec![0u64; words]);
                DmbMem::from_static(zerocopy::IntoBytes::as_mut_bytes(words))
                    .expect("u64 storage is 8-byte aligned")
                    .region()
            })
            .collect()
    });
    let region = *pool.iter().find(|r| r.len() == size)?;
    // SAFETY: the region is leaked (valid for the rest of the process) and
    // only ever reached through `DmbMem` views, never through references.
    Some(unsafe { DmbMem::from_region(region) })
}

/// One live DMB of a [`FakeDevice`].
#[derive(Debug, Clone, Copy)]
struct Live {
    size: usize,
    /// References: the owner's (while registered) and one per mapping.
    refs: u32,
    /// Whether the owner still holds it (has not unregistered it).
    registered: bool,
}

#[derive(Debug, Default)]
struct State {
    last_token: u64,
    /// Live DMBs by token (registered, or unregistered but still mapped).
    dmbs: BTreeMap<u64, Live>,
    /// Pairings: own DMB → the peer DMB it sends into.
    peer_of: BTreeMap<u64, u64>,
    /// Pairings: peer DMB → the own DMB that sends into it.
    bound_by: BTreeMap<u64, u64>,
    attachments: usize,
    max_dmbs: Option<usize>,
    max_size: Option<usize>,
    attach_fault: Option<ErrorKind>,
    registered: Vec<usize>,
}

/// A device for handshake tests: DMB bookkeeping with faults, no data path.
///
/// ```
/// use smcd_core::clc::testing::FakeDevice;
/// use smcd_core::dmb::Gid;
/// use smcd_core::ops::SmcdOps;
///
/// let lo = FakeDevice::loopback(Gid::new(1, 2)).max_dmbs(1);
/// let dmb = lo.register_dmb(16 * 1024).unwrap();
/// assert!(lo.register_dmb(16 * 1024).is_err());
/// lo.unregister_dmb(dmb).unwrap();
/// assert_eq!(lo.live_dmbs(), 0);
/// ```
#[derive(Debug)]
pub struct FakeDevice {
    gid: Gid,
    chid: Chid,
    v2: bool,
    nocopy: bool,
    local_only: bool,
    peers: Vec<Gid>,
    state: Mutex<State>,
}

impl FakeDevice {
    fn new(gid: Gid, chid: Chid, nocopy: bool) -> Self {
        Self {
            gid,
            chid,
            v2: true,
            nocopy,
            local_only: false,
            peers: std::vec![gid],
            state: Mutex::new(State::default()),
        }
    }

    /// A loopback-like device: CHID 0xFFFF, 128-bit GID, v2, nocopy, reaches
    /// only its own GID.
    pub fn loopback(gid: Gid) -> Self {
        Self::new(gid, Chid::LOOPBACK, true)
    }

    /// A native ISM-like device: 64-bit GID, v2, copy only, reaches its own
    /// GID (add peers with [`reaching`](Self::reaching)).
    pub fn ism(gid: u64, chid: Chid) -> Self {
        Self::new(Gid::new(gid, 0), chid, false)
    }

    /// Not SMC-Dv2 capable.
    pub fn v1_only(mut self) -> Self {
        self.v2 = false;
        self
    }

    /// Without nocopy support.
    pub fn without_nocopy(mut self) -> Self {
        self.nocopy = false;
        self
    }

    /// With nocopy support (mapping works for DMBs of this device only).
    pub fn with_nocopy(mut self) -> Self {
        self.nocopy = true;
        self
    }

    /// Every peer DMB must be one of this device's own, as on a loopback
    /// device, where both ends share one table: a token it does not know is
    /// refused ([`ErrorKind::InvalidToken`]) in copy mode too, instead of
    /// being taken for a remote peer's.
    pub fn local_peers_only(mut self) -> Self {
        self.local_only = true;
        self
    }

    /// Also reaches `gid`.
    pub fn reaching(mut self, gid: Gid) -> Self {
        self.peers.push(gid);
        self
    }

    /// At most `n` live DMBs; more fail with [`ErrorKind::NoSpace`].
    pub fn max_dmbs(self, n: usize) -> Self {
        self.lock().max_dmbs = Some(n);
        self
    }

    /// DMBs above `bytes` fail with [`ErrorKind::NoMemory`].
    pub fn max_dmb_size(self, bytes: usize) -> Self {
        self.lock().max_size = Some(bytes);
        self
    }

    /// `attach_dmb` (the peer binding, mapped or not) fails with `kind`.
    pub fn failing_attach(self, kind: ErrorKind) -> Self {
        self.lock().attach_fault = Some(kind);
        self
    }

    /// DMBs registered and not yet freed (owner or attacher still holds them).
    pub fn live_dmbs(&self) -> usize {
        self.lock().dmbs.len()
    }

    /// Nocopy mappings not yet detached.
    pub fn attachments(&self) -> usize {
        self.lock().attachments
    }

    /// Sizes of every successful `register_dmb`, in order.
    pub fn registered_sizes(&self) -> Vec<usize> {
        self.lock().registered.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token the next successful [`register_dmb`](SmcdOps::register_dmb)
    /// hands out, for tests of a peer that names one of our DMBs before we
    /// registered it (a real device's tokens are random; this one's are not).
    pub fn next_token(&self) -> DmbToken {
        Self::token(self.gid, self.lock().last_token + 1)
    }

    /// The `n`-th token of the device with GID `gid`: distinct per device,
    /// so one device never knows another's tokens.
    fn token(gid: Gid, n: u64) -> DmbToken {
        let seed = gid.gid ^ gid.gid_ext.rotate_left(32);
        DmbToken(seed.wrapping_add(n).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Drop one reference; the DMB goes at the last one.
    fn put(state: &mut State, token: DmbToken) -> Result<(), ErrorKind> {
        let live = state
            .dmbs
            .get_mut(&token.0)
            .ok_or(ErrorKind::InvalidToken)?;
        live.refs -= 1;
        if live.refs == 0 {
            state.dmbs.remove(&token.0);
        }
        Ok(())
    }
}

impl ErrorType for FakeDevice {
    type Error = ErrorKind;
}

impl SmcdOps for FakeDevice {
    fn local_gid(&self) -> Gid {
        self.gid
    }

    fn chid(&self) -> Chid {
        self.chid
    }

    fn supports_v2(&self) -> bool {
        self.v2
    }

    fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
        if self.peers.contains(&gid) {
            Ok(())
        } else {
            Err(ErrorKind::Unreachable)
        }
    }

    fn register_dmb(&self, size: usize) -> Result<Dmb, ErrorKind> {
        let mut s = self.lock();
        if s.max_dmbs.is_some_and(|max| s.dmbs.len() >= max) {
            return Err(ErrorKind::NoSpace);
        }
        if s.max_size.is_some_and(|max| size > max) {
            return Err(ErrorKind::NoMemory);
        }
        let mem = pool(size).ok_or(ErrorKind::NoMemory)?;
        s.last_token += 1;
        let token = Self::token(self.gid, s.last_token);
        s.dmbs.insert(
            token.0,
            Live {
                size,
                refs: 1,
                registered: true,
            },
        );
        s.registered.push(size);
        Dmb::new(token, mem).map_err(|_| ErrorKind::NoMemory)
    }

    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), ErrorKind> {
        let mut s = self.lock();
        let token = dmb.token().0;
        // Pairings go with the bindings (`detach_dmb`), not with the owner:
        // the DMB's sender still holds its handle, so its own DMB stays
        // paired with this one, as in the DMB table.
        match s.dmbs.get_mut(&token) {
            Some(live) if live.registered => live.registered = false,
            _ => return Err(ErrorKind::InvalidToken),
        }
        Self::put(&mut s, dmb.token())
    }

    fn move_data(&self, _: DmbToken, _: usize, _: &[u8], _: bool) -> Result<(), ErrorKind> {
        Err(ErrorKind::Unsupported)
    }

    fn signal_dmb(&self, _: DmbToken) -> Result<(), ErrorKind> {
        Err(ErrorKind::Unsupported)
    }

    fn supports_nocopy(&self) -> bool {
        self.nocopy
    }

    /// The pairing rules of the loopback device's table
    /// ([`DmbTable::attach`](crate::dmb::DmbTable::attach)) for DMBs of this
    /// device: no self-binding, at most one peer per DMB and one sender into
    /// it, pairs name each other, no DMB whose owner gave it back, the
    /// announced length. A token it does not know is a remote peer's (copy
    /// only, and not with [`local_peers_only`](Self::local_peers_only)).
    fn attach_dmb(&self, own: &Dmb, id: PeerDmbId, map: bool) -> Result<PeerDmb, ErrorKind> {
        let (peer, len) = (id.token, id.len);
        let mut s = self.lock();
        if let Some(kind) = s.attach_fault {
            return Err(kind);
        }
        let (o, p) = (own.token().0, peer.0);
        if !s.dmbs.get(&o).is_some_and(|l| l.registered) {
            return Err(ErrorKind::InvalidToken);
        }
        let local = s.dmbs.get(&p).copied();
        let paired_elsewhere = s.bound_by.contains_key(&p)
            || s.peer_of.get(&p).is_some_and(|&t| t != o)
            || s.peer_of.contains_key(&o)
            || s.bound_by.get(&o).is_some_and(|&t| t != p);
        let unusable = match local {
            Some(l) => !l.registered || l.size != len,
            None => self.local_only,
        };
        if o == p || paired_elsewhere || unusable {
            return Err(ErrorKind::InvalidToken);
        }
        let ring = match (map, local) {
            (false, _) => None,
            (true, None) => return Err(ErrorKind::InvalidToken),
            (true, Some(Live { size, .. })) => {
                let mem = pool(size).ok_or(ErrorKind::NoMemory)?;
                let ring = mem.region().tail(crate::dmb::CDC_HEADER_LEN_BYTES);
                // SAFETY: a part of a leaked pool region (see `pool`).
                #[allow(unsafe_code)]
                ring.map(|r| unsafe { DmbMem::from_region(r) })
            }
        };
        let mapped = ring.is_some();
        // The handle first: nothing is recorded for a binding that fails.
        let handle =
            PeerDmb::new(own.token(), peer, len, ring).map_err(|_| ErrorKind::InvalidToken)?;
        if mapped {
            if let Some(live) = s.dmbs.get_mut(&p) {
                live.refs += 1;
            }
            s.attachments += 1;
        }
        s.peer_of.insert(o, p);
        s.bound_by.insert(p, o);
        Ok(handle)
    }

    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), ErrorKind> {
        let mut s = self.lock();
        let (o, p) = (peer.own_token().0, peer.token().0);
        if s.peer_of.get(&o) == Some(&p) {
            s.peer_of.remove(&o);
        }
        if s.bound_by.get(&p) == Some(&o) {
            s.bound_by.remove(&p);
        }
        if peer.ring().is_some() {
            Self::put(&mut s, peer.token())?;
            s.attachments -= 1;
        }
        Ok(())
    }
}

/// One direction of the in-memory TCP stream.
#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// Everything ever written, for inspection.
    log: Vec<u8>,
}

impl Pipe {
    fn write(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        self.log.extend_from_slice(data);
    }
}

/// Two engines joined by two in-memory byte queues, with a fake clock.
///
/// [`drive`](Self::drive) moves bytes until nothing changes, `chunk` bytes
/// at a time (1 = one byte per delivery). Bytes an engine leaves unconsumed
/// (the application data after its handshake ended) are collected in
/// [`client_app`](Self::client_app) / [`server_app`](Self::server_app).
#[derive(Debug)]
pub struct Pair<C: ClcContext> {
    /// Client engine.
    pub client: Handshake<C>,
    /// Server engine.
    pub server: Handshake<C>,
    /// The fake clock, in milliseconds.
    pub now_ms: u64,
    /// Largest piece delivered or transmitted at once.
    pub chunk: usize,
    /// Whether bytes towards the client are delivered (`false` = lost).
    pub deliver_to_client: bool,
    /// Application bytes the client received after its handshake ended.
    pub client_app: Vec<u8>,
    /// Application bytes the server received after its handshake ended.
    pub server_app: Vec<u8>,
    to_server: Pipe,
    to_client: Pipe,
}

impl<C: ClcContext> Pair<C> {
    /// A pair of engines (created at `now_ms` = 0), delivering whole pieces.
    pub fn new(client: Handshake<C>, server: Handshake<C>) -> Self {
        Self {
            client,
            server,
            now_ms: 0,
            chunk: 4096,
            deliver_to_client: true,
            client_app: Vec::new(),
            server_app: Vec::new(),
            to_server: Pipe::default(),
            to_client: Pipe::default(),
        }
    }

    /// Deliver one byte at a time.
    pub fn byte_by_byte(mut self) -> Self {
        self.chunk = 1;
        self
    }

    /// Every byte the client wrote (CLC and application).
    pub fn client_wrote(&self) -> &[u8] {
        &self.to_server.log
    }

    /// Every byte the server wrote (CLC and application).
    pub fn server_wrote(&self) -> &[u8] {
        &self.to_client.log
    }

    /// Application data from the client, after its CLC bytes.
    pub fn client_send_app(&mut self, data: &[u8]) {
        assert!(!self.client.has_transmit(), "CLC bytes must go first");
        self.to_server.write(data);
    }

    /// Application data from the server, after its CLC bytes.
    pub fn server_send_app(&mut self, data: &[u8]) {
        assert!(!self.server.has_transmit(), "CLC bytes must go first");
        self.to_client.write(data);
    }

    /// Move bytes both ways until neither side makes progress.
    pub fn drive(&mut self) {
        while self.step() {}
    }

    /// Advance the clock by `ms` and fire due timers.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        for h in [&mut self.client, &mut self.server] {
            if h.poll_timeout().is_some_and(|t| t <= self.now_ms) {
                h.handle_timeout(self.now_ms);
            }
        }
    }

    /// One round: transmit, then deliver at most one piece each way.
    fn step(&mut self) -> bool {
        let mut progress = false;
        let mut buf = std::vec![0u8; self.chunk];
        while let Some(n) = self.client.poll_transmit(&mut buf) {
            self.to_server.write(&buf[..n]);
            progress = true;
        }
        while let Some(n) = self.server.poll_transmit(&mut buf) {
            self.to_client.write(&buf[..n]);
            progress = true;
        }
        let now = self.now_ms;
        progress |= deliver(
            &mut self.to_server,
            &mut self.server,
            &mut self.server_app,
            self.chunk,
            now,
        );
        if self.deliver_to_client {
            progress |= deliver(
                &mut self.to_client,
                &mut self.client,
                &mut self.client_app,
                self.chunk,
                now,
            );
        } else {
            self.to_client.bytes.clear();
        }
        progress
    }
}

/// Hand up to `chunk` queued bytes to `h`; what it does not consume is
/// application data.
fn deliver(
    pipe: &mut Pipe,
    h: &mut Handshake<impl ClcContext>,
    app: &mut Vec<u8>,
    chunk: usize,
    now_ms: u64,
) -> bool {
    let n = pipe.bytes.len().min(chunk);
    if n == 0 {
        return false;
    }
    let piece: Vec<u8> = pipe.bytes.drain(..n).collect();
    let used = h.handle_input(now_ms, &piece);
    app.extend_from_slice(&piece[used..]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::give_back;

    const LEN: usize = 16 * 1024;

    /// The peer DMB `token` of `len` bytes on the test devices' GID.
    fn id(token: DmbToken, len: usize) -> PeerDmbId {
        PeerDmbId {
            gid: Gid::new(1, 2),
            token,
            len,
        }
    }

    #[test]
    fn next_token_is_the_next_registered() {
        let lo = FakeDevice::loopback(Gid::new(1, 2));
        let t = lo.next_token();
        let d = lo.register_dmb(LEN).unwrap();
        assert_eq!(d.token(), t);
        assert_ne!(lo.next_token(), t);
        // Another device draws other tokens.
        assert_ne!(FakeDevice::loopback(Gid::new(3, 4)).next_token(), t);
        lo.unregister_dmb(d).unwrap();
    }

    #[test]
    fn pairing_follows_the_table_rules() {
        let lo = FakeDevice::loopback(Gid::new(1, 2));
        let (a, b, c) = (
            lo.register_dmb(LEN).unwrap(),
            lo.register_dmb(LEN).unwrap(),
            lo.register_dmb(LEN).unwrap(),
        );
        let invalid = Err(ErrorKind::InvalidToken);
        assert_eq!(
            lo.attach_dmb(&a, id(a.token(), LEN), true).map(|_| ()),
            invalid
        );
        assert_eq!(
            lo.attach_dmb(&a, id(b.token(), 2 * LEN), true).map(|_| ()),
            invalid
        );
        // b sends into a; a may pair only with b.
        let ba = lo.attach_dmb(&b, id(a.token(), LEN), true).unwrap();
        assert_eq!(
            lo.attach_dmb(&a, id(c.token(), LEN), true).map(|_| ()),
            invalid
        );
        assert_eq!(
            lo.attach_dmb(&c, id(a.token(), LEN), false).map(|_| ()),
            invalid
        );
        let ab = lo.attach_dmb(&a, id(b.token(), LEN), false).unwrap();
        assert_eq!(lo.attachments(), 1);
        assert_eq!(
            lo.attach_dmb(&c, id(b.token(), LEN), true).map(|_| ()),
            invalid
        );
        give_back(&lo, Some(b), Some(ba)).unwrap();
        give_back(&lo, Some(a), Some(ab)).unwrap();
        lo.unregister_dmb(c).unwrap();
        assert_eq!((lo.live_dmbs(), lo.attachments()), (0, 0));
    }

    #[test]
    fn a_dmb_its_owner_gave_back_takes_no_new_sender() {
        let lo = FakeDevice::loopback(Gid::new(1, 2));
        let (a, b, c) = (
            lo.register_dmb(LEN).unwrap(),
            lo.register_dmb(LEN).unwrap(),
            lo.register_dmb(LEN).unwrap(),
        );
        let ab = lo.attach_dmb(&a, id(b.token(), LEN), true).unwrap();
        let tb = b.token();
        lo.unregister_dmb(b).unwrap();
        assert_eq!(lo.live_dmbs(), 3, "still mapped by a");
        // Nobody else may bind it now.
        assert_eq!(
            lo.attach_dmb(&c, id(tb, LEN), true).map(|_| ()),
            Err(ErrorKind::InvalidToken)
        );
        assert_eq!(
            lo.attach_dmb(&c, id(tb, LEN), false).map(|_| ()),
            Err(ErrorKind::InvalidToken)
        );
        give_back(&lo, Some(a), Some(ab)).unwrap();
        lo.unregister_dmb(c).unwrap();
        assert_eq!((lo.live_dmbs(), lo.attachments()), (0, 0));
    }

    #[test]
    fn a_dmb_stays_paired_while_its_peer_goes_away() {
        let lo = FakeDevice::loopback(Gid::new(1, 2)).without_nocopy();
        let (a, b, c) = (
            lo.register_dmb(LEN).unwrap(),
            lo.register_dmb(LEN).unwrap(),
            lo.register_dmb(LEN).unwrap(),
        );
        let ab = lo.attach_dmb(&a, id(b.token(), LEN), false).unwrap();
        let ba = lo.attach_dmb(&b, id(a.token(), LEN), false).unwrap();
        // b's side ends; a's owner still reads a and holds its binding.
        give_back(&lo, Some(b), Some(ba)).unwrap();
        assert_eq!(
            lo.attach_dmb(&c, id(a.token(), LEN), false).map(|_| ()),
            Err(ErrorKind::InvalidToken)
        );
        lo.detach_dmb(ab).unwrap();
        let ca = lo.attach_dmb(&c, id(a.token(), LEN), false).unwrap();
        give_back(&lo, Some(c), Some(ca)).unwrap();
        lo.unregister_dmb(a).unwrap();
        assert_eq!(lo.live_dmbs(), 0);
    }

    #[test]
    fn unknown_tokens_are_remote_unless_local_peers_only() {
        let unknown = DmbToken(0x5eed);
        let ism = FakeDevice::ism(7, Chid(0x0123));
        let a = ism.register_dmb(LEN).unwrap();
        let remote = ism.attach_dmb(&a, id(unknown, LEN), false).unwrap();
        assert!(remote.ring().is_none());
        give_back(&ism, Some(a), Some(remote)).unwrap();
        let lo = FakeDevice::loopback(Gid::new(1, 2))
            .without_nocopy()
            .local_peers_only();
        let a = lo.register_dmb(LEN).unwrap();
        assert_eq!(
            lo.attach_dmb(&a, id(unknown, LEN), false).map(|_| ()),
            Err(ErrorKind::InvalidToken)
        );
        lo.unregister_dmb(a).unwrap();
        assert_eq!(lo.live_dmbs(), 0);
    }
}
