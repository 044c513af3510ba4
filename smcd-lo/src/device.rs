//! [`LoopbackDevice`]: the loopback-ism device model of `docs/protocol/loopback.md`.

use core::fmt;

use rand_core::RngCore;
use smcd_core::dmb::{
    CDC_HEADER_LEN_BYTES, Chid, DMB_MAX_SIZE_BYTES, DmbEntry, DmbError, DmbTable, DmbToken, Gid,
};
use smcd_core::mem::{DmbMem, MemError};
use smcd_core::ops::{
    Dmb, Error, ErrorKind, ErrorType, MIN_DMB_LEN_BYTES, PeerDmb, PeerDmbId, SmcdOps,
};
use smcd_core::stats::DeviceStats;
use smcd_core::sync::{AtomicBool, AtomicU64, Ordering, SpinLock};
use smcd_core::wire::cdc::{self, CdcError};

use crate::doorbell::{Doorbell, NoDoorbell};
use crate::memory::DmbMemory;

/// The most DMBs a loopback device holds (Linux: slot bitmap of 5000).
pub const MAX_DMBS: usize = 5000;

/// The default DMB limit `N` of [`LoopbackDevice`]: enough for 32
/// connections (two DMBs each) while keeping the device small (the table
/// costs about 40 bytes per slot; `N = MAX_DMBS` is about 200 KiB).
pub const DEFAULT_MAX_DMBS: usize = 64;

/// How often `register_dmb` draws a token before giving up. A working RNG
/// collides with probability about `N / 2^64` per draw.
const TOKEN_DRAWS: usize = 8;

/// Why a loopback-device operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LoError {
    /// `query_remote_gid` of a GID other than the device's own.
    Unreachable(Gid),
    /// A DMB size outside 16 KiB … 1 MiB.
    UnsupportedSize(usize),
    /// All `N` DMB slots are in use (Linux ENOSPC ⇒ Decline MAX_DMB).
    DmbLimit,
    /// The memory provider has no block of that size (Linux ENOMEM).
    OutOfMemory(usize),
    /// The RNG drew only zero or colliding tokens.
    TokenDraws,
    /// A DMB-table error for this token (unknown, being freed, not attached).
    Table(DmbToken, DmbError),
    /// The DMB's owner has unregistered it: nobody reads it (Linux EPIPE).
    PeerGone(DmbToken),
    /// A nocopy mapping asked of a device whose nocopy is switched off.
    NocopyOff,
    /// The write does not fit the DMB.
    OutOfBounds(MemError),
    /// A data write reaching into the 32-byte CDC header, or a header write
    /// (`signal`) that is not exactly the 8-aligned 32-byte header.
    BadHeaderWrite {
        /// Requested offset.
        offset: usize,
        /// Requested length.
        len: usize,
    },
}

impl fmt::Display for LoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoError::Unreachable(g) => write!(f, "GID {g} is not this loopback device"),
            LoError::UnsupportedSize(n) => write!(f, "DMB size {n} outside 16 KiB … 1 MiB"),
            LoError::DmbLimit => f.write_str("loopback device DMB limit reached"),
            LoError::OutOfMemory(n) => write!(f, "no memory for a {n}-byte DMB"),
            LoError::TokenDraws => f.write_str("RNG yields no usable DMB token"),
            LoError::Table(t, e) => write!(f, "DMB {t}: {e}"),
            LoError::PeerGone(t) => write!(f, "DMB {t}: owner has unregistered it"),
            LoError::NocopyOff => f.write_str("nocopy is switched off on this device"),
            LoError::OutOfBounds(e) => write!(f, "move_data: {e}"),
            LoError::BadHeaderWrite { offset, len } => {
                write!(
                    f,
                    "move_data of {len} bytes at {offset} misuses the CDC header"
                )
            }
        }
    }
}

impl core::error::Error for LoError {}

impl Error for LoError {
    fn kind(&self) -> ErrorKind {
        match self {
            LoError::Unreachable(_) => ErrorKind::Unreachable,
            LoError::UnsupportedSize(_) | LoError::OutOfMemory(_) => ErrorKind::NoMemory,
            LoError::DmbLimit => ErrorKind::NoSpace,
            LoError::TokenDraws => ErrorKind::Other,
            LoError::Table(_, e) => e.kind(),
            LoError::PeerGone(_) => ErrorKind::PeerGone,
            LoError::NocopyOff => ErrorKind::Unsupported,
            LoError::OutOfBounds(_) | LoError::BadHeaderWrite { .. } => ErrorKind::OutOfBounds,
        }
    }
}

/// What the device's lock protects: the memory provider and the RNG.
#[derive(Debug)]
struct Provision<M, R> {
    memory: M,
    rng: R,
    peak: u64,
}

/// Running counters (relaxed atomics; a snapshot is [`DeviceStats`]).
#[derive(Debug, Default)]
struct Counters {
    registered: AtomicU64,
    register_failures: AtomicU64,
    bytes_moved: AtomicU64,
    signals: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A loopback SMC-D device: DMBs in local memory, for two endpoints in one
/// address space (`docs/protocol/loopback.md`).
///
/// * `M`: where DMB memory comes from ([`crate::StaticArena`],
///   [`crate::HeapMemory`]).
/// * `R`: the RNG for the GID and the DMB tokens (`rand_core` 0.9); it lives
///   inside the device, behind its lock.
/// * `D`: the [`Doorbell`] rung after every CDC header write.
/// * `N`: the DMB limit, at most [`MAX_DMBS`]; default [`DEFAULT_MAX_DMBS`].
///
/// Identity: a random 128-bit GID drawn at construction, CHID 0xFFFF, SMC-Dv2,
/// nocopy (switchable with [`set_nocopy`](Self::set_nocopy)). DMBs are
/// 16 KiB … 1 MiB under random non-zero 64-bit tokens (redrawn on
/// collision). `move_data` copies into the DMB (bounds-checked); with
/// `signal` it stores the 32-byte CDC header the way `wire::cdc::publish`
/// does (cursor words as release atomics) and rings the doorbell. A DMB
/// unregistered while mapped (nocopy) is freed at the last detach.
///
/// Both ends of an in-process pair share the device, so its table also
/// pairs them (see [`DmbTable`]): `attach_dmb` refuses a peer DMB that is
/// the caller's own, or that another connection already sends into or is
/// paired with. A handle the device did not hand out is refused too.
///
/// All methods take `&self`: the DMB table has its own lock, a second lock
/// guards the memory provider and the RNG (register and free only). DMBs
/// still registered when the device is dropped are leaked, not freed, since
/// handles of them may still exist.
///
/// ```
/// use rand::{SeedableRng, rngs::SmallRng};
/// use smcd_core::ops::{ErrorKind, Error, PeerDmbId, SmcdOps};
/// use smcd_lo::{CountingDoorbell, LoopbackDevice, StaticArena};
///
/// let region: &'static mut [u8] = Box::leak(vec![0u8; 48 * 1024].into_boxed_slice());
/// let dev: LoopbackDevice<StaticArena, SmallRng, CountingDoorbell, 4> = LoopbackDevice::new(
///     StaticArena::new(region),
///     SmallRng::seed_from_u64(1),
///     CountingDoorbell::new(),
/// );
/// assert!(dev.query_remote_gid(dev.local_gid()).is_ok());
///
/// let server = dev.register_dmb(16 * 1024).unwrap();
/// let mut header = [0u8; 32];
/// header[8..16].copy_from_slice(&7u64.to_ne_bytes());
/// dev.move_data(server.token(), 32, b"hello", false).unwrap();
/// dev.move_data(server.token(), 0, &header, true).unwrap();
/// assert_eq!(dev.doorbell().last(), Some(server.token()));
///
/// let client = dev.register_dmb(32 * 1024).unwrap();
/// // The arena is exhausted: the CLC engine declines (no memory).
/// assert_eq!(dev.register_dmb(16 * 1024).unwrap_err().kind(), ErrorKind::NoMemory);
/// // The client sends into the server's DMB, mapped (nocopy).
/// let id = |dmb: &smcd_core::ops::Dmb| PeerDmbId { gid: dev.local_gid(), token: dmb.token(), len: dmb.len() };
/// let to_server = dev.attach_dmb(&client, id(&server), true).unwrap();
/// assert_eq!(to_server.ring().unwrap().len(), 16 * 1024 - 32);
/// // Its own DMB is no peer of its own.
/// assert!(dev.attach_dmb(&client, id(&client), false).is_err());
/// dev.detach_dmb(to_server).unwrap();
/// dev.unregister_dmb(client).unwrap();
/// assert_eq!(dev.stats().dmbs_in_use, 1);
/// ```
#[derive(Debug)]
pub struct LoopbackDevice<M, R, D = NoDoorbell, const N: usize = DEFAULT_MAX_DMBS> {
    gid: Gid,
    table: DmbTable<(), N>,
    provision: SpinLock<Provision<M, R>>,
    doorbell: D,
    counters: Counters,
    nocopy: AtomicBool,
}

impl<M: DmbMemory, R: RngCore, D: Doorbell, const N: usize> LoopbackDevice<M, R, D, N> {
    /// A device with DMB memory from `memory`, tokens and the GID from `rng`,
    /// and signals to `doorbell`.
    pub fn new(memory: M, mut rng: R, doorbell: D) -> Self {
        const { assert!(N > 0 && N <= MAX_DMBS, "N must be 1 ..= MAX_DMBS") };
        let gid = Gid::new(rng.next_u64(), rng.next_u64());
        Self {
            gid,
            table: DmbTable::new(),
            provision: SpinLock::new(Provision {
                memory,
                rng,
                peak: 0,
            }),
            doorbell,
            counters: Counters::default(),
            nocopy: AtomicBool::new(true),
        }
    }

    /// Offer nocopy (the default) or not: with `false`, handshakes set up
    /// copy-mode connections. Connections already set up keep their mode.
    pub fn set_nocopy(&self, on: bool) {
        self.nocopy.store(on, Ordering::Relaxed);
    }

    /// The doorbell the device rings.
    pub fn doorbell(&self) -> &D {
        &self.doorbell
    }

    /// A snapshot of the device counters.
    pub fn stats(&self) -> DeviceStats {
        let c = &self.counters;
        DeviceStats {
            dmbs_registered: c.registered.load(Ordering::Relaxed),
            dmbs_in_use: self.table.len() as u64,
            attachments: self.table.attachments(),
            dmbs_peak: self.provision.with(|p| p.peak),
            register_failures: c.register_failures.load(Ordering::Relaxed),
            bytes_moved: c.bytes_moved.load(Ordering::Relaxed),
            signals: c.signals.load(Ordering::Relaxed),
        }
    }

    #[allow(unsafe_code)] // audited: views of memory the table keeps until the handle is back
    fn try_register(&self, size: usize) -> Result<Dmb, LoError> {
        // 16 KiB, or under `cfg(smcd_loom)` the core's tiny model minimum, so
        // that the loom models run over this device with 4-byte rings.
        if !(MIN_DMB_LEN_BYTES..=DMB_MAX_SIZE_BYTES).contains(&size) {
            return Err(LoError::UnsupportedSize(size));
        }
        // Registering happens only under this lock, so the table cannot fill
        // up between the check and the insert.
        let (token, region) = self.provision.with(|p| {
            if self.table.len() >= N {
                return Err(LoError::DmbLimit);
            }
            let region = p.memory.allocate(size).ok_or(LoError::OutOfMemory(size))?;
            for _ in 0..TOKEN_DRAWS {
                let token = DmbToken(p.rng.next_u64());
                match self.table.register(token, region, ()) {
                    Ok(()) => {
                        p.peak = p.peak.max(self.table.len() as u64);
                        return Ok((token, region));
                    }
                    Err(DmbError::InvalidToken | DmbError::TokenInUse) => continue,
                    Err(e) => {
                        // SAFETY: allocated above, never handed out.
                        unsafe { p.memory.free(region) };
                        return Err(LoError::Table(token, e));
                    }
                }
            }
            // SAFETY: allocated above, never handed out.
            unsafe { p.memory.free(region) };
            Err(LoError::TokenDraws)
        })?;
        // SAFETY: the provider's region is valid until freed, and it is
        // freed only when the table gives its entry back: after this handle
        // came back through `unregister_dmb` and every mapping was detached.
        let mem = unsafe { DmbMem::from_region(region) };
        // The size was checked above, so the handle accepts it.
        Dmb::new(token, mem).map_err(|_| LoError::UnsupportedSize(size))
    }

    /// Free the memory of an entry the table gave back (last reference).
    #[allow(unsafe_code)] // audited: the table hands each entry back exactly once
    fn release(&self, freed: Option<DmbEntry<()>>) {
        if let Some(entry) = freed {
            // SAFETY: the table returns an entry exactly once, when its last
            // reference is gone (every handle and pin of it is back); its
            // memory came from this provider.
            self.provision
                .with(|p| unsafe { p.memory.free(entry.region) });
        }
    }

    /// Run `f` on the memory of a DMB whose owner still holds it, pinning it
    /// for the duration so the memory cannot be freed meanwhile.
    #[allow(unsafe_code)] // audited: a view that lives only while the pin is held
    fn with_live_dmb<T>(
        &self,
        token: DmbToken,
        f: impl FnOnce(&DmbMem) -> Result<T, LoError>,
    ) -> Result<T, LoError> {
        let entry = self.table.pin(token).map_err(|e| match e {
            DmbError::Unregistered => LoError::PeerGone(token),
            e => LoError::Table(token, e),
        })?;
        // SAFETY: the pin keeps the region allocated until `unpin` below,
        // and the view is dropped before that.
        let result = f(&unsafe { DmbMem::from_region(entry.region) });
        self.release(self.table.unpin(token).ok().flatten());
        result
    }

    fn ring(&self, token: DmbToken) {
        bump(&self.counters.signals, 1);
        self.doorbell.ring(token);
    }
}

impl<M, R, D, const N: usize> ErrorType for LoopbackDevice<M, R, D, N> {
    type Error = LoError;
}

impl<M: DmbMemory, R: RngCore, D: Doorbell, const N: usize> SmcdOps for LoopbackDevice<M, R, D, N> {
    fn local_gid(&self) -> Gid {
        self.gid
    }

    fn chid(&self) -> Chid {
        Chid::LOOPBACK
    }

    fn supports_v2(&self) -> bool {
        true
    }

    /// Reachable only if `gid` is this device's own GID.
    fn query_remote_gid(&self, gid: Gid) -> Result<(), LoError> {
        if gid == self.gid {
            Ok(())
        } else {
            Err(LoError::Unreachable(gid))
        }
    }

    fn register_dmb(&self, size: usize) -> Result<Dmb, LoError> {
        let result = self.try_register(size);
        match result {
            Ok(_) => bump(&self.counters.registered, 1),
            Err(_) => bump(&self.counters.register_failures, 1),
        }
        result
    }

    /// Refuses a handle whose memory is not the DMB registered under its
    /// token (another device's, or a forged one): nothing is freed then.
    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), LoError> {
        let (token, region) = (dmb.token(), dmb.mem().region());
        // The view goes before the memory may.
        drop(dmb);
        let freed = self
            .table
            .unregister(token, region)
            .map_err(|e| LoError::Table(token, e))?;
        self.release(freed);
        Ok(())
    }

    /// Copy `data` into the DMB. A write of exactly 32 bytes at offset 0 is
    /// the CDC header (cursor words stored as release atomics), rung on the
    /// doorbell when `signal` is set; any other write must lie behind the
    /// header and must not `signal`.
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), LoError> {
        let header = offset == 0 && data.len() == CDC_HEADER_LEN_BYTES;
        if signal && !header {
            return Err(LoError::BadHeaderWrite {
                offset,
                len: data.len(),
            });
        }
        self.with_live_dmb(token, |mem| {
            cdc::store(mem, offset, data).map_err(|e| match e {
                CdcError::Mem(m) => LoError::OutOfBounds(m),
                _ => LoError::BadHeaderWrite {
                    offset,
                    len: data.len(),
                },
            })
        })?;
        bump(&self.counters.bytes_moved, data.len() as u64);
        if signal {
            self.ring(token);
        }
        Ok(())
    }

    fn signal_dmb(&self, token: DmbToken) -> Result<(), LoError> {
        self.with_live_dmb(token, |_| Ok(()))?;
        self.ring(token);
        Ok(())
    }

    fn supports_nocopy(&self) -> bool {
        self.nocopy.load(Ordering::Relaxed)
    }

    #[allow(unsafe_code)] // audited: the mapping reference keeps the ring alive
    fn attach_dmb(&self, own: &Dmb, id: PeerDmbId, map: bool) -> Result<PeerDmb, LoError> {
        let (peer, len) = (id.token, id.len);
        if map && !self.supports_nocopy() {
            return Err(LoError::NocopyOff);
        }
        let entry = self
            .table
            .attach(own.token(), own.mem().region(), peer, len, map)
            .map_err(|e| LoError::Table(peer, e))?;
        let ring = match map.then(|| entry.region.tail(CDC_HEADER_LEN_BYTES)) {
            None => None,
            // SAFETY: the table holds a mapping reference for this handle
            // until `detach_dmb` gets it back (which drops the view first).
            Some(Some(r)) => Some(unsafe { DmbMem::from_region(r) }),
            Some(None) => None,
        };
        let mapped = ring.as_ref().map(DmbMem::region);
        PeerDmb::new(own.token(), peer, len, ring).map_err(|_| {
            // Cannot happen for a registered DMB: undo the binding.
            let _ = self.table.detach(own.token(), peer, mapped);
            LoError::Table(peer, DmbError::LengthMismatch)
        })
    }

    /// Refuses a mapping whose ring is not the peer DMB's (a forged handle).
    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), LoError> {
        let (own, token) = (peer.own_token(), peer.token());
        let mapped = peer.ring().map(DmbMem::region);
        // The view goes before the memory may.
        drop(peer);
        let freed = self
            .table
            .detach(own, token, mapped)
            .map_err(|e| LoError::Table(token, e))?;
        self.release(freed);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
