//! A unikernel-style blocking driver: [`Blocking`] runs an
//! [`Endpoint`] to completion — blocking `connect`/`accept`, `send_all`,
//! `recv` and `close` — waiting with a [`Pause`]: any embedded-hal
//! [`DelayNs`](embedded_hal::delay::DelayNs), or a wait that a wake-up (a
//! doorbell, an interrupt) may end early.
//!
//! # Waiting and time
//!
//! While nothing changes, the driver waits with [`Backoff`]: a few rounds of
//! spinning, then pauses of 1 µs doubling up to 1 ms (the defaults of
//! [`BackoffPolicy`]; [`Blocking::set_backoff`] changes them). It has no
//! clock of its own: it adds up the nanoseconds each pause reports, and that
//! sum is its time ([`Blocking::now_ms`]), which feeds the CLC timer (6 s
//! per message, `docs/protocol/handshake.md` §7) and the close wait. A pause reports
//! at most the time that really passed (a `DelayNs` waits at least what was
//! asked and reports exactly that) and the work between pauses is not
//! counted, so this clock is a **lower bound** of real time: timeouts fire
//! no earlier than they should, possibly later.
//!
//! With a plain delay, the cap bounds how late the driver notices an event.
//! A [`Pause`] that the device's doorbell ends early (the loopback device
//! rings the DMB owner after every CDC header write) removes that latency
//! for SMC-D events; the CLC handshake, which runs on the stream, still
//! relies on the back-off.
//!
//! # Example
//!
//! A client and a server in two threads over an in-memory pipe. Without a
//! common UEID the server declines (NOUEID) and both fall back: the bytes go
//! over the pipe.
//!
//! ```
//! use embedded_hal_mock::eh1::delay::StdSleep;
//! use smcd_core::blocking::Blocking;
//! use smcd_core::clc::testing::FakeDevice;
//! use smcd_core::clc::ClcConfig;
//! use smcd_core::dmb::Gid;
//! use smcd_core::endpoint::{Host, Pipe};
//!
//! let lo = FakeDevice::loopback(Gid::new(1, 2));
//! // No UEID at all: the server declines NOUEID.
//! let host: Host<_> = Host::with_config(ClcConfig::empty(), lo);
//! let pipe = Pipe::<1024>::new();
//! let (a, b) = pipe.ends();
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let mut server = Blocking::accept(&host, b, StdSleep::new()).unwrap();
//!         let mut buf = [0u8; 16];
//!         let n = server.recv(&mut buf).unwrap();
//!         server.send_all(&buf[..n]).unwrap();
//!         server.close().unwrap();
//!     });
//!     let mut client = Blocking::connect(&host, a, StdSleep::new()).unwrap();
//!     assert!(!client.transport().is_smcd());
//!     client.send_all(b"echo").unwrap();
//!     let mut buf = [0u8; 16];
//!     assert_eq!(client.recv(&mut buf).unwrap(), 4);
//!     assert_eq!(&buf[..4], b"echo");
//!     client.close().unwrap();
//! });
//! ```

mod backoff;
mod pause;

pub use backoff::{BACKOFF_MAX_NS, BACKOFF_MIN_NS, Backoff, BackoffPolicy, SPIN_ROUNDS};
pub use pause::Pause;

use crate::endpoint::{ByteStream, Endpoint, EndpointError, HostRef, Transport};

/// How long [`Blocking::close`] waits for pending CLC bytes and for the
/// peer's close before it aborts: 2 s, the close flush time Linux uses
/// without `SO_LINGER` (`docs/protocol/close.md` §6).
pub const CLOSE_WAIT_MS: u64 = 2_000;

const NS_PER_MS: u64 = 1_000_000;

/// An [`Endpoint`] with blocking calls. See the [module documentation](self).
#[derive(Debug)]
pub struct Blocking<H: HostRef, S: ByteStream, T: Pause> {
    ep: Endpoint<H, S>,
    pause: T,
    backoff: Backoff,
    elapsed_ns: u64,
}

impl<H: HostRef, S: ByteStream, T: Pause> Blocking<H, S, T> {
    /// Drive `ep`, which must have been created at time 0 (the driver's
    /// clock starts there), pausing with `pause` and the default
    /// [`BackoffPolicy`]. Nothing is waited for yet.
    pub fn new(ep: Endpoint<H, S>, pause: T) -> Self {
        Self {
            ep,
            pause,
            backoff: Backoff::new(),
            elapsed_ns: 0,
        }
    }

    /// Wait the way `policy` says from now on (the back-off starts over).
    pub fn set_backoff(&mut self, policy: BackoffPolicy) {
        self.backoff = Backoff::with_policy(policy);
    }

    /// Connect: run the client handshake on `stream` until SMC-D is
    /// established or the endpoint fell back to the stream.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Failed`]: CLC timeout (no Accept within 6 s of
    /// accumulated pauses), protocol error, stream closed or broken.
    pub fn connect(host: H, stream: S, pause: T) -> Result<Self, EndpointError> {
        let mut b = Self::new(Endpoint::client(host, stream, 0), pause);
        b.handshake()?;
        Ok(b)
    }

    /// Accept: run the server handshake on `stream` (a freshly accepted
    /// connection) until SMC-D is established or the endpoint fell back.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn accept(host: H, stream: S, pause: T) -> Result<Self, EndpointError> {
        let mut b = Self::new(Endpoint::server(host, stream, 0), pause);
        b.handshake()?;
        Ok(b)
    }

    /// Wait until the handshake has ended; returns the transport.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn handshake(&mut self) -> Result<Transport, EndpointError> {
        while self.ep.is_handshaking() {
            self.wait(false)?;
        }
        match self.ep.transport() {
            Transport::Failed(f) => Err(EndpointError::Failed(f)),
            t => Ok(t),
        }
    }

    /// The driver's clock: milliseconds of pauses reported so far, a lower
    /// bound of the real time elapsed.
    pub fn now_ms(&self) -> u64 {
        self.elapsed_ns / NS_PER_MS
    }

    /// How bytes travel.
    pub fn transport(&self) -> Transport {
        self.ep.transport()
    }

    /// The endpoint (for queries).
    pub fn endpoint(&self) -> &Endpoint<H, S> {
        &self.ep
    }

    /// The endpoint, for non-blocking calls between blocking ones.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint<H, S> {
        &mut self.ep
    }

    /// For callers that multiplex non-blocking calls on
    /// [`endpoint_mut`](Self::endpoint_mut) (e.g. send and receive at once):
    /// poll the endpoint, and unless it or the caller (`progressed`) made
    /// progress, back off one round.
    ///
    /// # Errors
    ///
    /// As [`Endpoint::poll`].
    pub fn wait(&mut self, progressed: bool) -> Result<(), EndpointError> {
        let progress = self.ep.poll(self.now_ms())?;
        self.idle(progressed || progress);
        Ok(())
    }

    /// One wait step: after progress start over, else back off and count
    /// the pause.
    fn idle(&mut self, progress: bool) {
        if progress {
            self.backoff.reset();
        } else {
            let ns = self.backoff.snooze(&mut self.pause);
            self.elapsed_ns = self.elapsed_ns.saturating_add(u64::from(ns));
        }
    }

    /// Send every byte of `data`, waiting for room as needed.
    ///
    /// # Errors
    ///
    /// The first error of [`Endpoint::send`] or [`Endpoint::poll`] other
    /// than "would block"; some bytes may have been sent.
    pub fn send_all(&mut self, data: &[u8]) -> Result<(), EndpointError> {
        let mut rest = data;
        while !rest.is_empty() {
            let sent = match self.ep.send(rest) {
                Ok(n) => n,
                Err(EndpointError::WouldBlock) => 0,
                Err(e) => return Err(e),
            };
            rest = rest.get(sent..).unwrap_or_default();
            self.wait(sent > 0)?;
        }
        Ok(())
    }

    /// Receive at least one byte into `buf`, waiting as needed; `Ok(0)` at
    /// EOF (or for an empty `buf`).
    ///
    /// # Errors
    ///
    /// The first error of [`Endpoint::recv`] or [`Endpoint::poll`] other
    /// than "would block".
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, EndpointError> {
        loop {
            match self.ep.recv(buf) {
                Err(EndpointError::WouldBlock) => {}
                done => {
                    self.backoff.reset();
                    return done;
                }
            }
            self.wait(false)?;
        }
    }

    /// Shut down the write side, waiting while our Decline is still being
    /// written.
    ///
    /// # Errors
    ///
    /// As [`Endpoint::shutdown_write`], except "would block".
    pub fn shutdown_write(&mut self) -> Result<(), EndpointError> {
        loop {
            match self.ep.shutdown_write() {
                Err(EndpointError::WouldBlock) => {}
                done => return done,
            }
            self.wait(false)?;
        }
    }

    /// Close with flush: write pending CLC bytes (our Decline), close, and
    /// wait for the peer's close so that every resource is given back —
    /// all within [`CLOSE_WAIT_MS`] of accumulated pauses, after which the
    /// connection is aborted instead. Bytes already accepted by
    /// [`send_all`](Self::send_all) are in the peer's ring or on the stream:
    /// the data path keeps nothing unsent.
    ///
    /// Returns `true` for an orderly close, `false` if it had to abort.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Conn`] if the close header could not be written, or
    /// [`EndpointError::Stream`] if the stream could not be shut down; the
    /// endpoint is aborted and gives everything back anyway.
    pub fn close(mut self) -> Result<bool, EndpointError> {
        let deadline = self.now_ms().saturating_add(CLOSE_WAIT_MS);
        while self.ep.has_pending_output() && self.now_ms() < deadline {
            // A broken stream cannot flush; waiting out the deadline ends it.
            let progress = self.ep.poll(self.now_ms()).unwrap_or(false);
            self.idle(progress);
        }
        if let Err(e) = self.ep.close() {
            self.ep.abort();
            return Err(e);
        }
        while !self.ep.is_closed() {
            if self.now_ms() >= deadline {
                self.ep.abort();
                return Ok(false);
            }
            // An error here (a peer breaking the protocol while closing)
            // aborts the connection, which ends this loop.
            let progress = self.ep.poll(self.now_ms()).unwrap_or(false);
            self.idle(progress);
        }
        Ok(true)
    }
}
