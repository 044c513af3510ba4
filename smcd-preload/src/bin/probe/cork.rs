//! `cork-server` / `cork-client PORT`: TCP_CORK around writes must never
//! keep bytes from a peer that sleeps in a blocking read. The server corks,
//! writes twice and uncorks (the client wakes with both parts); corks,
//! writes and then blocks in its own read for the answer without uncorking
//! (the wait releases the held ring); corks, writes and closes (the close
//! delivers). Run with `SMCD_SPIN_US=0` so each blocked read sleeps on the
//! doorbell at once, and the server gives the client time to fall asleep
//! before it writes: a ring that is never rung leaves the read asleep until
//! its timeout (the bytes are in the DMB, so only the time tells).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long a read may wait before the probe fails (a liveness bound, not
/// a speed test): a delivery takes milliseconds even on a loaded 2-core
/// machine, a lost ring takes the whole socket timeout.
const READ_LIMIT: Duration = Duration::from_secs(5);

/// Time for the client to go to sleep in its read before the server writes.
const FALL_ASLEEP: Duration = Duration::from_millis(100);

fn set_cork(s: &TcpStream, on: bool) -> io::Result<()> {
    let v: libc::c_int = on.into();
    // SAFETY: a live socket and an int option of its size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn read_exact(s: &mut TcpStream, n: usize, what: &str) -> io::Result<Vec<u8>> {
    let begun = Instant::now();
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf)
        .map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))?;
    in_time(begun, what)?;
    Ok(buf)
}

/// A read that ended only with its socket timeout (after a last look found
/// the bytes) slept through a ring that never came.
fn in_time(begun: Instant, what: &str) -> io::Result<()> {
    if begun.elapsed() < READ_LIMIT {
        Ok(())
    } else {
        Err(io::Error::new(
            ErrorKind::TimedOut,
            format!("{what}: woke only at the read timeout (no ring)"),
        ))
    }
}

fn expect(got: &[u8], want: &[u8], what: &str) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("{what}: got {got:?}, not {want:?}"),
        ))
    }
}

pub(crate) fn server() -> io::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("port {}", l.local_addr()?.port());
    io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    s.set_read_timeout(Some(READ_LIMIT))?;
    // The client tells when it is about to sleep in its read.
    expect(&read_exact(&mut s, 2, "go 1")?, b"go", "go 1")?;
    std::thread::sleep(FALL_ASLEEP);
    set_cork(&s, true)?;
    s.write_all(b"head")?;
    s.write_all(b"body")?;
    set_cork(&s, false)?;
    expect(&read_exact(&mut s, 2, "go 2")?, b"go", "go 2")?;
    std::thread::sleep(FALL_ASLEEP);
    set_cork(&s, true)?;
    s.write_all(b"ping")?;
    // Still corked: this read waits for an answer to the held bytes.
    expect(&read_exact(&mut s, 4, "answer")?, b"pong", "answer")?;
    expect(&read_exact(&mut s, 2, "go 3")?, b"go", "go 3")?;
    std::thread::sleep(FALL_ASLEEP);
    s.write_all(b"last")?;
    drop(s);
    println!("ok");
    Ok(())
}

pub(crate) fn client(port: u16) -> io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(READ_LIMIT))?;
    s.write_all(b"go")?;
    expect(
        &read_exact(&mut s, 8, "corked parts")?,
        b"headbody",
        "corked parts",
    )?;
    s.write_all(b"go")?;
    expect(&read_exact(&mut s, 4, "held ping")?, b"ping", "held ping")?;
    s.write_all(b"pong")?;
    s.write_all(b"go")?;
    let begun = Instant::now();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .map_err(|e| io::Error::new(e.kind(), format!("close while corked: {e}")))?;
    in_time(begun, "close while corked")?;
    expect(&rest, b"last", "close while corked")?;
    println!("ok");
    Ok(())
}
