//! `smcd-shim-probe signals PORT` (under the shim, against `feat-server`):
//! after one SMC-D connection, opened and closed, the shim has threads of
//! its own in this process. A signal sent to the process while the main
//! thread blocks it must then stay pending until the main thread takes it —
//! what nginx's master relies on: it blocks SIGCHLD and SIGQUIT, does its
//! work, and waits for them in sigsuspend. A shim thread that took the
//! signal would run the handler there and leave the master asleep.

use std::ffi::c_int;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The thread id that ran the handler (0: none yet).
static TAKER: AtomicI32 = AtomicI32::new(0);

extern "C" fn note_taker(_: c_int) {
    // SAFETY: gettid(2) is async-signal-safe and cannot fail.
    TAKER.store(unsafe { libc::gettid() }, Ordering::SeqCst);
}

/// The names of this process's threads that the shim started (every
/// thread but the main one: the probe starts none).
fn shim_threads() -> io::Result<Vec<String>> {
    let main = std::process::id().to_string();
    let mut names = Vec::new();
    for t in std::fs::read_dir("/proc/self/task")? {
        let t = t?;
        let comm = std::fs::read_to_string(t.path().join("comm"))?;
        if t.file_name() != main.as_str() {
            names.push(comm.trim().to_owned());
        }
    }
    Ok(names)
}

fn os(what: &str, r: c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!("{what} failed")))
    }
}

pub(crate) fn client(port: u16) -> io::Result<()> {
    {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello)?;
        s.write_all(b"x")?;
        s.read_exact(&mut hello[..1])?;
    }
    let threads = shim_threads()?;
    if threads.is_empty() {
        return Err(io::Error::other("no shim thread in this process"));
    }
    // SAFETY: a zeroed sigaction with a plain handler and an empty mask,
    // and a set built with sigemptyset/sigaddset before it is used.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = note_taker as extern "C" fn(c_int) as usize;
        os("sigemptyset", libc::sigemptyset(&mut sa.sa_mask))?;
        os(
            "sigaction",
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()),
        )?;
        let mut set: libc::sigset_t = std::mem::zeroed();
        os("sigemptyset", libc::sigemptyset(&mut set))?;
        os("sigaddset", libc::sigaddset(&mut set, libc::SIGUSR1))?;
        os(
            "block",
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
        )?;
        os("kill", libc::kill(libc::getpid(), libc::SIGUSR1))?;
        // Time for another thread to take it, if one would.
        std::thread::sleep(Duration::from_millis(50));
        os(
            "unblock",
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()),
        )?;
    }
    let end = Instant::now() + Duration::from_secs(5);
    while TAKER.load(Ordering::SeqCst) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: as above.
    let me = unsafe { libc::gettid() };
    match TAKER.load(Ordering::SeqCst) {
        0 => Err(io::Error::other("the signal was never handled")),
        t if t == me => Ok(()),
        t => Err(io::Error::other(format!(
            "thread {t}, not the main thread {me}, took the signal (threads: {threads:?})"
        ))),
    }
}
