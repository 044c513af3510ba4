//! State that must be shared by the processes that inherit a connection or
//! a listener across `fork`: memory mapped `MAP_SHARED | MAP_ANONYMOUS`
//! before the fork, so parent and child see the same atomics.
//!
//! - [`Holder`]: whether other processes hold a connection (or a
//!   listener). A process that lets go of it while others still hold it
//!   leaves the connection open for the peer; the last one closes it.
//! - [`Ports`]: the announcements a listener's rendezvous received, for
//!   whichever process of the family accepts the connection.

use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// How long an announcement waits for its connection, in seconds.
const ANNOUNCE_TTL_S: u32 = 10;

/// How long a release waits for a child that was forked but has not taken
/// its holder locks yet (then the fork is taken to have failed).
const PENDING_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Forks under way in the family: incremented before a fork, decremented
/// by the child once it holds what it inherited.
static PENDING: AtomicPtr<AtomicU32> = AtomicPtr::new(core::ptr::null_mut());

/// `n` shared, zeroed atomics, or `None`.
fn map_shared(n: usize) -> Option<&'static [AtomicU32]> {
    let len = n * size_of::<AtomicU32>();
    // SAFETY: a fresh anonymous mapping, no address hint; it is never
    // unmapped unless its owner says so (`Ports`).
    let p = unsafe {
        rustix::mm::mmap_anonymous(
            core::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
        )
    }
    .ok()?;
    // SAFETY: `len` zeroed, page-aligned bytes, valid until unmapped;
    // AtomicU32 has the size and alignment of u32 and zero is valid.
    Some(unsafe { core::slice::from_raw_parts(p.cast::<AtomicU32>(), n) })
}

/// Map the family's fork counter (the constructor, before any fork).
pub(crate) fn init() {
    if let Some(t) = map_shared(1) {
        PENDING.store(t.as_ptr().cast_mut(), Ordering::Release);
    }
}

fn pending() -> Option<&'static AtomicU32> {
    let p = PENDING.load(Ordering::Acquire);
    // SAFETY: set once by `init` to a mapping that is never unmapped.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// About to fork (the parent).
pub(crate) fn fork_begins() {
    if let Some(p) = pending() {
        p.fetch_add(1, Ordering::AcqRel);
    }
}

/// The child holds what it inherited.
pub(crate) fn fork_done_in_child() {
    if let Some(p) = pending() {
        let _ = p.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// This process's share of a connection or listener that the processes of
/// a fork family may hold together: a memfd that every holder keeps a
/// shared record lock on. Record locks are not inherited by fork (the child
/// takes its own, [`Holder::relock`]) and go when the process closes the fd
/// — at exit, at `exec` (the fd is close-on-exec), when killed — so a
/// holder that vanished without a word still counts out.
#[derive(Debug)]
pub(crate) struct Holder {
    fd: std::os::fd::OwnedFd,
}

impl Holder {
    /// A new object, held by this process. `None` when no memfd can be had
    /// (then the object closes with this process's last fd, as without
    /// fork).
    pub(crate) fn claim() -> Option<Self> {
        let fd = rustix::fs::memfd_create(c"smcd-holder", rustix::fs::MemfdFlags::CLOEXEC).ok()?;
        let floor = crate::FD_FLOOR.load(Ordering::Relaxed);
        let fd = if floor > 0 {
            rustix::io::fcntl_dupfd_cloexec(&fd, floor).unwrap_or(fd)
        } else {
            fd
        };
        let h = Self { fd };
        h.relock();
        Some(h)
    }

    /// Take this process's shared lock (a child after fork).
    pub(crate) fn relock(&self) {
        let _ = rustix::fs::fcntl_lock(&self.fd, rustix::fs::FlockOperation::NonBlockingLockShared);
    }

    /// This process lets go; whether it was the last holder.
    pub(crate) fn release(self) -> bool {
        // A child forked a moment ago may not hold its lock yet.
        if let Some(p) = pending() {
            let end = std::time::Instant::now() + PENDING_WAIT;
            while p.load(Ordering::Acquire) > 0 {
                if std::time::Instant::now() >= end {
                    // A fork that failed never comes to count down.
                    p.store(0, Ordering::Release);
                    break;
                }
                std::thread::yield_now();
            }
        }
        // Our own shared lock does not conflict with an exclusive one;
        // another holder's does.
        rustix::fs::fcntl_lock(
            &self.fd,
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        )
        .is_ok()
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
