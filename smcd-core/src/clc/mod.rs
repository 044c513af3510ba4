//! Sans-IO CLC handshake engine (`docs/protocol/handshake.md`), one [`Handshake`] per
//! TCP connection, in the style of quinn-proto: bytes in
//! ([`Handshake::handle_input`]), bytes out ([`Handshake::poll_transmit`]),
//! caller-supplied time ([`Handshake::handle_timeout`]), and one
//! [`Outcome`]: SMC-D [`Established`], [`Fallback`] to TCP after a Decline,
//! or a [`HandshakeError`] that closes the connection.
//!
//! What the engine speaks: SMC-D v2 (Proposal header version 2, `typev2` D)
//! over any [`ClcDevice`] — loopback (CHID 0xFFFF, 128-bit GIDs split over two
//! list entries) and native ISM-like devices, offered in [`Devices`] priority
//! order, up to 8 GID/CHID entries. It never offers SMC-D v1 or SMC-R, and as
//! a server it has no v1 or SMC-R device, so such offers are declined the way
//! a Linux host without those devices declines them. EIDs come from
//! [`ClcConfig`]; link groups (first contact, reuse, out-of-sync) live in a
//! [`LinkGroups`] table shared by all engines of a host.
//!
//! Every Decline carries the Linux reason code and version
//! (`docs/protocol/clc.md` §5, §7); malformed messages and timeouts are hard errors
//! without a Decline (`docs/protocol/handshake.md` §6).
//!
//! # Readings of the spec
//!
//! Where `docs/protocol/handshake.md` leaves room, the engine does this:
//!
//! * **Peer offers only SMC-D v1 or only SMC-R.** Step 4 drops the missing
//!   v2 offers; PEERNOSMC is only the "last rc" of step 4e, sent when nothing
//!   at all is offered. A v1 or SMC-R offer survives step 4, finds no device
//!   here (steps 9–10: this engine has no v1 and no SMC-R device, and no IP
//!   prefix or VLAN knowledge, so DIFFPREFIX/GETVLANERR never arise), and is
//!   declined with the first recorded rc, else NOSMCDDEV — in practice
//!   NOSMCDDEV, as a v1 Decline for a v1 Proposal.
//! * **EIDs.** No UEID and no SEID in the Proposal ⇒ NOUEID (step 4d, the
//!   loopback case: both ends share one table, so "no common EID" there means
//!   "none configured"). UEIDs offered but none in common ⇒ step 7 records
//!   nothing ⇒ NOSMCDDEV.
//! * **Peer DMB refused by the device** (our own DMB, one that already has
//!   a sender, a wrong length) ⇒ Decline INTERR; **any other attach
//!   failure**, e.g. a nocopy mapping that fails (unverified in the spec) ⇒
//!   Decline MEM, on either side; the server sends it even though the client
//!   has finished.
//! * **Link-group table full** ⇒ Decline MEM (Linux fails the allocation).
//! * **Confirm** with another version than the Accept ⇒ protocol error; on a
//!   first contact, a Confirm without FCE counts as a release mismatch
//!   (RELEASEERR).
//! * **Device order**: native ISM-like devices before emulated ones
//!   (see [`Devices`]); Linux lists loopback first.
//!
//! # Example
//!
//! A client and a server over the loopback-like device of the caller, bytes
//! passed by hand:
//!
//! ```
//! # use smcd_core::dmb::{Chid, DmbToken, Gid};
//! # use smcd_core::ops::{Dmb, ErrorKind, ErrorType, PeerDmb, SmcdOps};
//! # struct Lo;
//! # impl ErrorType for Lo { type Error = ErrorKind; }
//! # impl SmcdOps for Lo {
//! #     fn local_gid(&self) -> Gid { Gid::new(1, 2) }
//! #     fn chid(&self) -> Chid { Chid::LOOPBACK }
//! #     fn supports_v2(&self) -> bool { true }
//! #     fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
//! #         if gid == self.local_gid() { Ok(()) } else { Err(ErrorKind::Unreachable) }
//! #     }
//! #     fn register_dmb(&self, _size: usize) -> Result<Dmb, ErrorKind> { Err(ErrorKind::NoSpace) }
//! #     fn unregister_dmb(&self, _d: Dmb) -> Result<(), ErrorKind> { Ok(()) }
//! #     fn move_data(&self, _t: DmbToken, _o: usize, _d: &[u8], _s: bool) -> Result<(), ErrorKind> { Ok(()) }
//! #     fn signal_dmb(&self, _t: DmbToken) -> Result<(), ErrorKind> { Ok(()) }
//! #     fn attach_dmb(&self, _o: &Dmb, _p: smcd_core::ops::PeerDmbId, _m: bool) -> Result<PeerDmb, ErrorKind> {
//! #         Err(ErrorKind::Unsupported)
//! #     }
//! #     fn detach_dmb(&self, _p: PeerDmb) -> Result<(), ErrorKind> { Ok(()) }
//! # }
//! use smcd_core::clc::{ClcConfig, ClcDevice, Context, Devices, Handshake, LinkGroups, Outcome};
//!
//! let lo = Lo; // a device whose DMB table is full
//! let list: [&dyn ClcDevice; 1] = [&lo];
//! let devices = Devices::new(&list);
//! let config = ClcConfig::default();
//! let lgrs = LinkGroups::<4>::new();
//! let ctx = Context::new(&config, devices, &lgrs);
//! let mut client = Handshake::client(ctx, 0);
//! let mut server = Handshake::server(ctx, 0);
//!
//! let mut buf = [0u8; 512];
//! let n = client.poll_transmit(&mut buf).unwrap(); // Proposal
//! assert_eq!(server.handle_input(1, &buf[..n]), n);
//! let n = server.poll_transmit(&mut buf).unwrap(); // Decline MAX_DMB
//! assert_eq!(client.handle_input(2, &buf[..n]), n);
//! match client.poll_outcome() {
//!     Some(Outcome::Fallback(f)) => assert_eq!(f.reason.code(), 0x030d_0000),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), core::convert::Infallible>(())
//! ```

mod claim;
mod client;
mod config;
mod context;
mod devices;
mod handshake;
mod lgr;
mod messages;
mod outcome;
mod reader;
mod server;
mod session;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod transmit;

pub(crate) use claim::release_parts;
pub use config::{
    ClcConfig, DEFAULT_UEID, DMB_DEFAULT_SIZE_BYTES, EidError, MAX_LOCAL_UEIDS, ueid,
};
pub use context::{ClcContext, Context};
pub use devices::{ClcDevice, Devices};
pub use handshake::Handshake;
pub use lgr::{LinkGroup, LinkGroupTable, LinkGroups, LinkId};
pub use messages::FEATURE_MASK;
pub use outcome::{
    DeclinedBy, Established, Fallback, HandshakeError, Outcome, ProtocolError, Role, SmcdInfo,
};

/// How long a side waits for each CLC message (Proposal, Accept, Confirm):
/// 6 s (`docs/protocol/handshake.md` §7).
pub const CLC_WAIT_MS: u64 = 6_000;
