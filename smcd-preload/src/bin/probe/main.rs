//! `smcd-shim-probe`: a plain `std::net` program (no smcd in it) that the
//! preload tests run under `smcd run` / `LD_PRELOAD`.
//!
//! `smcd-shim-probe server MODE BYTES` listens on 127.0.0.1 (port printed as
//! `port N`), accepts one connection and runs the exchange as the server;
//! `smcd-shim-probe client MODE PORT BYTES` connects and runs it as the
//! client. The client sends BYTES of a pattern; the server answers with the
//! checksum it computed (8 bytes) and BYTES of another pattern, which the
//! client checks. MODE: `block` (blocking calls), `poll` (non-blocking
//! sockets and poll(2)), `select` (non-blocking and select(2)), `epoll`
//! (level-triggered, MOD between IN and OUT), `epoll-churn`
//! (level-triggered, DEL and ADD with new data around every wait),
//! `epoll-et` (one edge-triggered IN|OUT|RDHUP registration). Prints `ok`
//! and exits 0 when every byte was right. `feat-server` / `feat-client
//! PORT`: the calls of module `feat`; `signals PORT` (a client of
//! `feat-server`): signal delivery beside the shim's threads (module
//! `signals`).
//!
//! `crash-survivor` and `crash-peer …`: the roles of the crash test (module
//! `crash`).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

mod cork;
mod crash;
mod feat;
mod signals;

/// The pattern byte at `i` of stream `seed`.
fn pattern(seed: u64, i: u64) -> u8 {
    let mut x = (i / 8)
        .wrapping_add(seed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    x.to_le_bytes()[(i % 8) as usize]
}

#[derive(Default)]
struct Fnv(u64);

impl Fnv {
    fn eat(&mut self, b: &[u8]) {
        if self.0 == 0 {
            self.0 = 0xcbf2_9ce4_8422_2325;
        }
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Block,
    Poll,
    Select,
    /// Level-triggered epoll, switched between IN and OUT with MOD (redis).
    Epoll,
    /// Level-triggered epoll, deleted and added again (with new data)
    /// around every wait (redis-benchmark).
    EpollChurn,
    /// One edge-triggered registration for IN|OUT|RDHUP (nginx).
    EpollEt,
}

/// The data of the churning registration, new for every ADD.
static CHURN_DATA: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

/// `epoll_ctl` that must fail with `errno`.
fn ctl_fails(ep: i32, op: i32, fd: i32, errno: i32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 1,
    };
    // SAFETY: a valid event.
    let r = unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) };
    if r == -1 && io::Error::last_os_error().raw_os_error() == Some(errno) {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "epoll_ctl op {op} gave {r} ({}), not errno {errno}",
        io::Error::last_os_error()
    )))
}

/// Churn: delete the registration (a second DEL and a MOD then fail as on
/// the kernel), and return the data of a fresh ADD.
fn churn(ep: i32, fd: i32, registered: bool) -> io::Result<u64> {
    if registered {
        // SAFETY: DEL ignores the event.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        ctl_fails(ep, libc::EPOLL_CTL_DEL, fd, libc::ENOENT)?;
        ctl_fails(ep, libc::EPOLL_CTL_MOD, fd, libc::ENOENT)?;
    }
    Ok(CHURN_DATA.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

thread_local! {
    /// The epoll instance of this thread and the fd registered in it.
    static EPOLL: std::cell::Cell<Option<(i32, i32)>> = const { std::cell::Cell::new(None) };
}

fn epoll_wait_for(fd: i32, out: bool, edge: bool, churning: bool) -> io::Result<()> {
    let want = if out { libc::EPOLLOUT } else { libc::EPOLLIN } as u32;
    let (ep, registered) = match EPOLL.get() {
        Some((ep, f)) => (ep, f == fd),
        None => {
            // SAFETY: plain call.
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if ep < 0 {
                return Err(io::Error::last_os_error());
            }
            (ep, false)
        }
    };
    let events = if edge {
        (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32
    } else {
        want
    };
    let mut expect = 77;
    if !registered || !edge {
        let mut op = if registered {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        if churning {
            expect = churn(ep, fd, registered)?;
            op = libc::EPOLL_CTL_ADD;
        }
        let mut ev = libc::epoll_event {
            events,
            u64: expect,
        };
        // SAFETY: a valid event.
        if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        if churning {
            ctl_fails(ep, libc::EPOLL_CTL_ADD, fd, libc::EEXIST)?;
        }
        EPOLL.set(Some((ep, fd)));
    }
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
    loop {
        // SAFETY: four writable events.
        let n = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 4, 10_000) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::Error::new(ErrorKind::TimedOut, "epoll_wait timed out"));
        }
        let e = evs[0];
        let (got, data) = (e.events, e.u64);
        if data != expect {
            return Err(io::Error::other(format!(
                "epoll_wait returned data {data}, not {expect}"
            )));
        }
        // Edge-triggered: any event means "retry" (the caller retries
        // until EAGAIN); level-triggered must report what was asked.
        if edge || got & (want | (libc::EPOLLHUP | libc::EPOLLERR) as u32) != 0 {
            return Ok(());
        }
    }
}

/// Wait until `fd` is readable (`out`: writable).
fn wait(mode: Mode, fd: i32, out: bool) -> io::Result<()> {
    match mode {
        Mode::Block => Ok(()),
        Mode::Epoll => epoll_wait_for(fd, out, false, false),
        Mode::EpollChurn => epoll_wait_for(fd, out, false, true),
        Mode::EpollEt => epoll_wait_for(fd, out, true, false),
        Mode::Poll => {
            let events = if out { libc::POLLOUT } else { libc::POLLIN };
            let mut p = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, 10_000) };
            match r {
                1 => Ok(()),
                0 => Err(io::Error::new(ErrorKind::TimedOut, "poll timed out")),
                _ => Err(io::Error::last_os_error()),
            }
        }
        Mode::Select => {
            // SAFETY: fd_set is plain data; FD_ZERO/FD_SET initialise it.
            let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
            // SAFETY: as above; fd < FD_SETSIZE in these tests.
            unsafe {
                libc::FD_ZERO(&mut set);
                libc::FD_SET(fd, &mut set);
            }
            let mut tv = libc::timeval {
                tv_sec: 10,
                tv_usec: 0,
            };
            let (r, w) = if out {
                (std::ptr::null_mut(), &raw mut set)
            } else {
                (&raw mut set, std::ptr::null_mut())
            };
            // SAFETY: valid sets and timeval.
            let n = unsafe { libc::select(fd + 1, r, w, std::ptr::null_mut(), &mut tv) };
            match n {
                1 => Ok(()),
                0 => Err(io::Error::new(ErrorKind::TimedOut, "select timed out")),
                _ => Err(io::Error::last_os_error()),
            }
        }
    }
}

fn send_all(s: &mut TcpStream, mode: Mode, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match s.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait(mode, s.as_raw_fd(), true)?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read into `buf` until full (`Ok(false)` at EOF before).
fn recv_full(s: &mut TcpStream, mode: Mode, buf: &mut [u8]) -> io::Result<bool> {
    let mut at = 0;
    while at < buf.len() {
        match s.read(&mut buf[at..]) {
            Ok(0) => return Ok(false),
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait(mode, s.as_raw_fd(), false)?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

const CHUNK: u64 = 64 * 1024;

fn send_pattern(s: &mut TcpStream, mode: Mode, seed: u64, bytes: u64) -> io::Result<()> {
    let mut i = 0;
    let mut buf = vec![0u8; CHUNK as usize];
    while i < bytes {
        let n = CHUNK.min(bytes - i);
        for (k, b) in buf[..n as usize].iter_mut().enumerate() {
            *b = pattern(seed, i + k as u64);
        }
        send_all(s, mode, &buf[..n as usize])?;
        i += n;
    }
    Ok(())
}

/// What the server does around `fork`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fork {
    No,
    /// The child serves the connection; the parent closes its copy at once
    /// and waits for the child.
    ChildServes,
    /// A child that holds the connection exits at once (through exit(3));
    /// the parent serves it.
    ChildExits,
    /// The same, but the child leaves through _exit(2) (no exit handlers,
    /// as redis's BGSAVE child does).
    ChildExitsRaw,
}

fn server(mode: Mode, bytes: u64, fork: Fork) -> io::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("port {}", l.local_addr()?.port());
    io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    if fork != Fork::No {
        // SAFETY: the probe is single-threaded here.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        let child = pid == 0;
        match (fork, child) {
            (Fork::ChildExitsRaw, true) => {
                // SAFETY: leaves at once, without exit handlers.
                unsafe { libc::_exit(0) };
            }
            (Fork::ChildServes, false) | (Fork::ChildExits, true) => {
                drop(s);
                drop(l);
                if child {
                    std::process::exit(0);
                }
                let mut status = 0;
                // SAFETY: our child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                return if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::other("the child failed"))
                };
            }
            (Fork::ChildExits | Fork::ChildExitsRaw, false) => {
                let mut status = 0;
                // SAFETY: our child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
            _ => {}
        }
    }
    s.set_nonblocking(mode != Mode::Block)?;
    let mut sum = Fnv::default();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut got = 0;
    while got < bytes {
        let n = CHUNK.min(bytes - got) as usize;
        if !recv_full(&mut s, mode, &mut buf[..n])? {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "client stopped early",
            ));
        }
        sum.eat(&buf[..n]);
        got += n as u64;
    }
    send_all(&mut s, mode, &sum.0.to_le_bytes())?;
    send_pattern(&mut s, mode, 2, bytes)?;
    // The client's EOF ends the exchange.
    let mut rest = [0u8; 16];
    if recv_full(&mut s, mode, &mut rest[..1])? {
        return Err(io::Error::other("bytes after the exchange"));
    }
    drop(s);
    if fork != Fork::No {
        // The close above must reach the client now, not at our exit.
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    Ok(())
}

/// A non-blocking connect (EINPROGRESS, then the mode's wait for
/// writable, then SO_ERROR), as event-driven clients do it.
fn connect_nonblocking(mode: Mode, port: u16) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain calls on a socket this function owns.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = TcpStream::from_raw_fd(fd);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
            wait(mode, fd, true)?;
            if let Some(e) = s.take_error()? {
                return Err(e);
            }
        }
        Ok(s)
    }
}

fn client(mode: Mode, port: u16, bytes: u64) -> io::Result<()> {
    let mut s = if mode == Mode::Block {
        TcpStream::connect(("127.0.0.1", port))?
    } else {
        connect_nonblocking(mode, port)?
    };
    s.set_nonblocking(mode != Mode::Block)?;
    let mut expect = Fnv::default();
    let mut i = 0;
    while i < bytes {
        let n = CHUNK.min(bytes - i);
        let chunk: Vec<u8> = (i..i + n).map(|k| pattern(1, k)).collect();
        expect.eat(&chunk);
        i += n;
    }
    send_pattern(&mut s, mode, 1, bytes)?;
    let mut sum = [0u8; 8];
    if !recv_full(&mut s, mode, &mut sum)? {
        return Err(io::Error::new(ErrorKind::UnexpectedEof, "no checksum"));
    }
    if u64::from_le_bytes(sum) != expect.0 {
        return Err(io::Error::other("the server saw other bytes"));
    }
    let mut buf = vec![0u8; CHUNK as usize];
    let mut got = 0;
    while got < bytes {
        let n = CHUNK.min(bytes - got) as usize;
        if !recv_full(&mut s, mode, &mut buf[..n])? {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "server stopped early",
            ));
        }
        for (k, b) in buf[..n].iter().enumerate() {
            if *b != pattern(2, got + k as u64) {
                return Err(io::Error::other(format!(
                    "wrong byte at {}",
                    got + k as u64
                )));
            }
        }
        got += n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    // The server closes once it read our EOF: a clean EOF, soon.
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    let mut one = [0u8; 1];
    match s.read(&mut one) {
        Ok(0) => Ok(()),
        Ok(_) => Err(io::Error::other("bytes after the exchange")),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("no clean EOF from the server: {e}"),
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = |m: &str| match m {
        "poll" => Mode::Poll,
        "select" => Mode::Select,
        "epoll" => Mode::Epoll,
        "epoll-et" => Mode::EpollEt,
        "epoll-churn" => Mode::EpollChurn,
        _ => Mode::Block,
    };
    let num = |s: &str| s.parse::<u64>().unwrap_or(0);
    let r = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["server", m, bytes] => server(mode(m), num(bytes), Fork::No),
        ["server", m, bytes, "fork"] => server(mode(m), num(bytes), Fork::ChildServes),
        ["server", m, bytes, "fork-exit"] => server(mode(m), num(bytes), Fork::ChildExits),
        ["server", m, bytes, "fork-_exit"] => server(mode(m), num(bytes), Fork::ChildExitsRaw),
        ["feat-server"] => feat::server(),
        ["crash-survivor"] => crash::survivor(),
        ["crash-peer", rest @ ..] => crash::peer(rest),
        ["cork-server"] => cork::server(),
        ["cork-client", port] => cork::client(u16::try_from(num(port)).unwrap_or(0)),
        ["feat-client", port] => feat::client(u16::try_from(num(port)).unwrap_or(0)),
        ["signals", port] => signals::client(u16::try_from(num(port)).unwrap_or(0)),
        ["client", m, port, bytes] => {
            client(mode(m), u16::try_from(num(port)).unwrap_or(0), num(bytes))
        }
        _ => {
            eprintln!(
                "usage: smcd-shim-probe server MODE BYTES | client MODE PORT BYTES | signals PORT"
            );
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("probe: {e}");
            ExitCode::FAILURE
        }
    }
}
