//! Limits between real processes: DMB exhaustion (a server process with
//! `SMCD_MAX_DMBS` set low) makes new connections fall back to TCP with
//! MAX_DMB (0x030d0000), still carrying their bytes, and SMC-D comes back
//! once DMBs are free; many concurrent connections with 16 KiB DMBs, each
//! moving checked bytes; and the fd limit reached at every point of a
//! handshake (client side and server side) gives a clean fallback or a
//! plain error, with nothing left behind.
//!
//! A custom harness (`harness = false`): the binary is also the child
//! processes (`SMCD_TEST_CHILD` names the role). The many-connections case
//! runs 1000 connections by default; `SMCD_LIMITS_CONNS=10000` is the full
//! run (spread over process pairs, since one process holds at most 5000
//! DMBs).

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use smcd_std::{SmcConfig, SmcListener, SmcStream, Transport};
use support::{Held, Proc, ROLE_VAR, fill, matches};

/// The MAX_DMB decline code (Linux `SMC_CLC_DECL_MAX_DMB`).
const MAX_DMB: u32 = 0x030d_0000;
/// The DMB limit of the exhausted server.
const SMALL_LIMIT: usize = 24;
/// Longest a child may take to print a line.
const LINE_LIMIT: Duration = Duration::from_secs(120);
/// Connections of one process pair in the many-connections case (each
/// process holds one DMB per connection, at most 5000).
const PER_PAIR: usize = 2500;

type Check = Result<(), String>;
/// A named case of the suite.
type NamedCase = (&'static str, fn() -> Check);

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE_VAR) {
        child(&role);
    }
    if cfg!(feature = "tokio") || cfg!(feature = "mio") {
        println!("limits: runs in the default-feature pass");
        return ExitCode::SUCCESS;
    }
    raise_nofile();
    let mut failed = false;
    let cases: [NamedCase; 3] = [
        ("DMB exhaustion falls back with MAX_DMB", dmb_exhaustion),
        ("many concurrent connections", many_connections),
        ("the fd limit mid-handshake", fd_limit_mid_handshake),
    ];
    // `SMCD_LIMITS_ONLY=WORD`: only the cases whose name contains WORD.
    let only = std::env::var("SMCD_LIMITS_ONLY").unwrap_or_default();
    for (name, case) in cases.into_iter().filter(|(n, _)| n.contains(only.as_str())) {
        let begin = Instant::now();
        match case() {
            Ok(()) => println!("limits: {name}: ok in {:?}", begin.elapsed()),
            Err(e) => {
                println!("limits: {name}: FAILED {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Let this process open as many fds as the system allows a process.
fn raise_nofile() {
    let max = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(65536)
        .min(1 << 20);
    let want = Rlimit {
        current: Some(max),
        maximum: Some(max),
    };
    if setrlimit(Resource::Nofile, want).is_err() {
        // Not privileged: as high as the hard limit allows.
        let hard = getrlimit(Resource::Nofile).maximum;
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        );
    }
}

/// Write `n` pattern bytes (from offset `seed`) and read them back; `n`
/// fits one 16 KiB ring (the echo writes back while we still write).
fn echo_check(s: &SmcStream, n: usize, seed: u64) -> Check {
    // A bound instead of a hang if the two sides disagree.
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut out = vec![0u8; n];
    fill(&mut out, seed);
    (&*s).write_all(&out).map_err(|e| format!("write: {e}"))?;
    let mut back = vec![0u8; n];
    (&*s)
        .read_exact(&mut back)
        .map_err(|e| format!("read back: {e}"))?;
    if !matches(&back, seed) {
        return Err("the echo differs".into());
    }
    Ok(())
}

fn fallbacks(code: u32) -> u64 {
    smcd_std::stats()
        .fallbacks
        .get(&format!("{code:#010x}"))
        .copied()
        .unwrap_or(0)
}

fn echo_server(env: &[(&str, &str)]) -> Result<(Proc, SocketAddr), String> {
    let server = Proc::spawn("echo-server", &[], env);
    let port = server
        .line("port", LINE_LIMIT)
        .ok_or("the echo server printed no port")?;
    Ok((server, format!("127.0.0.1:{port}").parse().unwrap()))
}

/// A server process with room for [`SMALL_LIMIT`] DMBs: that many
/// connections are SMC-D, the next ones TCP with MAX_DMB (counted in the
/// stats' fallbacks) and still correct; after some close, SMC-D again.
fn dmb_exhaustion() -> Check {
    let limit = SMALL_LIMIT.to_string();
    let (_server, addr) = echo_server(&[("SMCD_MAX_DMBS", &limit)])?;
    let config = SmcConfig::new().dmb_size(16 * 1024);
    let before = fallbacks(MAX_DMB);
    let mut smc = Vec::new();
    for i in 0..SMALL_LIMIT {
        let s = config
            .connect(addr)
            .map_err(|e| format!("connect {i}: {e}"))?;
        if !s.transport().map_err(|e| e.to_string())?.is_smcd() {
            return Err(format!(
                "connection {i} is not SMC-D: {}",
                s.transport().unwrap()
            ));
        }
        echo_check(&s, 4096, i as u64).map_err(|e| format!("SMC-D connection {i}: {e}"))?;
        smc.push(s);
    }
    let mut tcp = Vec::new();
    for i in 0..2 {
        let s = config.connect(addr).map_err(|e| format!("connect: {e}"))?;
        match s.transport().map_err(|e| e.to_string())? {
            Transport::Tcp(r) if r.code() == Some(MAX_DMB) => {}
            t => return Err(format!("over the limit: {t}, not MAX_DMB")),
        }
        echo_check(&s, 12_000, 7 + i).map_err(|e| format!("fallback {i}: {e}"))?;
        tcp.push(s);
    }
    let counted = fallbacks(MAX_DMB) - before;
    if counted != 2 {
        return Err(format!("stats count {counted} MAX_DMB fallbacks, not 2"));
    }
    // Free a few DMBs of the server: SMC-D again (the server gives its DMB
    // back once the close is through, so try a few times).
    smc.truncate(SMALL_LIMIT - 3);
    let end = Instant::now() + Duration::from_secs(5);
    let again = loop {
        let s = config.connect(addr).map_err(|e| format!("connect: {e}"))?;
        if s.transport().map_err(|e| e.to_string())?.is_smcd() {
            break s;
        }
        if Instant::now() > end {
            return Err("no SMC-D 5 s after DMBs were freed".into());
        }
        thread::sleep(Duration::from_millis(20));
    };
    echo_check(&again, 12_000, 99).map_err(|e| format!("SMC-D again: {e}"))?;
    for (i, s) in tcp.iter().chain(&smc).enumerate() {
        echo_check(s, 1000, 1000 + i as u64).map_err(|e| format!("afterwards, {i}: {e}"))?;
    }
    Ok(())
}

/// Connections held open at once, each moving 4 KiB each way through 16 KiB
/// DMBs, between pairs of processes (a client and a server process each).
fn many_connections() -> Check {
    let total: usize = std::env::var("SMCD_LIMITS_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let pairs = total.div_ceil(PER_PAIR);
    let begin = Instant::now();
    let mut procs = Vec::new();
    for p in 0..pairs {
        let n = (total - p * PER_PAIR).min(PER_PAIR).to_string();
        let server = Proc::spawn("many-server", &[&n], &[("SMCD_DMB_SIZE", "16384")]);
        let port = server.line("port", LINE_LIMIT).ok_or("no port")?;
        let addr = format!("127.0.0.1:{port}");
        let client = Proc::spawn("many-client", &[&addr, &n], &[("SMCD_DMB_SIZE", "16384")]);
        procs.push((server, client));
    }
    let mut smc = 0;
    for (_, client) in &procs {
        let line = client
            .line("done", LINE_LIMIT)
            .ok_or("a client did not finish")?;
        let mut words = line.split_whitespace();
        let (ok, n) = (
            words.next(),
            words.next().and_then(|w| w.parse::<usize>().ok()),
        );
        if ok != Some("ok") {
            return Err(format!("a client failed: {line}"));
        }
        smc += n.unwrap_or(0);
    }
    println!(
        "limits: {total} concurrent connections in {pairs} process pair(s): {smc} SMC-D, \
         all bytes right, {:?}; load {}",
        begin.elapsed(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if smc != total {
        return Err(format!("only {smc} of {total} connections were SMC-D"));
    }
    Ok(())
}

/// Set the soft fd limit of this process (`None`: back to the maximum).
fn limit_fds(n: Option<u64>) {
    let hard = getrlimit(Resource::Nofile).maximum;
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: n.or(hard),
            maximum: hard,
        },
    );
}

/// With only `room` fds left to open, connect (as the client, `server`
/// false) or accept (as the server): the result must be SMC-D, a TCP
/// fallback or an error, never a hang; a stream that came must carry its
/// bytes once the limit is lifted; nothing may be left afterwards.
fn one_fd_limit(
    peer: SocketAddr,
    listener: &SmcListener,
    server: bool,
    room: u64,
) -> Result<String, String> {
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count) as u64;
    let got = if server {
        // The child connects once we are limited (and prints nothing else).
        let client = Proc::spawn(
            "one-client",
            &[&listener.local_addr().unwrap().to_string()],
            &[],
        );
        limit_fds(Some(open + room));
        let r = listener.accept().map(|(s, _)| s);
        let r = r.and_then(|s| s.transport().map(|_| s));
        limit_fds(None);
        let r = match r {
            Ok(s) => Ok(s),
            // An accept refused by the kernel for want of fds leaves the
            // connection queued, as TCP does: with the limit lifted it
            // comes. One refused after the TCP accept (no fd for the
            // handshake's own socket handle) has dropped it: the client
            // sees its connect fail.
            Err(e) => {
                if let Some(s) = queued(listener)? {
                    echo_check(&s, 12_000, room)?;
                    Err(format!("{:?}, then accepted", e.kind()))
                } else {
                    Err(format!("{:?}, connection dropped", e.kind()))
                }
            }
        };
        let r = match r {
            Ok(s) => echo_at_limit(&s, room).map(|e| Ok((s, e)))?,
            Err(e) => Err(e),
        };
        drop(client);
        r
    } else {
        limit_fds(Some(open + room));
        let r = SmcConfig::new().connect(peer);
        limit_fds(None);
        match r {
            Ok(s) => echo_at_limit(&s, room).map(|e| Ok((s, e)))?,
            Err(e) => Err(format!("{:?}", e.kind())),
        }
    };
    Ok(match got {
        Ok((s, echo)) => {
            let t = s
                .transport()
                .map_or_else(|e| e.to_string(), |t| t.to_string());
            // Only the kind of transport (the DMB sizes and the peer vary).
            let t = t.split(" dmb").next().unwrap_or(&t).to_owned();
            format!("{t}, {echo}")
        }
        Err(k) => format!("error {k}"),
    })
}

/// A connection waiting in `listener`'s queue (within 1 s), accepted.
fn queued(listener: &SmcListener) -> Result<Option<SmcStream>, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let end = Instant::now() + Duration::from_secs(1);
    let got = loop {
        match listener.accept() {
            Ok((s, _)) => break Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break None,
        }
    };
    listener.set_nonblocking(false).map_err(|e| e.to_string())?;
    if let Some(s) = &got {
        s.set_nonblocking(false).map_err(|e| e.to_string())?;
    }
    Ok(got)
}

/// Echo through a stream that came out of a handshake at the fd limit:
/// `Ok` with what happened, unless bytes were wrong or a call hung.
fn echo_at_limit(s: &SmcStream, room: u64) -> Result<String, String> {
    match echo_check(s, 12_000, room) {
        Ok(()) => Ok("echo ok".into()),
        Err(e) if e.contains("differs") || e.contains("timed out") || e.contains("temporarily") => {
            Err(e)
        }
        // The two sides disagreed (a server that declined after our
        // Confirm): the connection ends with an error, which is clean.
        Err(e) => Ok(format!("ended ({e})")),
    }
}

/// The fd limit at every point of a handshake, both sides.
fn fd_limit_mid_handshake() -> Check {
    let (_server, addr) = echo_server(&[])?;
    let listener = SmcListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    // Warm-up: the device socket and its thread, and the close thread (a
    // close that must wait for the peer's: we drop with the echo pending).
    for server in [false, true] {
        one_fd_limit(addr, &listener, server, 1000)?;
    }
    let s = SmcConfig::new().connect(addr).map_err(|e| e.to_string())?;
    (&s).write_all(&[7; 1000]).map_err(|e| e.to_string())?;
    drop(s);
    thread::sleep(Duration::from_millis(300));
    let start = Held::now();
    let mut seen = std::collections::BTreeMap::<String, Vec<u64>>::new();
    for server in [false, true] {
        for room in 0..12 {
            let how = one_fd_limit(addr, &listener, server, room)?;
            let side = if server { "server" } else { "client" };
            seen.entry(format!("{side}: {how}")).or_default().push(room);
            Held::settle_to(start, Duration::from_secs(4)).map_err(|now| {
                format!(
                    "leak after {side} with {room} fds to spare: {start:?} at the start, {now:?} now, fds {:?}, threads {:?}",
                    support::fd_targets(),
                    support::thread_names()
                )
            })?;
        }
    }
    for (how, rooms) in &seen {
        println!("limits: fd limit: {how} with {rooms:?} fds to spare");
    }
    if !seen.keys().any(|k| k.contains("0x01010000")) {
        return Err(format!(
            "no fallback for want of memory (MEM, 0x01010000) seen: {seen:?}"
        ));
    }
    Ok(())
}

// ---- the children -----------------------------------------------------------

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn child(role: &str) -> ! {
    thread::spawn(|| {
        thread::sleep(Duration::from_secs(300));
        std::process::exit(3)
    });
    raise_nofile();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match role {
        "echo-server" => {
            let l = SmcListener::bind("127.0.0.1:0").expect("bind");
            say(&format!("port {}", l.local_addr().unwrap().port()));
            loop {
                let Ok((s, _)) = l.accept() else { continue };
                thread::spawn(move || {
                    let mut buf = vec![0u8; 32 * 1024];
                    while let Ok(n @ 1..) = (&s).read(&mut buf) {
                        if (&s).write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        "one-client" => {
            let s = SmcStream::connect(args[0].as_str()).expect("connect");
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n @ 1..) = (&s).read(&mut buf) {
                if (&s).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            std::process::exit(0)
        }
        "many-server" => many_server(args[0].parse().expect("count")),
        "many-client" => many_client(&args[0], args[1].parse().expect("count")),
        other => panic!("unknown role {other}"),
    }
}

/// Accept `n` connections, keep them all, then echo 4 KiB on each.
fn many_server(n: usize) -> ! {
    let l = SmcListener::bind("127.0.0.1:0").expect("bind");
    say(&format!("port {}", l.local_addr().unwrap().port()));
    // Each handshake is finished right away (an accepted stream left alone
    // would finish it only at its first use, long after the client's CLC
    // timeout when thousands come in a row).
    let streams: Vec<SmcStream> = (0..n)
        .map(|_| {
            let s = l.accept().expect("accept").0;
            let _ = s.transport();
            s
        })
        .collect();
    let mut buf = vec![0u8; 4096];
    for s in &streams {
        (&*s).read_exact(&mut buf).expect("read");
        (&*s).write_all(&buf).expect("write");
    }
    // Until the client has read everything (then it is killed).
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

/// Open `n` connections to `addr` and keep them; write 4 KiB on each, then
/// read each echo back and check it. Prints `done ok SMC` or `done FAILED`.
fn many_client(addr: &str, n: usize) -> ! {
    let run = || -> Result<usize, String> {
        let mut streams = Vec::with_capacity(n);
        for i in 0..n {
            let s = SmcStream::connect(addr).map_err(|e| format!("connect {i}: {e}"))?;
            streams.push(s);
        }
        let smc = streams
            .iter()
            .filter(|s| s.transport().is_ok_and(|t| t.is_smcd()))
            .count();
        let mut buf = vec![0u8; 4096];
        for (i, s) in streams.iter().enumerate() {
            fill(&mut buf, i as u64);
            (&*s)
                .write_all(&buf)
                .map_err(|e| format!("write {i}: {e}"))?;
        }
        for (i, s) in streams.iter().enumerate() {
            (&*s)
                .read_exact(&mut buf)
                .map_err(|e| format!("read {i}: {e}"))?;
            if !matches(&buf, i as u64) {
                return Err(format!("connection {i}: the echo differs"));
            }
        }
        Ok(smc)
    };
    match run() {
        Ok(smc) => say(&format!("done ok {smc}")),
        Err(e) => say(&format!("done FAILED {e}")),
    }
    std::process::exit(0)
}
