//! One application connection end to end: the CLC handshake on a
//! [`ByteStream`], then either an SMC-D [`Connection`] over the [`Host`]'s
//! device or — after a Decline — plain bytes on the same stream
//! (`docs/protocol/handshake.md` §6).
//!
//! An [`Endpoint`] owns the handshake engine, the connection it turns into,
//! and the stream. It never blocks and knows no clock: the caller passes
//! milliseconds to [`poll`](Endpoint::poll), which moves CLC bytes, fires the
//! CLC timer, picks up the peer's CDC signals and watches the stream for the
//! peer going away. [`send`](Endpoint::send) and [`recv`](Endpoint::recv) use
//! whichever [`Transport`] the handshake settled on. The blocking driver of
//! [`crate::blocking`] loops on it; in-process pairs run two endpoints over a
//! [`Pipe`].
//!
//! # Resources
//!
//! On [`close`](Endpoint::close) the close state machine runs
//! (`docs/protocol/close.md`); once it reaches `Closed` the endpoint gives everything
//! back — its DMB, the attached peer DMB (nocopy) and its link-group
//! reference. Dropping an endpoint whose connection is still open aborts the
//! connection first and then gives everything back.
//!
//! # Peer gone
//!
//! While SMC-D runs, the stream stays idle. An EOF or error on it while the
//! peer has sent no close or shutdown flag means the peer died: the
//! connection is aborted (`ConnError::Aborted`), so nothing waits forever —
//! after the bytes the peer had sent before it died, which stay readable
//! (`Connection::peer_left`).
//!
//! # Example: a fallback, with data on the stream
//!
//! ```
//! use smcd_core::clc::testing::FakeDevice;
//! use smcd_core::clc::ClcConfig;
//! use smcd_core::dmb::Gid;
//! use smcd_core::endpoint::{Endpoint, Host, Pipe, Transport};
//!
//! let lo = FakeDevice::loopback(Gid::new(1, 2));
//! // No UEID at all: the server declines NOUEID.
//! let host: Host<_> = Host::with_config(ClcConfig::empty(), lo);
//! let pipe = Pipe::<1024>::new();
//! let (a, b) = pipe.ends();
//! let mut client = Endpoint::client(&host, a, 0);
//! let mut server = Endpoint::server(&host, b, 0);
//! while client.is_handshaking() || server.is_handshaking() {
//!     client.poll(0)?;
//!     server.poll(0)?;
//! }
//! let Transport::Tcp(fallback) = client.transport() else { panic!() };
//! assert_eq!(fallback.reason.code(), 0x0303_0008);
//!
//! assert_eq!(client.send(b"ping")?, 4); // plain bytes on the pipe
//! let mut buf = [0u8; 8];
//! assert_eq!(server.recv(&mut buf)?, 4);
//! assert_eq!(&buf[..4], b"ping");
//! # Ok::<(), smcd_core::endpoint::EndpointError>(())
//! ```

mod error;
mod host;
mod pair;
mod pipe;
mod staged;
mod stream;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use error::{EndpointError, Failure};
pub use host::{DEFAULT_LINK_GROUPS, Host, HostRef};
pub use pair::{Paired, pair};
pub use pipe::{Pipe, PipeEnd};
pub use stream::{ByteStream, StreamError, StreamErrorKind};

use crate::clc::{ClcContext, Fallback, Handshake, LinkGroup, Outcome, SmcdInfo, release_parts};
use crate::conn::{CloseState, Connection};
use staged::{STAGE_BYTES, Staged};

/// How an endpoint's bytes travel.
///
/// A `Transport` is information only: [`SmcD`](Self::SmcD) carries no DMB,
/// no token and no memory, so one kept after the endpoints closed (and gave
/// their DMBs back) cannot reach memory that may be freed (E0609, no such
/// field):
///
/// ```compile_fail,E0609
/// use smcd_core::clc::ClcConfig;
/// use smcd_core::clc::testing::FakeDevice;
/// use smcd_core::dmb::Gid;
/// use smcd_core::endpoint::Transport;
/// use smcd_core::endpoint::testing::{Fixture, drive};
///
/// let lo = FakeDevice::loopback(Gid::new(1, 2));
/// let fx = Fixture::new(&lo, ClcConfig::default());
/// let (mut client, mut server) = fx.pair();
/// drive(&mut client, &mut server, 0);
/// let Transport::SmcD(est) = client.transport() else { panic!("no SMC-D") };
/// client.abort();
/// server.abort();
/// assert!(client.is_closed() && server.is_closed());
/// assert_eq!(lo.live_dmbs(), 0); // both DMBs went back
/// est.dmb.mem.write(64, b"after free").unwrap(); // error: no field `dmb`
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// The CLC handshake is running; nothing can be sent yet.
    Handshaking,
    /// SMC-D, as the handshake settled it (information only: the endpoint
    /// owns the DMBs).
    SmcD(SmcdInfo),
    /// Plain bytes on the stream after a Decline.
    Tcp(Fallback),
    /// No connection.
    Failed(Failure),
    /// Closed by the application before the handshake ended.
    Closed,
}

impl Transport {
    /// Whether this is SMC-D.
    pub fn is_smcd(&self) -> bool {
        matches!(self, Self::SmcD(_))
    }
}

// One endpoint lives on the stack for the life of a connection; there is no
// heap to box the handshake into.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Phase<H: ClcContext> {
    Handshake(Handshake<H>),
    /// `conn` is `None` once its resources went back.
    Smc {
        info: SmcdInfo,
        lgr: LinkGroup,
        conn: Option<Connection>,
    },
    Tcp(Fallback),
    Failed(Failure),
    Abandoned,
}

/// What tells whether a connection moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    available: usize,
    space: usize,
    state: CloseState,
    failed: bool,
}

impl Progress {
    fn of(c: &Connection) -> Self {
        Self {
            available: c.bytes_available(),
            space: c.send_space(),
            state: c.state(),
            failed: c.error().is_some(),
        }
    }
}

/// Copy `src` into `dst` as far as it fits; returns the bytes copied.
fn copy_into(dst: &mut [u8], src: &[u8]) -> usize {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    n
}

/// Give back what a connection holds — its DMBs and its link-group
/// reference — through the handshake's release path.
fn release_conn<H: HostRef>(host: &H, info: &SmcdInfo, lgr: LinkGroup, conn: Connection) {
    let (own, peer) = conn.into_dmbs();
    release_parts(host, info.device, own, peer, lgr);
}

/// The handshake, connection and stream of one application connection.
/// See the [module documentation](self).
#[derive(Debug)]
pub struct Endpoint<H: HostRef, S: ByteStream> {
    host: H,
    stream: S,
    phase: Phase<H>,
    /// CLC bytes the stream has not taken yet.
    tx: Staged,
    /// Application bytes read together with the last CLC message.
    rx: Staged,
    app_closed: bool,
    stream_ended: bool,
}

impl<H: HostRef, S: ByteStream> Endpoint<H, S> {
    /// The connecting side, started at `now_ms` (the TCP connection is up).
    pub fn client(host: H, stream: S, now_ms: u64) -> Self {
        let h = Handshake::client(host.clone(), now_ms);
        Self::with(host, stream, h)
    }

    /// The accepting side, started at `now_ms` (the TCP connection is up).
    pub fn server(host: H, stream: S, now_ms: u64) -> Self {
        let h = Handshake::server(host.clone(), now_ms);
        Self::with(host, stream, h)
    }

    fn with(host: H, stream: S, h: Handshake<H>) -> Self {
        Self {
            host,
            stream,
            phase: Phase::Handshake(h),
            tx: Staged::new(),
            rx: Staged::new(),
            app_closed: false,
            stream_ended: false,
        }
    }

    // ----- queries -------------------------------------------------------

    /// How bytes travel (or why they cannot).
    pub fn transport(&self) -> Transport {
        match &self.phase {
            Phase::Handshake(_) => Transport::Handshaking,
            Phase::Smc { info, .. } => Transport::SmcD(*info),
            Phase::Tcp(f) => Transport::Tcp(*f),
            Phase::Failed(f) => Transport::Failed(*f),
            Phase::Abandoned => Transport::Closed,
        }
    }

    /// Whether the CLC handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake(_))
    }

    /// When [`poll`](Self::poll) must run at the latest (the CLC timer), in
    /// the caller's milliseconds; `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.phase {
            Phase::Handshake(h) => h.poll_timeout(),
            _ => None,
        }
    }

    /// Whether CLC bytes (e.g. our Decline) still wait for room in the stream.
    pub fn has_pending_output(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Whether the application closed the endpoint and everything is given
    /// back (for SMC-D: the close state machine reached `Closed`).
    pub fn is_closed(&self) -> bool {
        self.app_closed && !matches!(self.phase, Phase::Smc { conn: Some(_), .. })
    }

    /// The SMC-D connection, while it holds its resources.
    pub fn connection(&self) -> Option<&Connection> {
        match &self.phase {
            Phase::Smc { conn, .. } => conn.as_ref(),
            _ => None,
        }
    }

    /// The SMC-D connection and its device, for the zero-copy calls
    /// ([`Connection::send_with`], [`Connection::recv_with`]).
    pub fn connection_mut(&mut self) -> Option<(&mut Connection, &H::Device)> {
        let dev = self.host.device();
        match &mut self.phase {
            Phase::Smc { conn, .. } => conn.as_mut().map(|c| (c, dev)),
            _ => None,
        }
    }

    /// The host handle.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// The stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    // ----- driving -------------------------------------------------------

    /// Make progress at `now_ms`: write pending CLC bytes, read and process
    /// CLC input, fire the CLC timer, settle the handshake's outcome; once
    /// SMC-D runs, process the peer's CDC header and watch the stream for
    /// the peer going away.
    ///
    /// Returns whether anything changed (bytes moved, a state changed), so a
    /// driver knows when to back off. Call it whenever the device signals,
    /// before waiting, and at [`poll_timeout`](Self::poll_timeout).
    ///
    /// # Errors
    ///
    /// [`EndpointError::Failed`] when the handshake ended without a
    /// connection (protocol error, timeout, stream closed or broken);
    /// [`EndpointError::Conn`] when the peer's header was invalid (the
    /// connection is aborted); [`EndpointError::Stream`] when writing a
    /// Decline failed after a fallback.
    pub fn poll(&mut self, now_ms: u64) -> Result<bool, EndpointError> {
        let mut progress = self.flush()?;
        progress |= match self.phase {
            Phase::Handshake(_) => self.poll_handshake(now_ms)?,
            Phase::Smc { .. } => self.poll_smc()?,
            _ => false,
        };
        Ok(progress | self.flush()?)
    }

    /// Write staged CLC bytes; a broken stream fails a running handshake.
    fn flush(&mut self) -> Result<bool, EndpointError> {
        let mut progress = false;
        while !self.tx.is_empty() {
            match self.stream.write(self.tx.pending()) {
                Ok(0) => break,
                Ok(n) => {
                    self.tx.consume(n);
                    progress = true;
                }
                Err(e) if e.kind() == StreamErrorKind::WouldBlock => break,
                Err(e) if self.is_handshaking() => return Err(self.fail(Failure::Stream(e.kind()))),
                Err(e) => return Err(EndpointError::stream(e.kind())),
            }
        }
        Ok(progress)
    }

    /// End without a connection: the handshake (if any) gives its resources
    /// back, and the stream is shut down (Linux closes the socket).
    fn fail(&mut self, f: Failure) -> EndpointError {
        self.phase = Phase::Failed(f);
        // Best effort: the stream may be what failed.
        let _ = self.stream.shutdown();
        EndpointError::Failed(f)
    }

    fn poll_handshake(&mut self, now_ms: u64) -> Result<bool, EndpointError> {
        let Phase::Handshake(h) = &mut self.phase else {
            return Ok(false);
        };
        let mut progress = false;
        let mut broken = None;
        if h.poll_timeout().is_some_and(|t| now_ms >= t) {
            h.handle_timeout(now_ms);
            progress = true;
        }
        // Read only while the engine has nothing to send, so that it never
        // queues a message over one we have not taken yet.
        if h.is_handshaking() && !h.has_transmit() {
            let mut chunk = [0u8; STAGE_BYTES];
            match self.stream.read(&mut chunk) {
                Ok(0) => broken = Some(Failure::StreamClosed),
                Ok(n) => {
                    let got = chunk.get(..n).unwrap_or_default();
                    let used = h.handle_input(now_ms, got);
                    // What follows the last CLC message is application data;
                    // `rx` is empty while handshaking and as large as `chunk`.
                    let rest = got.get(used..).unwrap_or_default();
                    self.rx.fill(|b| copy_into(b, rest));
                    progress = true;
                }
                Err(e) if e.kind() == StreamErrorKind::WouldBlock => {}
                Err(e) => broken = Some(Failure::Stream(e.kind())),
            }
        }
        while h.has_transmit() && self.tx.fill(|b| h.poll_transmit(b).unwrap_or(0)) > 0 {}
        // The outcome is taken once every CLC byte (e.g. our Decline) is staged.
        let outcome = if h.has_transmit() {
            None
        } else {
            h.poll_outcome()
        };
        match (outcome, broken) {
            (Some(o), _) => {
                let conn = h.take_established().map(|e| e.into_connection());
                self.settle(o, conn)?;
                Ok(true)
            }
            (None, Some(f)) => Err(self.fail(f)),
            (None, None) => Ok(progress),
        }
    }

    /// Turn the handshake's outcome (with the connection of an
    /// established one) into the endpoint's transport.
    fn settle(
        &mut self,
        outcome: Outcome,
        conn: Option<(Connection, LinkGroup)>,
    ) -> Result<(), EndpointError> {
        match (outcome, conn) {
            (Outcome::Established(info), Some((conn, lgr))) => {
                // Nothing but CLC may precede SMC-D data; stray bytes are dropped.
                self.rx.consume(usize::MAX);
                self.phase = Phase::Smc {
                    info,
                    lgr,
                    conn: Some(conn),
                };
                Ok(())
            }
            (Outcome::Fallback(f), _) => {
                self.phase = Phase::Tcp(f);
                Ok(())
            }
            (Outcome::Failed(e), _) => Err(self.fail(Failure::Handshake(e))),
            // The engine hands its resources over with every established
            // outcome; without them there is no connection.
            (Outcome::Established(_), None) => Err(self.fail(Failure::NoResources)),
        }
    }

    /// Take in what the peer wrote to shared memory since the last poll,
    /// without touching the stream: no CLC, no timer, and on a host stream
    /// no system call. A driver that spins on the connection calls this
    /// between attempts, and [`poll`](Self::poll) before it sleeps (only
    /// `poll` learns of the stream's end, e.g. a peer that died).
    ///
    /// Returns whether anything changed; `Ok(false)` outside SMC-D.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Conn`] when the peer's header was invalid (the
    /// connection is aborted).
    pub fn poll_shared(&mut self) -> Result<bool, EndpointError> {
        let progress = self.take_signal();
        self.release_if_done();
        progress
    }

    /// Process the peer's CDC header; whether the connection moved.
    fn take_signal(&mut self) -> Result<bool, EndpointError> {
        let dev = self.host.device();
        let Phase::Smc {
            conn: Some(conn), ..
        } = &mut self.phase
        else {
            return Ok(false);
        };
        let before = Progress::of(conn);
        let signalled = conn.handle_signal(dev);
        let progress = Progress::of(conn) != before;
        signalled.map(|()| progress).map_err(EndpointError::conn)
    }

    fn poll_smc(&mut self) -> Result<bool, EndpointError> {
        let signalled = self.take_signal();
        let dev = self.host.device();
        let Phase::Smc {
            conn: Some(conn), ..
        } = &mut self.phase
        else {
            return signalled;
        };
        let mut progress = *signalled.as_ref().unwrap_or(&true);
        // The stream is checked only when the connection is idle: it should
        // carry nothing while SMC-D runs, and reading it may cost a syscall.
        if !progress && !self.stream_ended {
            let mut scratch = [0u8; 64];
            let ended = match self.stream.read(&mut scratch) {
                Ok(0) => true,
                // A conforming peer sends nothing here. A peer whose side
                // of the handshake failed after our Confirm (a server whose
                // attach of our DMB failed) sends a Decline and falls back
                // to TCP: it will never read our ring, so the connection is
                // over (treated as a peer that left).
                Ok(_) => true,
                Err(e) => e.kind() != StreamErrorKind::WouldBlock,
            };
            if ended {
                self.stream_ended = true;
                progress = true;
                // The peer's close flag is written before its TCP shutdown.
                let _ = conn.handle_signal(dev);
                if !conn.peer_done_writing() {
                    conn.peer_left(dev);
                }
            }
        }
        self.release_if_done();
        signalled.map(|_| progress)
    }

    /// Once the application closed and the connection reached `Closed`,
    /// give its resources back (`docs/protocol/close.md` §3, last paragraph).
    fn release_if_done(&mut self) {
        if !self.app_closed {
            return;
        }
        if let Phase::Smc { info, lgr, conn } = &mut self.phase {
            if let Some(c) = conn.take_if(|c| c.is_closed()) {
                release_conn(&self.host, info, *lgr, c);
            }
        }
    }

    // ----- application calls ---------------------------------------------

    /// Send as many bytes of `data` as fit now.
    ///
    /// # Errors
    ///
    /// [`EndpointError::WouldBlock`] while handshaking or when nothing fits
    /// (SMC-D: the peer's ring is full; TCP: the stream is full);
    /// [`EndpointError::Closed`] after [`close`](Self::close);
    /// [`EndpointError::Failed`] without a connection; the connection's or
    /// the stream's error otherwise.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, EndpointError> {
        if self.app_closed {
            return Err(EndpointError::Closed);
        }
        let dev = self.host.device();
        match &mut self.phase {
            Phase::Handshake(_) => Err(EndpointError::WouldBlock),
            Phase::Smc { conn: Some(c), .. } => c.send(dev, data).map_err(EndpointError::conn),
            Phase::Smc { conn: None, .. } | Phase::Abandoned => Err(EndpointError::Closed),
            Phase::Tcp(_) => {
                // Our Decline goes first.
                self.flush()?;
                if !self.tx.is_empty() {
                    return Err(EndpointError::WouldBlock);
                }
                self.stream
                    .write(data)
                    .map_err(|e| EndpointError::stream(e.kind()))
            }
            Phase::Failed(f) => Err(EndpointError::Failed(*f)),
        }
    }

    /// Receive bytes into `buf`; `Ok(0)` at EOF (or for an empty `buf`).
    ///
    /// # Errors
    ///
    /// [`EndpointError::WouldBlock`] while handshaking or when nothing
    /// arrived yet; otherwise as [`send`](Self::send).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, EndpointError> {
        if self.app_closed {
            return Err(EndpointError::Closed);
        }
        let dev = self.host.device();
        match &mut self.phase {
            Phase::Handshake(_) => Err(EndpointError::WouldBlock),
            Phase::Smc { conn: Some(c), .. } => c.recv(dev, buf).map_err(EndpointError::conn),
            Phase::Smc { conn: None, .. } | Phase::Abandoned => Err(EndpointError::Closed),
            Phase::Tcp(_) if !self.rx.is_empty() => Ok(self.rx.take_into(buf)),
            Phase::Tcp(_) => self
                .stream
                .read(buf)
                .map_err(|e| EndpointError::stream(e.kind())),
            Phase::Failed(f) => Err(EndpointError::Failed(*f)),
        }
    }

    /// Shut down our write side (`shutdown(SHUT_WR)`): SMC-D sends
    /// done-writing (`docs/protocol/close.md` §2), and the stream is shut down too.
    ///
    /// # Errors
    ///
    /// [`EndpointError::WouldBlock`] while handshaking or while our Decline
    /// is still being written; otherwise as [`send`](Self::send).
    pub fn shutdown_write(&mut self) -> Result<(), EndpointError> {
        if self.app_closed {
            return Err(EndpointError::Closed);
        }
        let dev = self.host.device();
        match &mut self.phase {
            Phase::Handshake(_) => return Err(EndpointError::WouldBlock),
            Phase::Smc { conn: Some(c), .. } => {
                c.shutdown_write(dev).map_err(EndpointError::conn)?;
            }
            Phase::Smc { conn: None, .. } | Phase::Abandoned => return Err(EndpointError::Closed),
            Phase::Tcp(_) => {
                self.flush()?;
                if !self.tx.is_empty() {
                    return Err(EndpointError::WouldBlock);
                }
            }
            Phase::Failed(f) => return Err(EndpointError::Failed(*f)),
        }
        self.stream
            .shutdown()
            .map_err(|e| EndpointError::stream(e.kind()))
    }

    /// The application closes the endpoint (`close()`).
    ///
    /// SMC-D: the close state machine sends our close flag
    /// (`docs/protocol/close.md` §1) and the stream is shut down; keep calling
    /// [`poll`](Self::poll) until [`is_closed`](Self::is_closed) — the peer's
    /// close completes it — or give up and [`abort`](Self::abort). A running
    /// handshake is abandoned (its resources go back at once). Pending CLC
    /// bytes are written as far as the stream takes them. Calling it again
    /// is harmless.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Conn`] if writing the close header failed (the
    /// connection is then closed locally); [`EndpointError::Stream`] if the
    /// stream could not be shut down.
    pub fn close(&mut self) -> Result<(), EndpointError> {
        if self.app_closed {
            return Ok(());
        }
        self.app_closed = true;
        let dev = self.host.device();
        let mut closed = Ok(());
        match &mut self.phase {
            Phase::Handshake(_) => self.phase = Phase::Abandoned,
            Phase::Smc { conn: Some(c), .. } => {
                closed = c.close(dev).map_err(EndpointError::conn);
            }
            Phase::Tcp(_) => {
                // Best effort; the stream's own close follows.
                let _ = self.flush();
            }
            Phase::Smc { conn: None, .. } | Phase::Failed(_) | Phase::Abandoned => {}
        }
        let shut = self
            .stream
            .shutdown()
            .map_err(|e| EndpointError::stream(e.kind()));
        self.release_if_done();
        closed.and(shut)
    }

    /// Abort: SMC-D sends our abort flag and the connection is closed at
    /// once (`docs/protocol/close.md` §4); everything is given back. Use it when the
    /// peer does not complete a close in time.
    pub fn abort(&mut self) {
        self.app_closed = true;
        let dev = self.host.device();
        match &mut self.phase {
            Phase::Handshake(_) => self.phase = Phase::Abandoned,
            Phase::Smc { conn: Some(c), .. } => c.abort(dev),
            _ => {}
        }
        // Best effort: the stream may already be gone.
        let _ = self.stream.shutdown();
        self.release_if_done();
    }
}

impl<H: HostRef, S: ByteStream> Drop for Endpoint<H, S> {
    fn drop(&mut self) {
        let dev = self.host.device();
        if let Phase::Smc { info, lgr, conn } = &mut self.phase {
            if let Some(mut c) = conn.take() {
                c.abort(dev);
                release_conn(&self.host, info, *lgr, c);
            }
        }
    }
}
