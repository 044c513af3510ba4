//! The feature checks of `smcd-shim-probe feat-client`: one connection to
//! an echo server (`feat-server`, which greets with `hello` and then
//! echoes everything until EOF), and the calls real programs make on it —
//! MSG_PEEK, FIONREAD, F_GETFL/F_SETFL, FIONBIO, dup/dup2/close, readv/
//! writev, sendmsg/recvmsg, MSG_WAITALL, sendfile, shutdown — each checked
//! against what TCP does.

use std::ffi::c_void;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};

fn check(what: &str, ok: bool) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!("check failed: {what}")))
    }
}

fn os<T: PartialOrd + Default + Copy>(what: &str, r: T) -> io::Result<T> {
    if r < T::default() {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(r)
}

/// Send all of `data` on `fd` (blocking).
fn put(fd: i32, data: &[u8]) -> io::Result<()> {
    let mut at = 0;
    while at < data.len() {
        // SAFETY: a live buffer.
        let n = unsafe { libc::write(fd, data[at..].as_ptr().cast(), data.len() - at) };
        at += usize::try_from(os("write", n)?).unwrap_or(0);
    }
    Ok(())
}

/// Read exactly `n` bytes from `fd` (blocking).
fn get(fd: i32, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut at = 0;
    while at < n {
        // SAFETY: a live buffer.
        let r = unsafe { libc::read(fd, buf[at..].as_mut_ptr().cast(), n - at) };
        let r = usize::try_from(os("read", r)?).unwrap_or(0);
        check("no early EOF", r > 0)?;
        at += r;
    }
    Ok(buf)
}

fn wait_readable(fd: i32) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    check("poll readable", n == 1 && p.revents & libc::POLLIN != 0)
}

/// An epfd holding the connection (level-triggered) inside another epfd:
/// bytes left unread keep the inner one readable for the outer one, as
/// with the kernel's own nesting.
fn nested_epoll(fd: i32) -> io::Result<()> {
    // SAFETY: plain epoll calls on our own fds and live events.
    unsafe {
        let inner = os("epoll_create1 inner", libc::epoll_create1(0))?;
        let outer = os("epoll_create1 outer", libc::epoll_create1(0))?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 5,
        };
        os(
            "epoll_ctl inner",
            libc::epoll_ctl(inner, libc::EPOLL_CTL_ADD, fd, &mut ev),
        )?;
        ev.u64 = 6;
        os(
            "epoll_ctl outer",
            libc::epoll_ctl(outer, libc::EPOLL_CTL_ADD, inner, &mut ev),
        )?;
        put(fd, b"nest")?;
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 2];
        for round in ["first", "again (unread)"] {
            let n = libc::epoll_wait(outer, out.as_mut_ptr(), 2, 10_000);
            check(&format!("outer epoll {round}"), n == 1 && out[0].u64 == 6)?;
            let n = libc::epoll_wait(inner, out.as_mut_ptr(), 2, 0);
            check(&format!("inner epoll {round}"), n == 1 && out[0].u64 == 5)?;
        }
        check("nested epoll bytes", get(fd, 4)? == b"nest")?;
        libc::close(outer);
        libc::close(inner);
    }
    Ok(())
}

pub(crate) fn server() -> io::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("port {}", l.local_addr()?.port());
    io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    s.write_all(b"hello")?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n])?;
    }
}

pub(crate) fn client(port: u16) -> io::Result<()> {
    let fd = TcpStream::connect(("127.0.0.1", port))?.into_raw_fd();
    // MSG_PEEK sees the greeting without consuming it; FIONREAD counts it.
    let mut peek = [0u8; 5];
    let mut seen = 0;
    while seen < 5 {
        wait_readable(fd)?;
        // SAFETY: a live buffer.
        let n = unsafe { libc::recv(fd, peek.as_mut_ptr().cast(), 5, libc::MSG_PEEK) };
        seen = usize::try_from(os("recv peek", n)?).unwrap_or(0);
    }
    check("peek sees hello", &peek == b"hello")?;
    let mut avail: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int.
    os("FIONREAD", unsafe {
        libc::ioctl(fd, libc::FIONREAD, &mut avail)
    })?;
    check("FIONREAD counts 5", avail == 5)?;
    check("read after peek", get(fd, 5)? == b"hello")?;

    // The application's O_NONBLOCK view, not the kernel's.
    // SAFETY: F_GETFL takes no argument.
    let fl = os("F_GETFL", unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    check("blocking by default", fl & libc::O_NONBLOCK == 0)?;
    // SAFETY: F_SETFL takes an int.
    os("F_SETFL", unsafe {
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK)
    })?;
    let mut b = [0u8; 8];
    // SAFETY: a live buffer.
    let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 8) };
    check(
        "EAGAIN when nothing is there",
        n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN),
    )?;
    // SAFETY: F_GETFL takes no argument.
    let fl2 = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    check("F_GETFL shows O_NONBLOCK", fl2 & libc::O_NONBLOCK != 0)?;
    let mut off: libc::c_int = 0;
    // SAFETY: FIONBIO reads an int.
    os("FIONBIO", unsafe {
        libc::ioctl(fd, libc::FIONBIO, &mut off)
    })?;
    // SAFETY: F_GETFL takes no argument.
    let fl3 = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    check("FIONBIO 0 clears it", fl3 & libc::O_NONBLOCK == 0)?;
    // SAFETY: the sixth argument of recv flags: MSG_DONTWAIT on a blocking fd.
    let n = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), 8, libc::MSG_DONTWAIT) };
    check(
        "MSG_DONTWAIT",
        n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN),
    )?;

    // SO_RCVTIMEO: a read with nothing to read gives up with EAGAIN.
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    // SAFETY: SO_RCVTIMEO takes a timeval.
    os("SO_RCVTIMEO", unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    let t0 = std::time::Instant::now();
    // SAFETY: a live buffer.
    let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 8) };
    let waited = t0.elapsed();
    check(
        "SO_RCVTIMEO gives EAGAIN",
        n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN),
    )?;
    check(
        "SO_RCVTIMEO waited",
        waited >= std::time::Duration::from_millis(150)
            && waited < std::time::Duration::from_secs(5),
    )?;
    let none = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: as above.
    os("SO_RCVTIMEO off", unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const none).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;

    // dup shares the connection; closing one number keeps it open.
    // SAFETY: plain fd calls.
    let d = os("dup", unsafe { libc::dup(fd) })?;
    put(d, b"abc")?;
    check("echo through the original", get(fd, 3)? == b"abc")?;
    // SAFETY: `fd` is ours to close.
    os("close", unsafe { libc::close(fd) })?;
    put(d, b"def")?;
    check("echo after closing the original", get(d, 3)? == b"def")?;
    // dup2 onto a number; F_DUPFD_CLOEXEC too.
    // SAFETY: plain fd calls.
    let hi = os("dup2", unsafe { libc::dup2(d, 200) })?;
    // SAFETY: plain fd calls.
    let hi2 = os("F_DUPFD_CLOEXEC", unsafe {
        libc::fcntl(d, libc::F_DUPFD_CLOEXEC, 300)
    })?;
    put(hi, b"ghi")?;
    check("echo through dup2", get(hi2, 3)? == b"ghi")?;
    // SAFETY: ours to close.
    unsafe {
        libc::close(hi);
        libc::close(hi2);
    }
    // A reused number does not see the old state: 200 is a pipe now.
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: two ints.
    os("pipe", unsafe { libc::pipe(pipe.as_mut_ptr()) })?;
    // SAFETY: plain fd calls.
    let p200 = os("dup2 pipe", unsafe { libc::dup2(pipe[1], 200) })?;
    put(p200, b"pipe")?;
    let mut pb = [0u8; 4];
    // SAFETY: a live buffer.
    let n = unsafe { libc::read(pipe[0], pb.as_mut_ptr().cast(), 4) };
    check("a reused fd number is a plain fd", n == 4 && &pb == b"pipe")?;
    // SAFETY: ours to close.
    unsafe {
        libc::close(p200);
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }

    // A number closed inside libc (fclose of an fdopen'ed copy) and handed
    // out again by open(2) is that file, not the connection.
    // SAFETY: plain fd and stdio calls on our own copy.
    unsafe {
        let copy = os("dup for fdopen", libc::dup(d))?;
        let f = libc::fdopen(copy, c"r+".as_ptr());
        check("fdopen", !f.is_null())?;
        os("fclose", libc::fclose(f))?;
        let null = os(
            "open /dev/null",
            libc::open(c"/dev/null".as_ptr(), libc::O_RDWR),
        )?;
        let n = libc::write(null, b"xyz".as_ptr().cast(), 3);
        check("a reused number writes to its file", n == 3)?;
        let n = libc::read(null, b.as_mut_ptr().cast(), 8);
        check("a reused number reads its file", n == 0)?;
        libc::close(null);
    }

    // writev / readv.
    let parts: [&[u8]; 3] = [b"one,", b"two,", b"three"];
    let iov: Vec<libc::iovec> = parts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr().cast_mut().cast::<c_void>(),
            iov_len: p.len(),
        })
        .collect();
    // SAFETY: live iovecs.
    let n = os("writev", unsafe { libc::writev(d, iov.as_ptr(), 3) })?;
    check("writev wrote all", n == 13)?;
    let (mut a, mut bb) = ([0u8; 6], [0u8; 7]);
    let mut riov = [
        libc::iovec {
            iov_base: a.as_mut_ptr().cast(),
            iov_len: 6,
        },
        libc::iovec {
            iov_base: bb.as_mut_ptr().cast(),
            iov_len: 7,
        },
    ];
    // MSG_WAITALL through recvmsg: all 13 bytes at once.
    // SAFETY: msghdr is plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = riov.as_mut_ptr();
    msg.msg_iovlen = 2;
    let mut got = 0;
    while got < 13 {
        // SAFETY: a valid msghdr over live buffers.
        let n = os("recvmsg", unsafe {
            libc::recvmsg(d, &mut msg, libc::MSG_WAITALL)
        })?;
        got += usize::try_from(n).unwrap_or(0);
        if got < 13 {
            // (a short scatter read: take the rest plainly)
            let rest = get(d, 13 - got)?;
            let mut all = [&a[..], &bb[..]].concat();
            all[got..].copy_from_slice(&rest);
            a.copy_from_slice(&all[..6]);
            bb.copy_from_slice(&all[6..]);
            got = 13;
        }
    }
    check(
        "readv got the bytes",
        [&a[..], &bb[..]].concat() == b"one,two,three",
    )?;

    nested_epoll(d)?;

    // recv(MSG_WAITALL) of a larger block.
    let block: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let echo = {
        let (tx, rx) = std::sync::mpsc::channel();
        let dd = d;
        let len = block.len();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; len];
            // SAFETY: a live buffer.
            let n = unsafe { libc::recv(dd, buf.as_mut_ptr().cast(), len, libc::MSG_WAITALL) };
            let _ = tx.send((n, buf));
        });
        put(d, &block)?;
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .map_err(io::Error::other)?
    };
    check(
        "MSG_WAITALL filled the buffer",
        echo.0 == 200_000 && echo.1 == block,
    )?;

    // sendfile from a file, with and without an offset.
    let path = std::env::temp_dir().join(format!("smcd-feat-{}", std::process::id()));
    std::fs::write(&path, &block)?;
    let file = std::fs::File::open(&path)?;
    let _ = std::fs::remove_file(&path);
    let (tx, rx) = std::sync::mpsc::channel();
    let dd = d;
    std::thread::spawn(move || {
        let _ = tx.send(get(dd, 200_000 + 1000));
    });
    // SAFETY: valid fds, null offset (the file's own).
    let n = os("sendfile", unsafe {
        libc::sendfile(d, file.as_raw_fd(), std::ptr::null_mut(), 200_000)
    })?;
    check("sendfile sent all", n == 200_000)?;
    let mut off: libc::off_t = 5000;
    // SAFETY: valid fds and offset.
    let n = os("sendfile off", unsafe {
        libc::sendfile(d, file.as_raw_fd(), &mut off, 1000)
    })?;
    check("sendfile with an offset", n == 1000 && off == 6000)?;
    let back = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .map_err(io::Error::other)??;
    check(
        "sendfile bytes",
        back[..200_000] == block[..] && back[200_000..] == block[5000..6000],
    )?;

    // shutdown(SHUT_WR): the server sees EOF and closes; we read EOF; a
    // write then fails with EPIPE (MSG_NOSIGNAL: no signal).
    // SAFETY: plain fd call.
    os("shutdown", unsafe { libc::shutdown(d, libc::SHUT_WR) })?;
    let mut e = [0u8; 1];
    // SAFETY: a live buffer.
    let n = unsafe { libc::read(d, e.as_mut_ptr().cast(), 1) };
    check("EOF after the server closed", n == 0)?;
    // SAFETY: a live buffer.
    let n = unsafe { libc::send(d, b"x".as_ptr().cast(), 1, libc::MSG_NOSIGNAL) };
    check(
        "EPIPE after shutdown",
        n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE),
    )?;
    // SAFETY: ours to close.
    unsafe { libc::close(d) };
    Ok(())
}
