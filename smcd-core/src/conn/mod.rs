//! One established SMC-D connection over two DMBs (`docs/protocol/cdc.md`,
//! `docs/protocol/close.md`).
//!
//! A [`Connection`] owns no device: every method that touches memory or
//! writes a CDC header takes `&D where D: SmcdOps`, so one device serves many
//! connections and the caller decides about locking and waiting. It is
//! sans-IO in the quinn-proto sense: inputs are method calls
//! ([`handle_signal`](Connection::handle_signal) when the device rings our
//! doorbell, [`send`](Connection::send), [`recv`](Connection::recv), …),
//! readiness is queried ([`readable`](Connection::readable),
//! [`writable`](Connection::writable)), and nothing ever blocks: "would
//! block" is [`ConnError::WouldBlock`], for sends and receives alike (as it
//! is `EndpointError::WouldBlock` and `StreamErrorKind::WouldBlock` above).
//!
//! # Buffers
//!
//! * **Own DMB** (registered by the handshake, its token sent to the peer):
//!   the peer writes our CDC header (bytes 0–31) and our receive ring
//!   (bytes 32…). We read it in place.
//! * **Peer DMB**: we write its header and ring. How depends on [`SendMode`]:
//!   * [`SendMode::Copy`]: bytes go from the caller's slice straight into the
//!     peer's ring through [`SmcdOps::move_data`](crate::ops::SmcdOps::move_data). Unlike Linux there is **no
//!     intermediate send buffer**: a send accepts at most the free space of
//!     the peer's ring and writes it at once. The bytes and headers the peer
//!     sees are the same as from a Linux sender.
//!   * [`SendMode::NoCopy`]: the peer's DMB is attached
//!     ([`SmcdOps::attach_dmb`](crate::ops::SmcdOps::attach_dmb)) and written directly (loopback only); the
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
//! Sending urgent (out-of-band) data is not offered: there is no call for
//! it. A peer's urgent byte is delivered inline, in stream order (like
//! `SO_OOBINLINE`).
//!
//! # Example: a pair over a toy device
//!
//! ```
//! use core::sync::atomic::{AtomicU64, Ordering};
//! use smcd_core::conn::{Connection, SendMode};
//! use smcd_core::dmb::{Chid, DmbToken, Gid};
//! use smcd_core::mem::{DmbMem, DmbRegion};
//! use smcd_core::ops::{Dmb, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
//! use smcd_core::wire::cdc;
//!
//! const LEN: usize = 16 * 1024;
//!
//! /// Two DMBs in leaked memory, token 1 and 2, handed out in turn;
//! /// `move_data` copies, headers are published.
//! struct Toy {
//!     regions: [DmbRegion; 2],
//!     next: AtomicU64,
//! }
//! impl Toy {
//!     fn new() -> Self {
//!         let region = || {
//!             let words: &'static mut [u64] = Box::leak(vec![0u64; LEN / 8].into_boxed_slice());
//!             DmbMem::from_static(zerocopy::IntoBytes::as_mut_bytes(words)).unwrap().region()
//!         };
//!         Toy { regions: [region(), region()], next: AtomicU64::new(1) }
//!     }
//!     fn mem(&self, t: DmbToken) -> Result<DmbMem, ErrorKind> {
//!         let i = (t.0 as usize).wrapping_sub(1);
//!         let region = *self.regions.get(i).ok_or(ErrorKind::InvalidToken)?;
//!         // SAFETY: the memory is leaked (valid forever) and reached only
//!         // through `DmbMem` views.
//!         Ok(unsafe { DmbMem::from_region(region) })
//!     }
//! }
//! impl ErrorType for Toy { type Error = ErrorKind; }
//! impl SmcdOps for Toy {
//!     fn local_gid(&self) -> Gid { Gid::new(1, 1) }
//!     fn chid(&self) -> Chid { Chid::LOOPBACK }
//!     fn supports_v2(&self) -> bool { true }
//!     fn query_remote_gid(&self, _: Gid) -> Result<(), ErrorKind> { Ok(()) }
//!     fn register_dmb(&self, _: usize) -> Result<Dmb, ErrorKind> {
//!         let token = DmbToken(self.next.fetch_add(1, Ordering::Relaxed));
//!         Dmb::new(token, self.mem(token).map_err(|_| ErrorKind::NoSpace)?)
//!             .map_err(|_| ErrorKind::NoMemory)
//!     }
//!     fn unregister_dmb(&self, _: Dmb) -> Result<(), ErrorKind> { Ok(()) }
//!     fn move_data(&self, t: DmbToken, off: usize, data: &[u8], signal: bool) -> Result<(), ErrorKind> {
//!         let mem = self.mem(t)?;
//!         if signal {
//!             cdc::publish(&mem, off, data).map_err(|_| ErrorKind::OutOfBounds)
//!         } else {
//!             mem.write(off, data).map_err(|_| ErrorKind::OutOfBounds)
//!         }
//!     }
//!     fn signal_dmb(&self, _: DmbToken) -> Result<(), ErrorKind> { Ok(()) }
//!     fn attach_dmb(&self, own: &Dmb, id: PeerDmbId, map: bool) -> Result<PeerDmb, ErrorKind> {
//!         let PeerDmbId { token: peer, len, .. } = id;
//!         if map { return Err(ErrorKind::Unsupported); }
//!         if peer == own.token() || self.mem(peer)?.len() != len {
//!             return Err(ErrorKind::InvalidToken);
//!         }
//!         PeerDmb::new(own.token(), peer, len, None).map_err(|_| ErrorKind::InvalidToken)
//!     }
//!     fn detach_dmb(&self, _: PeerDmb) -> Result<(), ErrorKind> { Ok(()) }
//! }
//!
//! let dev = Toy::new();
//! let (da, db) = (dev.register_dmb(LEN).unwrap(), dev.register_dmb(LEN).unwrap());
//! // Each side binds the other's DMB (as its Accept / Confirm named it).
//! let id = |d: &Dmb| PeerDmbId { gid: dev.local_gid(), token: d.token(), len: d.len() };
//! let pa = dev.attach_dmb(&da, id(&db), false).unwrap();
//! let pb = dev.attach_dmb(&db, id(&da), false).unwrap();
//! let mut a = Connection::new(da, pa);
//! let mut b = Connection::new(db, pb);
//! assert_eq!(a.mode(), SendMode::Copy);
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
//! // Both DMBs go back to the device; the handles are consumed.
//! a.release(&dev)?;
//! b.release(&dev)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod close;
mod error;
mod lend;
mod rx;
mod teardown;
mod tx;
mod validate;
mod window;

pub use close::{CloseAction, CloseState};
pub use error::{ConnError, CursorRole, Violation};
pub use window::{SOCK_MIN_SNDBUF_HALF_BYTES, update_limit};

use crate::cursor::Cursor;
use crate::dmb::{CDC_HEADER_LEN_BYTES, DmbToken};
use crate::ops::{Dmb, PeerDmb};
use crate::stats::ConnStats;
use crate::wire::cdc::{ConnStateFlags, ProducerFlags};

/// How we write into the peer's DMB (information; the [`PeerDmb`] handle
/// decides: a mapped ring means nocopy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendMode {
    /// Through [`SmcdOps::move_data`](crate::ops::SmcdOps::move_data) (any device).
    Copy,
    /// Directly into the peer's ring, mapped by
    /// [`SmcdOps::attach_dmb`](crate::ops::SmcdOps::attach_dmb) (devices with
    /// [`SmcdOps::supports_nocopy`](crate::ops::SmcdOps::supports_nocopy)).
    NoCopy,
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

/// Ring bytes of a DMB of `len` bytes (a handle guarantees a DMB size).
fn ring_of(len: usize) -> u32 {
    u32::try_from(len.saturating_sub(CDC_HEADER_LEN_BYTES)).unwrap_or(u32::MAX)
}

/// One SMC-D connection: send and receive rings, window updates, and the
/// close state machine. See the [module documentation](self).
#[derive(Debug)]
pub struct Connection {
    /// Our DMB: the peer writes its header and our receive ring.
    own: Dmb,
    own_ring: u32,
    /// The peer's DMB we send into (its ring mapped in nocopy mode).
    peer: PeerDmb,
    peer_ring: u32,

    // Sending (`docs/protocol/cdc.md` §5), counts in peer-ring units.
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
    /// ("sent any close" in `docs/protocol/close.md` means sent, not just set).
    sent_conn_flags: ConnStateFlags,

    // Receiving (`docs/protocol/cdc.md` §6–7), counts in own-ring units.
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
    /// Set by [`peer_left`](Self::peer_left): the bytes announced before
    /// the abort stay readable ahead of the error.
    drain_after_abort: bool,
    stats: ConnStats,
}

impl Connection {
    /// A connection in state [`CloseState::Active`] over our DMB `own` and
    /// the peer's DMB `peer` (bound to `own` by the device); it owns both
    /// until [`release`](Self::release) or [`into_dmbs`](Self::into_dmbs).
    ///
    /// The own DMB must be freshly registered (zeroed): its header is the
    /// peer's cursors at (0, 0). The peer may already have written into it
    /// before this call; the next [`handle_signal`](Self::handle_signal)
    /// picks that up.
    pub fn new(own: Dmb, peer: PeerDmb) -> Self {
        let own_ring = ring_of(own.len());
        let peer_ring = ring_of(peer.len());
        Self {
            own,
            own_ring,
            peer,
            peer_ring,
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
            drain_after_abort: false,
            stats: ConnStats::default(),
        }
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
        self.own.token()
    }

    /// The peer's DMB token.
    pub fn peer_token(&self) -> DmbToken {
        self.peer.token()
    }

    /// Copy or nocopy.
    pub fn mode(&self) -> SendMode {
        if self.peer.ring().is_some() {
            SendMode::NoCopy
        } else {
            SendMode::Copy
        }
    }

    /// Our DMB's length, CDC header included.
    pub fn own_dmb_len(&self) -> usize {
        self.own.len()
    }

    /// The peer DMB's length, CDC header included.
    pub fn peer_dmb_len(&self) -> usize {
        self.peer.len()
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
        self.in_flight() as usize
    }

    /// Bytes we produced that the peer has not consumed yet, in ring units.
    fn in_flight(&self) -> u32 {
        self.peer_ring.saturating_sub(self.peer_space)
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
    /// [`ConnError::WouldBlock`] (accept bytes, or fail).
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
}
