//! One established SMC-D connection over two DMBs (`spec/cdc.md`,
//! `spec/close.md`).
//!
//! A [`Connection`] owns no device: every method that touches memory or
//! writes a CDC header takes `&D where D: SmcdOps`, so one device serves many
//! connections and the caller decides about locking and waiting. It is
//! sans-IO in the quinn-proto sense: inputs are method calls
//! ([`handle_signal`](Connection::handle_signal) when the device rings our
//! doorbell, [`send`](Connection::send), [`recv`](Connection::recv), …),
//! readiness is queried ([`readable`](Connection::readable),
//! [`writable`](Connection::writable)), and nothing ever blocks: "would
//! block" is `Ok(0)` for sends and [`ConnError::WouldBlock`] for receives.
//!
//! # Buffers
//!
//! * **Own DMB** (registered by the handshake, its token sent to the peer):
//!   the peer writes our CDC header (bytes 0–31) and our receive ring
//!   (bytes 32…). We read it in place.
//! * **Peer DMB**: we write its header and ring. How depends on [`SendMode`]:
//!   * [`SendMode::Copy`]: bytes go from the caller's slice straight into the
//!     peer's ring through [`SmcdOps::move_data`]. Unlike Linux there is **no
//!     intermediate send buffer**: a send accepts at most the free space of
//!     the peer's ring and writes it at once. The bytes and headers the peer
//!     sees are the same as from a Linux sender.
//!   * [`SendMode::NoCopy`]: the peer's DMB is attached
//!     ([`SmcdOps::attach_dmb`]) and written directly (loopback only); the
//!     data `move_data` calls that Linux issues and loopback ignores are
//!     skipped. [`send_with`](Connection::send_with) works only here.
//!
//!   In both modes the send space is the peer ring's free space, returned
//!   when the peer's consumer cursor advances (as Linux's nocopy mode), and
//!   no data is ever pending inside the connection: a driver that wants
//!   linger/flush semantics keeps its unsent bytes and waits on
//!   [`writable`](Connection::writable); [`bytes_in_flight`](Connection::bytes_in_flight)
//!   tells how much the peer has not consumed yet.
//!
//! # Hostile peers
//!
//! Every header is validated before use: cursor counts inside their rings,
//! producer moving forward by at most our free space, consumer moving
//! forward by at most what we have in flight, no wrap going backwards, no
//! impossible flags, no sticky flag cleared. A violation aborts the
//! connection with [`ConnError::Violation`] and sends our abort flag. Reads
//! and writes stay inside the two DMBs whatever the peer writes.
//!
//! # Urgent data
//!
//! Sending urgent (out-of-band) data is rejected with
//! [`ConnError::UrgentUnsupported`]. A peer's urgent byte is delivered
//! inline, in stream order (like `SO_OOBINLINE`).
//!
//! # Example: a pair over a toy device
//!
//! ```
//! use smcd_core::conn::{ConnParams, Connection, SendMode};
//! use smcd_core::dmb::{Chid, DmbToken, Gid};
//! use smcd_core::mem::DmbMem;
//! use smcd_core::ops::{Dmb, ErrorKind, ErrorType, SmcdOps};
//! use smcd_core::wire::cdc;
//!
//! #[repr(C, align(8))]
//! struct Mem([u8; 16 * 1024]);
//!
//! /// Two DMBs, token 1 and 2; `move_data` copies, headers are published.
//! struct Toy([DmbMem; 2]);
//! impl Toy {
//!     fn mem(&self, t: DmbToken) -> Result<DmbMem, ErrorKind> {
//!         self.0.get((t.0 as usize).wrapping_sub(1)).copied().ok_or(ErrorKind::InvalidToken)
//!     }
//! }
//! impl ErrorType for Toy { type Error = ErrorKind; }
//! impl SmcdOps for Toy {
//!     fn local_gid(&self) -> Gid { Gid::new(1, 1) }
//!     fn chid(&self) -> Chid { Chid::LOOPBACK }
//!     fn supports_v2(&self) -> bool { true }
//!     fn query_remote_gid(&self, _: Gid) -> Result<(), ErrorKind> { Ok(()) }
//!     fn register_dmb(&self, _: usize) -> Result<Dmb, ErrorKind> { Err(ErrorKind::NoSpace) }
//!     fn unregister_dmb(&self, _: DmbToken) -> Result<(), ErrorKind> { Ok(()) }
//!     fn move_data(&self, t: DmbToken, off: usize, data: &[u8], signal: bool) -> Result<(), ErrorKind> {
//!         let mem = self.mem(t)?;
//!         if signal {
//!             cdc::publish(&mem, off, data).map_err(|_| ErrorKind::OutOfBounds)
//!         } else {
//!             mem.write(off, data).map_err(|_| ErrorKind::OutOfBounds)
//!         }
//!     }
//!     fn signal_dmb(&self, _: DmbToken) -> Result<(), ErrorKind> { Ok(()) }
//!     fn attach_dmb(&self, _: DmbToken) -> Result<Dmb, ErrorKind> { Err(ErrorKind::Unsupported) }
//!     fn detach_dmb(&self, _: DmbToken) -> Result<(), ErrorKind> { Err(ErrorKind::Unsupported) }
//! }
//!
//! let dmb_mem = || DmbMem::from_static(&mut Box::leak(Box::new(Mem([0; 16 * 1024]))).0);
//! let views = [dmb_mem()?, dmb_mem()?];
//! let dev = Toy(views);
//! let dmb = |i: usize| Dmb { token: DmbToken(i as u64 + 1), mem: views[i] };
//! let params = |own: usize, peer: usize| ConnParams {
//!     own: dmb(own),
//!     peer_token: DmbToken(peer as u64 + 1),
//!     peer_dmb_len: 16 * 1024,
//!     mode: SendMode::Copy,
//! };
//! let mut a = Connection::new(params(0, 1))?;
//! let mut b = Connection::new(params(1, 0))?;
//!
//! assert_eq!(a.send(&dev, b"hello")?, 5);
//! b.handle_signal(&dev)?; // the device would ring b's doorbell
//! let mut buf = [0u8; 16];
//! assert_eq!(b.recv(&dev, &mut buf)?, 5);
//! assert_eq!(&buf[..5], b"hello");
//!
//! a.close(&dev)?;
//! b.handle_signal(&dev)?;
//! assert_eq!(b.recv(&dev, &mut buf)?, 0); // EOF
//! b.close(&dev)?;
//! a.handle_signal(&dev)?;
//! assert!(a.is_closed() && b.is_closed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod close;
mod error;
mod lend;
mod validate;
mod window;

pub use close::{CloseAction, CloseState};
pub use error::{ConnError, CursorRole, SetupError, Violation};
pub use window::{SOCK_MIN_SNDBUF_HALF_BYTES, update_limit};

use crate::cursor::Cursor;
use crate::dmb::{CDC_HEADER_LEN_BYTES, DMB_MAX_SIZE_BYTES, DmbToken};
use crate::ops::{Dmb, Error as _, ErrorKind, SmcdOps};
use crate::stats::ConnStats;
use crate::wire::cdc::{self, CdcHeader, ConnStateFlags, ProducerFlags};
use close::CloseFacts;
use validate::RxView;
use window::WindowView;

/// Smallest DMB a connection accepts: 16 KiB (`spec/cdc.md` §1).
#[cfg(not(smcd_loom))]
pub const MIN_DMB_LEN_BYTES: usize = crate::dmb::DMB_MIN_SIZE_BYTES;
/// Smallest DMB a connection accepts: under `cfg(smcd_loom)` a header plus a
/// 4-byte ring, so that loom models stay small.
#[cfg(smcd_loom)]
pub const MIN_DMB_LEN_BYTES: usize = CDC_HEADER_LEN_BYTES + 4;

/// How we write into the peer's DMB.
#[derive(Debug, Clone, Copy)]
pub enum SendMode {
    /// Through [`SmcdOps::move_data`] (any device).
    Copy,
    /// Directly into the peer's DMB, attached with [`SmcdOps::attach_dmb`]
    /// (devices with [`SmcdOps::supports_nocopy`]).
    NoCopy(Dmb),
}

/// Inputs of [`Connection::new`], from the handshake result.
#[derive(Debug, Clone, Copy)]
pub struct ConnParams {
    /// Our own DMB (registered by us; its token went to the peer).
    pub own: Dmb,
    /// The peer's DMB token (from its Accept / Confirm).
    pub peer_token: DmbToken,
    /// The peer's DMB length in bytes (decoded `dmbe_size`).
    pub peer_dmb_len: usize,
    /// How to write into the peer's DMB.
    pub mode: SendMode,
}

/// Any connection-state flag that closes (`closed` or `abort`).
const ANY_CLOSE: ConnStateFlags =
    ConnStateFlags::PEER_CONN_CLOSED.union(ConnStateFlags::PEER_CONN_ABORT);
/// Any connection-state flag that ends the sender's writing.
const ANY_SHUTDOWN: ConnStateFlags = ANY_CLOSE.union(ConnStateFlags::PEER_DONE_WRITING);

/// DMB offset of ring offset `o`.
fn ring_offset(o: u32) -> usize {
    CDC_HEADER_LEN_BYTES + o as usize
}

/// Split `len` bytes at ring offset `at` into the part up to the ring's end
/// and the part that wraps to offset 0.
fn split(ring: u32, at: u32, len: u32) -> (u32, u32) {
    let first = len.min(ring.saturating_sub(at));
    (first, len - first)
}

fn ring_of(dmb_len: usize) -> Option<u32> {
    if (MIN_DMB_LEN_BYTES..=DMB_MAX_SIZE_BYTES).contains(&dmb_len) {
        u32::try_from(dmb_len - CDC_HEADER_LEN_BYTES).ok()
    } else {
        None
    }
}

/// One SMC-D connection: send and receive rings, window updates, and the
/// close state machine. See the [module documentation](self).
#[derive(Debug)]
pub struct Connection {
    own: Dmb,
    own_ring: u32,
    peer_token: DmbToken,
    peer_ring: u32,
    /// The attached peer DMB in nocopy mode.
    peer_mem: Option<Dmb>,

    // Sending (`spec/cdc.md` §5), counts in peer-ring units.
    /// Next ring offset to fill in the peer's ring.
    prod: Cursor,
    /// Free bytes in the peer's ring.
    peer_space: u32,
    /// The peer's consumer cursor (how far it consumed what we sent).
    rx_cons: Cursor,
    /// Our producer flags (`write_blocked`).
    local_prod_flags: ProducerFlags,
    /// Our sticky connection-state flags.
    local_conn_flags: ConnStateFlags,
    /// The connection-state flags of the last header we actually wrote
    /// ("sent any close" in `spec/close.md` means sent, not just set).
    sent_conn_flags: ConnStateFlags,

    // Receiving (`spec/cdc.md` §6–7), counts in own-ring units.
    /// The peer's producer cursor.
    rx_prod: Cursor,
    /// How far our application has consumed our ring.
    cons: Cursor,
    /// `cons` in the last header we wrote successfully.
    rx_confirmed: Cursor,
    /// Produced by the peer, not yet consumed by us.
    bytes_to_rcv: u32,
    /// Recorded peer producer flags (`write_blocked`, `cons_curs_upd_req`).
    peer_prod_flags: ProducerFlags,
    /// The peer's sticky connection-state flags.
    peer_conn_flags: ConnStateFlags,
    /// The two header words last processed, to skip repeated signals.
    last_words: (u64, u64),

    state: CloseState,
    app_closed: bool,
    error: Option<ConnError>,
    stats: ConnStats,
}

impl Connection {
    /// A connection in state [`CloseState::Active`] over `params`.
    ///
    /// The own DMB must be freshly registered (zeroed): its header is the
    /// peer's cursors at (0, 0). The peer may already have written into it
    /// before this call; the next [`handle_signal`](Self::handle_signal)
    /// picks that up.
    ///
    /// # Errors
    ///
    /// [`SetupError::OwnDmbSize`] / [`SetupError::PeerDmbSize`] unless the
    /// lengths are DMB sizes (16 KiB … 1 MiB; smaller under `cfg(smcd_loom)`),
    /// [`SetupError::AttachedMismatch`] if a nocopy DMB's token or length
    /// differs from the peer's.
    pub fn new(params: ConnParams) -> Result<Self, SetupError> {
        let own_ring =
            ring_of(params.own.mem.len()).ok_or(SetupError::OwnDmbSize(params.own.mem.len()))?;
        let peer_ring =
            ring_of(params.peer_dmb_len).ok_or(SetupError::PeerDmbSize(params.peer_dmb_len))?;
        let peer_mem = match params.mode {
            SendMode::Copy => None,
            SendMode::NoCopy(d) => {
                if d.token != params.peer_token || d.mem.len() != params.peer_dmb_len {
                    return Err(SetupError::AttachedMismatch);
                }
                Some(d)
            }
        };
        Ok(Self {
            own: params.own,
            own_ring,
            peer_token: params.peer_token,
            peer_ring,
            peer_mem,
            prod: Cursor::ZERO,
            peer_space: peer_ring,
            rx_cons: Cursor::ZERO,
            local_prod_flags: ProducerFlags::empty(),
            local_conn_flags: ConnStateFlags::empty(),
            sent_conn_flags: ConnStateFlags::empty(),
            rx_prod: Cursor::ZERO,
            cons: Cursor::ZERO,
            rx_confirmed: Cursor::ZERO,
            bytes_to_rcv: 0,
            peer_prod_flags: ProducerFlags::empty(),
            peer_conn_flags: ConnStateFlags::empty(),
            last_words: (0, 0),
            state: CloseState::Active,
            app_closed: false,
            error: None,
            stats: ConnStats::default(),
        })
    }

    // ----- queries -------------------------------------------------------

    /// The close-state-machine state.
    pub fn state(&self) -> CloseState {
        self.state
    }

    /// Whether the state machine reached [`CloseState::Closed`]; once the
    /// application has closed too, [`release`](Self::release) the connection.
    pub fn is_closed(&self) -> bool {
        self.state == CloseState::Closed
    }

    /// The sticky error, if the connection was aborted or failed.
    pub fn error(&self) -> Option<ConnError> {
        self.error
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ConnStats {
        self.stats
    }

    /// Our own DMB's token.
    pub fn own_token(&self) -> DmbToken {
        self.own.token
    }

    /// The peer's DMB token.
    pub fn peer_token(&self) -> DmbToken {
        self.peer_token
    }

    /// Received bytes ready for [`recv`](Self::recv).
    pub fn bytes_available(&self) -> usize {
        self.bytes_to_rcv as usize
    }

    /// Bytes [`send`](Self::send) would accept now (free space of the peer's ring).
    pub fn send_space(&self) -> usize {
        self.peer_space as usize
    }

    /// Bytes we produced that the peer has not consumed yet.
    pub fn bytes_in_flight(&self) -> usize {
        self.peer_ring.saturating_sub(self.peer_space) as usize
    }

    /// Whether the peer has ended its sending (done-writing, close or abort):
    /// after the remaining bytes, [`recv`](Self::recv) reports EOF.
    pub fn peer_done_writing(&self) -> bool {
        self.peer_conn_flags.intersects(ANY_SHUTDOWN)
    }

    /// Whether [`recv`](Self::recv) would return something other than
    /// [`ConnError::WouldBlock`] (data, EOF or an error).
    pub fn readable(&self) -> bool {
        self.bytes_to_rcv > 0 || self.peer_done_writing() || self.recv_blocked_by().is_some()
    }

    /// Whether [`send`](Self::send) would return something other than
    /// `Ok(0)` (accept bytes, or fail).
    pub fn writable(&self) -> bool {
        self.peer_space > 0 || self.send_blocked_by().is_some()
    }

    fn recv_blocked_by(&self) -> Option<ConnError> {
        if self.app_closed {
            Some(ConnError::Closed)
        } else {
            self.error
        }
    }

    fn send_blocked_by(&self) -> Option<ConnError> {
        if let Some(e) = self.recv_blocked_by() {
            Some(e)
        } else if self.local_conn_flags.intersects(ANY_SHUTDOWN) {
            Some(ConnError::WriteShutdown)
        } else if self.peer_conn_flags.intersects(ANY_CLOSE) {
            Some(ConnError::PeerClosed)
        } else {
            None
        }
    }

    // ----- receiving -----------------------------------------------------

    /// Process the peer's latest CDC header in our DMB (`spec/cdc.md` §6).
    ///
    /// Call it whenever the device signals our DMB; extra calls are cheap and
    /// harmless (an unchanged header is skipped). It credits new bytes and
    /// returned send space, records the peer's `write_blocked` /
    /// `cons_curs_upd_req` (a request is answered at once with a
    /// consumer-cursor header), and runs the passive-close transitions of
    /// `spec/close.md` §3. Afterwards query [`readable`](Self::readable),
    /// [`writable`](Self::writable) and [`state`](Self::state).
    ///
    /// Ignored (`Ok`) once the connection is closed or failed.
    ///
    /// # Errors
    ///
    /// [`ConnError::Violation`] if the header is invalid: the connection is
    /// aborted (our abort flag is sent). [`ConnError::Device`] if answering
    /// an update request failed.
    pub fn handle_signal<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        if self.error.is_some() || self.state == CloseState::Closed {
            return Ok(());
        }
        let hdr = match cdc::snapshot(&self.own.mem, 0) {
            Ok(h) => h,
            Err(_) => return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds))),
        };
        let words = (hdr.prod_word(), hdr.cons_word());
        if words == self.last_words {
            return Ok(());
        }
        let view = RxView {
            own_ring: self.own_ring,
            peer_ring: self.peer_ring,
            rx_prod: self.rx_prod,
            rx_cons: self.rx_cons,
            bytes_to_rcv: self.bytes_to_rcv,
            in_flight: self.peer_ring.saturating_sub(self.peer_space),
            peer_flags: self.peer_conn_flags,
        };
        let moved = match validate::check(&view, &hdr) {
            Ok(m) => m,
            Err(v) => return Err(self.violation(dev, v)),
        };
        self.last_words = words;

        // §6 step 2: space given back.
        self.rx_cons = hdr.cons;
        if moved.cons_moved > 0 {
            self.peer_space += moved.cons_moved;
            crate::stats::bump(&mut self.stats.window_updates_received);
        }
        // §6 step 3: new bytes (an urgent byte is counted inline).
        self.rx_prod = hdr.prod;
        self.bytes_to_rcv += moved.prod_moved;
        self.peer_prod_flags = hdr.prod_flags;
        self.peer_conn_flags = hdr.conn_state_flags;

        // §6 step 4: answer an update request now (Linux defers it to the
        // next read or data header; the bytes on the wire are the same).
        if self
            .peer_prod_flags
            .contains(ProducerFlags::CONS_CURS_UPD_REQ)
        {
            self.send_window_update(dev)?;
        }

        // §6 step 5 and close.md §3.
        if self.peer_conn_flags.intersects(ANY_SHUTDOWN) {
            if self
                .peer_conn_flags
                .contains(ConnStateFlags::PEER_CONN_ABORT)
            {
                self.error = Some(ConnError::Reset);
                self.local_conn_flags |= ConnStateFlags::PEER_CONN_ABORT;
                crate::stats::bump(&mut self.stats.aborts);
            }
            self.state = close::on_peer_close(self.state, self.facts(), self.peer_conn_flags);
        }
        Ok(())
    }

    /// Copy received bytes into `buf`.
    ///
    /// Returns the number of bytes copied; `Ok(0)` only at EOF (the peer
    /// ended its sending and every byte was read) or for an empty `buf`.
    /// Consuming may write a consumer-cursor update (`spec/cdc.md` §7); if
    /// that write fails, the bytes are still returned and the connection
    /// reports the failure from then on.
    ///
    /// # Errors
    ///
    /// [`ConnError::WouldBlock`] when no bytes are there yet;
    /// [`ConnError::Closed`] after [`close`](Self::close); the sticky error
    /// of a failed connection ([`ConnError::Reset`], [`ConnError::Aborted`],
    /// [`ConnError::Violation`], [`ConnError::Device`]) — unread bytes are
    /// discarded then, as with a TCP reset.
    pub fn recv<D: SmcdOps>(&mut self, dev: &D, buf: &mut [u8]) -> Result<usize, ConnError> {
        crate::stats::bump(&mut self.stats.recv_calls);
        let avail = self.recv_ready()?;
        let n = avail.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        let (first, second) = split(self.own_ring, self.cons.count, n);
        let (a, rest) = buf.split_at_mut(first as usize);
        let b = rest.get_mut(..second as usize).unwrap_or_default();
        let copied = self
            .own
            .mem
            .read(ring_offset(self.cons.count), a)
            .and_then(|()| self.own.mem.read(ring_offset(0), b));
        if copied.is_err() {
            return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds)));
        }
        self.consume(dev, n);
        Ok(n as usize)
    }

    /// Zero-copy receive: `f` sees received bytes in place in our DMB and
    /// returns how many it consumed (values above the slice length count as
    /// all of it).
    ///
    /// Because the ring wraps, `f` may see only the contiguous part of the
    /// available bytes; call again for the rest. At EOF `f` is not called
    /// and `Ok(0)` is returned. The bytes are peer-written shared memory:
    /// treat them as untrusted, and do not expect them to stay unchanged if
    /// the peer is hostile.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_with<D: SmcdOps>(
        &mut self,
        dev: &D,
        f: impl FnOnce(&[u8]) -> usize,
    ) -> Result<usize, ConnError> {
        crate::stats::bump(&mut self.stats.recv_calls);
        let avail = self.recv_ready()?;
        if avail == 0 {
            return Ok(0);
        }
        let (len, _) = split(self.own_ring, self.cons.count, avail);
        let at = ring_offset(self.cons.count);
        let taken = match lend::readable(&self.own.mem, at, len as usize, f) {
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX).min(len),
            Err(_) => return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds))),
        };
        self.consume(dev, taken);
        Ok(taken as usize)
    }

    /// Bytes available, `Ok(0)` at EOF, or why receiving is not possible.
    fn recv_ready(&self) -> Result<u32, ConnError> {
        if let Some(e) = self.recv_blocked_by() {
            Err(e)
        } else if self.bytes_to_rcv == 0 && !self.peer_done_writing() {
            Err(ConnError::WouldBlock)
        } else {
            Ok(self.bytes_to_rcv)
        }
    }

    /// The application consumed `n` bytes (`spec/cdc.md` §7).
    fn consume<D: SmcdOps>(&mut self, dev: &D, n: u32) {
        if n == 0 {
            return;
        }
        self.bytes_to_rcv -= n;
        self.cons = self.cons.add(self.own_ring, n);
        crate::stats::add(&mut self.stats.bytes_received, n);
        let view = WindowView {
            own_ring: self.own_ring,
            cons: self.cons,
            rx_confirmed: self.rx_confirmed,
            rx_prod: self.rx_prod,
            update_requested: self
                .peer_prod_flags
                .contains(ProducerFlags::CONS_CURS_UPD_REQ),
            peer_write_blocked: self.peer_prod_flags.contains(ProducerFlags::WRITE_BLOCKED),
        };
        if window::should_update(&view) {
            // A failure is recorded in `self.error` and reported by the next call.
            let _ = self.send_window_update(dev);
        }
        if self.bytes_to_rcv == 0 {
            self.peer_prod_flags.remove(ProducerFlags::WRITE_BLOCKED);
        }
    }

    /// A consumer-cursor-only header (`spec/cdc.md` §5 steps 5–6).
    fn send_window_update<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        self.write_header(dev)?;
        crate::stats::bump(&mut self.stats.window_updates_sent);
        if self.bytes_to_rcv == 0 {
            self.peer_prod_flags.remove(ProducerFlags::WRITE_BLOCKED);
        }
        Ok(())
    }

    // ----- sending -------------------------------------------------------

    /// Send as much of `data` as the peer's ring has room for.
    ///
    /// Returns the number of bytes accepted — written into the peer's ring
    /// and announced with a CDC header before returning. `Ok(0)` means the
    /// peer's ring is full (wait for [`writable`](Self::writable)) or `data`
    /// is empty.
    ///
    /// # Errors
    ///
    /// [`ConnError::WriteShutdown`] after our `shutdown_write`/`close`,
    /// [`ConnError::PeerClosed`] after the peer closed, [`ConnError::Closed`]
    /// after [`close`](Self::close), the sticky error of a failed connection,
    /// or [`ConnError::Device`] if writing failed (the connection is then dead).
    pub fn send<D: SmcdOps>(&mut self, dev: &D, data: &[u8]) -> Result<usize, ConnError> {
        let Some(len) = self.send_len(data.len())? else {
            return Ok(0);
        };
        self.set_write_blocked(data.len());
        let (first, second) = split(self.peer_ring, self.prod.count, len);
        let (a, rest) = data.split_at(first as usize);
        let b = rest.get(..second as usize).unwrap_or_default();
        let at = self.prod.count;
        if let Err(e) = self.put(dev, at, a).and_then(|()| {
            if b.is_empty() {
                Ok(())
            } else {
                self.put(dev, 0, b)
            }
        }) {
            return Err(self.kill(e));
        }
        self.produce(dev, len)
    }

    /// Zero-copy send (nocopy mode only): `f` writes into the free space of
    /// the peer's ring in place and returns how many bytes it wrote (values
    /// above the slice length count as all of it).
    ///
    /// Because the ring wraps, `f` may get only the contiguous part of the
    /// free space; call again for the rest. When the ring is full `f` is not
    /// called and `Ok(0)` is returned.
    ///
    /// # Errors
    ///
    /// [`ConnError::NocopyRequired`] in copy mode; otherwise as [`send`](Self::send).
    pub fn send_with<D: SmcdOps>(
        &mut self,
        dev: &D,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, ConnError> {
        let Some(peer) = self.peer_mem else {
            return Err(ConnError::NocopyRequired);
        };
        let Some(space) = self.send_len(usize::MAX)? else {
            return Ok(0);
        };
        let (room, _) = split(self.peer_ring, self.prod.count, space);
        let at = ring_offset(self.prod.count);
        let written = match lend::writable(&peer.mem, at, room as usize, f) {
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX).min(room),
            Err(_) => return Err(self.kill(ConnError::Device(ErrorKind::OutOfBounds))),
        };
        if written == 0 {
            return Ok(0);
        }
        // `write_blocked` is judged on what the closure produced.
        self.set_write_blocked(written as usize);
        self.produce(dev, written)
    }

    /// Urgent (out-of-band) data is not supported.
    ///
    /// # Errors
    ///
    /// Always [`ConnError::UrgentUnsupported`]; nothing is sent.
    pub fn send_urgent<D: SmcdOps>(&mut self, _dev: &D, _data: &[u8]) -> Result<usize, ConnError> {
        Err(ConnError::UrgentUnsupported)
    }

    /// Common start of a send (`spec/cdc.md` §5 step 1): the number of
    /// bytes to write (`None` = nothing: empty, or the ring is full).
    fn send_len(&mut self, to_send: usize) -> Result<Option<u32>, ConnError> {
        crate::stats::bump(&mut self.stats.send_calls);
        if let Some(e) = self.send_blocked_by() {
            return Err(e);
        }
        if to_send == 0 {
            return Ok(None);
        }
        if self.peer_space == 0 {
            crate::stats::bump(&mut self.stats.buffer_full);
            return Ok(None);
        }
        let to_send = u32::try_from(to_send).unwrap_or(u32::MAX);
        Ok(Some(to_send.min(self.peer_space)))
    }

    /// §5 step 2: `write_blocked` when the bytes to send fill or exceed the
    /// peer's free space (equality counts, `spec/cdc.md` §8 #14).
    fn set_write_blocked(&mut self, to_send: usize) {
        let blocked = to_send >= self.peer_space as usize;
        self.local_prod_flags
            .set(ProducerFlags::WRITE_BLOCKED, blocked);
    }

    /// Write ring bytes of the peer at ring offset `at`.
    fn put<D: SmcdOps>(&self, dev: &D, at: u32, data: &[u8]) -> Result<(), ConnError> {
        match &self.peer_mem {
            Some(peer) => peer
                .mem
                .write(ring_offset(at), data)
                .map_err(|_| ConnError::Device(ErrorKind::OutOfBounds)),
            None => dev
                .move_data(self.peer_token, ring_offset(at), data, false)
                .map_err(|e| ConnError::Device(e.kind())),
        }
    }

    /// `len` bytes are in place: advance `prod` and announce them (§5 steps 4–6).
    fn produce<D: SmcdOps>(&mut self, dev: &D, len: u32) -> Result<usize, ConnError> {
        self.prod = self.prod.add(self.peer_ring, len);
        self.peer_space -= len;
        self.write_header(dev)?;
        crate::stats::add(&mut self.stats.bytes_sent, len);
        Ok(len as usize)
    }

    /// Write our header into the peer's DMB with a signal (§5 steps 5–6).
    /// A device failure kills the connection.
    fn write_header<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        let hdr = CdcHeader {
            prod: self.prod,
            cons: self.cons,
            prod_flags: self.local_prod_flags,
            conn_state_flags: self.local_conn_flags,
        };
        match dev.move_data(self.peer_token, 0, &hdr.to_bytes(), true) {
            Ok(()) => {
                self.sent_conn_flags = self.local_conn_flags;
                self.rx_confirmed = self.cons;
                self.peer_prod_flags
                    .remove(ProducerFlags::CONS_CURS_UPD_REQ);
                Ok(())
            }
            Err(e) => Err(self.kill(ConnError::Device(e.kind()))),
        }
    }

    // ----- closing -------------------------------------------------------

    fn facts(&self) -> CloseFacts {
        CloseFacts::new(self.sent_conn_flags, self.peer_conn_flags, self.app_closed)
    }

    /// Set a close flag and write it (a close-state-machine action).
    fn perform<D: SmcdOps>(&mut self, dev: &D, action: CloseAction) -> Result<(), ConnError> {
        let flag = match action {
            CloseAction::SendDoneWriting => ConnStateFlags::PEER_DONE_WRITING,
            CloseAction::SendClose if self.bytes_to_rcv == 0 => ConnStateFlags::PEER_CONN_CLOSED,
            CloseAction::SendClose | CloseAction::SendAbort => {
                crate::stats::bump(&mut self.stats.aborts);
                ConnStateFlags::PEER_CONN_ABORT
            }
        };
        self.local_conn_flags |= flag;
        self.write_header(dev)
    }

    /// Shut down our write side (`shutdown(SHUT_WR)`, `spec/close.md` §2):
    /// in [`CloseState::Active`] or [`CloseState::AppCloseWait1`] a
    /// done-writing header is sent; otherwise nothing happens.
    ///
    /// There is nothing to flush: every byte a send accepted is already in
    /// the peer's ring. A driver also shuts down the TCP connection's write side.
    ///
    /// # Errors
    ///
    /// [`ConnError::Closed`] after [`close`](Self::close); the sticky error
    /// of a failed connection; [`ConnError::Device`] if the header write failed.
    pub fn shutdown_write<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        if let Some(e) = self.recv_blocked_by() {
            return Err(e);
        }
        let (action, next) = close::on_shutdown_write(self.state);
        if let Some(a) = action {
            self.perform(dev, a)?;
        }
        self.state = next;
        Ok(())
    }

    /// The application closes the connection (`close()` / SHUT_RDWR,
    /// `spec/close.md` §1).
    ///
    /// Sends the close header the state requires: `peer_conn_closed`, or
    /// `peer_conn_abort` when received bytes are still unread (and always
    /// after the peer aborted). Afterwards keep calling
    /// [`handle_signal`](Self::handle_signal) until [`is_closed`](Self::is_closed),
    /// then [`release`](Self::release). A driver also shuts down the TCP
    /// connection. Calling it again is harmless.
    ///
    /// # Errors
    ///
    /// [`ConnError::Device`] if the header write failed; the connection is
    /// then closed locally ([`CloseState::Closed`]).
    pub fn close<D: SmcdOps>(&mut self, dev: &D) -> Result<(), ConnError> {
        self.app_closed = true;
        let (action, next) = close::on_close(self.state, self.facts());
        if let Some(a) = action {
            self.perform(dev, a)?;
        }
        self.state = next;
        Ok(())
    }

    /// Abort the connection locally (`spec/close.md` §4), e.g. because the
    /// device is going away: an abort header is sent (unless the peer
    /// already aborted or the device failed) and the state becomes
    /// [`CloseState::Closed`]. From then on calls report [`ConnError::Aborted`]
    /// (unless another error came first). No-op in a state that is already
    /// closed.
    pub fn abort<D: SmcdOps>(&mut self, dev: &D) {
        let next = close::on_local_abort(self.state);
        if next == self.state {
            return;
        }
        crate::stats::bump(&mut self.stats.aborts);
        self.abort_with(dev, ConnError::Aborted);
        self.state = next;
    }

    /// Record `e` (unless an error is already recorded), set our abort flag
    /// and try to tell the peer, unless it aborted itself or the device failed.
    fn abort_with<D: SmcdOps>(&mut self, dev: &D, e: ConnError) {
        let tell_peer = !matches!(self.error, Some(ConnError::Device(_)))
            && !self
                .peer_conn_flags
                .contains(ConnStateFlags::PEER_CONN_ABORT);
        self.error.get_or_insert(e);
        self.local_conn_flags |= ConnStateFlags::PEER_CONN_ABORT;
        if tell_peer {
            // Best effort: a failure only records a device error, which is
            // not reported over the first one.
            let _ = self.write_header(dev);
        }
    }

    /// The peer broke the protocol: abort and tell it.
    fn violation<D: SmcdOps>(&mut self, dev: &D, v: Violation) -> ConnError {
        crate::stats::bump(&mut self.stats.aborts);
        self.abort_with(dev, ConnError::Violation(v));
        self.state = close::on_local_abort(self.state);
        ConnError::Violation(v)
    }

    /// A device operation failed: the connection is dead (§5 step 7).
    fn kill(&mut self, e: ConnError) -> ConnError {
        if self.error.is_none() {
            crate::stats::bump(&mut self.stats.aborts);
            self.error = Some(e);
        }
        self.local_conn_flags |= ConnStateFlags::PEER_CONN_ABORT;
        self.state = close::on_local_abort(self.state);
        e
    }

    /// Give the buffers back to the device: detach the peer's DMB (nocopy)
    /// and unregister our own. Call once the connection is finished —
    /// normally when [`is_closed`](Self::is_closed) after [`close`](Self::close),
    /// or right after [`abort`](Self::abort).
    ///
    /// # Errors
    ///
    /// [`ConnError::Device`] with the first failure; both steps are attempted.
    pub fn release<D: SmcdOps>(self, dev: &D) -> Result<(), ConnError> {
        let detached = match self.peer_mem {
            Some(peer) => dev.detach_dmb(peer.token),
            None => Ok(()),
        };
        let unregistered = dev.unregister_dmb(self.own.token);
        detached
            .and(unregistered)
            .map_err(|e| ConnError::Device(e.kind()))
    }
}
