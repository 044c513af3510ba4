//! Wire formats: CLC messages (big-endian, on the TCP connection) and the
//! SMC-D CDC header (host order, in shared memory).
//!
//! # Contract
//!
//! Everything in this module treats its input as hostile. Parsers never
//! panic, never read out of bounds and never loop on attacker-controlled
//! counts beyond the limits of `docs/protocol/clc.md`; every failure is a small typed
//! `Copy` error. The layout structs mirror the Linux structs they name
//! (zerocopy 0.8, `network_endian` integers for CLC) and are only ever read
//! with `read_from_prefix`, so no alignment or length assumption is made.
//! The CLC ones are internal; [`clc::fields`] tells where their fields sit.
//!
//! The validated `*Repr` types follow the smoltcp pattern: `parse` a byte
//! slice into a `Repr`, ask it for its `buffer_len`, and `emit` it into a
//! caller-provided buffer:
//!
//! ```
//! use smcd_core::wire::clc::{ClcMessage, DeclineReason, DeclineRepr, Eyecatcher};
//!
//! let decline = DeclineRepr {
//!     eyecatcher: Eyecatcher::Smcr,
//!     version: 2,
//!     out_of_sync: false,
//!     id_for_peer: [0; 8],
//!     peer_diagnosis: DeclineReason::NoUeid,
//!     os_type: 2,
//!     peer_diagnosis_v2: [0; 4],
//!     trailer: Eyecatcher::Smcr,
//! };
//! let mut buf = [0u8; 64];
//! let len = decline.emit(&mut buf)?;
//! assert_eq!(len, decline.buffer_len());
//! assert_eq!(ClcMessage::parse(&buf[..len]), Ok(ClcMessage::Decline(decline)));
//! # Ok::<(), smcd_core::wire::clc::EmitError>(())
//! ```

pub mod cdc;
pub mod clc;
