//! `smcd-shim-probe`: a plain `std::net` program (no smcd in it) that the
//! preload tests run under `smcd run` / `LD_PRELOAD`.
//!
//! `smcd-shim-probe server MODE BYTES` listens on 127.0.0.1 (port printed as
//! `port N`), accepts one connection and runs the exchange as the server;
//! `smcd-shim-probe client MODE PORT BYTES` connects and runs it as the
//! client. The client sends BYTES of a pattern; the server answers with the
//! checksum it computed (8 bytes) and BYTES of another pattern, which the
//! client checks. MODE: `block` (blocking calls), `poll` (non-blocking
//! sockets and poll(2)), `select` (non-blocking and select(2)). Prints `ok`
//! and exits 0 when every byte was right.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

mod feat;

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
}

/// Wait until `fd` is readable (`out`: writable).
fn wait(mode: Mode, fd: i32, out: bool) -> io::Result<()> {
    match mode {
        Mode::Block => Ok(()),
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

fn server(mode: Mode, bytes: u64) -> io::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("port {}", l.local_addr()?.port());
    io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
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
    Ok(())
}

fn client(mode: Mode, port: u16, bytes: u64) -> io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
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
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = |m: &str| match m {
        "poll" => Mode::Poll,
        "select" => Mode::Select,
        _ => Mode::Block,
    };
    let num = |s: &str| s.parse::<u64>().unwrap_or(0);
    let r = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["server", m, bytes] => server(mode(m), num(bytes)),
        ["feat-server"] => feat::server(),
        ["feat-client", port] => feat::client(u16::try_from(num(port)).unwrap_or(0)),
        ["client", m, port, bytes] => {
            client(mode(m), u16::try_from(num(port)).unwrap_or(0), num(bytes))
        }
        _ => {
            eprintln!("usage: smcd-shim-probe server MODE BYTES | client MODE PORT BYTES");
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
