//! Held doorbell rings: while a connection is corked (`TCP_CORK`), its
//! sends still publish the CDC header (a spinning peer sees the bytes at
//! once) but keep the ring for later — the uncork, or the next time this
//! process waits (see [`release_held`]) — so that a response written in
//! several calls costs the peer one wake-up.
//!
//! The rings owed are kept in one list per process. The wait paths look at
//! its length with one relaxed load and take the lock only when a ring is
//! owed; a send into a target that is not corked looks at one relaxed flag.
//! A wait on the thread that held the ring always sees it (program order);
//! a ring held by another thread is released by that thread's own next
//! wait, uncork or close.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::state::{Target, ring};

/// Rings owed now (the length of [`OWED`]), for the lock-free look.
static OWED_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The targets owed a ring, each once.
static OWED: Mutex<Vec<Arc<Target>>> = Mutex::new(Vec::new());

fn owed() -> MutexGuard<'static, Vec<Arc<Target>>> {
    OWED.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Ring `t`'s doorbell if its receiver waits for it.
fn ring_now(t: &Target) {
    if let Some(b) = t.bell_if_armed() {
        ring(&b);
    }
}

/// A header was just published into `t` with a signal: keep the ring if
/// `t` is corked (then `true`: nothing to ring now).
pub(super) fn keep(t: &Arc<Target>) -> bool {
    if !t.corked() {
        return false;
    }
    let mut list = owed();
    // Checked again under the lock: an uncork takes the lock too, so a ring
    // is never left in the list of an uncorked target.
    if !t.corked() {
        return false;
    }
    if !list.iter().any(|o| Arc::ptr_eq(o, t)) {
        list.push(Arc::clone(t));
        OWED_COUNT.store(list.len(), Ordering::Relaxed);
    }
    true
}

/// Cork or uncork `t`; uncorking rings once if a ring was held.
pub(super) fn set(t: &Arc<Target>, on: bool) {
    if on {
        t.set_corked(true);
        return;
    }
    let held = {
        let mut list = owed();
        t.set_corked(false);
        let at = list.iter().position(|o| Arc::ptr_eq(o, t));
        if let Some(i) = at {
            list.swap_remove(i);
            OWED_COUNT.store(list.len(), Ordering::Relaxed);
        }
        at.is_some()
    };
    if held {
        ring_now(t);
    }
}

/// Ring every held ring of this process (corks stay on). Called before
/// the process waits for anything through smcd: a held ring must never be
/// what the peer waits for while we wait for the peer.
#[inline]
pub fn release_held() {
    if OWED_COUNT.load(Ordering::Relaxed) != 0 {
        release_slow();
    }
}

#[cold]
fn release_slow() {
    let list = {
        let mut list = owed();
        OWED_COUNT.store(0, Ordering::Relaxed);
        std::mem::take(&mut *list)
    };
    for t in &list {
        ring_now(t);
    }
}

/// Rings held now in this process (for tests).
#[must_use]
pub fn held_count() -> usize {
    OWED_COUNT.load(Ordering::Relaxed)
}
