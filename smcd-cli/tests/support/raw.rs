//! A raw CLC peer: announces itself on a listener's rendezvous as an smcd
//! client would, then writes whatever bytes a test chooses; and a relay
//! that records the CLC messages of a real smcd connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// CLC message types (header byte 4).
pub(crate) const ACCEPT: u8 = 2;
pub(crate) const DECLINE: u8 = 4;

/// The rendezvous socket of the listener at `addr` (abstract namespace).
fn rendezvous(addr: SocketAddr) -> UnixAddr {
    UnixAddr::from_abstract_name(format!("smcd/rv/{}/{}", addr.ip(), addr.port()))
        .expect("abstract name")
}

/// The announcement an smcd client sends before connecting from `port`.
fn announcement(port: u16) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[..4].copy_from_slice(b"SMCR");
    b[4] = 1;
    b[6..8].copy_from_slice(&port.to_be_bytes());
    b
}

/// How long a raw peer waits for room in a rendezvous queue: longer than
/// an smcd client (1 s), for an attacker that insists on getting in.
pub(crate) const ROOM_WAIT: Duration = Duration::from_secs(5);

/// Announce to the listener at `server` that a connection from `port` will
/// speak CLC, waiting up to `wait` for room in its queue (`ZERO`: not at
/// all); whether the datagram was queued.
pub(crate) fn announce(server: SocketAddr, port: u16, wait: Duration) -> bool {
    let sock = UnixDatagram::unbound().expect("datagram socket");
    match wait.is_zero() {
        true => sock.set_nonblocking(true).unwrap(),
        false => sock.set_write_timeout(Some(wait)).unwrap(),
    }
    sock.send_to_addr(&announcement(port), &rendezvous(server))
        .is_ok()
}

/// A TCP socket bound to a free port of 127.0.0.1, and that port.
pub(crate) fn bound_socket() -> (rustix::fd::OwnedFd, u16) {
    let sock = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    rustix::net::bind(&sock, &SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    let local = rustix::net::getsockname(&sock).expect("getsockname");
    let port = SocketAddr::try_from(local).expect("an inet address").port();
    (sock, port)
}

/// Connect the bound `sock` to `server`.
pub(crate) fn connect(sock: rustix::fd::OwnedFd, server: SocketAddr) -> TcpStream {
    rustix::net::connect(&sock, &server).expect("connect");
    TcpStream::from(sock)
}

/// A connection to `server` that announced itself first (the server
/// expects CLC on it).
pub(crate) fn announced(server: SocketAddr) -> TcpStream {
    let (sock, port) = bound_socket();
    assert!(
        announce(server, port, ROOM_WAIT),
        "the listener's rendezvous took it"
    );
    connect(sock, server)
}

/// The CLC message type of `msg`.
pub(crate) fn kind(msg: &[u8]) -> u8 {
    msg[4]
}

/// The 8 bytes of the `token` field of an Accept or Confirm.
pub(crate) fn token(msg: &[u8]) -> [u8; 8] {
    msg[16..24].try_into().unwrap()
}

/// The reason code of a Decline.
pub(crate) fn diagnosis(msg: &[u8]) -> u32 {
    u32::from_be_bytes(msg[16..20].try_into().unwrap())
}

/// A well-formed Confirm answering `accept` (same length, flags, link id,
/// CHID and EID), with the GID and DMB size of `template` and `token`.
pub(crate) fn confirm_for(accept: &[u8], template: &[u8], token: [u8; 8]) -> Vec<u8> {
    let mut c = accept.to_vec();
    c[4] = 3;
    c[8..16].copy_from_slice(&template[8..16]);
    c[16..24].copy_from_slice(&token);
    c[25] = template[25];
    c[66..74].copy_from_slice(&template[66..74]);
    c
}

/// Split the start of `bytes` into CLC messages (by their length field).
pub(crate) fn messages(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 8 {
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]]));
        if len < 8 || rest.len() < len {
            break;
        }
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    out
}

/// What the server did with a hostile connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It closed (EOF or reset).
    Closed,
    /// It sent these CLC messages, the last a Decline.
    Declined(Vec<Vec<u8>>),
    /// Neither within the time allowed.
    StillOpen,
}

/// Read from `s` until the server closes it or its bytes end in a Decline,
/// for at most `limit`; with the time it took.
pub(crate) fn ending(s: &TcpStream, limit: Duration) -> (Ending, Duration) {
    let mut r = s;
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (Ending::StillOpen, start.elapsed());
        }
        s.set_read_timeout(Some(left)).unwrap();
        match r.read(&mut buf) {
            Ok(0) => return (Ending::Closed, start.elapsed()),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                let msgs = messages(&got);
                if msgs.last().is_some_and(|m| kind(m) == DECLINE) {
                    return (Ending::Declined(msgs), start.elapsed());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (Ending::Closed, start.elapsed()),
        }
    }
}

/// Read one CLC message from `s` (at most `limit`).
pub(crate) fn read_message(s: &TcpStream, limit: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut r = s;
    let mut head = [0u8; 8];
    r.read_exact(&mut head).expect("a CLC header");
    let len = usize::from(u16::from_be_bytes([head[5], head[6]]));
    let mut msg = head.to_vec();
    msg.resize(len.max(8), 0);
    r.read_exact(&mut msg[8..])
        .expect("the rest of the CLC message");
    msg
}

/// Check that `s`, after a Decline, carries plain TCP bytes to the echo
/// server and back.
pub(crate) fn echoes_plain(s: &TcpStream) {
    let mut r = s;
    let probe = b"after the decline, plain TCP";
    r.write_all(probe).expect("write after the decline");
    let mut back = [0u8; 28];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    r.read_exact(&mut back).expect("the echo over TCP");
    assert_eq!(&back, probe);
}

/// The bytes each way through a [`Relay`].
#[derive(Debug, Default)]
struct Log {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

/// A TCP relay in front of an smcd listener that smcd clients can connect
/// to as if it were the listener (it takes their announcement and announces
/// its own connection to the listener), recording what crosses it.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    threads: Vec<JoinHandle<()>>,
    _rendezvous: UnixDatagram,
}

/// Longest a relay waits for its one client, or for bytes.
const RELAY_LIMIT: Duration = Duration::from_secs(60);

impl Relay {
    /// A relay for one connection to `server`.
    pub(crate) fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listener");
        let addr = listener.local_addr().unwrap();
        let rv = UnixDatagram::bind_addr(&rendezvous(addr)).expect("relay rendezvous");
        let log = Arc::new(Mutex::new(Log::default()));
        let sink = Arc::clone(&log);
        let first = std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let end = Instant::now() + RELAY_LIMIT;
            let client = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => return,
                }
            };
            client.set_nonblocking(false).unwrap();
            let upstream = announced(server);
            let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let back = Arc::clone(&sink);
            let down = std::thread::spawn(move || pump(u2, c2, &back, false));
            pump(client, upstream, &sink, true);
            let _ = down.join();
        });
        Self {
            addr,
            log,
            threads: vec![first],
            _rendezvous: rv,
        }
    }

    /// The CLC messages so far: client to server, server to client.
    pub(crate) fn messages(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let log = self.log.lock().unwrap();
        (messages(&log.to_server), messages(&log.to_client))
    }

    /// Wait until `n_up` messages went up and `n_down` came down (at most
    /// `limit`), and return them.
    pub(crate) fn wait_messages(
        &self,
        n_up: usize,
        n_down: usize,
        limit: Duration,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let end = Instant::now() + limit;
        loop {
            let (up, down) = self.messages();
            if (up.len() >= n_up && down.len() >= n_down) || Instant::now() >= end {
                return (up, down);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for the relay's threads (both ends closed).
    pub(crate) fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Copy `from` to `to` until EOF, recording the bytes.
fn pump(mut from: TcpStream, mut to: TcpStream, log: &Mutex<Log>, up: bool) {
    from.set_read_timeout(Some(RELAY_LIMIT)).unwrap();
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        {
            let mut l = log.lock().unwrap();
            let side = if up {
                &mut l.to_server
            } else {
                &mut l.to_client
            };
            side.extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
