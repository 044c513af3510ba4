//! The exported hooks. Each one first asks the lock-free fd bitmap (and the
//! reentrancy guard) whether the call is the shim's business; if not, it
//! goes straight to glibc's definition. Bodies run inside
//! `guard::enter`: no panic unwinds into C.

// Each hook is the C function of the same name (see its man page).
#![allow(clippy::missing_safety_doc, missing_docs)]

use core::ffi::{c_int, c_uint, c_ulong, c_void};
use std::sync::Arc;

use libc::{
    fd_set, iovec, msghdr, nfds_t, off_t, off64_t, pollfd, sigset_t, size_t, sockaddr, socklen_t,
    ssize_t, timespec, timeval,
};
use smcd_std::SmcStream;

use crate::data::{self, RecvOpts, SendOpts};
use crate::guard::{CResult, busy, cvt, enter, enter_int, errno_of, warn};
use crate::sock::{self, Sock};
use crate::{real, table};

/// Whether the call on `fd` is the shim's business.
#[inline]
fn ours(fd: c_int) -> bool {
    table::hot(fd) && !busy()
}

/// Run `f` with the smcd stream of `fd`, or `pass` when `fd` has none.
fn with_stream(
    fd: c_int,
    pass: impl FnOnce() -> CResult,
    f: impl FnOnce(&Sock, &SmcStream) -> CResult,
) -> CResult {
    let Some(s) = table::get(fd) else {
        return pass();
    };
    match s.stream(fd) {
        Some(st) => f(&s, st),
        None => pass(),
    }
}

// ----- reading ------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::read(fd, buf, n) };
    }
    enter("read", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::read(fd, buf, n) }),
            |s, st| {
                // SAFETY: the caller lends `n` writable bytes at `buf`.
                let arg = unsafe { data::bytes_mut(buf, n) };
                data::recv(st, arg, RecvOpts::of(s.nonblocking(), 0))
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: abort has no preconditions (the fortify check failed).
        unsafe { libc::abort() };
    }
    // SAFETY: as read.
    unsafe { read(fd, buf, n) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::readv(fd, iov, n) };
    }
    enter("readv", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::readv(fd, iov, n) }),
            |s, st| {
                let n = usize::try_from(n).map_err(|_| libc::EINVAL)?;
                // SAFETY: the caller lends `n` iovecs of writable memory.
                let bufs = unsafe { data::iovecs_mut(iov, n) };
                data::recv_vectored(st, bufs, RecvOpts::of(s.nonblocking(), 0))
            },
        )
    })
}

fn recv_common(
    s: &Sock,
    st: &SmcStream,
    call: &'static str,
    buf: &mut [u8],
    flags: c_int,
) -> CResult {
    if flags & data::RECV_UNSUPPORTED != 0 {
        warn(
            call,
            "MSG_OOB/MSG_ERRQUEUE are not supported on an SMC-D connection",
        );
        return Err(libc::EOPNOTSUPP);
    }
    data::recv(st, buf, RecvOpts::of(s.nonblocking(), flags))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::recv(fd, buf, n, flags) };
    }
    enter("recv", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::recv(fd, buf, n, flags) }),
            // SAFETY: the caller lends `n` writable bytes.
            |s, st| recv_common(s, st, "recv", unsafe { data::bytes_mut(buf, n) }, flags),
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if n > buflen {
        // SAFETY: the fortify check failed.
        unsafe { libc::abort() };
    }
    // SAFETY: as recv.
    unsafe { recv(fd, buf, n, flags) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::recvfrom(fd, buf, n, flags, addr, len) };
    }
    enter("recvfrom", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::recvfrom(fd, buf, n, flags, addr, len) }),
            |s, st| {
                // SAFETY: the caller lends `n` writable bytes.
                let r = recv_common(s, st, "recvfrom", unsafe { data::bytes_mut(buf, n) }, flags)?;
                if !addr.is_null() && !len.is_null() {
                    // A connected TCP socket reports no source address.
                    // SAFETY: the caller passes a writable length.
                    unsafe { *len = 0 };
                }
                Ok(r)
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: the fortify check failed.
        unsafe { libc::abort() };
    }
    // SAFETY: as recvfrom.
    unsafe { recvfrom(fd, buf, n, flags, addr, len) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if !ours(fd) || msg.is_null() {
        // SAFETY: passed on unchanged.
        return unsafe { real::recvmsg(fd, msg, flags) };
    }
    enter("recvmsg", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::recvmsg(fd, msg, flags) }),
            |s, st| {
                if flags & data::RECV_UNSUPPORTED != 0 {
                    warn(
                        "recvmsg",
                        "MSG_OOB/MSG_ERRQUEUE are not supported on an SMC-D connection",
                    );
                    return Err(libc::EOPNOTSUPP);
                }
                // SAFETY: the caller passes a valid msghdr.
                let m = unsafe { &mut *msg };
                // SAFETY: its iovecs are the caller's writable buffers.
                let bufs = unsafe { data::iovecs_mut(m.msg_iov, m.msg_iovlen) };
                let r = data::recv_vectored(st, bufs, RecvOpts::of(s.nonblocking(), flags))?;
                m.msg_namelen = 0;
                m.msg_controllen = 0;
                m.msg_flags = 0;
                Ok(r)
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    v: *mut libc::mmsghdr,
    n: c_uint,
    flags: c_int,
    t: *mut timespec,
) -> c_int {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::recvmmsg(fd, v, n, flags, t) };
    }
    enter_int("recvmmsg", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::recvmmsg(fd, v, n, flags, t) } as isize),
            |_, _| {
                warn("recvmmsg", "not supported on an SMC-D connection");
                Err(libc::EOPNOTSUPP)
            },
        )
    })
}

// ----- writing ------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::write(fd, buf, n) };
    }
    enter("write", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::write(fd, buf, n) }),
            |s, st| {
                // SAFETY: the caller lends `n` readable bytes.
                let arg = unsafe { data::bytes(buf, n) };
                data::send(st, arg, SendOpts::of(s.nonblocking(), 0))
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::writev(fd, iov, n) };
    }
    enter("writev", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::writev(fd, iov, n) }),
            |s, st| {
                let n = usize::try_from(n).map_err(|_| libc::EINVAL)?;
                // SAFETY: the caller lends `n` iovecs.
                let bufs = unsafe { data::iovecs(iov, n) };
                data::send_vectored(st, bufs, SendOpts::of(s.nonblocking(), 0))
            },
        )
    })
}

fn send_common(s: &Sock, st: &SmcStream, call: &'static str, data: &[u8], flags: c_int) -> CResult {
    if flags & data::SEND_UNSUPPORTED != 0 {
        warn(call, "MSG_OOB is not supported on an SMC-D connection");
        return Err(libc::EOPNOTSUPP);
    }
    data::send(st, data, SendOpts::of(s.nonblocking(), flags))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::send(fd, buf, n, flags) };
    }
    enter("send", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::send(fd, buf, n, flags) }),
            // SAFETY: the caller lends `n` readable bytes.
            |s, st| send_common(s, st, "send", unsafe { data::bytes(buf, n) }, flags),
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::sendto(fd, buf, n, flags, addr, len) };
    }
    enter("sendto", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::sendto(fd, buf, n, flags, addr, len) }),
            // A connected TCP socket ignores the address. SAFETY: the
            // caller lends `n` readable bytes.
            |s, st| send_common(s, st, "sendto", unsafe { data::bytes(buf, n) }, flags),
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if !ours(fd) || msg.is_null() {
        // SAFETY: passed on unchanged.
        return unsafe { real::sendmsg(fd, msg, flags) };
    }
    enter("sendmsg", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::sendmsg(fd, msg, flags) }),
            |s, st| {
                // SAFETY: the caller passes a valid msghdr.
                let m = unsafe { &*msg };
                if m.msg_controllen != 0 {
                    warn(
                        "sendmsg",
                        "control messages (SCM_RIGHTS, …) are not supported on an SMC-D connection",
                    );
                    return Err(libc::EOPNOTSUPP);
                }
                if flags & data::SEND_UNSUPPORTED != 0 {
                    warn("sendmsg", "MSG_OOB is not supported on an SMC-D connection");
                    return Err(libc::EOPNOTSUPP);
                }
                // SAFETY: its iovecs are the caller's readable buffers.
                let bufs = unsafe { data::iovecs(m.msg_iov, m.msg_iovlen) };
                data::send_vectored(st, bufs, SendOpts::of(s.nonblocking(), flags))
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    v: *mut libc::mmsghdr,
    n: c_uint,
    flags: c_int,
) -> c_int {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::sendmmsg(fd, v, n, flags) };
    }
    enter_int("sendmmsg", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::sendmmsg(fd, v, n, flags) } as isize),
            |_, _| {
                warn("sendmmsg", "not supported on an SMC-D connection");
                Err(libc::EOPNOTSUPP)
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    if !ours(out) {
        // SAFETY: passed on unchanged.
        return unsafe { real::sendfile(out, inp, off, n) };
    }
    enter("sendfile", || {
        with_stream(
            out,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::sendfile(out, inp, off, n) }),
            |s, st| {
                // SAFETY: the caller passes a valid offset pointer or null.
                let arg = unsafe { off.as_mut() };
                data::sendfile(st, inp, arg, n, SendOpts::of(s.nonblocking(), 0))
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    inp: c_int,
    off: *mut off64_t,
    n: size_t,
) -> ssize_t {
    if !ours(out) {
        // SAFETY: passed on unchanged.
        return unsafe { real::sendfile64(out, inp, off, n) };
    }
    enter("sendfile64", || {
        with_stream(
            out,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::sendfile64(out, inp, off, n) }),
            |s, st| {
                // SAFETY: the caller passes a valid offset pointer or null.
                let arg = unsafe { off.as_mut() };
                data::sendfile(st, inp, arg, n, SendOpts::of(s.nonblocking(), 0))
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn splice(
    i: c_int,
    io: *mut off64_t,
    o: c_int,
    oo: *mut off64_t,
    n: size_t,
    flags: c_uint,
) -> ssize_t {
    if !ours(i) && !ours(o) {
        // SAFETY: passed on unchanged.
        return unsafe { real::splice(i, io, o, oo, n, flags) };
    }
    enter("splice", || {
        let smc = |fd| table::get(fd).is_some_and(|s| s.stream(fd).is_some());
        if smc(i) || smc(o) {
            warn("splice", "not supported on an SMC-D connection");
            return Err(libc::EINVAL);
        }
        // SAFETY: passed on unchanged.
        cvt(unsafe { real::splice(i, io, o, oo, n, flags) })
    })
}

// ----- connections --------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::socket(domain, ty, proto) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    smcd_std::device::release_held();
    if busy() {
        // SAFETY: passed on unchanged.
        return unsafe { real::connect(fd, addr, len) };
    }
    enter_int("connect", || {
        if let Some(s) = table::get(fd) {
            // Again on a connect under way: the kernel answers (EALREADY,
            // EISCONN, …); the stream is set up once it completed.
            // SAFETY: passed on unchanged.
            let r = unsafe { real::connect(fd, addr, len) };
            let e = real::errno();
            let _ = s.stream(fd);
            real::set_errno(e);
            return cvt(r as isize);
        }
        // SAFETY: the caller's address, as connect(2) takes it.
        unsafe { sock::connect(fd, addr, len) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let r = unsafe { real::listen(fd, backlog) };
    if r == 0 && !busy() {
        let _ = enter("listen", || {
            sock::listened(fd);
            Ok(0)
        });
    }
    r
}

fn accept_common(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> CResult {
    // SAFETY: passed on unchanged.
    let nfd = unsafe { real::accept4(fd, addr, len, flags) };
    if nfd < 0 {
        return Err(real::errno());
    }
    table::fresh(nfd);
    if let Some(l) = table::get(fd) {
        sock::accepted(&l, nfd, flags & libc::SOCK_NONBLOCK != 0);
    }
    Ok(nfd as isize)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    smcd_std::device::release_held();
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        let nfd = unsafe { real::accept(fd, addr, len) };
        table::fresh(nfd);
        return nfd;
    }
    enter_int("accept", || accept_common(fd, addr, len, 0))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    smcd_std::device::release_held();
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        let nfd = unsafe { real::accept4(fd, addr, len, flags) };
        table::fresh(nfd);
        return nfd;
    }
    enter_int("accept4", || accept_common(fd, addr, len, flags))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::shutdown(fd, how) };
    }
    enter_int("shutdown", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::shutdown(fd, how) } as isize),
            |_, st| {
                let how = match how {
                    libc::SHUT_RD => std::net::Shutdown::Read,
                    libc::SHUT_WR => std::net::Shutdown::Write,
                    libc::SHUT_RDWR => std::net::Shutdown::Both,
                    _ => return Err(libc::EINVAL),
                };
                st.shutdown(how).map(|()| 0).map_err(|e| errno_of(&e))
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: passed on unchanged (the kernel socket keeps every option).
    let r = unsafe { real::setsockopt(fd, level, name, val, len) };
    if r == 0 && level == libc::IPPROTO_TCP && name == libc::TCP_CORK && ours(fd) {
        // SAFETY: as the kernel just read it: an int of `len` bytes.
        return unsafe { cork(fd, val, len) };
    }
    let timeo =
        level == libc::SOL_SOCKET && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO);
    if r != 0 || !timeo || !ours(fd) || val.is_null() || (len as usize) < size_of::<timeval>() {
        return r;
    }
    // The stream waits in user space: it honours the socket's timeouts
    // itself (then EAGAIN, as Linux reports them).
    enter_int("setsockopt", || {
        // SAFETY: SO_RCVTIMEO/SO_SNDTIMEO pass a timeval of `len` bytes.
        let tv = unsafe { val.cast::<timeval>().read_unaligned() };
        let t = std::time::Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + std::time::Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0));
        let t = (!t.is_zero()).then_some(t);
        with_stream(
            fd,
            || Ok(0),
            |_, st| {
                let set = if name == libc::SO_RCVTIMEO {
                    st.set_read_timeout(t)
                } else {
                    st.set_write_timeout(t)
                };
                set.map(|()| 0).map_err(|e| errno_of(&e))
            },
        )
    })
}

/// `TCP_CORK`, set on the kernel socket already: an SMC-D stream holds its
/// doorbell rings until the uncork (or until the process waits).
///
/// # Safety
///
/// `val` points to `len` readable bytes (the kernel accepted them).
unsafe fn cork(fd: c_int, val: *const c_void, len: socklen_t) -> c_int {
    if val.is_null() || (len as usize) < size_of::<c_int>() {
        return 0;
    }
    // SAFETY: at least an int is readable at `val` (checked above).
    let on = unsafe { val.cast::<c_int>().read_unaligned() } != 0;
    enter_int("setsockopt", || {
        with_stream(
            fd,
            || Ok(0),
            |_, st| st.set_cork(on).map(|()| 0).map_err(|e| errno_of(&e)),
        )
    })
}

// ----- fd numbers ---------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::close(fd) };
    }
    enter_int("close", || {
        // The state goes first, then the number (so a concurrent open that
        // gets the number back never finds our state).
        drop(table::remove(fd));
        // SAFETY: passed on unchanged.
        cvt(unsafe { real::close(fd) } as isize)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if table::any() && !busy() && flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        let _ = enter("close_range", || {
            let doomed: Vec<Arc<Sock>> = table::snapshot()
                .into_iter()
                .filter(|(fd, _)| u32::try_from(*fd).is_ok_and(|f| (first..=last).contains(&f)))
                .filter_map(|(fd, _)| table::remove(fd))
                .collect();
            drop(doomed);
            Ok(0)
        });
    }
    // SAFETY: passed on unchanged.
    unsafe { real::close_range(first, last, flags) }
}

/// `new` is a new number for what `old` refers to: it shares its state.
fn share(old: c_int, new: c_int) {
    let Some(s) = table::get(old) else {
        return;
    };
    let (tracked, prev) = table::insert(new, s);
    drop(prev);
    if !tracked {
        warn(
            "dup",
            "fd number beyond the shim's table: this copy is not accelerated",
        );
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let new = unsafe { real::dup(fd) };
    table::fresh(new);
    if new >= 0 && ours(fd) {
        let _ = enter("dup", || {
            share(fd, new);
            Ok(0)
        });
    }
    new
}

fn dup_onto(old: c_int, new: c_int, r: c_int) -> c_int {
    if r < 0 || old == new || busy() || (!table::hot(old) && !table::hot(new)) {
        return r;
    }
    let _ = enter("dup2", || {
        // dup2 closed what `new` referred to.
        drop(table::remove(new));
        share(old, new);
        Ok(0)
    });
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let r = unsafe { real::dup2(old, new) };
    dup_onto(old, new, r)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let r = unsafe { real::dup3(old, new, flags) };
    dup_onto(old, new, r)
}

fn fcntl_common(fd: c_int, cmd: c_int, arg: usize, sixty_four: bool) -> c_int {
    // SAFETY: passed on unchanged (the argument word as the caller gave it).
    let pass = || unsafe { real::fcntl(fd, cmd, arg, sixty_four) };
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let new = pass();
            table::fresh(new);
            if new >= 0 && ours(fd) {
                let _ = enter("fcntl", || {
                    share(fd, new);
                    Ok(0)
                });
            }
            new
        }
        libc::F_GETFL | libc::F_SETFL if ours(fd) => enter_int("fcntl", || {
            let Some(s) = table::get(fd) else {
                return cvt(pass() as isize);
            };
            let adopted = s.stream(fd).is_some();
            if cmd == libc::F_GETFL {
                let fl = cvt(pass() as isize)?;
                if !adopted {
                    return Ok(fl);
                }
                let nb = libc::O_NONBLOCK as isize;
                return Ok(if s.nonblocking() { fl | nb } else { fl & !nb });
            }
            #[allow(clippy::cast_possible_truncation)]
            let flags = arg as c_int;
            s.nonblock.store(
                flags & libc::O_NONBLOCK != 0,
                std::sync::atomic::Ordering::Relaxed,
            );
            if !adopted {
                return cvt(pass() as isize);
            }
            // The kernel's flag stays set: smcd never blocks in the kernel.
            // SAFETY: F_SETFL takes an int.
            let r =
                unsafe { real::fcntl(fd, cmd, (flags | libc::O_NONBLOCK) as usize, sixty_four) };
            cvt(r as isize)
        }),
        _ => pass(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    fcntl_common(fd, cmd, arg, false)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    fcntl_common(fd, cmd, arg, true)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: usize) -> c_int {
    if !ours(fd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::ioctl(fd, req, arg) };
    }
    enter_int("ioctl", || {
        with_stream(
            fd,
            // SAFETY: passed on unchanged.
            || cvt(unsafe { real::ioctl(fd, req, arg) } as isize),
            |s, st| match req {
                libc::FIONBIO => {
                    let p = arg as *const c_int;
                    if p.is_null() {
                        return Err(libc::EFAULT);
                    }
                    // SAFETY: FIONBIO passes a pointer to an int.
                    let on = unsafe { p.read() } != 0;
                    s.nonblock.store(on, std::sync::atomic::Ordering::Relaxed);
                    Ok(0)
                }
                libc::FIONREAD => {
                    let p = arg as *mut c_int;
                    if p.is_null() {
                        return Err(libc::EFAULT);
                    }
                    let n = st.bytes_readable().map_err(|e| errno_of(&e))?;
                    // SAFETY: FIONREAD passes a pointer to an int.
                    unsafe { p.write(c_int::try_from(n).unwrap_or(c_int::MAX)) };
                    Ok(0)
                }
                libc::TIOCOUTQ | 0x894B /* SIOCOUTQNSD */ => {
                    warn("ioctl", "SIOCOUTQ/SIOCOUTQNSD are not supported on an SMC-D connection");
                    Err(libc::EOPNOTSUPP)
                }
                // SAFETY: passed on unchanged (socket options and the like
                // the kernel socket still answers).
                _ => cvt(unsafe { real::ioctl(fd, req, arg) } as isize),
            },
        )
    })
}

// ----- readiness ----------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    smcd_std::device::release_held();
    if !table::any() || busy() {
        // SAFETY: passed on unchanged.
        return unsafe { real::poll(fds, n, timeout) };
    }
    let t = crate::ready::Timeout::millis(timeout);
    enter_int("poll", || {
        // SAFETY: the caller lends `n` pollfds.
        unsafe { crate::ready::poll(fds, n, t, core::ptr::null()) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if fdslen / size_of::<pollfd>() < n as usize {
        // SAFETY: the fortify check failed.
        unsafe { libc::abort() };
    }
    // SAFETY: as poll.
    unsafe { poll(fds, n, timeout) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    smcd_std::device::release_held();
    if !table::any() || busy() {
        // SAFETY: passed on unchanged.
        return unsafe { real::ppoll(fds, n, t, mask) };
    }
    // SAFETY: the caller passes a valid timespec or null.
    let timeout = crate::ready::Timeout::timespec(unsafe { t.as_ref() });
    enter_int("ppoll", || {
        // SAFETY: the caller lends `n` pollfds.
        unsafe { crate::ready::poll(fds, n, timeout, mask) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *mut timeval,
) -> c_int {
    smcd_std::device::release_held();
    if !table::any() || busy() {
        // SAFETY: passed on unchanged.
        return unsafe { real::select(n, r, w, e, t) };
    }
    // SAFETY: the caller passes a valid timeval or null.
    let timeout = crate::ready::Timeout::timeval(unsafe { t.as_ref() });
    enter_int("select", || {
        // SAFETY: the caller lends the sets for fds below `n`.
        unsafe { crate::ready::select(n, r, w, e, timeout, core::ptr::null()) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    smcd_std::device::release_held();
    if !table::any() || busy() {
        // SAFETY: passed on unchanged.
        return unsafe { real::pselect(n, r, w, e, t, mask) };
    }
    // SAFETY: the caller passes a valid timespec or null.
    let timeout = crate::ready::Timeout::timespec(unsafe { t.as_ref() });
    enter_int("pselect", || {
        // SAFETY: the caller lends the sets for fds below `n`.
        unsafe { crate::ready::select(n, r, w, e, timeout, mask) }
    })
}

// ----- epoll --------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_create(size: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::epoll_create(size) };
    table::fresh(fd);
    crate::nest::created(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_create1(flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::epoll_create1(flags) };
    table::fresh(fd);
    crate::nest::created(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut libc::epoll_event,
) -> c_int {
    if op == libc::EPOLL_CTL_ADD && !busy() && crate::nest::added(fd) && table::hot(fd) {
        // An epfd with accelerated registrations goes into another one.
        enter_int("epoll_ctl", || {
            crate::epoll::nested(fd);
            Ok(0)
        });
    }
    if busy() || (!table::hot(fd) && !table::hot(epfd)) {
        // SAFETY: passed on unchanged.
        return unsafe { real::epoll_ctl(epfd, op, fd, ev) };
    }
    enter_int("epoll_ctl", || crate::epoll::ctl(epfd, op, fd, ev))
}

fn epoll_wait_common(
    call: &'static str,
    epfd: c_int,
    evs: *mut libc::epoll_event,
    max: c_int,
    timeout: Option<std::time::Duration>,
    mask: *const sigset_t,
) -> c_int {
    enter_int(call, || {
        let Some(set) = table::get(epfd) else {
            let ms = timeout.map_or(-1, |t| c_int::try_from(t.as_millis()).unwrap_or(c_int::MAX));
            // SAFETY: passed on unchanged.
            return cvt(unsafe { real::epoll_pwait(epfd, evs, max, ms, mask) } as isize);
        };
        // SAFETY: the caller lends `max` events.
        unsafe { crate::epoll::wait(epfd, &set, evs, max, timeout, mask) }
    })
}

fn millis(timeout: c_int) -> Option<std::time::Duration> {
    u64::try_from(timeout)
        .ok()
        .map(std::time::Duration::from_millis)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    evs: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    smcd_std::device::release_held();
    if busy() || !table::hot(epfd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::epoll_wait(epfd, evs, max, timeout) };
    }
    epoll_wait_common(
        "epoll_wait",
        epfd,
        evs,
        max,
        millis(timeout),
        core::ptr::null(),
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    evs: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    smcd_std::device::release_held();
    if busy() || !table::hot(epfd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::epoll_pwait(epfd, evs, max, timeout, mask) };
    }
    epoll_wait_common("epoll_pwait", epfd, evs, max, millis(timeout), mask)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    evs: *mut libc::epoll_event,
    max: c_int,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    smcd_std::device::release_held();
    if busy() || !table::hot(epfd) {
        // SAFETY: passed on unchanged.
        return unsafe { real::epoll_pwait2(epfd, evs, max, t, mask) };
    }
    // SAFETY: the caller passes a valid timespec or null.
    let timeout = unsafe { t.as_ref() }.map(|t| {
        std::time::Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    });
    epoll_wait_common("epoll_pwait2", epfd, evs, max, timeout, mask)
}

// ----- other fd creators: a fresh number carries no stale state ---------------
//
// An accelerated fd closed behind the shim's back (`fclose` of an `fdopen`ed
// socket closes inside libc; a raw close system call) leaves state under its
// number; every call that hands out a number drops it.

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fclose(f: *mut libc::FILE) -> c_int {
    let fd = if f.is_null() {
        -1
    } else {
        // SAFETY: the caller passes a valid stream (fileno only reads it).
        unsafe { libc::fileno(f) }
    };
    // SAFETY: passed on unchanged.
    let r = unsafe { real::fclose(f) };
    if table::hot(fd) && !busy() {
        let _ = enter("fclose", || {
            drop(table::remove(fd));
            Ok(0)
        });
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const libc::c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::open(path, flags, mode, false) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const libc::c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::open(path, flags, mode, true) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(
    dir: c_int,
    path: *const libc::c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::openat(dir, path, flags, mode, false) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(
    dir: c_int,
    path: *const libc::c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::openat(dir, path, flags, mode, true) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat(path: *const libc::c_char, mode: libc::mode_t) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::creat(path, mode) };
    table::fresh(fd);
    fd
}

/// Both numbers of a pair the kernel just handed out.
///
/// # Safety
///
/// `fds` points to two ints when `r` is 0.
unsafe fn fresh_pair(r: c_int, fds: *mut c_int) -> c_int {
    if r == 0 && !fds.is_null() {
        // SAFETY: the call filled two ints.
        let (a, b) = unsafe { (fds.read(), fds.add(1).read()) };
        table::fresh(a);
        table::fresh(b);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: passed on unchanged; then two ints.
    unsafe { fresh_pair(real::pipe(fds), fds) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged; then two ints.
    unsafe { fresh_pair(real::pipe2(fds, flags), fds) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn socketpair(d: c_int, t: c_int, p: c_int, fds: *mut c_int) -> c_int {
    // SAFETY: passed on unchanged; then two ints.
    unsafe { fresh_pair(real::socketpair(d, t, p, fds), fds) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn eventfd(init: c_uint, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::eventfd(init, flags) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn timerfd_create(clock: c_int, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::timerfd_create(clock, flags) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn signalfd(fd: c_int, mask: *const sigset_t, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let r = unsafe { real::signalfd(fd, mask, flags) };
    table::fresh(r);
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memfd_create(name: *const libc::c_char, flags: c_uint) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::memfd_create(name, flags) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open_2(path: *const libc::c_char, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::__open_2(path, flags) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open64_2(path: *const libc::c_char, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::__open64_2(path, flags) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat_2(dir: c_int, path: *const libc::c_char, flags: c_int) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::__openat_2(dir, path, flags) };
    table::fresh(fd);
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat64_2(
    dir: c_int,
    path: *const libc::c_char,
    flags: c_int,
) -> c_int {
    // SAFETY: passed on unchanged.
    let fd = unsafe { real::__openat64_2(dir, path, flags) };
    table::fresh(fd);
    fd
}
