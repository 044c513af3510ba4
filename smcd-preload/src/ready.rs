//! Readiness for programs that multiplex with `poll`/`ppoll`/`select`/
//! `pselect`: an accelerated fd's readiness comes from its smcd stream, and
//! a wait sleeps on the stream's readiness fd (its doorbell and its TCP
//! socket) in place of the application's fd, next to every other fd the
//! application asked for.

use core::ffi::c_int;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::{fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};
use smcd_std::adopt::{Ready, Want};

use crate::guard::CResult;
use crate::sock::Sock;
use crate::{real, table};

/// How long a wait looks at the shared memory before it sleeps in the
/// kernel (short: on two cores the peer may need this one).
const SPIN: Duration = Duration::from_micros(10);

/// A wait's limit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Timeout {
    Forever,
    After(Duration),
}

impl Timeout {
    pub(crate) fn millis(ms: c_int) -> Self {
        match u64::try_from(ms) {
            Ok(ms) => Self::After(Duration::from_millis(ms)),
            Err(_) => Self::Forever,
        }
    }

    pub(crate) fn timespec(t: Option<&timespec>) -> Self {
        t.map_or(Self::Forever, |t| {
            Self::After(Duration::new(
                u64::try_from(t.tv_sec).unwrap_or(0),
                u32::try_from(t.tv_nsec).unwrap_or(0),
            ))
        })
    }

    pub(crate) fn timeval(t: Option<&timeval>) -> Self {
        t.map_or(Self::Forever, |t| {
            Self::After(
                Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0)),
            )
        })
    }
}

/// The poll events of `r` that `events` asked for (errors and hang-ups
/// always).
fn revents_of(r: Ready, events: i16) -> i16 {
    let mut ev = 0i16;
    if r.readable {
        ev |= events & (libc::POLLIN | libc::POLLRDNORM);
    }
    if r.writable {
        ev |= events & (libc::POLLOUT | libc::POLLWRNORM);
    }
    if r.read_closed {
        ev |= events & libc::POLLRDHUP;
    }
    if r.hangup {
        ev |= libc::POLLHUP;
    }
    if r.error {
        ev |= libc::POLLERR;
    }
    ev
}

fn want_of(events: i16) -> Want {
    Want {
        read: events & (libc::POLLIN | libc::POLLRDNORM | libc::POLLRDHUP) != 0,
        write: events & (libc::POLLOUT | libc::POLLWRNORM) != 0,
    }
}

/// `poll`/`ppoll` over `fds`, some of which may be accelerated.
///
/// # Safety
///
/// `fds` points to `n` pollfds; `mask` is a valid sigset or null.
pub(crate) unsafe fn poll(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: Timeout,
    mask: *const sigset_t,
) -> CResult {
    let len = usize::try_from(n).map_err(|_| libc::EINVAL)?;
    let fds: &mut [pollfd] = if len == 0 || fds.is_null() {
        &mut []
    } else {
        // SAFETY: as the caller promises.
        unsafe { core::slice::from_raw_parts_mut(fds, len) }
    };
    // The accelerated entries, with their stream's state.
    let smc: Vec<(usize, Arc<Sock>)> = fds
        .iter()
        .enumerate()
        .filter(|(_, p)| table::hot(p.fd))
        .filter_map(|(i, p)| table::get(p.fd).map(|s| (i, s)))
        .filter(|(i, s)| s.stream(fds[*i].fd).is_some())
        .collect();
    if smc.is_empty() {
        return wait(fds, timeout, mask);
    }
    let start = Instant::now();
    let deadline = match timeout {
        Timeout::Forever => None,
        Timeout::After(d) => Some(start + d),
    };
    let mut shadow: Vec<pollfd> = fds.to_vec();
    loop {
        let mut ready = 0usize;
        for (i, s) in &smc {
            let p = &mut fds[*i];
            let Some(st) = s.stream(p.fd) else { continue };
            let r = st.readiness(want_of(p.events)).unwrap_or_default();
            p.revents = revents_of(r, p.events);
            ready += usize::from(p.revents != 0);
            shadow[*i] = pollfd {
                fd: st.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
        }
        let now = Instant::now();
        let left = match deadline {
            _ if ready > 0 || now.duration_since(start) < SPIN => Timeout::After(Duration::ZERO),
            None => Timeout::Forever,
            Some(d) => Timeout::After(d.saturating_duration_since(now)),
        };
        for (i, p) in shadow.iter_mut().enumerate() {
            if !smc.iter().any(|(j, _)| *j == i) {
                p.revents = 0;
            }
        }
        let woke = match wait(&mut shadow, left, mask) {
            Ok(w) => w,
            Err(e) if ready == 0 => return Err(e),
            Err(_) => 0,
        };
        let mut others = 0usize;
        for (i, p) in shadow.iter().enumerate() {
            if !smc.iter().any(|(j, _)| *j == i) {
                fds[i].revents = p.revents;
                others += usize::from(p.revents != 0);
            }
        }
        let total = ready + others;
        if total > 0 {
            return Ok(isize::try_from(total).unwrap_or(isize::MAX));
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if timed_out && woke == 0 {
            return Ok(0);
        }
        // A readiness fd woke us (or the spin goes on): look again.
    }
}

/// The kernel's poll over `fds`.
fn wait(fds: &mut [pollfd], timeout: Timeout, mask: *const sigset_t) -> CResult {
    let n = fds.len() as nfds_t;
    let ts = match timeout {
        Timeout::Forever => None,
        Timeout::After(d) => Some(timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(d.subsec_nanos()),
        }),
    };
    let tp = ts.as_ref().map_or(core::ptr::null(), core::ptr::from_ref);
    // SAFETY: `fds` is a live slice of `n` pollfds; `tp` and `mask` are
    // valid or null.
    let r = unsafe { real::ppoll(fds.as_mut_ptr(), n, tp, mask) };
    crate::guard::cvt(r as isize)
}

/// `select`/`pselect` in terms of [`poll`].
///
/// # Safety
///
/// The sets are valid for fds below `n`, or null.
pub(crate) unsafe fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: Timeout,
    mask: *const sigset_t,
) -> CResult {
    if !(0..=libc::FD_SETSIZE as c_int).contains(&n) {
        return Err(libc::EINVAL);
    }
    // SAFETY: FD_ISSET reads a bit of a set the caller lends.
    let isset = |set: *mut fd_set, fd: c_int| !set.is_null() && unsafe { libc::FD_ISSET(fd, set) };
    let mut fds: Vec<pollfd> = Vec::new();
    for fd in 0..n {
        let mut events = 0i16;
        if isset(r, fd) {
            events |= libc::POLLIN;
        }
        if isset(w, fd) {
            events |= libc::POLLOUT;
        }
        if isset(e, fd) {
            events |= libc::POLLPRI;
        }
        if events != 0 {
            fds.push(pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    // SAFETY: a live vector of pollfds.
    let got = unsafe { poll(fds.as_mut_ptr(), fds.len() as nfds_t, timeout, mask) }?;
    let _ = got;
    for set in [r, w, e] {
        if !set.is_null() {
            // SAFETY: the caller lends the set.
            unsafe { libc::FD_ZERO(set) };
        }
    }
    let mut count = 0isize;
    for p in &fds {
        if p.revents & libc::POLLNVAL != 0 {
            return Err(libc::EBADF);
        }
        let mut mark = |set: *mut fd_set, hit: bool| {
            if hit && !set.is_null() {
                // SAFETY: the caller lends the set; fd < n <= FD_SETSIZE.
                unsafe { libc::FD_SET(p.fd, set) };
                count += 1;
            }
        };
        let rd = p.events & libc::POLLIN != 0
            && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
        let wr = p.events & libc::POLLOUT != 0 && p.revents & (libc::POLLOUT | libc::POLLERR) != 0;
        let ex = p.events & libc::POLLPRI != 0 && p.revents & libc::POLLPRI != 0;
        mark(r, rd);
        mark(w, wr);
        mark(e, ex);
    }
    Ok(count)
}
