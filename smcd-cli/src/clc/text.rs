//! The 32-byte padded text fields (EIDs, hostname) as JSON strings.
//!
//! A string holds the bytes without their trailing blank/NUL padding, one
//! character per byte (Latin-1: bytes 0x80–0xFF become U+0080–U+00FF), so
//! every byte value survives the trip. Encoding pads a non-empty string with
//! blanks, as Linux does; an empty EID becomes 32 zero bytes ("no EID") and
//! an empty hostname 32 blanks.

use smcd_core::wire::clc::{Eid, Hostname};

/// Length of an EID or hostname on the wire (32): the size of either.
pub(crate) const TEXT_LEN: usize = size_of::<Eid>();
const _: () = assert!(size_of::<Hostname>() == TEXT_LEN);

/// The string of padded text `raw` (already stripped of padding by the caller
/// or not: trailing blanks and NULs are removed here too).
pub(crate) fn to_string(raw: &[u8]) -> String {
    let end = raw
        .iter()
        .rposition(|b| *b != b' ' && *b != 0)
        .map_or(0, |i| i + 1);
    raw[..end].iter().map(|b| char::from(*b)).collect()
}

/// What an empty string becomes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Empty {
    /// 32 zero bytes (an absent EID).
    Zeros,
    /// 32 blanks (a hostname).
    Blanks,
}

/// The 32 wire bytes of `text`.
///
/// # Errors
///
/// A description of the problem if a character is above U+00FF or the text
/// is longer than 32 characters.
pub(crate) fn to_bytes(text: &str, empty: Empty) -> Result<[u8; TEXT_LEN], String> {
    if text.is_empty() && empty == Empty::Zeros {
        return Ok([0; TEXT_LEN]);
    }
    let mut out = [b' '; TEXT_LEN];
    for (i, ch) in text.chars().enumerate() {
        let byte = u8::try_from(u32::from(ch))
            .map_err(|_| format!("character {ch:?} is not a single byte (U+0000..U+00FF)"))?;
        let slot = out.get_mut(i).ok_or_else(|| {
            format!(
                "{} characters, at most {TEXT_LEN} fit",
                text.chars().count()
            )
        })?;
        *slot = byte;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_blank_and_nul_padding() {
        let mut raw = [b' '; TEXT_LEN];
        raw[..9].copy_from_slice(b"SMCD-TEST");
        assert_eq!(to_string(&raw), "SMCD-TEST");
        assert_eq!(to_string(&[0; TEXT_LEN]), "");
        assert_eq!(to_string(b"ab\0 \0"), "ab");
    }

    #[test]
    fn every_byte_value_round_trips() {
        let mut raw = [b' '; TEXT_LEN];
        raw[..4].copy_from_slice(&[0x01, 0x7f, 0x80, 0xff]);
        let text = to_string(&raw);
        assert_eq!(text.chars().count(), 4);
        assert_eq!(to_bytes(&text, Empty::Blanks), Ok(raw));
    }

    #[test]
    fn pads_by_kind_and_rejects_what_does_not_fit() {
        assert_eq!(to_bytes("", Empty::Zeros), Ok([0; TEXT_LEN]));
        assert_eq!(to_bytes("", Empty::Blanks), Ok([b' '; TEXT_LEN]));
        let one = to_bytes("x", Empty::Zeros).unwrap();
        assert_eq!(one[0], b'x');
        assert!(one[1..].iter().all(|b| *b == b' '));
        assert!(
            to_bytes(&"x".repeat(33), Empty::Zeros)
                .unwrap_err()
                .contains("at most 32")
        );
        assert!(
            to_bytes("\u{100}", Empty::Zeros)
                .unwrap_err()
                .contains("single byte")
        );
    }
}
