//! DMB identifiers (token, GID, CHID) and the DMB table.
//!
//! A DMB (Direct Memory Buffer) is the receive buffer of one side of an SMC-D
//! connection: the peer writes a 32-byte CDC header at offset 0 and data into
//! the ring behind it (`docs/protocol/cdc.md` §1). A device names each DMB by a random
//! 64-bit [`DmbToken`] and keeps its DMBs in a [`DmbTable`].

use core::fmt;

mod table;

pub use table::{DmbEntry, DmbError, DmbTable};

/// The 64-bit handle of a registered DMB (`docs/protocol/loopback.md` §2).
///
/// Sent in Accept/Confirm so the peer can write into the DMB. Tokens of the
/// loopback device are random and never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DmbToken(pub u64);

impl fmt::Display for DmbToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// An ISM Global Identifier.
///
/// Native ISM devices use 64 bits (`gid_ext` = 0); emulated ISM devices such
/// as loopback-ism use 128 bits, sent on the wire as `gid` (high half) and
/// `gid_ext` (low half) (`docs/protocol/clc.md` §3.4, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Gid {
    /// High 64 bits (the whole GID of a native ISM device).
    pub gid: u64,
    /// Low 64 bits of an emulated-ISM GID; 0 for native ISM.
    pub gid_ext: u64,
}

impl Gid {
    /// A GID from its two 64-bit halves.
    pub const fn new(gid: u64, gid_ext: u64) -> Self {
        Self { gid, gid_ext }
    }

    /// The GID as one 128-bit number (`gid` ‖ `gid_ext`).
    pub const fn as_u128(self) -> u128 {
        ((self.gid as u128) << 64) | self.gid_ext as u128
    }

    /// The GID from one 128-bit number.
    pub const fn from_u128(v: u128) -> Self {
        Self {
            gid: (v >> 64) as u64,
            gid_ext: v as u64,
        }
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.gid, self.gid_ext)
    }
}

/// An ISM channel id (PCHID).
///
/// 0xFF00–0xFFFF are reserved for emulated ISM devices; 0xFFFF is loopback-ism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Chid(pub u16);

impl Chid {
    /// The CHID of the loopback-ism device.
    pub const LOOPBACK: Chid = Chid(0xFFFF);

    /// Whether this CHID names an emulated ISM device (0xFF00–0xFFFF), whose
    /// GID is 128 bits and takes two GID/CHID entries in a Proposal.
    pub const fn is_emulated(self) -> bool {
        self.0 >= 0xFF00
    }
}

impl fmt::Display for Chid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// Smallest DMB size the SMC core asks for (compressed size 0).
pub const DMB_MIN_SIZE_BYTES: usize = 16 * 1024;
/// Largest DMB size for SMC-D (compressed size 6).
pub const DMB_MAX_SIZE_BYTES: usize = 1024 * 1024;
/// Bytes at the start of every DMB taken by the CDC header.
pub const CDC_HEADER_LEN_BYTES: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gid_u128_round_trip() {
        let g = Gid::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(g.as_u128(), 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(Gid::from_u128(g.as_u128()), g);
    }

    #[test]
    fn emulated_chid_range() {
        assert!(Chid::LOOPBACK.is_emulated());
        assert!(Chid(0xFF00).is_emulated());
        assert!(!Chid(0xFEFF).is_emulated());
        assert!(!Chid(0x0123).is_emulated());
    }
}
