//! The next definitions of the hooked functions (normally glibc's),
//! resolved with `dlsym(RTLD_NEXT, …)` by the constructor.
//!
//! `dlsym` may allocate, and a hook that resolved lazily while an allocator
//! initialises (jemalloc reads files while it sets itself up) could
//! deadlock: so every pointer is resolved once, in the constructor. A call
//! that arrives before it (from another library's constructor) takes a raw
//! system call through rustix where one fits (`read`, `write`, `readv`,
//! `writev`, `close`, `recv`, `send`, `listen`, `shutdown`, `dup`); the
//! rare others resolve their one pointer on the spot.

#![allow(non_upper_case_globals, clippy::missing_safety_doc)]

use core::ffi::{c_int, c_uint, c_ulong, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{
    fd_set, iovec, msghdr, nfds_t, off_t, off64_t, pollfd, sigset_t, size_t, sockaddr, socklen_t,
    ssize_t, timespec, timeval,
};

/// The address of the next definition of `name` (a NUL-terminated C
/// name), 0 when there is none.
fn lookup(name: &'static [u8]) -> usize {
    // SAFETY: `name` is NUL-terminated (every caller passes a literal with
    // "\0"); RTLD_NEXT is a valid pseudo-handle in a shared object.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) as usize }
}

fn get(slot: &AtomicUsize, name: &'static [u8]) -> usize {
    let p = slot.load(Ordering::Acquire);
    if p != 0 {
        return p;
    }
    let p = lookup(name);
    slot.store(p, Ordering::Release);
    p
}

/// Set errno.
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// errno of this thread.
pub(crate) fn errno() -> c_int {
    // SAFETY: as in `set_errno`.
    unsafe { *libc::__errno_location() }
}

/// -1 with errno `e`.
fn fail<R: From<i8>>(e: c_int) -> R {
    set_errno(e);
    R::from(-1)
}

/// One pointer-calling function; with `=> fallback`, calls before the
/// constructor take that raw system call instead.
macro_rules! real_fn {
    (@call $name:ident, $p:ident, ($($a:ident : $t:ty),*) -> $r:ty) => {{
        let $p = if $p == 0 { get(&slot::$name, concat!(stringify!($name), "\0").as_bytes()) } else { $p };
        if $p == 0 {
            return fail(libc::ENOSYS);
        }
        // SAFETY: `p` is the address of the next definition of this C
        // function, which has exactly this signature.
        let f: unsafe extern "C" fn($($t),*) -> $r = unsafe { core::mem::transmute($p) };
        // SAFETY: the caller passes what the C function requires.
        unsafe { f($($a),*) }
    }};
    ($name:ident ($($a:ident : $t:ty),*) -> $r:ty => $fb:path) => {
        /// The next definition of this function (glibc's).
        pub(crate) unsafe fn $name($($a: $t),*) -> $r {
            let p = slot::$name.load(Ordering::Acquire);
            if p == 0 {
                // SAFETY: the fallback has this function's contract.
                return unsafe { $fb($($a),*) };
            }
            real_fn!(@call $name, p, ($($a: $t),*) -> $r)
        }
    };
    ($name:ident ($($a:ident : $t:ty),*) -> $r:ty) => {
        /// The next definition of this function (glibc's).
        pub(crate) unsafe fn $name($($a: $t),*) -> $r {
            let p = slot::$name.load(Ordering::Acquire);
            real_fn!(@call $name, p, ($($a: $t),*) -> $r)
        }
    };
}

macro_rules! real_fns {
    ($( $name:ident $args:tt -> $r:ty $(=> $fb:path)? ; )*) => {
        mod slot {
            use std::sync::atomic::AtomicUsize;
            $( pub(super) static $name: AtomicUsize = AtomicUsize::new(0); )*
        }

        /// Resolve every pointer (the constructor calls this once).
        pub(crate) fn resolve_all() {
            $( slot::$name.store(lookup(concat!(stringify!($name), "\0").as_bytes()), Ordering::Release); )*
        }

        $( real_fn!($name $args -> $r $(=> $fb)?); )*
    };
}

real_fns! {
    read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => fallback::read;
    write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t => fallback::write;
    readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t => fallback::readv;
    writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t => fallback::writev;
    recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t => fallback::recv;
    send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t => fallback::send;
    recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    recvmmsg(fd: c_int, v: *mut libc::mmsghdr, n: c_uint, flags: c_int, t: *mut timespec) -> c_int;
    sendmmsg(fd: c_int, v: *mut libc::mmsghdr, n: c_uint, flags: c_int) -> c_int;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    listen(fd: c_int, backlog: c_int) -> c_int => fallback::listen;
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    shutdown(fd: c_int, how: c_int) -> c_int => fallback::shutdown;
    close(fd: c_int) -> c_int => fallback::close;
    close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
    socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    dup(fd: c_int) -> c_int => fallback::dup;
    dup2(fd: c_int, new: c_int) -> c_int;
    dup3(fd: c_int, new: c_int, flags: c_int) -> c_int;
    sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t;
    sendfile64(out: c_int, inp: c_int, off: *mut off64_t, n: size_t) -> ssize_t;
    poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    ppoll(fds: *mut pollfd, n: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int;
    select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *mut timeval) -> c_int;
    pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *const timespec, mask: *const sigset_t) -> c_int;
    fclose(f: *mut libc::FILE) -> c_int;
    creat(path: *const libc::c_char, mode: libc::mode_t) -> c_int;
    pipe(fds: *mut c_int) -> c_int;
    pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    socketpair(d: c_int, t: c_int, p: c_int, fds: *mut c_int) -> c_int;
    eventfd(init: c_uint, flags: c_int) -> c_int;
    timerfd_create(clock: c_int, flags: c_int) -> c_int;
    signalfd(fd: c_int, mask: *const sigset_t, flags: c_int) -> c_int;
    memfd_create(name: *const libc::c_char, flags: c_uint) -> c_int;
    __open_2(path: *const libc::c_char, flags: c_int) -> c_int;
    __open64_2(path: *const libc::c_char, flags: c_int) -> c_int;
    __openat_2(dir: c_int, path: *const libc::c_char, flags: c_int) -> c_int;
    __openat64_2(dir: c_int, path: *const libc::c_char, flags: c_int) -> c_int;
    setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
    epoll_create(size: c_int) -> c_int;
    epoll_create1(flags: c_int) -> c_int;
    epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut libc::epoll_event) -> c_int;
    epoll_wait(epfd: c_int, evs: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int;
    epoll_pwait(epfd: c_int, evs: *mut libc::epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int;
    epoll_pwait2(epfd: c_int, evs: *mut libc::epoll_event, max: c_int, t: *const timespec, mask: *const sigset_t) -> c_int;
    splice(i: c_int, io: *mut off64_t, o: c_int, oo: *mut off64_t, n: size_t, flags: c_uint) -> ssize_t;
}

// The variadic ones: the third argument is read and passed on as one
// machine word (an int or a pointer), which is how the x86-64 and AArch64
// Linux calling conventions pass it.

static fcntl_slot: AtomicUsize = AtomicUsize::new(0);
static open_slot: AtomicUsize = AtomicUsize::new(0);
static open64_slot: AtomicUsize = AtomicUsize::new(0);
static openat_slot: AtomicUsize = AtomicUsize::new(0);
static openat64_slot: AtomicUsize = AtomicUsize::new(0);
static fcntl64_slot: AtomicUsize = AtomicUsize::new(0);
static ioctl_slot: AtomicUsize = AtomicUsize::new(0);

/// Resolve the variadic functions (with [`resolve_all`]).
pub(crate) fn resolve_variadic() {
    fcntl_slot.store(lookup(b"fcntl\0"), Ordering::Release);
    fcntl64_slot.store(lookup(b"fcntl64\0"), Ordering::Release);
    ioctl_slot.store(lookup(b"ioctl\0"), Ordering::Release);
    open_slot.store(lookup(b"open\0"), Ordering::Release);
    open64_slot.store(lookup(b"open64\0"), Ordering::Release);
    openat_slot.store(lookup(b"openat\0"), Ordering::Release);
    openat64_slot.store(lookup(b"openat64\0"), Ordering::Release);
}

type Open = unsafe extern "C" fn(*const libc::c_char, c_int, ...) -> c_int;
type OpenAt = unsafe extern "C" fn(c_int, *const libc::c_char, c_int, ...) -> c_int;

/// glibc's `open` (`sixty_four`: `open64`); `mode` is passed on as the
/// variadic argument (read only with `O_CREAT`/`O_TMPFILE`).
pub(crate) unsafe fn open(
    path: *const libc::c_char,
    flags: c_int,
    mode: c_uint,
    sixty_four: bool,
) -> c_int {
    let p = if sixty_four { &open64_slot } else { &open_slot }.load(Ordering::Acquire);
    if p == 0 {
        // Before the constructor: the raw system call.
        // SAFETY: as openat with the current directory.
        return unsafe { fallback::openat(libc::AT_FDCWD, path, flags, mode) };
    }
    // SAFETY: `p` is glibc's open or open64, of this signature.
    let f: Open = unsafe { core::mem::transmute(p) };
    // SAFETY: the caller passes what open(2) takes.
    unsafe { f(path, flags, mode) }
}

/// glibc's `openat` (`sixty_four`: `openat64`).
pub(crate) unsafe fn openat(
    dir: c_int,
    path: *const libc::c_char,
    flags: c_int,
    mode: c_uint,
    sixty_four: bool,
) -> c_int {
    let p = if sixty_four {
        &openat64_slot
    } else {
        &openat_slot
    }
    .load(Ordering::Acquire);
    if p == 0 {
        // Before the constructor: the raw system call.
        // SAFETY: as the caller promises.
        return unsafe { fallback::openat(dir, path, flags, mode) };
    }
    // SAFETY: `p` is glibc's openat or openat64, of this signature.
    let f: OpenAt = unsafe { core::mem::transmute(p) };
    // SAFETY: the caller passes what openat(2) takes.
    unsafe { f(dir, path, flags, mode) }
}

type Fcntl = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
type Ioctl = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;

/// glibc's `fcntl` (`sixty_four`: `fcntl64`).
pub(crate) unsafe fn fcntl(fd: c_int, cmd: c_int, arg: usize, sixty_four: bool) -> c_int {
    let p = if sixty_four {
        get(&fcntl64_slot, b"fcntl64\0")
    } else {
        get(&fcntl_slot, b"fcntl\0")
    };
    let p = if p == 0 {
        get(&fcntl_slot, b"fcntl\0")
    } else {
        p
    };
    if p == 0 {
        return fail(libc::ENOSYS);
    }
    // SAFETY: `p` is glibc's fcntl or fcntl64, both of this signature.
    let f: Fcntl = unsafe { core::mem::transmute(p) };
    // SAFETY: the caller passes the argument the command expects.
    unsafe { f(fd, cmd, arg) }
}

/// glibc's `ioctl`.
pub(crate) unsafe fn ioctl(fd: c_int, req: c_ulong, arg: usize) -> c_int {
    let p = get(&ioctl_slot, b"ioctl\0");
    if p == 0 {
        return fail(libc::ENOSYS);
    }
    // SAFETY: `p` is glibc's ioctl.
    let f: Ioctl = unsafe { core::mem::transmute(p) };
    // SAFETY: the caller passes the argument the request expects.
    unsafe { f(fd, req, arg) }
}

/// Raw system calls for the calls that may come before the constructor.
mod fallback {
    use core::ffi::{c_int, c_void};
    use std::os::fd::{BorrowedFd, IntoRawFd, OwnedFd};

    use libc::{iovec, size_t, ssize_t};
    use rustix::net::{RecvFlags, SendFlags, Shutdown};

    use super::fail;

    /// `n` bytes at `p` as a buffer rustix fills.
    ///
    /// # Safety
    ///
    /// `p` points to `n` writable bytes unless `n` is 0.
    unsafe fn raw_buf<'a>(p: *mut c_void, n: size_t) -> &'a mut [core::mem::MaybeUninit<u8>] {
        if n == 0 || p.is_null() {
            return &mut [];
        }
        // SAFETY: as the caller promises.
        unsafe { core::slice::from_raw_parts_mut(p.cast(), n) }
    }

    fn done(r: rustix::io::Result<usize>) -> ssize_t {
        match r {
            Ok(n) => ssize_t::try_from(n).unwrap_or(ssize_t::MAX),
            Err(e) => fail(e.raw_os_error()),
        }
    }

    fn ok(r: rustix::io::Result<()>) -> c_int {
        match r {
            Ok(()) => 0,
            Err(e) => fail(e.raw_os_error()),
        }
    }

    /// A borrowed fd for a raw number from C, `None` for a negative one.
    fn fd_of(fd: c_int) -> Option<BorrowedFd<'static>> {
        // SAFETY: the number came from the caller, who keeps it open for
        // the call; the kernel reports EBADF for a closed one.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    pub(super) unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        // SAFETY: the caller lends `n` writable bytes at `buf`.
        let out = unsafe { raw_buf(buf, n) };
        done(rustix::io::read(fd, out).map(|(init, _)| init.len()))
    }

    pub(super) unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        if n == 0 {
            return 0;
        }
        // SAFETY: the caller passes `n` readable bytes at `buf`.
        let data = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), n) };
        done(rustix::io::write(fd, data))
    }

    pub(super) unsafe fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        let Ok(n) = usize::try_from(n) else {
            return fail(libc::EINVAL);
        };
        if n == 0 {
            return 0;
        }
        // SAFETY: IoSliceMut is ABI-compatible with iovec on Unix, and the
        // caller passes `n` valid iovecs.
        let bufs = unsafe { core::slice::from_raw_parts_mut(iov.cast_mut().cast(), n) };
        done(rustix::io::readv(fd, bufs))
    }

    pub(super) unsafe fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        let Ok(n) = usize::try_from(n) else {
            return fail(libc::EINVAL);
        };
        if n == 0 {
            return 0;
        }
        // SAFETY: IoSlice is ABI-compatible with iovec on Unix.
        let bufs = unsafe { core::slice::from_raw_parts(iov.cast(), n) };
        done(rustix::io::writev(fd, bufs))
    }

    pub(super) unsafe fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        #[allow(clippy::cast_sign_loss)]
        let flags = RecvFlags::from_bits_retain(flags as u32);
        // SAFETY: the caller lends `n` writable bytes at `buf`.
        let out = unsafe { raw_buf(buf, n) };
        done(rustix::net::recv(fd, out, flags).map(|((init, _), _)| init.len()))
    }

    pub(super) unsafe fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        if n == 0 {
            return 0;
        }
        // SAFETY: the caller passes `n` readable bytes at `buf`.
        let data = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), n) };
        #[allow(clippy::cast_sign_loss)]
        let flags = SendFlags::from_bits_retain(flags as u32);
        done(rustix::net::send(fd, data, flags))
    }

    pub(super) unsafe fn listen(fd: c_int, backlog: c_int) -> c_int {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        ok(rustix::net::listen(fd, backlog))
    }

    pub(super) unsafe fn shutdown(fd: c_int, how: c_int) -> c_int {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        let how = match how {
            libc::SHUT_RD => Shutdown::Read,
            libc::SHUT_WR => Shutdown::Write,
            libc::SHUT_RDWR => Shutdown::Both,
            _ => return fail(libc::EINVAL),
        };
        ok(rustix::net::shutdown(fd, how))
    }

    pub(super) unsafe fn close(fd: c_int) -> c_int {
        // SAFETY: the caller gives the number up, as close(2) requires.
        ok(unsafe { rustix::io::try_close(fd) })
    }

    /// `openat(2)` through rustix.
    ///
    /// # Safety
    ///
    /// `path` is a NUL-terminated string (or null: EFAULT).
    pub(super) unsafe fn openat(
        dir: c_int,
        path: *const libc::c_char,
        flags: c_int,
        mode: core::ffi::c_uint,
    ) -> c_int {
        if path.is_null() {
            return fail(libc::EFAULT);
        }
        // SAFETY: a NUL-terminated string, as the caller promises.
        let path = unsafe { core::ffi::CStr::from_ptr(path) };
        #[allow(clippy::cast_sign_loss)]
        let oflags = rustix::fs::OFlags::from_bits_retain(flags as u32);
        let mode = rustix::fs::Mode::from_bits_retain(mode);
        let r = if dir == libc::AT_FDCWD {
            rustix::fs::openat(rustix::fs::CWD, path, oflags, mode)
        } else if dir >= 0 {
            // SAFETY: the caller keeps `dir` open for the call.
            let d = unsafe { BorrowedFd::borrow_raw(dir) };
            rustix::fs::openat(d, path, oflags, mode)
        } else {
            return fail(libc::EBADF);
        };
        match r {
            Ok(fd) => OwnedFd::into_raw_fd(fd),
            Err(e) => fail(e.raw_os_error()),
        }
    }

    pub(super) unsafe fn dup(fd: c_int) -> c_int {
        let Some(fd) = fd_of(fd) else {
            return fail(libc::EBADF);
        };
        match rustix::io::dup(fd) {
            Ok(new) => OwnedFd::into_raw_fd(new),
            Err(e) => fail(e.raw_os_error()),
        }
    }
}
