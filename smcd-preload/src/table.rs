//! The fd table: which fd numbers of the application carry smcd state.
//!
//! A bitmap of atomics over the first [`MAX_FD`] fd numbers is checked
//! first — one relaxed load, no lock, no allocation — so the calls on every
//! other fd pass straight through. Only a set bit leads to the map (behind
//! a reader-writer lock) from fd number to the shared state; `dup`s point
//! at the same [`Sock`], and the state ends when the last fd number that
//! refers to it lets go (the `Arc`). Values are never dropped under the
//! lock: removal hands them back to the caller.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockWriteGuard};

use crate::sock::Sock;

/// fd numbers at or above this are never accelerated (plain TCP).
pub(crate) const MAX_FD: usize = 1 << 16;

static BITS: [AtomicU64; MAX_FD / 64] = [const { AtomicU64::new(0) }; MAX_FD / 64];
static MAP: RwLock<BTreeMap<i32, Arc<Sock>>> = RwLock::new(BTreeMap::new());
/// Entries in the map (a quick "nothing tracked" for poll and select).
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn slot(fd: i32) -> Option<(usize, u64)> {
    let i = usize::try_from(fd).ok().filter(|&i| i < MAX_FD)?;
    Some((i / 64, 1u64 << (i % 64)))
}

/// Whether `fd` may carry state (the lock-free check of the pass-through
/// path).
#[inline]
pub(crate) fn hot(fd: i32) -> bool {
    slot(fd).is_some_and(|(w, b)| BITS[w].load(Ordering::Acquire) & b != 0)
}

/// Whether any fd carries state.
#[inline]
pub(crate) fn any() -> bool {
    COUNT.load(Ordering::Acquire) != 0
}

/// Whether `fd` can be tracked at all.
pub(crate) fn trackable(fd: i32) -> bool {
    slot(fd).is_some()
}

/// The state of `fd`.
pub(crate) fn get(fd: i32) -> Option<Arc<Sock>> {
    if !hot(fd) {
        return None;
    }
    MAP.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&fd)
        .cloned()
}

/// Attach `sock` to `fd`; the state `fd` had before is handed back (drop it
/// outside any lock). `false` in the pair: `fd` is beyond [`MAX_FD`].
pub(crate) fn insert(fd: i32, sock: Arc<Sock>) -> (bool, Option<Arc<Sock>>) {
    let Some((w, b)) = slot(fd) else {
        return (false, None);
    };
    let mut map = MAP
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let old = map.insert(fd, sock);
    if old.is_none() {
        COUNT.fetch_add(1, Ordering::AcqRel);
    }
    BITS[w].fetch_or(b, Ordering::Release);
    (true, old)
}

/// Detach `fd`'s state and hand it back.
pub(crate) fn remove(fd: i32) -> Option<Arc<Sock>> {
    let (w, b) = slot(fd)?;
    if BITS[w].load(Ordering::Acquire) & b == 0 {
        return None;
    }
    let mut map = MAP
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    BITS[w].fetch_and(!b, Ordering::Release);
    let old = map.remove(&fd);
    if old.is_some() {
        COUNT.fetch_sub(1, Ordering::AcqRel);
    }
    old
}

/// The kernel just handed out `fd` (a new socket, an accept, a dup): any
/// state under that number is stale (its fd was closed behind our back).
#[inline]
pub(crate) fn fresh(fd: i32) {
    if hot(fd) {
        let _ = crate::guard::enter("fd reuse", || {
            drop(remove(fd));
            Ok(0)
        });
    }
}

/// Detach every fd and hand back the states (at exit).
pub(crate) fn take_all() -> Vec<Arc<Sock>> {
    let mut map = MAP
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for w in &BITS {
        w.store(0, Ordering::Release);
    }
    COUNT.store(0, Ordering::Release);
    std::mem::take(&mut *map).into_values().collect()
}

/// Every (fd, state) pair now.
pub(crate) fn snapshot() -> Vec<(i32, Arc<Sock>)> {
    MAP.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(fd, s)| (*fd, Arc::clone(s)))
        .collect()
}

type Map = BTreeMap<i32, Arc<Sock>>;

thread_local! {
    /// The table, held by the forking thread from `before_fork` to the
    /// handler after it (in the parent and in the child).
    static HELD: RefCell<Option<RwLockWriteGuard<'static, Map>>> = const { RefCell::new(None) };
}

/// About to fork: hold the table (the child must not inherit it locked by
/// another thread).
pub(crate) fn freeze_for_fork() {
    let map = MAP
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    HELD.with(|h| *h.borrow_mut() = Some(map));
}

/// After fork: call `f` once per state (the child), then let go of the
/// table.
pub(crate) fn thaw_after_fork(f: impl Fn(&Sock)) {
    let _ = HELD.try_with(|h| {
        let held = h.borrow_mut().take();
        if let Some(map) = &held {
            let mut seen: Vec<*const Sock> = Vec::new();
            for s in map.values() {
                let p = Arc::as_ptr(s);
                if !seen.contains(&p) {
                    seen.push(p);
                    f(s);
                }
            }
        }
        drop(held);
    });
}
