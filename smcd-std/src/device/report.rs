//! Reports on the device socket: a [`Query`] request is answered with the
//! status `Granted` and the process's [`ProcessReport`] as one JSON object,
//! up to the end of the stream (see [`crate::query`]).

use std::io::{self, BufWriter, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, UnixStream};
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::fetch::{self, Status};
use crate::query::{ProcessReport, Query};

/// The most bytes of a report we read (a process with 100 000 streams
/// answers with about 30 MB).
const MAX_REPORT_BYTES: u64 = 64 << 20;

/// Whether the asking process may see our report: our own effective uid,
/// or root.
fn admits(sock: &UnixStream) -> bool {
    rustix::net::sockopt::socket_peercred(sock)
        .is_ok_and(|cred| cred.uid.is_root() || cred.uid == rustix::process::geteuid())
}

/// Answer `what` on `sock` (the device thread; the socket's timeouts are set).
pub(super) fn answer(sock: &UnixStream, what: Query) -> io::Result<()> {
    if !admits(sock) {
        tracing::debug!("device socket: a process of another user asked for a report");
        return fetch::answer(sock, Status::Denied, &[]);
    }
    let report = crate::query::report(what);
    fetch::answer(sock, Status::Granted, &[])?;
    let mut out = BufWriter::new(sock);
    serde_json::to_writer(&mut out, &report).map_err(io::Error::other)?;
    out.flush()
}

/// How often a report request is repeated when an application thread took
/// it (status `Busy`), and the pause in between.
const BUSY_TRIES: u32 = 5;
const BUSY_PAUSE: Duration = Duration::from_millis(2);

/// Ask the device at `addr` for `what`, within `timeout`: `None` when it
/// refuses us or does not know reports (an older smcd).
///
/// # Errors
///
/// The socket is gone or full (a stopped process), the answer was late or
/// not a report, or the device stayed busy.
pub(crate) fn ask(
    addr: &net::SocketAddr,
    what: Query,
    timeout: Duration,
) -> io::Result<Option<ProcessReport>> {
    let deadline = Instant::now() + timeout;
    for _ in 0..BUSY_TRIES {
        match ask_once(addr, what, deadline)? {
            Answer::Busy => std::thread::sleep(BUSY_PAUSE),
            Answer::Refused => return Ok(None),
            Answer::Report(r) => return Ok(Some(r)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the device stayed busy",
    ))
}

/// What one report request got.
#[derive(Debug)]
enum Answer {
    Busy,
    Refused,
    Report(ProcessReport),
}

fn ask_once(addr: &net::SocketAddr, what: Query, deadline: Instant) -> io::Result<Answer> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    if timeout.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    let target = match (addr.as_abstract_name(), addr.as_pathname()) {
        (Some(name), _) => SocketAddrUnix::new_abstract_name(name)?,
        (None, Some(path)) => SocketAddrUnix::new(path)?,
        (None, None) => return Err(io::ErrorKind::InvalidInput.into()),
    };
    // Non-blocking: a connect to a listener whose backlog is full (a
    // stopped process) fails at once instead of waiting for it.
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::connect(&fd, &target)?;
    let mut sock = UnixStream::from(fd);
    sock.set_nonblocking(false)?;
    sock.set_write_timeout(Some(timeout))?;
    sock.write_all(&fetch::query_bytes(what))?;
    let mut status = [0u8; 4];
    read_before(&mut sock, &mut status, deadline)?;
    match Status::from_u32(u32::from_le_bytes(status)) {
        Status::Granted => {}
        Status::Busy => return Ok(Answer::Busy),
        _ => return Ok(Answer::Refused),
    }
    let mut body = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        sock.set_read_timeout(Some(left))?;
        match sock.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if body.len() as u64 > MAX_REPORT_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "report too long",
            ));
        }
    }
    serde_json::from_slice(&body)
        .map(Answer::Report)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Fill `buf` from `sock` before `deadline`.
fn read_before(sock: &mut UnixStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    sock.set_read_timeout(Some(left))?;
    sock.read_exact(buf)
}
