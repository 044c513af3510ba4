//! Decoding hex text (a `.hex` vector file or what a user typed) into bytes.
//!
//! The accepted format: pairs of hex digits (either case), any ASCII
//! whitespace anywhere (also inside a pair), and `#` comments that run to the
//! end of the line. Nothing else: no sign, no `0x` prefix. The caller
//! supplies the output buffer, which bounds the input it takes.

use std::fmt;

/// Why hex text could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HexError {
    /// A character that is neither a hex digit, whitespace nor part of a
    /// `#` comment.
    InvalidChar {
        /// Byte offset of the character in the input text.
        offset: usize,
        /// The offending character.
        ch: char,
    },
    /// The text holds an odd number of hex digits.
    OddDigits,
    /// The decoded bytes do not fit into the output buffer.
    OutputTooSmall {
        /// Size of the output buffer in bytes.
        capacity: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidChar { offset, ch } => {
                write!(
                    f,
                    "character {ch:?} at text offset {offset} is not a hex digit"
                )
            }
            Self::OddDigits => {
                f.write_str("odd number of hex digits (the last byte is incomplete)")
            }
            Self::OutputTooSmall { capacity } => {
                write!(f, "more than {capacity} bytes of hex input")
            }
        }
    }
}

impl std::error::Error for HexError {}

/// Decodes hex `text` into `out` and returns the number of bytes written.
///
/// # Errors
///
/// [`HexError`] on a character that is not a hex digit, whitespace or comment,
/// an odd digit count, or more bytes than `out` holds.
pub(crate) fn decode(text: &str, out: &mut [u8]) -> Result<usize, HexError> {
    let mut written = 0usize;
    let mut high: Option<u8> = None;
    let mut in_comment = false;
    for (offset, ch) in text.char_indices() {
        if in_comment {
            in_comment = ch != '\n';
            continue;
        }
        if ch == '#' {
            in_comment = true;
            continue;
        }
        if ch.is_ascii_whitespace() {
            continue;
        }
        let nibble = ch
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(HexError::InvalidChar { offset, ch })?;
        match high.take() {
            None => high = Some(nibble),
            Some(h) => {
                let capacity = out.len();
                let slot = out
                    .get_mut(written)
                    .ok_or(HexError::OutputTooSmall { capacity })?;
                *slot = (h << 4) | nibble;
                written += 1;
            }
        }
    }
    if high.is_some() {
        return Err(HexError::OddDigits);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_whitespace_and_comments() {
        let mut buf = [0u8; 4];
        let n = decode("# heading\nAB c d\t01 # tail ff\n\n7f", &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0xab, 0xcd, 0x01, 0x7f]);
    }

    #[test]
    fn rejects_bad_input() {
        let mut buf = [0u8; 2];
        assert_eq!(
            decode("0g", &mut buf),
            Err(HexError::InvalidChar { offset: 1, ch: 'g' })
        );
        // No sign and no prefix: `u8::from_str_radix` would take "+f".
        assert_eq!(
            decode("+f", &mut buf),
            Err(HexError::InvalidChar { offset: 0, ch: '+' })
        );
        assert_eq!(
            decode("0x1f", &mut buf),
            Err(HexError::InvalidChar { offset: 1, ch: 'x' })
        );
        assert_eq!(decode("abc", &mut buf), Err(HexError::OddDigits));
        assert_eq!(
            decode("010203", &mut buf),
            Err(HexError::OutputTooSmall { capacity: 2 })
        );
        assert_eq!(decode("", &mut buf), Ok(0));
    }
}
