//! Local handshake configuration: EIDs, hostname, DMB size.

use core::fmt;

use heapless::Vec;

use crate::dmb::{DMB_MAX_SIZE_BYTES, DMB_MIN_SIZE_BYTES};
use crate::wire::clc::{Eid, Hostname, bufsize};

/// UEIDs a local table holds at most (Linux: 4).
pub const MAX_LOCAL_UEIDS: usize = 4;

/// The UEID every smcd instance offers unless configured otherwise
/// ([`ClcConfig::default`]): SMC-Dv2 needs a shared EID, and a host has
/// none by default, so two smcd endpoints on one host negotiate v2 out of
/// the box. [`ClcConfig::empty`] starts without it.
pub const DEFAULT_UEID: &str = "SMCD-LOOPBACK";

/// DMB size used unless configured otherwise.
pub const DMB_DEFAULT_SIZE_BYTES: usize = 64 * 1024;

/// Why a UEID was refused (`docs/protocol/handshake.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EidError {
    /// The text is empty.
    Empty,
    /// Longer than 32 bytes.
    TooLong,
    /// A character outside the allowed set (first: A–Z 0–9; then also `.` `-`).
    BadChar {
        /// Byte position.
        index: usize,
        /// The byte found.
        byte: u8,
    },
    /// The table already holds [`MAX_LOCAL_UEIDS`].
    TableFull,
    /// The UEID is already in the table.
    Duplicate,
}

impl fmt::Display for EidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("UEID is empty"),
            Self::TooLong => f.write_str("UEID is longer than 32 bytes"),
            Self::BadChar { index, byte } => write!(
                f,
                "UEID byte {index} ({byte:#04x}) is not allowed (A-Z, 0-9, and after the first also '.' '-')"
            ),
            Self::TableFull => write!(f, "UEID table already holds {MAX_LOCAL_UEIDS} entries"),
            Self::Duplicate => f.write_str("UEID is already configured"),
        }
    }
}

impl core::error::Error for EidError {}

/// Validate a UEID as the Linux admin interface does and pad it to 32 bytes.
///
/// # Errors
///
/// [`EidError::Empty`], [`EidError::TooLong`] or [`EidError::BadChar`].
pub fn ueid(text: &str) -> Result<Eid, EidError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(EidError::Empty);
    }
    for (index, &byte) in bytes.iter().enumerate() {
        let ok = byte.is_ascii_uppercase()
            || byte.is_ascii_digit()
            || (index > 0 && (byte == b'.' || byte == b'-'));
        if !ok {
            return Err(EidError::BadChar { index, byte });
        }
    }
    Eid::from_text(text).ok_or(EidError::TooLong)
}

/// What a handshake engine knows about its host.
///
/// ```
/// use smcd_core::clc::ClcConfig;
///
/// let config = ClcConfig::new()
///     .with_ueid("SMCD-TEST")?
///     .with_hostname("host1")
///     .with_dmb_size(48 * 1024);
/// assert_eq!(config.ueids().len(), 2); // the default UEID, then SMCD-TEST
/// assert_eq!(ClcConfig::empty().with_ueid("SMCD-TEST")?.ueids().len(), 1);
/// assert_eq!(config.dmb_size(), 64 * 1024); // rounded up to a DMB size class
/// # Ok::<(), smcd_core::clc::EidError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClcConfig {
    ueids: Vec<Eid, MAX_LOCAL_UEIDS>,
    seid: Option<Eid>,
    hostname: Hostname,
    dmb_size: usize,
}

impl Default for ClcConfig {
    /// [`DEFAULT_UEID`], blank hostname, [`DMB_DEFAULT_SIZE_BYTES`].
    fn default() -> Self {
        Self::new()
    }
}

impl ClcConfig {
    /// [`DEFAULT_UEID`], blank hostname, [`DMB_DEFAULT_SIZE_BYTES`]: what
    /// two smcd endpoints need to negotiate SMC-Dv2 with each other.
    pub fn new() -> Self {
        let mut ueids = Vec::new();
        if let Ok(eid) = ueid(DEFAULT_UEID) {
            let _ = ueids.push(eid);
        }
        Self {
            ueids,
            ..Self::empty()
        }
    }

    /// No EIDs at all (a peer then declines NOUEID), blank hostname,
    /// [`DMB_DEFAULT_SIZE_BYTES`].
    pub const fn empty() -> Self {
        Self {
            ueids: Vec::new(),
            seid: None,
            hostname: Hostname([b' '; 32]),
            dmb_size: DMB_DEFAULT_SIZE_BYTES,
        }
    }

    /// Add a UEID to the local table (validated by [`ueid`]).
    ///
    /// # Errors
    ///
    /// See [`ueid`]; [`EidError::TableFull`], [`EidError::Duplicate`].
    pub fn with_ueid(mut self, text: &str) -> Result<Self, EidError> {
        let eid = ueid(text)?;
        if self.ueids.contains(&eid) {
            return Err(EidError::Duplicate);
        }
        self.ueids.push(eid).map_err(|_| EidError::TableFull)?;
        Ok(self)
    }

    /// Enable a system EID (s390 only in Linux; elsewhere disabled and zero).
    pub fn with_seid(mut self, seid: Eid) -> Self {
        self.seid = (!seid.is_zero()).then_some(seid);
        self
    }

    /// The node name sent in first-contact extensions, truncated to 32 bytes.
    pub fn with_hostname(mut self, name: &str) -> Self {
        let mut raw = [b' '; 32];
        for (dst, src) in raw.iter_mut().zip(name.bytes()) {
            *dst = src;
        }
        self.hostname = Hostname(raw);
        self
    }

    /// Preferred size of our DMB, rounded up to a size class of
    /// `docs/protocol/clc.md` §9 and kept within 16 KiB … 1 MiB.
    pub fn with_dmb_size(mut self, bytes: usize) -> Self {
        let bytes = bytes.clamp(DMB_MIN_SIZE_BYTES, DMB_MAX_SIZE_BYTES);
        self.dmb_size = bufsize::decode(bufsize::encode_smcd(bytes));
        self
    }

    /// The local UEID table.
    pub fn ueids(&self) -> &[Eid] {
        &self.ueids
    }

    /// The system EID, if enabled.
    pub fn seid(&self) -> Option<&Eid> {
        self.seid.as_ref()
    }

    /// The hostname for first-contact extensions.
    pub fn hostname(&self) -> &Hostname {
        &self.hostname
    }

    /// Preferred DMB size in bytes (a size class).
    pub fn dmb_size(&self) -> usize {
        self.dmb_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ueid_rules() {
        assert_eq!(ueid("SMCD-TEST.1").unwrap().trimmed(), b"SMCD-TEST.1");
        assert_eq!(ueid("0ABC").unwrap().trimmed(), b"0ABC");
        assert_eq!(ueid(""), Err(EidError::Empty));
        assert_eq!(
            ueid("-A"),
            Err(EidError::BadChar {
                index: 0,
                byte: b'-'
            })
        );
        assert_eq!(
            ueid("Ab"),
            Err(EidError::BadChar {
                index: 1,
                byte: b'b'
            })
        );
        assert_eq!(
            ueid("A B"),
            Err(EidError::BadChar {
                index: 1,
                byte: b' '
            })
        );
        assert_eq!(ueid(&"A".repeat(33)), Err(EidError::TooLong));
        assert!(ueid(&"A".repeat(32)).is_ok());
    }

    #[test]
    fn table_limits() {
        let mut c = ClcConfig::empty();
        for name in ["A", "B", "C", "D"] {
            c = c.with_ueid(name).unwrap();
        }
        assert_eq!(c.clone().with_ueid("E"), Err(EidError::TableFull));
        assert_eq!(
            ClcConfig::empty().with_ueid("A").unwrap().with_ueid("A"),
            Err(EidError::Duplicate)
        );
        // The default UEID takes one of the slots and is a duplicate too.
        let mut d = ClcConfig::new();
        for name in ["A", "B", "C"] {
            d = d.with_ueid(name).unwrap();
        }
        assert_eq!(d.clone().with_ueid("D"), Err(EidError::TableFull));
        assert_eq!(
            ClcConfig::new().with_ueid(DEFAULT_UEID),
            Err(EidError::Duplicate)
        );
    }

    #[test]
    fn new_carries_the_default_ueid_and_empty_none() {
        assert_eq!(ClcConfig::new(), ClcConfig::default());
        assert_eq!(ClcConfig::new().ueids(), &[ueid(DEFAULT_UEID).unwrap()]);
        assert!(ClcConfig::empty().ueids().is_empty());
        assert_eq!(ClcConfig::empty().seid(), None);
        assert_eq!(ClcConfig::empty().dmb_size(), ClcConfig::new().dmb_size());
    }

    #[test]
    fn dmb_size_classes() {
        assert_eq!(ClcConfig::new().dmb_size(), 64 * 1024);
        assert_eq!(ClcConfig::new().with_dmb_size(1).dmb_size(), 16 * 1024);
        assert_eq!(
            ClcConfig::new().with_dmb_size(100_000).dmb_size(),
            128 * 1024
        );
        assert_eq!(
            ClcConfig::new().with_dmb_size(usize::MAX).dmb_size(),
            1 << 20
        );
    }

    #[test]
    fn hostname_is_truncated_and_padded() {
        let c = ClcConfig::new().with_hostname(&"h".repeat(40));
        assert_eq!(c.hostname().0, [b'h'; 32]);
        let c = ClcConfig::new().with_hostname("host1");
        assert_eq!(c.hostname().trimmed(), b"host1");
    }
}
