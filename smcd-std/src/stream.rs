//! [`SmcStream`]: a TCP-shaped byte stream that runs over SMC-D when both
//! ends are smcd processes on this host, and over the TCP connection
//! otherwise.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::event::epoll::{self, EventFlags};
use smcd_core::endpoint::{Endpoint, EndpointError, Transport as EpTransport};

use crate::config::{SmcConfig, StdHost, default_config};
use crate::device::Bell;
use crate::error::{SmcError, io_error};
use crate::linger;
use crate::tcp::TcpWire;
use crate::transport::{TcpReason, Transport};
use crate::wait::{Park, earliest, now_ms, until};

mod cork;
pub(crate) mod live;
pub(crate) mod probe;

pub(crate) type StdEndpoint = Endpoint<StdHost, TcpWire>;

/// The SMC side of a stream: the endpoint and what waiting needs.
#[derive(Debug)]
pub(crate) struct Smc {
    pub(crate) ep: StdEndpoint,
    bell: Option<Bell>,
    read_shut: bool,
    /// Whether the settled transport was counted and logged.
    counted: bool,
    /// Fallback bytes a zero-copy read saw but did not consume.
    leftover: Vec<u8>,
    /// The readiness fd and what is registered in it, once asked for.
    ready: Option<Readiness>,
    /// A fallback write found the TCP socket full.
    tcp_full: bool,
    /// The endpoint took in news (`poll` moved, or the peer rang) since the
    /// doorbell was last drained in non-blocking mode: the drain then rings
    /// it again, since the ring it took may have been another waiter's
    /// only signal (a reader's drain, a writer's room).
    news: bool,
    /// `TCP_CORK`: whether this stream's rings are held ([`cork`]).
    cork: cork::Cork,
}

/// The readiness fd of an SMC stream: an epoll set of the DMB doorbell
/// (kept armed while the set exists) and the TCP socket. It becomes
/// readable whenever a call may have something new to report: bytes, EOF,
/// room in the peer's ring, or a TCP event during the handshake or after a
/// fallback.
#[derive(Debug)]
struct Readiness {
    epoll: Arc<OwnedFd>,
    bell: Option<Bell>,
    tcp: Option<EventFlags>,
}

impl Readiness {
    fn new(tcp: &TcpStream) -> io::Result<Self> {
        let epoll =
            crate::fdfloor::lift(rustix::event::epoll::create(epoll::CreateFlags::CLOEXEC)?);
        let mut r = Self {
            epoll: Arc::new(epoll),
            bell: None,
            tcp: None,
        };
        r.watch_tcp(tcp, Some(EventFlags::IN))?;
        Ok(r)
    }

    /// Register the TCP socket for `events` (`None`: not at all).
    fn watch_tcp(&mut self, tcp: &TcpStream, events: Option<EventFlags>) -> io::Result<()> {
        let data = epoll::EventData::new_u64(0);
        match (self.tcp, events) {
            (old, new) if old == new => {}
            (None, Some(e)) => epoll::add(&*self.epoll, tcp, data, e)?,
            (Some(_), Some(e)) => epoll::modify(&*self.epoll, tcp, data, e)?,
            (Some(_), None) => epoll::delete(&*self.epoll, tcp)?,
            (None, None) => {}
        }
        self.tcp = events;
        Ok(())
    }

    /// Register the doorbell once SMC-D is up, and keep it armed.
    fn watch_bell(&mut self, bell: &Bell) -> io::Result<()> {
        if self.bell.is_none() {
            epoll::add(
                &*self.epoll,
                bell,
                epoll::EventData::new_u64(1),
                EventFlags::IN,
            )?;
            bell.arm();
            // Whatever the peer wrote before the arm rang nothing, and the
            // call that registered us may have looked before it arrived:
            // announce news once, so that the next look comes after the arm.
            let _ = rustix::io::write(bell, &SELF_RING.to_ne_bytes());
            self.bell = Some(bell.clone());
        }
        Ok(())
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        if let Some(b) = &self.bell {
            b.disarm();
        }
    }
}

#[derive(Debug)]
enum Mode {
    /// Plain TCP from the start: no CLC byte was or will be sent.
    Plain(TcpReason),
    /// CLC on the TCP connection, then SMC-D or a fallback.
    Smc(Box<Mutex<Smc>>),
}

#[derive(Debug, Default, Clone, Copy)]
struct Opts {
    nonblocking: bool,
    /// The readiness fd is watched edge-triggered (mio, tokio): a
    /// non-blocking call leaves the doorbell undrained, so no waiter's
    /// edge is lost to another's drain.
    edge: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    /// The TCP socket (in SMC mode a second handle of the endpoint's).
    tcp: TcpStream,
    mode: Mode,
    opts: Mutex<Opts>,
    spin: Duration,
    /// How long a wait that ended while spinning typically takes, in
    /// nanoseconds (a moving average): the spin budget follows it.
    spin_typical: AtomicU64,
    /// Whether a thread sleeps on the doorbell now: one thread at a time
    /// polls it (and drains it); the others of this stream wait on `woken`.
    parked: Mutex<bool>,
    woken: Condvar,
    /// The readiness fd (SMC streams), created on first use.
    ready_fd: OnceLock<Arc<OwnedFd>>,
    /// This stream's key in the registry of live streams ([`live`]).
    live: u64,
}

/// Which way a call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

/// A connected stream, shaped like [`std::net::TcpStream`].
///
/// It speaks SMC-D when both ends are smcd on this host (the listener
/// announced itself, the CLC handshake succeeded), and plain TCP otherwise
/// — [`transport`](Self::transport) tells which and why. `Read` and
/// `Write` are implemented for `SmcStream` and `&SmcStream`; clones
/// ([`try_clone`](Self::try_clone)) share the connection.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use smcd_std::SmcStream;
///
/// let mut s = SmcStream::connect("127.0.0.1:7000")?;
/// println!("transport: {}", s.transport()?);
/// s.write_all(b"ping")?;
/// let mut buf = [0u8; 4];
/// s.read_exact(&mut buf)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct SmcStream {
    inner: Arc<Inner>,
}

impl fmt::Debug for SmcStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmcStream")
            .field("local", &self.inner.tcp.local_addr().ok())
            .field("peer", &self.inner.tcp.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl SmcStream {
    /// Connect to `addr` (each resolved address in turn, like
    /// `TcpStream::connect`) with the environment's configuration.
    ///
    /// # Errors
    ///
    /// What `TcpStream::connect` reports, or a failed CLC handshake (protocol
    /// error: `InvalidData`; timeout: `TimedOut`).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<Self> {
        default_config().connect(addr)
    }

    /// Connect to `addr` within `timeout` (TCP connect and CLC handshake).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); `TimedOut` when the time runs out.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<Self> {
        default_config().connect_timeout(addr, timeout)
    }

    pub(crate) fn plain(tcp: TcpStream, why: TcpReason) -> Self {
        settled(&tcp, &Transport::Tcp(why));
        Self::with_mode(tcp, Mode::Plain(why), Duration::ZERO)
    }

    pub(crate) fn smc(tcp: TcpStream, ep: StdEndpoint, config: &SmcConfig) -> Self {
        let smc = Smc {
            ep,
            bell: None,
            read_shut: false,
            counted: false,
            leftover: Vec::new(),
            ready: None,
            tcp_full: false,
            news: false,
            cork: cork::Cork::default(),
        };
        Self::with_mode(tcp, Mode::Smc(Box::new(Mutex::new(smc))), config.spin)
    }

    fn with_mode(tcp: TcpStream, mode: Mode, spin: Duration) -> Self {
        let stream = Self {
            inner: Arc::new(Inner {
                tcp,
                mode,
                opts: Mutex::new(Opts::default()),
                spin,
                spin_typical: AtomicU64::new(
                    u64::try_from(spin.as_nanos() / 2).unwrap_or(u64::MAX),
                ),
                parked: Mutex::new(false),
                woken: Condvar::new(),
                ready_fd: OnceLock::new(),
                live: live::next_key(),
            }),
        };
        live::add(&stream.inner);
        stream
    }

    fn opts(&self) -> Opts {
        *self
            .inner
            .opts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_opts(&self, f: impl FnOnce(&mut Opts)) {
        f(&mut self
            .inner
            .opts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Which path the bytes take; on an accepted stream this completes the
    /// handshake first (blocking unless non-blocking mode is set).
    ///
    /// # Errors
    ///
    /// The handshake failed (see [`connect`](Self::connect)), or would block.
    pub fn transport(&self) -> io::Result<Transport> {
        match &self.inner.mode {
            Mode::Plain(why) => Ok(Transport::Tcp(*why)),
            Mode::Smc(_) => self.run(Dir::Read, |s| match s.ep.transport() {
                EpTransport::Handshaking => Err(EndpointError::WouldBlock),
                EpTransport::Failed(f) => Err(EndpointError::Failed(f)),
                EpTransport::Closed => Err(EndpointError::Closed),
                t => std_transport(t).ok_or(EndpointError::Closed),
            }),
        }
    }

    /// Drive a handshake for at most `limit` (nothing for plain streams);
    /// `false` when it is still running then.
    pub(crate) fn settle_within(&self, limit: Duration) -> bool {
        let before = self.opts();
        self.set_opts(|o| o.read_timeout = Some(limit));
        let _ = self.transport();
        self.set_opts(|o| o.read_timeout = before.read_timeout);
        self.with_smc(|s| !s.ep.is_handshaking()).unwrap_or(true)
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::peer_addr`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.tcp.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `TcpStream::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.tcp.local_addr()
    }

    /// `TCP_NODELAY` on the TCP connection (it carries the handshake and,
    /// after a fallback, the data).
    ///
    /// # Errors
    ///
    /// As `TcpStream::set_nodelay`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.tcp.set_nodelay(on)
    }

    /// `TCP_NODELAY` of the TCP connection.
    ///
    /// # Errors
    ///
    /// As `TcpStream::nodelay`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.tcp.nodelay()
    }

    /// Non-blocking mode: calls that would wait fail with `WouldBlock`.
    ///
    /// # Errors
    ///
    /// As `TcpStream::set_nonblocking` (plain TCP streams).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.set_opts(|o| o.nonblocking = on);
        match self.inner.mode {
            Mode::Plain(_) => self.inner.tcp.set_nonblocking(on),
            Mode::Smc(_) => Ok(()),
        }
    }

    /// The longest a read waits (`None`: forever); then it fails with
    /// `WouldBlock`, as a TCP socket's `SO_RCVTIMEO` does on Linux.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `TcpStream`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "zero timeout"));
        }
        self.set_opts(|o| o.read_timeout = t);
        match self.inner.mode {
            Mode::Plain(_) => self.inner.tcp.set_read_timeout(t),
            Mode::Smc(_) => Ok(()),
        }
    }

    /// The longest a write waits (`None`: forever).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "zero timeout"));
        }
        self.set_opts(|o| o.write_timeout = t);
        match self.inner.mode {
            Mode::Plain(_) => self.inner.tcp.set_write_timeout(t),
            Mode::Smc(_) => Ok(()),
        }
    }

    /// The read timeout.
    ///
    /// # Errors
    ///
    /// Never for SMC streams; as `TcpStream::read_timeout` otherwise.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().read_timeout)
    }

    /// The write timeout.
    ///
    /// # Errors
    ///
    /// Never for SMC streams; as `TcpStream::write_timeout` otherwise.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().write_timeout)
    }

    /// A second handle to the same connection (like `TcpStream::try_clone`;
    /// the connection closes when the last handle is dropped).
    ///
    /// # Errors
    ///
    /// Never; the result mirrors `TcpStream::try_clone`.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }

    /// Test-only (feature `hostile-peer`), not API: raw access to the peer's
    /// DMB this stream sends into, for smcd's hostile-peer tests.
    #[cfg(feature = "hostile-peer")]
    #[doc(hidden)]
    pub fn __peer_tap(&self) -> Option<crate::device::PeerTap> {
        self.with_smc(|s| {
            let token = s.ep.connection()?.peer_token();
            s.ep.host().device().peer_tap(token)
        })
        .flatten()
    }

    /// The pending error of the TCP socket (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// As `TcpStream::take_error`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.tcp.take_error()
    }

    /// Shut down the read side, the write side or both, with TCP's
    /// semantics: after `Read`, reads return 0; after `Write`, the peer
    /// reads EOF once it has every byte written before.
    ///
    /// # Errors
    ///
    /// As `TcpStream::shutdown`, or the connection's error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let Mode::Smc(_) = &self.inner.mode else {
            return self.inner.tcp.shutdown(how);
        };
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.with_smc(|s| s.read_shut = true);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.with_smc(cork::release);
            self.run(Dir::Write, |s| s.ep.shutdown_write())?;
        }
        Ok(())
    }

    fn with_smc<T>(&self, f: impl FnOnce(&mut Smc) -> T) -> Option<T> {
        match &self.inner.mode {
            Mode::Smc(m) => Some(f(&mut lock(m))),
            Mode::Plain(_) => None,
        }
    }

    /// Run `op` until it does not report `WouldBlock`: poll the endpoint,
    /// try, spin for the configured budget, then park on the doorbell and
    /// the socket, honouring non-blocking mode and the timeouts.
    fn run<T>(
        &self,
        dir: Dir,
        mut op: impl FnMut(&mut Smc) -> Result<T, EndpointError>,
    ) -> io::Result<T> {
        let Mode::Smc(m) = &self.inner.mode else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        let opts = self.opts();
        let timeout = match dir {
            Dir::Read => opts.read_timeout,
            Dir::Write => opts.write_timeout,
        };
        // The clock is read only once the first attempt would block.
        let mut start: Option<(Instant, Option<Instant>)> = None;
        let spin = self.spin_budget();
        let mut look = Look::Shared;
        let mut last_full: Option<Instant> = None;
        let mut waited = false;
        let mut parked_once = false;
        // While spinning over SMC-D: our DMB's doorbell, whose header tells
        // when the peer wrote (taken before each attempt).
        let mut watch: Option<Bell> = None;
        loop {
            let seen = watch.as_ref().map(Bell::header);
            let mut s = lock(m);
            cork::apply(&mut s);
            let first = attempt(&mut s, &mut op, look);
            self.sync_ready(&mut s, dir, &first);
            if let Some(v) = first? {
                if let Some((begun, _)) = start {
                    if !parked_once {
                        self.spin_met(begun.elapsed());
                    }
                }
                return Ok(v);
            }
            let now = Instant::now();
            let (begun, deadline) = *start.get_or_insert((now, timeout.map(|t| now + t)));
            if opts.nonblocking || deadline.is_some_and(|d| now >= d) {
                // A readiness fd must not stay readable without cause, nor
                // lose a ring: drain, then look once more, at the stream too.
                // (Edge-triggered watchers keep every ring: no drain.)
                let drain = !(opts.nonblocking && opts.edge);
                let bell = s.ready.as_ref().and_then(|r| r.bell.clone());
                if let Some(b) = bell.as_ref().filter(|_| drain) {
                    s.news |= drain_rings(b);
                }
                let again = attempt(&mut s, &mut op, Look::Full);
                self.sync_ready(&mut s, dir, &again);
                if let Some(b) = bell.as_ref().filter(|_| drain) {
                    if std::mem::take(&mut s.news) {
                        // Announce it again for whoever else waits.
                        let _ = rustix::io::write(b, &SELF_RING.to_ne_bytes());
                    }
                }
                if let Some(v) = again? {
                    return Ok(v);
                }
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if !waited {
                // The peer may wait for a ring we hold while we wait for it.
                crate::device::release_held();
                if dir == Dir::Write {
                    crate::stats::buffer_full();
                }
            }
            waited = true;
            if now.duration_since(begun) < spin {
                if watch.is_none() {
                    watch =
                        s.ep.connection()
                            .and_then(|c| s.ep.host().device().bell(c.own_token()));
                }
                if s.ep.is_handshaking() {
                    // The peer's fetch of our DMB is answered here, at once.
                    s.ep.host().device().serve_pending();
                }
                drop(s);
                // Spinning looks at shared memory only, and at the stream
                // (a system call) once per `FULL_LOOK_EVERY`.
                let since = *last_full.get_or_insert(now);
                look = if now.duration_since(since) >= FULL_LOOK_EVERY {
                    last_full = Some(now);
                    Look::Full
                } else {
                    Look::Shared
                };
                // Over SMC-D the next attempt waits, lock-free, for a new
                // header from the peer (a bounded number of looks, so that
                // the clock and the other threads of the stream get theirs).
                match (&watch, seen) {
                    (Some(b), Some(before)) => {
                        for _ in 0..HEADER_LOOKS {
                            if b.header() != before {
                                break;
                            }
                            std::hint::spin_loop();
                        }
                    }
                    _ => std::hint::spin_loop(),
                }
                continue;
            }
            parked_once = true;
            if s.bell.is_none() {
                s.bell =
                    s.ep.connection()
                        .and_then(|c| s.ep.host().device().bell(c.own_token()));
            }
            if s.bell.is_none() && !s.ep.is_handshaking() {
                // TCP after a Decline: no doorbell, so each thread polls the
                // socket for its own direction. One sleeper for all would
                // poll for its own only: a reader asleep on IN never wakes a
                // writer waiting for room.
                let events = match dir {
                    Dir::Read => PollFlags::IN,
                    Dir::Write => PollFlags::OUT,
                };
                let park = Park {
                    bell: None,
                    tcp: Some((self.inner.tcp.as_fd(), events)),
                    timeout: until(deadline),
                };
                drop(s);
                park.sleep()?;
                continue;
            }
            let mut parked = self
                .inner
                .parked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *parked {
                // Another thread of this stream sleeps on the doorbell and
                // wakes us whenever it wakes.
                drop(s);
                let cap = until(deadline).unwrap_or(Duration::MAX);
                let _ = self.inner.woken.wait_timeout(parked, cap);
                continue;
            }
            *parked = true;
            drop(parked);
            // This thread sleeps for the stream. Arm, then look once more: a
            // header written after this point finds the flag armed and
            // rings. Any change (not only one for this call) ends the round,
            // since other threads of the stream wait for this one.
            if let Some(b) = &s.bell {
                b.arm();
            }
            let moved = s.ep.poll(now_ms()).unwrap_or(true);
            let again = attempt(&mut s, &mut op, Look::Shared);
            if moved || !matches!(again, Ok(None)) {
                if let Some(b) = &s.bell {
                    b.disarm();
                }
                drop(s);
                self.unpark();
                match again? {
                    Some(v) => return Ok(v),
                    None => continue,
                }
            }
            let park = self.park(&s, dir, deadline);
            let bell = s.bell.clone();
            drop(s);
            let slept = park.sleep();
            if let Some(b) = bell {
                b.disarm();
                b.drain();
            }
            self.unpark();
            slept?;
        }
    }

    /// Keep the readiness fd's registrations in step with the endpoint
    /// after a call in `dir` that ended with `outcome`.
    fn sync_ready<T>(&self, s: &mut Smc, dir: Dir, outcome: &io::Result<Option<T>>) {
        if dir == Dir::Write && !s.ep.transport().is_smcd() {
            s.tcp_full = matches!(outcome, Ok(None));
        }
        let Some(ready) = s.ready.as_mut() else {
            return;
        };
        if ready.bell.is_none() {
            let bell =
                s.ep.connection()
                    .and_then(|c| s.ep.host().device().bell(c.own_token()));
            if let Some(b) = bell {
                let _ = ready.watch_bell(&b);
            }
        }
        let mut events = EventFlags::empty();
        if !s.ep.stream().saw_eof() {
            events |= EventFlags::IN;
        }
        if (s.ep.is_handshaking() && s.ep.has_pending_output()) || s.tcp_full {
            events |= EventFlags::OUT;
        }
        let _ = ready.watch_tcp(&self.inner.tcp, (!events.is_empty()).then_some(events));
    }

    /// The readiness fd is watched edge-triggered from now on (see `Opts`).
    #[cfg_attr(not(any(feature = "mio", feature = "tokio")), allow(dead_code))]
    pub(crate) fn set_edge_triggered(&self) {
        self.set_opts(|o| o.edge = true);
    }

    /// Plain TCP from the start: the readiness fd is the socket itself.
    #[cfg_attr(not(any(feature = "mio", feature = "tokio")), allow(dead_code))]
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.inner.mode, Mode::Plain(_))
    }

    /// The stream's readiness fd (see the [`AsFd`] implementation); once
    /// `Ok`, the same fd, open for the stream's life (registrations rely on it).
    pub(crate) fn ready_fd(&self) -> io::Result<BorrowedFd<'_>> {
        let Mode::Smc(m) = &self.inner.mode else {
            return Ok(self.inner.tcp.as_fd());
        };
        if let Some(fd) = self.inner.ready_fd.get() {
            return Ok(fd.as_fd());
        }
        let mut s = lock(m);
        if s.ready.is_none() {
            s.ready = Some(Readiness::new(&self.inner.tcp)?);
        }
        let fd = s
            .ready
            .as_ref()
            .map(|r| Arc::clone(&r.epoll))
            .ok_or(io::ErrorKind::Other)?;
        let _ = self.inner.ready_fd.set(fd);
        self.sync_ready::<()>(&mut s, Dir::Read, &Ok(Some(())));
        drop(s);
        self.inner
            .ready_fd
            .get()
            .map(|fd| fd.as_fd())
            .ok_or(io::ErrorKind::Other.into())
    }

    /// How long a blocked call spins before it parks: twice the typical
    /// wait that spinning met, plus a floor, within the configured budget
    /// (like an adaptive mutex), and none while the cores are shared with
    /// other work ([`cores_free`](crate::wait::cores_free)). A peer that answers in a microsecond is
    /// met spinning; when it does not answer soon — it is idle, or
    /// descheduled because the cores are shared — the call parks after a
    /// short spin instead of burning the core the peer may need. Parked
    /// waits do not shrink the budget: one slow answer must not turn a
    /// quick peer into a parked one (on both sides, since each park slows
    /// the other side's next wait).
    fn spin_budget(&self) -> Duration {
        let max = self.inner.spin;
        if max >= SPIN_FOREVER {
            return max;
        }
        if !crate::wait::cores_free() {
            return Duration::ZERO;
        }
        let typical = self.inner.spin_typical.load(Ordering::Relaxed);
        let budget = typical.saturating_mul(2).saturating_add(SPIN_FLOOR_NS);
        Duration::from_nanos(budget).min(max)
    }

    /// A wait of `waited` ended while spinning: update the typical wait.
    fn spin_met(&self, waited: Duration) {
        let w = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        let t = self.inner.spin_typical.load(Ordering::Relaxed);
        // A moving average with weight 1/4 for the newest wait.
        let next = t - t / 4 + w / 4;
        self.inner.spin_typical.store(next, Ordering::Relaxed);
    }

    /// This thread no longer sleeps for the stream: wake the others.
    fn unpark(&self) {
        *self
            .inner
            .parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        self.inner.woken.notify_all();
    }

    /// What to sleep on for a call blocked in `dir`.
    fn park<'a>(&'a self, s: &Smc, dir: Dir, deadline: Option<Instant>) -> Park<'a> {
        let handshaking = s.ep.is_handshaking();
        let smcd = s.ep.transport().is_smcd();
        let mut events = PollFlags::empty();
        if !s.ep.stream().saw_eof() {
            events |= PollFlags::IN;
        }
        if (handshaking && s.ep.has_pending_output()) || (!smcd && dir == Dir::Write) {
            events |= PollFlags::OUT;
        }
        let clc =
            s.ep.poll_timeout()
                .map(|t| Duration::from_millis(t.saturating_sub(now_ms())));
        let tcp: BorrowedFd<'_> = self.inner.tcp.as_fd();
        Park {
            bell: s.bell.clone(),
            tcp: (!events.is_empty()).then_some((tcp, events)),
            timeout: earliest(until(deadline), clc),
        }
    }

    fn read_smc(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.run(Dir::Read, |s| probe::read_op(s, buf))
    }

    /// Zero-copy read: `f` sees received bytes and returns how many of them
    /// it consumed (more than it saw counts as all); the rest stays for the
    /// next read. Over SMC-D `f` reads the DMB in place; over TCP the bytes
    /// are copied into a buffer first. Returns what `f` consumed; `Ok(0)`
    /// at EOF (then `f` is not called).
    ///
    /// The bytes of an SMC-D peer are shared memory it wrote: treat them as
    /// untrusted input (a hostile peer may even change them while `f` runs).
    ///
    /// # Errors
    ///
    /// As [`Read::read`].
    pub fn read_with(&self, f: impl FnOnce(&[u8]) -> usize) -> io::Result<usize> {
        let mut f = Some(f);
        let n = match &self.inner.mode {
            Mode::Plain(_) => {
                let mut buf = vec![0u8; COPY_CHUNK];
                let seen = self.inner.tcp.peek(&mut buf)?;
                if seen == 0 {
                    return Ok(0);
                }
                let used = f.take().map_or(0, |f| f(&buf[..seen])).min(seen);
                (&self.inner.tcp).read_exact(&mut buf[..used])?;
                used
            }
            Mode::Smc(_) => self.run(Dir::Read, |s| {
                if s.read_shut {
                    return Ok(0);
                }
                let dev = s.ep.host().device().clone();
                if let Some((conn, _)) = s.ep.connection_mut() {
                    // `f` is taken only when it runs: an attempt that would
                    // block calls nothing and keeps it for the next one.
                    return conn
                        .recv_with(&dev, |b| f.take().map_or(0, |g| g(b)))
                        .map_err(map_conn);
                }
                let mut buf = vec![0u8; COPY_CHUNK];
                let seen = if s.leftover.is_empty() {
                    let seen = s.ep.recv(&mut buf)?;
                    s.leftover.extend_from_slice(&buf[..seen]);
                    seen
                } else {
                    s.leftover.len()
                };
                if seen == 0 {
                    return Ok(0);
                }
                let used = f.take().map_or(0, |f| f(&s.leftover)).min(s.leftover.len());
                s.leftover.drain(..used);
                Ok(used)
            })?,
        };
        crate::stats::received(n);
        Ok(n)
    }

    /// Zero-copy write: `f` fills up to `len` bytes and returns how many it
    /// wrote (more than it was given counts as all). In nocopy SMC-D mode it
    /// writes into the peer's DMB in place (possibly fewer than `len` bytes:
    /// the free space up to the ring's end); otherwise into a buffer that is
    /// then written as a whole (in non-blocking mode: as far as it fits).
    /// Returns the bytes sent — in non-blocking mode outside nocopy SMC-D
    /// possibly fewer than `f` wrote; those bytes were not sent.
    ///
    /// # Errors
    ///
    /// As [`Write::write`].
    pub fn write_with(&self, len: usize, f: impl FnOnce(&mut [u8]) -> usize) -> io::Result<usize> {
        if len == 0 {
            return Ok(0);
        }
        let mut f = Some(f);
        let in_place = self.with_smc(|s| {
            s.ep.connection()
                .is_some_and(|c| c.mode() == smcd_core::conn::SendMode::NoCopy)
        });
        let n = if in_place == Some(true) {
            self.run(Dir::Write, |s| {
                let dev = s.ep.host().device().clone();
                let Some((conn, _)) = s.ep.connection_mut() else {
                    return Err(EndpointError::Closed);
                };
                conn.send_with(&dev, |b| {
                    let room = b.len().min(len);
                    f.take().map_or(0, |g| g(&mut b[..room])).min(room)
                })
                .map_err(map_conn)
            })?
        } else {
            let mut buf = vec![0u8; len];
            let n = f.take().map_or(0, |f| f(&mut buf)).min(len);
            let mut w = self;
            if !self.opts().nonblocking {
                w.write_all(&buf[..n])?;
                return Ok(n);
            }
            // Non-blocking: report what was really sent; the caller offers
            // the rest again, as with `write`.
            return w.write(&buf[..n]);
        };
        crate::stats::sent(n);
        Ok(n)
    }

    fn write_smc(&self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        self.run(Dir::Write, |s| s.ep.send(data))
    }
}

/// What a spin budget adds to twice the typical wait.
const SPIN_FLOOR_NS: u64 = 5_000;

/// A configured spin budget this long means: never park (`--wait spin`).
const SPIN_FOREVER: Duration = Duration::from_secs(3600);

/// What a stream adds to its own doorbell to announce news again (a peer
/// adds 1 per ring).
const SELF_RING: u64 = 1 << 32;

/// Drain the doorbell; whether the peer rang since the last drain.
fn drain_rings(b: &Bell) -> bool {
    let mut buf = [0u8; 8];
    rustix::io::read(b, &mut buf).is_ok_and(|_| u64::from_ne_bytes(buf) % SELF_RING != 0)
}

/// Bytes a zero-copy call over TCP looks at, at most.
const COPY_CHUNK: usize = 64 * 1024;

/// A connection error as the endpoint would report it.
fn map_conn(e: smcd_core::conn::ConnError) -> EndpointError {
    match e {
        smcd_core::conn::ConnError::WouldBlock => EndpointError::WouldBlock,
        smcd_core::conn::ConnError::Closed => EndpointError::Closed,
        e => EndpointError::Conn(e),
    }
}

/// Lock an SMC side (a panic elsewhere leaves the endpoint consistent).
fn lock(m: &Mutex<Smc>) -> MutexGuard<'_, Smc> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Count and log a stream whose transport is settled.
fn settled(tcp: &TcpStream, t: &Transport) {
    crate::stats::connection(t);
    let peer = tcp.peer_addr().ok();
    match t {
        Transport::SmcD(_) => tracing::info!(?peer, transport = %t, "smcd connection uses SMC-D"),
        Transport::Tcp(_) => tracing::info!(?peer, transport = %t, "smcd connection uses TCP"),
    }
}

/// The std view of a settled endpoint transport.
fn std_transport(t: EpTransport) -> Option<Transport> {
    match t {
        EpTransport::SmcD(info) => Some(Transport::SmcD(info)),
        EpTransport::Tcp(f) => Some(Transport::Tcp(TcpReason::Declined(f))),
        _ => None,
    }
}

/// How much of the endpoint an attempt looks at before it tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// Over SMC-D only the shared memory (no system call); otherwise all.
    Shared,
    /// Everything: the TCP stream (its end, CLC input), timers, memory.
    Full,
}

/// How often a spinning call looks at its DMB header for news before it
/// tries again anyway (a few hundred nanoseconds).
const HEADER_LOOKS: u32 = 64;

/// How often a spinning call looks at the TCP stream too.
const FULL_LOOK_EVERY: Duration = Duration::from_millis(1);

/// Poll the endpoint and try `op` once: `Ok(None)` when it would block.
fn attempt<T>(
    s: &mut Smc,
    op: &mut impl FnMut(&mut Smc) -> Result<T, EndpointError>,
    look: Look,
) -> io::Result<Option<T>> {
    // A failure is reported by the call itself (sticky), with its context.
    let moved = if look == Look::Shared && s.counted && s.ep.connection().is_some() {
        s.ep.poll_shared()
    } else {
        s.ep.poll(now_ms())
    };
    s.news |= moved.unwrap_or(true);
    if !s.counted && !s.ep.is_handshaking() {
        s.counted = true;
        match std_transport(s.ep.transport()) {
            Some(t) => settled(s.ep.stream().tcp(), &t),
            None => tracing::warn!(transport = ?s.ep.transport(), "smcd handshake failed"),
        }
    }
    match op(s) {
        Ok(v) => Ok(Some(v)),
        Err(EndpointError::WouldBlock) => Ok(None),
        Err(e) => Err(io_error(e)),
    }
}

fn count(r: io::Result<usize>, f: fn(usize)) -> io::Result<usize> {
    if let Ok(n) = r {
        f(n);
    }
    r
}

impl Read for &SmcStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match &self.inner.mode {
            Mode::Plain(_) => (&self.inner.tcp).read(buf),
            Mode::Smc(_) => self.read_smc(buf),
        };
        count(r, crate::stats::received)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let r = match &self.inner.mode {
            Mode::Plain(_) => (&self.inner.tcp).read_vectored(bufs),
            Mode::Smc(_) => {
                let first = bufs.iter_mut().find(|b| !b.is_empty());
                first.map_or(Ok(0), |b| self.read_smc(b))
            }
        };
        count(r, crate::stats::received)
    }
}

impl Write for &SmcStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let r = match &self.inner.mode {
            Mode::Plain(_) => (&self.inner.tcp).write(data),
            Mode::Smc(_) => self.write_smc(data),
        };
        count(r, crate::stats::sent)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let r = match &self.inner.mode {
            Mode::Plain(_) => (&self.inner.tcp).write_vectored(bufs),
            Mode::Smc(_) => {
                let first = bufs.iter().find(|b| !b.is_empty());
                first.map_or(Ok(0), |b| self.write_smc(b))
            }
        };
        count(r, crate::stats::sent)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for SmcStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for SmcStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        (&*self).write(data)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The readiness fd: for a plain TCP stream its socket; for an SMC stream
/// an epoll set that becomes readable whenever a call may report something
/// new — bytes, EOF, room in the peer's ring, an error, or a TCP event
/// while handshaking or after a fallback. Wait for it to be readable, then
/// retry the reads and writes that reported `WouldBlock` (in non-blocking
/// mode); it never reports "writable" by itself.
///
/// ```no_run
/// use std::os::fd::AsFd;
/// use rustix::event::{PollFd, PollFlags, poll};
///
/// let s = smcd_std::SmcStream::connect("127.0.0.1:7000")?;
/// s.set_nonblocking(true)?;
/// let mut fds = [PollFd::new(&s, PollFlags::IN)];
/// poll(&mut fds, None)?;
/// # Ok::<(), std::io::Error>(())
/// ```
impl AsFd for SmcStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self.ready_fd() {
            Ok(fd) => fd,
            // Without an epoll set (out of fds), the TCP socket still
            // reports EOF and errors.
            Err(_) => self.inner.tcp.as_fd(),
        }
    }
}

impl AsRawFd for SmcStream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Drop for Inner {
    /// Close like a TCP socket: the close is sent at once, and finishing it
    /// (the peer's close, at most 2 s) does not block the caller.
    fn drop(&mut self) {
        live::remove(self.live);
        let mode = std::mem::replace(&mut self.mode, Mode::Plain(TcpReason::Disabled));
        if let Mode::Smc(m) = mode {
            let mut smc = m
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cork::release(&mut smc);
            let _ = smc.ep.close();
            let _ = smc.ep.poll(now_ms());
            if !smc.ep.is_closed() {
                linger::keep(smc.ep);
            }
        }
    }
}

impl From<SmcError> for io::Error {
    fn from(e: SmcError) -> Self {
        io::Error::other(e)
    }
}
