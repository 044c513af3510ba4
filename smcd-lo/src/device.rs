//! [`LoopbackDevice`]: the loopback-ism device model of `spec/loopback.md`.

use core::fmt;

use rand_core::RngCore;
use smcd_core::dmb::{
    CDC_HEADER_LEN_BYTES, Chid, DMB_MAX_SIZE_BYTES, DMB_MIN_SIZE_BYTES, DmbEntry, DmbError,
    DmbTable, DmbToken, Gid,
};
use smcd_core::mem::{DmbMem, MemError};
use smcd_core::ops::{Dmb, Error, ErrorKind, ErrorType, SmcdOps};
use smcd_core::stats::DeviceStats;
use smcd_core::sync::{AtomicU64, Ordering};
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
/// address space (`spec/loopback.md`).
///
/// * `M`: where DMB memory comes from ([`crate::StaticArena`],
///   [`crate::HeapMemory`]).
/// * `R`: the RNG for the GID and the DMB tokens (`rand_core` 0.9); it lives
///   inside the device, behind its lock.
/// * `D`: the [`Doorbell`] rung after every CDC header write.
/// * `N`: the DMB limit, at most [`MAX_DMBS`]; default [`DEFAULT_MAX_DMBS`].
///
/// Identity: a random 128-bit GID drawn at construction, CHID 0xFFFF, SMC-Dv2,
/// nocopy. DMBs are 16 KiB … 1 MiB under random non-zero 64-bit tokens
/// (redrawn on collision). `move_data` copies into the DMB (bounds-checked);
/// with `signal` it stores the 32-byte CDC header the way `wire::cdc::publish`
/// does (cursor words as release atomics) and rings the doorbell. A DMB
/// unregistered while attached (nocopy) is freed at the last detach.
///
/// All methods take `&self`: the DMB table has its own lock, a second lock
/// guards the memory provider and the RNG (register and free only). DMBs
/// still registered when the device is dropped are leaked, not freed, since
/// views of them may still exist.
///
/// ```
/// use rand::{SeedableRng, rngs::SmallRng};
/// use smcd_core::ops::{ErrorKind, Error, SmcdOps};
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
/// dev.move_data(server.token, 32, b"hello", false).unwrap();
/// dev.move_data(server.token, 0, &header, true).unwrap();
/// assert_eq!(dev.doorbell().last(), Some(server.token));
///
/// let client = dev.register_dmb(32 * 1024).unwrap();
/// // The arena is exhausted: the CLC engine declines (no memory).
/// assert_eq!(dev.register_dmb(16 * 1024).unwrap_err().kind(), ErrorKind::NoMemory);
/// dev.unregister_dmb(client.token).unwrap();
/// assert_eq!(dev.stats().dmbs_in_use, 1);
/// ```
#[derive(Debug)]
pub struct LoopbackDevice<M, R, D = NoDoorbell, const N: usize = DEFAULT_MAX_DMBS> {
    gid: Gid,
    table: DmbTable<(), N>,
    provision: spin::Mutex<Provision<M, R>>,
    doorbell: D,
    counters: Counters,
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
            provision: spin::Mutex::new(Provision {
                memory,
                rng,
                peak: 0,
            }),
            doorbell,
            counters: Counters::default(),
        }
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
            dmbs_peak: self.provision.lock().peak,
            register_failures: c.register_failures.load(Ordering::Relaxed),
            bytes_moved: c.bytes_moved.load(Ordering::Relaxed),
            signals: c.signals.load(Ordering::Relaxed),
        }
    }

    #[allow(unsafe_code)] // audited: frees only memory allocated here and never handed out
    fn try_register(&self, size: usize) -> Result<Dmb, LoError> {
        if !(DMB_MIN_SIZE_BYTES..=DMB_MAX_SIZE_BYTES).contains(&size) {
            return Err(LoError::UnsupportedSize(size));
        }
        // Registering happens only under this lock, so the table cannot fill
        // up between the check and the insert.
        let mut p = self.provision.lock();
        if self.table.len() >= N {
            return Err(LoError::DmbLimit);
        }
        let mem = p.memory.allocate(size).ok_or(LoError::OutOfMemory(size))?;
        for _ in 0..TOKEN_DRAWS {
            let token = DmbToken(p.rng.next_u64());
            match self.table.register(token, mem, ()) {
                Ok(()) => {
                    p.peak = p.peak.max(self.table.len() as u64);
                    return Ok(Dmb { token, mem });
                }
                Err(DmbError::InvalidToken | DmbError::TokenInUse) => continue,
                Err(e) => {
                    // SAFETY: allocated above, never handed out.
                    unsafe { p.memory.free(mem) };
                    return Err(LoError::Table(token, e));
                }
            }
        }
        // SAFETY: allocated above, never handed out.
        unsafe { p.memory.free(mem) };
        Err(LoError::TokenDraws)
    }

    /// Free the memory of an entry the table gave back (last reference).
    #[allow(unsafe_code)] // audited: the table hands each entry back exactly once
    fn release(&self, freed: Option<DmbEntry<()>>) {
        if let Some(entry) = freed {
            // SAFETY: the table returns an entry exactly once, when its last
            // reference is gone; its memory came from this provider.
            unsafe { self.provision.lock().memory.free(entry.mem) };
        }
    }

    /// Run `f` on the memory of a DMB whose owner still holds it, keeping a
    /// reference for the duration so the memory cannot be freed meanwhile.
    fn with_live_dmb<T>(
        &self,
        token: DmbToken,
        f: impl FnOnce(DmbMem) -> Result<T, LoError>,
    ) -> Result<T, LoError> {
        let entry = self.table.attach(token).map_err(|e| match e {
            DmbError::Unregistered => LoError::PeerGone(token),
            e => LoError::Table(token, e),
        })?;
        let result = f(entry.mem);
        self.release(self.table.detach(token).ok().flatten());
        result
    }

    fn ring(&self, token: DmbToken) {
        bump(&self.counters.signals, 1);
        self.doorbell.ring(token);
    }
}

/// Store `data` at `offset`: a `header` write (the 32 bytes at offset 0) as
/// a CDC header publication, anything else as ring data behind the header.
fn store(mem: DmbMem, offset: usize, data: &[u8], header: bool) -> Result<(), LoError> {
    let bad = LoError::BadHeaderWrite {
        offset,
        len: data.len(),
    };
    if header {
        return cdc::publish(&mem, 0, data).map_err(|e| match e {
            CdcError::Mem(m) => LoError::OutOfBounds(m),
            _ => bad,
        });
    }
    if offset < CDC_HEADER_LEN_BYTES {
        return Err(bad);
    }
    mem.write(offset, data).map_err(LoError::OutOfBounds)
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

    fn unregister_dmb(&self, token: DmbToken) -> Result<(), LoError> {
        let freed = self
            .table
            .unregister(token)
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
        self.with_live_dmb(token, |mem| store(mem, offset, data, header))?;
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
        true
    }

    fn attach_dmb(&self, token: DmbToken) -> Result<Dmb, LoError> {
        let entry = self
            .table
            .attach(token)
            .map_err(|e| LoError::Table(token, e))?;
        Ok(Dmb {
            token,
            mem: entry.mem,
        })
    }

    fn detach_dmb(&self, token: DmbToken) -> Result<(), LoError> {
        let freed = self
            .table
            .detach(token)
            .map_err(|e| LoError::Table(token, e))?;
        self.release(freed);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
