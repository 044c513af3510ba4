//! epoll for accelerated fds. The application's epfd stays a kernel epoll
//! instance; for an accelerated fd the shim registers the stream's
//! readiness fd (an epoll set of its doorbell and TCP socket) in its place,
//! with a key of ours as the event data, and translates what the kernel
//! reports for that key into the application's events and data.
//!
//! - The readiness fd is always registered `EPOLLIN | EPOLLET`: every ring
//!   of the doorbell (and every event of the TCP socket) is a new edge, so
//!   nothing has to drain the doorbell to keep the epfd quiet, and a look
//!   at a stream reads the shared memory only. A wake-up may have been the
//!   socket's (the kernel does not say which), so the registration owes
//!   the stream one full look (the TCP stream, a system call) before it
//!   calls the stream not ready.
//! - Level-triggered: a registration that was reported stays on a ready
//!   list of ours that every wait looks at again, until the stream is no
//!   longer ready — so data that arrived before the registration, or that
//!   the application left unread, is reported again, as the kernel would.
//! - `EPOLLET`: reported once per edge.
//! - `EPOLLONESHOT`: after one report the kernel registration is disarmed
//!   (events 0) until `EPOLL_CTL_MOD`.
//! - `EPOLL_CTL_MOD` changes only our record (the kernel registration is
//!   the same for every set of events) and puts the registration on the
//!   ready list; `EPOLL_CTL_DEL` keeps the kernel registration for a later
//!   `EPOLL_CTL_ADD` of the same connection. Programs that switch between
//!   IN and OUT around every request (wrk, redis, redis-benchmark) cost no
//!   system call for it.
//! - An epfd that is itself registered in another epoll instance gets the
//!   kernel registrations the application asked for instead, and the
//!   doorbell drained when nothing is ready ([`crate::nest`]): the outer
//!   instance sees it readable only while the kernel holds something ready
//!   in it.
//! - `EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR` come from the stream's state.
//! - A connect under way is registered as the socket itself (its
//!   completion is the kernel's to report) and moved onto the readiness fd
//!   once the stream exists.

use core::ffi::c_int;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use libc::epoll_event;
use smcd_std::adopt::{Ready, Want};

use crate::guard::{CResult, warn};
use crate::sock::{Kind, Sock};
use crate::{real, table};

/// One accelerated fd registered in an epoll instance.
#[derive(Debug)]
struct Reg {
    fd: c_int,
    sock: Weak<Sock>,
    state: Mutex<RegState>,
}

#[derive(Debug, Clone, Copy)]
struct RegState {
    events: u32,
    data: u64,
    /// The fd registered in the kernel for this entry.
    kfd: c_int,
    /// Registered as the socket itself (a connect under way).
    raw: bool,
    /// EPOLLONESHOT fired: nothing until EPOLL_CTL_MOD.
    disabled: bool,
    /// Removed by `EPOLL_CTL_DEL`: reports nothing, and an `EPOLL_CTL_ADD`
    /// of the same connection revives it. The kernel registration stays,
    /// so that programs that delete and add a connection around every
    /// request (redis-benchmark) cost no system call and no insertion of
    /// one epoll set into another (the kernel's loop check) per request.
    deleted: bool,
    /// A look at the TCP stream is due: the kernel reported a wake-up
    /// (the doorbell's or the socket's: it does not say which), or the
    /// registration is new, and no look since went beyond the shared
    /// memory.
    full: bool,
}

impl Reg {
    fn key(self: &Arc<Self>) -> u64 {
        Arc::as_ptr(self) as u64
    }
}

/// The shim's state of one epoll instance.
#[derive(Debug, Default)]
pub(crate) struct EpSet {
    inner: Mutex<Inner>,
    /// Registered in another epoll instance ([`crate::nest`]): kernel
    /// registrations as the application asked (level-triggered ones stay
    /// readable while the doorbell is undrained), deletes at once.
    nested: std::sync::atomic::AtomicBool,
}

impl EpSet {
    fn nested(&self) -> bool {
        self.nested.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The kernel registration of a readiness fd for `events`.
    fn kernel_events(&self, events: u32) -> u32 {
        if self.nested() {
            libc::EPOLLIN as u32 | (events & ET)
        } else {
            KERNEL_EVENTS
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_fd: HashMap<c_int, Arc<Reg>>,
    by_key: HashMap<u64, Arc<Reg>>,
    /// Keys to look at on the next wait (ready when last seen).
    pending: Vec<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const ET: u32 = libc::EPOLLET as u32;
const ONESHOT: u32 = libc::EPOLLONESHOT as u32;

fn kernel_ctl(epfd: c_int, op: c_int, fd: c_int, events: u32, key: u64) -> CResult {
    let mut ev = epoll_event { events, u64: key };
    // SAFETY: a valid event for the call.
    let r = unsafe { real::epoll_ctl(epfd, op, fd, &mut ev) };
    crate::guard::cvt(r as isize)
}

/// The kernel registration of a stream's readiness fd: edge-triggered
/// whatever the application asked for, so that the doorbell need not be
/// drained to keep the epfd quiet (every ring is a new edge; level-triggered
/// registrations are kept ready by the pending list). The same for every
/// registration but a disarmed one (events 0), so that an `EPOLL_CTL_MOD`
/// has nothing to change in the kernel.
const KERNEL_EVENTS: u32 = libc::EPOLLIN as u32 | ET;

/// The application's events that `r` satisfies.
fn translate(r: Ready, events: u32) -> u32 {
    let mut ev = 0u32;
    if r.readable {
        ev |= events & (libc::EPOLLIN | libc::EPOLLRDNORM) as u32;
    }
    if r.writable {
        ev |= events & (libc::EPOLLOUT | libc::EPOLLWRNORM) as u32;
    }
    if r.read_closed {
        ev |= events & libc::EPOLLRDHUP as u32;
    }
    if r.hangup {
        ev |= libc::EPOLLHUP as u32;
    }
    if r.error {
        ev |= libc::EPOLLERR as u32;
    }
    ev
}

fn want(events: u32) -> Want {
    Want {
        read: events & (libc::EPOLLIN | libc::EPOLLRDNORM | libc::EPOLLRDHUP) as u32 != 0,
        write: events & (libc::EPOLLOUT | libc::EPOLLWRNORM) as u32 != 0,
    }
}

/// The readiness fd of `fd`'s stream, if it has one now.
fn ready_fd(sock: &Sock, fd: c_int) -> Option<c_int> {
    sock.stream(fd).map(|st| st.as_fd().as_raw_fd())
}

/// `epoll_ctl` for an accelerated fd (or on an epfd that has some).
pub(crate) fn ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> CResult {
    // SAFETY: passed on unchanged.
    let pass = || crate::guard::cvt(unsafe { real::epoll_ctl(epfd, op, fd, ev) } as isize);
    let sock = table::get(fd).filter(|s| matches!(s.kind, Kind::Conn(_)));
    let set = table::get(epfd).filter(|s| matches!(s.kind, Kind::Epoll(_)));
    let existing = set.as_ref().and_then(|s| match &s.kind {
        Kind::Epoll(e) => lock(&e.inner).by_fd.get(&fd).cloned(),
        _ => None,
    });
    let Some(sock) = sock else {
        if let (Some(set), Some(reg)) = (&set, existing) {
            // An fd that lost its state (closed and reused): forget ours.
            drop_stale(epfd, set, &reg);
        }
        return pass();
    };
    let adopted = ready_fd(&sock, fd);
    if adopted.is_none() && !sock.is_connecting() {
        return pass();
    }
    // SAFETY: the caller passes a valid event for ADD and MOD.
    let app = (op != libc::EPOLL_CTL_DEL && !ev.is_null()).then(|| unsafe { ev.read_unaligned() });
    match op {
        libc::EPOLL_CTL_ADD => {
            let app = app.ok_or(libc::EFAULT)?;
            if let Some(old) = &existing {
                if old.sock.upgrade().is_some_and(|s| Arc::ptr_eq(&s, &sock)) {
                    return revive(epfd, set.as_deref(), old, app);
                }
                // The number was closed and reused: the old entry is stale.
                if let Some(s) = &set {
                    drop_stale(epfd, s, old);
                }
            }
            let set = match set {
                Some(s) => s,
                None => {
                    let s = Sock::epoll();
                    let (_, old) = table::insert(epfd, Arc::clone(&s));
                    drop(old);
                    s
                }
            };
            let Kind::Epoll(eps) = &set.kind else {
                return pass();
            };
            if crate::nest::is_nested(epfd) {
                eps.nested.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if app.events & libc::EPOLLEXCLUSIVE as u32 != 0 {
                warn(
                    "epoll_ctl",
                    "EPOLLEXCLUSIVE is ignored on an SMC-D connection",
                );
            }
            let (kfd, raw) = match adopted {
                Some(k) => (k, false),
                None => (fd, true),
            };
            let reg = Arc::new(Reg {
                fd,
                sock: Arc::downgrade(&sock),
                state: Mutex::new(RegState {
                    events: app.events,
                    data: app.u64,
                    kfd,
                    raw,
                    disabled: false,
                    deleted: false,
                    full: true,
                }),
            });
            let key = reg.key();
            let kev = if raw {
                app.events & !ONESHOT
            } else {
                eps.kernel_events(app.events)
            };
            kernel_ctl(epfd, libc::EPOLL_CTL_ADD, kfd, kev, key)?;
            let mut inner = lock(&eps.inner);
            inner.by_fd.insert(fd, Arc::clone(&reg));
            inner.by_key.insert(key, reg);
            inner.pending.push(key);
            Ok(0)
        }
        libc::EPOLL_CTL_MOD => {
            let app = app.ok_or(libc::EFAULT)?;
            let (Some(set), Some(reg)) = (set, existing) else {
                return pass();
            };
            let Kind::Epoll(eps) = &set.kind else {
                return pass();
            };
            let mut st = lock(&reg.state);
            if st.deleted {
                return Err(libc::ENOENT);
            }
            let rearm = st.disabled;
            st.events = app.events;
            st.data = app.u64;
            st.disabled = false;
            if st.raw {
                let kev = app.events & !ONESHOT;
                kernel_ctl(epfd, libc::EPOLL_CTL_MOD, st.kfd, kev, reg.key())?;
            } else if rearm || eps.nested() {
                let kev = eps.kernel_events(app.events);
                kernel_ctl(epfd, libc::EPOLL_CTL_MOD, st.kfd, kev, reg.key())?;
                // Disarmed, the registration saw no wake-up: look in full.
                st.full = true;
            }
            // Otherwise the kernel's registration is already what it must
            // be (wake-ups since were seen by a wait, which noted them in
            // `full`): no system call, and the pending list does what the
            // kernel's re-evaluation on MOD would.
            drop(st);
            lock(&eps.inner).pending.push(reg.key());
            Ok(0)
        }
        libc::EPOLL_CTL_DEL => {
            let (Some(set), Some(reg)) = (set, existing) else {
                return pass();
            };
            let mut st = lock(&reg.state);
            if st.deleted {
                return Err(libc::ENOENT);
            }
            let nested = matches!(&set.kind, Kind::Epoll(e) if e.nested());
            if !st.raw && !nested {
                // Kept in the kernel for a later ADD (see `deleted`).
                st.deleted = true;
                return Ok(0);
            }
            let kfd = st.kfd;
            drop(st);
            forget(&set, &reg);
            kernel_ctl(epfd, libc::EPOLL_CTL_DEL, kfd, 0, 0)
        }
        _ => Err(libc::EINVAL),
    }
}

/// `EPOLL_CTL_ADD` of a connection whose registration `reg` is here
/// already: `EEXIST`, unless it was deleted (then it is revived).
fn revive(epfd: c_int, set: Option<&Sock>, reg: &Arc<Reg>, app: epoll_event) -> CResult {
    let Some(Kind::Epoll(eps)) = set.map(|s| &s.kind) else {
        return Err(libc::EEXIST);
    };
    let mut st = lock(&reg.state);
    if !st.deleted {
        return Err(libc::EEXIST);
    }
    if st.disabled {
        // Disarmed by a ONESHOT report before the delete: arm it again.
        kernel_ctl(epfd, libc::EPOLL_CTL_MOD, st.kfd, KERNEL_EVENTS, reg.key())?;
        st.full = true;
    }
    st.events = app.events;
    st.data = app.u64;
    st.disabled = false;
    st.deleted = false;
    drop(st);
    lock(&eps.inner).pending.push(reg.key());
    Ok(0)
}

/// Forget the registration of a number that no longer refers to its
/// connection; while that connection lives on (another number, another
/// process), its readiness fd is still open and registered: remove that.
fn drop_stale(epfd: c_int, set: &Sock, reg: &Arc<Reg>) {
    forget(set, reg);
    if reg.sock.upgrade().is_some() {
        let kfd = lock(&reg.state).kfd;
        let _ = kernel_ctl(epfd, libc::EPOLL_CTL_DEL, kfd, 0, 0);
    }
}

fn forget(set: &Sock, reg: &Arc<Reg>) {
    if let Kind::Epoll(eps) = &set.kind {
        let mut inner = lock(&eps.inner);
        inner.by_fd.remove(&reg.fd);
        inner.by_key.remove(&reg.key());
    }
}

/// The epfd `epfd`, which has accelerated registrations, goes into another
/// epoll instance: from now on its kernel registrations are what the
/// application asked for ([`crate::nest`]); deleted ones go at once.
pub(crate) fn nested(epfd: c_int) {
    let Some(set) = table::get(epfd) else {
        return;
    };
    let Kind::Epoll(eps) = &set.kind else {
        return;
    };
    if eps.nested.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let regs: Vec<Arc<Reg>> = lock(&eps.inner).by_key.values().cloned().collect();
    for reg in regs {
        let st = *lock(&reg.state);
        if st.raw {
            continue;
        }
        if st.deleted {
            forget(&set, &reg);
            let _ = kernel_ctl(epfd, libc::EPOLL_CTL_DEL, st.kfd, 0, 0);
        } else if !st.disabled {
            let kev = eps.kernel_events(st.events);
            let _ = kernel_ctl(epfd, libc::EPOLL_CTL_MOD, st.kfd, kev, reg.key());
        }
    }
}

/// What to report for `reg` now (0: nothing), updating its registration
/// (a connect that completed moves onto the readiness fd; ONESHOT
/// disarms).
fn look(epfd: c_int, eps: &EpSet, reg: &Arc<Reg>, kernel: Option<u32>) -> u32 {
    let Some(sock) = reg.sock.upgrade() else {
        return 0;
    };
    let mut st = lock(&reg.state);
    if kernel.is_some() {
        st.full = true;
    }
    if st.disabled || st.deleted {
        return 0;
    }
    if st.raw {
        match ready_fd(&sock, reg.fd) {
            Some(k) => {
                // The connect completed and the stream exists: watch its
                // readiness fd from now on.
                let _ = kernel_ctl(epfd, libc::EPOLL_CTL_DEL, st.kfd, 0, 0);
                let kev = eps.kernel_events(st.events);
                if kernel_ctl(epfd, libc::EPOLL_CTL_ADD, k, kev, reg.key()).is_ok() {
                    st.kfd = k;
                    st.raw = false;
                    st.full = true;
                }
            }
            None if sock.is_connecting() => return 0,
            // The connect failed: the kernel's events are the truth.
            None => {
                return kernel.unwrap_or(0)
                    & (st.events | (libc::EPOLLHUP | libc::EPOLLERR) as u32);
            }
        }
    }
    let Some(stream) = sock.stream(reg.fd) else {
        return 0;
    };
    let r = if eps.nested() {
        // Drains the doorbell when nothing is ready (level-triggered
        // kernel registration).
        stream.readiness(want(st.events)).unwrap_or_default()
    } else {
        let (r, fully) = stream
            .readiness_on_edge(want(st.events), st.full)
            .unwrap_or_default();
        if fully {
            st.full = false;
        }
        r
    };
    let ev = translate(r, st.events);
    if ev != 0 && st.events & ONESHOT != 0 {
        st.disabled = true;
        let _ = kernel_ctl(epfd, libc::EPOLL_CTL_MOD, st.kfd, 0, reg.key());
    }
    ev
}

/// `epoll_wait`/`epoll_pwait` on an epfd with accelerated registrations.
///
/// # Safety
///
/// `events` points to `max` writable epoll_events; `mask` is valid or null.
pub(crate) unsafe fn wait(
    epfd: c_int,
    set: &Sock,
    events: *mut epoll_event,
    max: c_int,
    timeout: Option<Duration>,
    mask: *const libc::sigset_t,
) -> CResult {
    let Kind::Epoll(eps) = &set.kind else {
        return Err(libc::EINVAL);
    };
    let cap = usize::try_from(max)
        .ok()
        .filter(|&m| m > 0)
        .ok_or(libc::EINVAL)?;
    if events.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: as the caller promises.
    let out = unsafe { core::slice::from_raw_parts_mut(events, cap) };
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let mut n = 0usize;
        let mut seen: Vec<u64> = Vec::new();
        // 1. What was ready when last seen (level-triggered, or just
        //    registered).
        let pending: Vec<(u64, Arc<Reg>)> = {
            let mut inner = lock(&eps.inner);
            let keys = std::mem::take(&mut inner.pending);
            keys.into_iter()
                .filter_map(|k| inner.by_key.get(&k).map(|r| (k, Arc::clone(r))))
                .collect()
        };
        let mut keep = Vec::new();
        for (key, reg) in pending {
            if seen.contains(&key) {
                continue;
            }
            if n == cap {
                keep.push(key);
                continue;
            }
            let ev = look(epfd, eps, &reg, None);
            if ev != 0 {
                // (Only a reported key is skipped among the kernel's events
                // below: one looked at in vain may have a new edge there.)
                seen.push(key);
                let st = *lock(&reg.state);
                out[n] = epoll_event {
                    events: ev,
                    u64: st.data,
                };
                n += 1;
                if st.events & (ET | ONESHOT) == 0 {
                    keep.push(key);
                }
            }
        }
        // 2. The kernel's events (without waiting when something is due).
        let left = if n > 0 {
            0
        } else {
            match deadline {
                None => -1,
                Some(d) => {
                    let ms = d
                        .saturating_duration_since(Instant::now())
                        .as_micros()
                        .div_ceil(1000);
                    c_int::try_from(ms).unwrap_or(c_int::MAX)
                }
            }
        };
        let room = cap - n;
        let got = if room == 0 {
            0
        } else {
            // SAFETY: `room` writable events at `out[n..]`.
            let r = unsafe {
                real::epoll_pwait(epfd, out[n..].as_mut_ptr(), room as c_int, left, mask)
            };
            if r < 0 {
                let e = real::errno();
                lock(&eps.inner).pending.extend(keep);
                if n > 0 {
                    return Ok(n as isize);
                }
                return Err(e);
            }
            usize::try_from(r).unwrap_or(0)
        };
        // Translate ours in place, keep the others.
        let mut w = n;
        for i in n..n + got {
            let e = out[i];
            let data = e.u64;
            let reg = lock(&eps.inner).by_key.get(&data).cloned();
            let Some(reg) = reg else {
                out[w] = e;
                w += 1;
                continue;
            };
            if seen.contains(&data) {
                // Reported from the pending list: the wake-up still asks
                // for a full look next time.
                lock(&reg.state).full = true;
                continue;
            }
            seen.push(data);
            let ev = look(epfd, eps, &reg, Some(e.events));
            if ev != 0 {
                let st = *lock(&reg.state);
                out[w] = epoll_event {
                    events: ev,
                    u64: st.data,
                };
                w += 1;
                if st.events & (ET | ONESHOT) == 0 {
                    keep.push(data);
                }
            }
        }
        lock(&eps.inner).pending.extend(keep);
        if w > 0 {
            return Ok(w as isize);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(0);
        }
        // Only wake-ups of ours with nothing to report: wait again.
    }
}
