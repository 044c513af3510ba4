//! Which epoll fds are themselves registered in another epoll instance.
//!
//! The shim registers a stream's readiness fd edge-triggered and keeps
//! level-triggered readiness in user space (see `epoll`). An epfd nested
//! in another one is readable for that outer one only while the kernel
//! holds something ready in it, so such an epfd gets the kernel's own
//! level-triggered registrations instead (and the doorbell drained when
//! nothing is ready). Two bitmaps by fd number, like the fd table's: which
//! numbers `epoll_create*` handed out, and which of those were added to an
//! epoll instance since. A number reused for another epoll starts afresh;
//! a stale bit only costs a nested epfd's slower path.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::table::MAX_FD;

static EPOLL: [AtomicU64; MAX_FD / 64] = [const { AtomicU64::new(0) }; MAX_FD / 64];
static NESTED: [AtomicU64; MAX_FD / 64] = [const { AtomicU64::new(0) }; MAX_FD / 64];

fn slot(fd: i32) -> Option<(usize, u64)> {
    let i = usize::try_from(fd).ok().filter(|&i| i < MAX_FD)?;
    Some((i / 64, 1u64 << (i % 64)))
}

/// `epoll_create*` returned `fd`.
pub(crate) fn created(fd: i32) {
    if let Some((w, b)) = slot(fd) {
        EPOLL[w].fetch_or(b, Ordering::Relaxed);
        NESTED[w].fetch_and(!b, Ordering::Relaxed);
    }
}

/// `fd` is being added to an epoll instance: whether it is an epfd (now
/// marked nested).
#[inline]
pub(crate) fn added(fd: i32) -> bool {
    let Some((w, b)) = slot(fd) else {
        return false;
    };
    if EPOLL[w].load(Ordering::Relaxed) & b == 0 {
        return false;
    }
    NESTED[w].fetch_or(b, Ordering::Relaxed);
    true
}

/// Whether the epfd `fd` was added to an epoll instance.
pub(crate) fn is_nested(fd: i32) -> bool {
    slot(fd).is_some_and(|(w, b)| NESTED[w].load(Ordering::Relaxed) & b != 0)
}
