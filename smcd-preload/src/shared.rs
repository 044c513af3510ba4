//! State that must be shared by the processes that inherit a connection or
//! a listener across `fork`: memory mapped `MAP_SHARED | MAP_ANONYMOUS`
//! before the fork, so parent and child see the same atomics.
//!
//! - [`Holder`]: how many processes hold a connection (or a listener). A
//!   process that lets go of it while others still hold it leaves the
//!   connection open for the peer; the last one closes it.
//! - [`Ports`]: the announcements a listener's rendezvous received, for
//!   whichever process of the family accepts the connection.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Slots of the holder table (connections and listeners alive at once).
const SLOTS: usize = 1 << 16;

/// How long an announcement waits for its connection, in seconds.
const ANNOUNCE_TTL_S: u32 = 10;

static HOLDERS: AtomicPtr<AtomicU32> = AtomicPtr::new(core::ptr::null_mut());
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `n` shared, zeroed atomics, or `None`.
fn map_shared(n: usize) -> Option<&'static [AtomicU32]> {
    let len = n * size_of::<AtomicU32>();
    // SAFETY: a fresh anonymous mapping, no address hint; it is never
    // unmapped (it lives as long as the process, like the state in it).
    let p = unsafe {
        rustix::mm::mmap_anonymous(
            core::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
        )
    }
    .ok()?;
    // SAFETY: `len` zeroed, page-aligned bytes, valid forever; AtomicU32
    // has the size and alignment of u32 and zero is a valid value.
    Some(unsafe { core::slice::from_raw_parts(p.cast::<AtomicU32>(), n) })
}

/// Map the holder table (the constructor, before any fork).
pub(crate) fn init() {
    if let Some(t) = map_shared(SLOTS) {
        HOLDERS.store(t.as_ptr().cast_mut(), Ordering::Release);
    }
}

fn holders() -> Option<&'static [AtomicU32]> {
    let p = HOLDERS.load(Ordering::Acquire);
    // SAFETY: set once by `init` to a mapping of SLOTS atomics that is
    // never unmapped.
    (!p.is_null()).then(|| unsafe { core::slice::from_raw_parts(p.cast_const(), SLOTS) })
}

/// This process's share of a connection or listener held by one or more
/// processes of a fork family.
#[derive(Debug)]
pub(crate) struct Holder {
    slot: &'static AtomicU32,
}

impl Holder {
    /// A new object, held by this process only. `None` when the table is
    /// full or missing (then the object closes with this process's last
    /// fd, as without fork).
    pub(crate) fn claim() -> Option<Self> {
        let t = holders()?;
        let start = NEXT.fetch_add(1, Ordering::Relaxed);
        (0..SLOTS).find_map(|i| {
            let slot = &t[(start + i) % SLOTS];
            slot.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                .ok()
                .map(|_| Self { slot })
        })
    }

    /// One more process holds it (about to fork).
    pub(crate) fn add(&self) {
        self.slot.fetch_add(1, Ordering::AcqRel);
    }

    /// This process lets go; whether it was the last holder (the slot is
    /// then free again).
    pub(crate) fn release(self) -> bool {
        self.slot.fetch_sub(1, Ordering::AcqRel) <= 1
    }
}

/// Seconds of the monotonic clock (the same in every process of the host).
fn now_s() -> u32 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u32::try_from(t.tv_sec).unwrap_or(u32::MAX)
}

/// A listener's announced ports: for each port, until when (monotonic
/// seconds) its announcement is valid.
#[derive(Debug)]
pub(crate) struct Ports {
    until: &'static [AtomicU32],
}

impl Ports {
    pub(crate) fn new() -> Option<Self> {
        map_shared(1 << 16).map(|until| Self { until })
    }

    pub(crate) fn announce(&self, port: u16) {
        self.until[usize::from(port)]
            .store(now_s().saturating_add(ANNOUNCE_TTL_S), Ordering::Release);
    }

    /// Whether `port` was announced (and not too long ago); used up.
    pub(crate) fn take(&self, port: u16) -> bool {
        self.until[usize::from(port)].swap(0, Ordering::AcqRel) >= now_s()
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        let len = size_of_val(self.until);
        // SAFETY: our own mapping from `map_shared`; this view is the only
        // user of it in this process and goes with `self`.
        let _ = unsafe { rustix::mm::munmap(self.until.as_ptr().cast_mut().cast(), len) };
    }
}
