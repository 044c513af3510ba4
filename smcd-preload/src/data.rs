//! The data calls on an accelerated fd, in TCP's terms: what `read`,
//! `recv`, `write`, `send`, … do when the bytes move through an smcd stream.

use core::ffi::c_int;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};

use smcd_std::SmcStream;

use crate::guard::{CResult, errno_of};

/// Flags of a receive call the shim honours.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecvOpts {
    pub(crate) nonblock: bool,
    pub(crate) peek: bool,
    pub(crate) waitall: bool,
}

impl RecvOpts {
    pub(crate) fn of(nonblock: bool, flags: c_int) -> Self {
        Self {
            nonblock: nonblock || flags & libc::MSG_DONTWAIT != 0,
            peek: flags & libc::MSG_PEEK != 0,
            waitall: flags & libc::MSG_WAITALL != 0,
        }
    }
}

/// Flags of a send call the shim honours (`MSG_MORE` needs nothing: every
/// byte is in the peer's ring at once).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendOpts {
    pub(crate) nonblock: bool,
    pub(crate) nosignal: bool,
}

impl SendOpts {
    pub(crate) fn of(nonblock: bool, flags: c_int) -> Self {
        Self {
            nonblock: nonblock || flags & libc::MSG_DONTWAIT != 0,
            nosignal: flags & libc::MSG_NOSIGNAL != 0,
        }
    }
}

fn count(n: usize) -> CResult {
    Ok(isize::try_from(n).unwrap_or(isize::MAX))
}

/// Receive flags the shim cannot serve on an smcd stream.
pub(crate) const RECV_UNSUPPORTED: c_int = libc::MSG_OOB | libc::MSG_ERRQUEUE;
/// Send flags the shim cannot serve on an smcd stream.
pub(crate) const SEND_UNSUPPORTED: c_int = libc::MSG_OOB;

/// One receive into `buf`.
pub(crate) fn recv(st: &SmcStream, buf: &mut [u8], o: RecvOpts) -> CResult {
    if buf.is_empty() {
        return Ok(0);
    }
    if o.peek {
        return st
            .peek(buf, o.nonblock)
            .map_err(|e| errno_of(&e))
            .and_then(count);
    }
    let first = if o.nonblock {
        st.try_read(buf)
    } else {
        (&mut &*st).read(buf)
    };
    let mut got = first.map_err(|e| errno_of(&e))?;
    if o.waitall && !o.nonblock {
        while got > 0 && got < buf.len() {
            match (&mut &*st).read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    }
    count(got)
}

/// A scattering receive: fills the buffers in turn, waiting (when it may)
/// only for the first byte.
pub(crate) fn recv_vectored(st: &SmcStream, bufs: &mut [IoSliceMut<'_>], o: RecvOpts) -> CResult {
    let mut total = 0usize;
    let mut waited = false;
    for b in bufs.iter_mut().filter(|b| !b.is_empty()) {
        let opts = RecvOpts {
            nonblock: o.nonblock || (waited && !o.waitall),
            ..o
        };
        let r = recv(st, b, opts);
        waited = true;
        match r {
            Ok(n) => {
                let n = usize::try_from(n).unwrap_or(0);
                total += n;
                if n < b.len() || o.peek {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    count(total)
}

/// The error of a send, raising SIGPIPE for EPIPE as TCP does.
fn send_error(e: &io::Error, o: SendOpts) -> c_int {
    let errno = errno_of(e);
    let errno = if errno == libc::ECONNRESET || errno == libc::ENOTCONN {
        // The peer closed: TCP reports EPIPE to a writer.
        libc::EPIPE
    } else {
        errno
    };
    if errno == libc::EPIPE && !o.nosignal {
        // SAFETY: raise has no preconditions.
        unsafe { libc::raise(libc::SIGPIPE) };
    }
    errno
}

/// One send of `data`: blocking sends all of it (as a blocking TCP socket
/// does), non-blocking as much as fits.
pub(crate) fn send(st: &SmcStream, data: &[u8], o: SendOpts) -> CResult {
    if data.is_empty() {
        return Ok(0);
    }
    let mut done = 0usize;
    while done < data.len() {
        let r = if o.nonblock {
            st.try_write(&data[done..])
        } else {
            (&mut &*st).write(&data[done..])
        };
        match r {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if done > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if done > 0 => {
                let _ = e;
                break;
            }
            Err(e) => return Err(send_error(&e, o)),
        }
    }
    count(done)
}

/// A gathering send.
pub(crate) fn send_vectored(st: &SmcStream, bufs: &[IoSlice<'_>], o: SendOpts) -> CResult {
    let mut total = 0usize;
    for b in bufs.iter().filter(|b| !b.is_empty()) {
        match send(st, b, o) {
            Ok(n) => {
                let n = usize::try_from(n).unwrap_or(0);
                total += n;
                if n < b.len() {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    count(total)
}

/// `sendfile` to an smcd stream: read the file at its offset and send.
pub(crate) fn sendfile(
    st: &SmcStream,
    file: c_int,
    off: Option<&mut i64>,
    n: usize,
    o: SendOpts,
) -> CResult {
    let file = crate::sock::fd_of(file);
    let (mut pos, explicit) = match off.as_deref() {
        Some(&p) => (u64::try_from(p).map_err(|_| libc::EINVAL)?, true),
        None => (
            rustix::fs::seek(file, rustix::fs::SeekFrom::Current(0))
                .map_err(|e| e.raw_os_error())?,
            false,
        ),
    };
    let mut buf = vec![0u8; n.clamp(1, 256 * 1024)];
    let mut sent = 0usize;
    let mut err = None;
    while sent < n {
        let want = buf.len().min(n - sent);
        let got = match rustix::io::pread(file, &mut buf[..want], pos) {
            Ok(0) => break,
            Ok(g) => g,
            Err(e) => {
                err = Some(e.raw_os_error());
                break;
            }
        };
        match send(st, &buf[..got], o) {
            Ok(w) => {
                let w = usize::try_from(w).unwrap_or(0);
                sent += w;
                pos += w as u64;
                if w < got {
                    break;
                }
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    if explicit {
        if let Some(p) = off {
            *p = i64::try_from(pos).unwrap_or(i64::MAX);
        }
    } else {
        let _ = rustix::fs::seek(file, rustix::fs::SeekFrom::Start(pos));
    }
    match err {
        Some(e) if sent == 0 => Err(e),
        _ => count(sent),
    }
}

/// One immutable byte slice from C.
///
/// # Safety
///
/// `p` points to `n` readable bytes unless `n` is 0.
pub(crate) unsafe fn bytes<'a>(p: *const core::ffi::c_void, n: usize) -> &'a [u8] {
    if n == 0 || p.is_null() {
        return &[];
    }
    // SAFETY: as the caller promises.
    unsafe { core::slice::from_raw_parts(p.cast(), n) }
}

/// One mutable byte slice from C.
///
/// # Safety
///
/// `p` points to `n` writable bytes unless `n` is 0.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut core::ffi::c_void, n: usize) -> &'a mut [u8] {
    if n == 0 || p.is_null() {
        return &mut [];
    }
    // SAFETY: as the caller promises.
    unsafe { core::slice::from_raw_parts_mut(p.cast(), n) }
}

/// An iovec array from C as I/O slices.
///
/// # Safety
///
/// `iov` points to `n` valid iovecs (or `n` is 0).
pub(crate) unsafe fn iovecs<'a>(iov: *const libc::iovec, n: usize) -> &'a [IoSlice<'a>] {
    if n == 0 || iov.is_null() {
        return &[];
    }
    // SAFETY: IoSlice is ABI-compatible with iovec on Unix.
    unsafe { core::slice::from_raw_parts(iov.cast(), n) }
}

/// An iovec array from C as mutable I/O slices.
///
/// # Safety
///
/// `iov` points to `n` valid iovecs of writable memory (or `n` is 0).
pub(crate) unsafe fn iovecs_mut<'a>(iov: *const libc::iovec, n: usize) -> &'a mut [IoSliceMut<'a>] {
    if n == 0 || iov.is_null() {
        return &mut [];
    }
    // SAFETY: IoSliceMut is ABI-compatible with iovec on Unix; the array
    // is the caller's to lend for the call.
    unsafe { core::slice::from_raw_parts_mut(iov.cast_mut().cast(), n) }
}
