//! Running a hook's body: the reentrancy bypass, no unwinding into C, and
//! the one-line warnings.

use core::cell::Cell;
use core::ffi::c_int;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::real::set_errno;

thread_local! {
    /// This thread runs shim code now: every hooked call it makes (std and
    /// smcd-std call libc's `read`, `connect`, `close`, … which resolve to
    /// our exports) passes straight through. Const-initialised and without
    /// `Drop`, so it needs no TLS destructor.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside the shim already.
pub(crate) fn busy() -> bool {
    BUSY.with(Cell::get)
}

/// What a hook body returns: the C result, or an errno.
pub(crate) type CResult = Result<isize, c_int>;

/// Run `body` as the shim: nested hooks pass through, a panic is caught
/// (warning + `EIO`), an `Err(e)` sets errno `e` and returns -1.
pub(crate) fn enter(call: &'static str, body: impl FnOnce() -> CResult) -> isize {
    let outer = BUSY.with(|b| b.replace(true));
    let r = catch_unwind(AssertUnwindSafe(body));
    BUSY.with(|b| b.set(outer));
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_errno(e);
            -1
        }
        Err(_) => {
            warn(call, "internal error (panic); the call fails with EIO");
            set_errno(libc::EIO);
            -1
        }
    }
}

/// The same for hooks that return `int`.
pub(crate) fn enter_int(call: &'static str, body: impl FnOnce() -> CResult) -> c_int {
    c_int::try_from(enter(call, body)).unwrap_or(c_int::MAX)
}

/// A C return value as a result (errno for -1).
pub(crate) fn cvt(r: isize) -> CResult {
    if r < 0 {
        Err(crate::real::errno())
    } else {
        Ok(r)
    }
}

/// The errno a TCP socket would report for `e`.
pub(crate) fn errno_of(e: &io::Error) -> c_int {
    use io::ErrorKind as K;
    if let Some(raw) = e.raw_os_error() {
        return raw;
    }
    match e.kind() {
        K::WouldBlock => libc::EAGAIN,
        K::BrokenPipe => libc::EPIPE,
        K::ConnectionReset => libc::ECONNRESET,
        K::ConnectionAborted => libc::ECONNABORTED,
        K::NotConnected => libc::ENOTCONN,
        K::TimedOut => libc::ETIMEDOUT,
        K::Interrupted => libc::EINTR,
        K::InvalidData => libc::EPROTO,
        K::InvalidInput => libc::EINVAL,
        K::Unsupported => libc::EOPNOTSUPP,
        K::OutOfMemory => libc::ENOMEM,
        _ => libc::EIO,
    }
}

/// Bit `i` set: the warning of call kind `i` was printed already.
static WARNED: AtomicU64 = AtomicU64::new(0);

/// Print `smcd-preload: CALL: what` on stderr, once per call name (first
/// 64 distinct names), through a raw write (no allocation, no hook).
pub(crate) fn warn(call: &'static str, what: &str) {
    let bit = 1u64 << (hash(call) % 64);
    if WARNED.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
        return;
    }
    let stderr = rustix::stdio::stderr();
    let mut line = [0u8; 256];
    let mut at = 0;
    for part in ["smcd-preload: ", call, ": ", what, "\n"] {
        let b = part.as_bytes();
        let n = b.len().min(line.len() - at);
        line[at..at + n].copy_from_slice(&b[..n]);
        at += n;
    }
    let _ = rustix::io::write(stderr, &line[..at]);
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
