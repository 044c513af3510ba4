//! 32-byte blank-padded text fields: EIDs and the first-contact hostname.

use core::fmt;

// Length of an EID and of the FCE hostname.
const TEXT_LEN: usize = 32;

/// The bytes of `raw` without trailing blank (0x20) or NUL padding.
fn trim_padding(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .rposition(|b| *b != b' ' && *b != 0)
        .map_or(0, |i| i.saturating_add(1));
    raw.get(..end).unwrap_or(raw)
}

/// `text` right-padded with blanks to 32 bytes, if it fits.
fn pad_text(text: &str) -> Option<[u8; TEXT_LEN]> {
    let src = text.as_bytes();
    let mut out = [b' '; TEXT_LEN];
    out.get_mut(..src.len())?.copy_from_slice(src);
    Some(out)
}

/// Writes `raw` (padding stripped) with non-printable bytes as `\xNN`.
fn write_text(f: &mut fmt::Formatter<'_>, raw: &[u8]) -> fmt::Result {
    for b in trim_padding(raw) {
        if b.is_ascii_graphic() || *b == b' ' {
            write!(f, "{}", char::from(*b))?;
        } else {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// An Enterprise ID (UEID or SEID, `docs/protocol/handshake.md` §4): 32 bytes, blank
/// padded. All zero means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Eid(pub [u8; TEXT_LEN]);

impl Eid {
    /// The EID of `text`, right-padded with blanks, or `None` if it is longer
    /// than 32 bytes.
    pub fn from_text(text: &str) -> Option<Self> {
        pad_text(text).map(Self)
    }

    /// The EID bytes without trailing blank/NUL padding.
    pub fn trimmed(&self) -> &[u8] {
        trim_padding(&self.0)
    }

    /// Whether all 32 bytes are zero (no EID).
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }
}

impl fmt::Display for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(f, &self.0)
    }
}

/// The node name in a first-contact extension: 32 bytes, blank padded, no
/// NUL. Linux stores a peer's hostname only if all bytes are ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Hostname(pub [u8; TEXT_LEN]);

impl Hostname {
    /// The hostname of `text`, right-padded with blanks, or `None` if it is
    /// longer than 32 bytes (Linux truncates; do so before calling).
    pub fn from_text(text: &str) -> Option<Self> {
        pad_text(text).map(Self)
    }

    /// The hostname bytes without trailing blank/NUL padding.
    pub fn trimmed(&self) -> &[u8] {
        trim_padding(&self.0)
    }

    /// Whether Linux would store this hostname (all bytes < 0x80).
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(f, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_trims() {
        let eid = Eid::from_text("SMCD-TEST").unwrap();
        assert_eq!(&eid.0[..9], b"SMCD-TEST");
        assert!(eid.0[9..].iter().all(|b| *b == b' '));
        assert_eq!(eid.trimmed(), b"SMCD-TEST");
        assert_eq!(std::format!("{eid}"), "SMCD-TEST");
        assert!(Eid::from_text(&"X".repeat(33)).is_none());
        assert!(Eid::default().is_zero());
        assert_eq!(Eid::default().trimmed(), b"");
    }

    #[test]
    fn display_escapes() {
        let mut raw = [b' '; 32];
        raw[..3].copy_from_slice(&[b'a', 0x01, 0xff]);
        let h = Hostname(raw);
        assert_eq!(std::format!("{h}"), "a\\x01\\xff");
        assert!(!h.is_ascii());
    }
}
