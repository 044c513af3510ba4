//! Bounds-checked reads and writes of layout structs at byte offsets.
//!
//! The only place where CLC code turns offsets into slices; every access goes
//! through `get`/`get_mut` and zerocopy's `read_from_prefix`/`write_to_prefix`,
//! so zerocopy's error types stay private to this module.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::error::{EmitError, WireError};

/// Reads a `T` at byte offset `at` of `buf`.
pub(super) fn read_at<T: FromBytes + KnownLayout + Immutable>(
    buf: &[u8],
    at: usize,
) -> Result<T, WireError> {
    buf.get(at..)
        .and_then(|rest| T::read_from_prefix(rest).ok())
        .map(|(value, _)| value)
        .ok_or(WireError::Truncated {
            needed: at.saturating_add(size_of::<T>()),
            available: buf.len(),
        })
}

/// Reads the byte at offset `at`, or 0 beyond the end of `buf`.
///
/// Models Linux's zero-filled receive buffer: a count field that Linux locates
/// past the received bytes reads as zero there.
pub(super) fn byte_at_or_zero(buf: &[u8], at: usize) -> u8 {
    buf.get(at).copied().unwrap_or(0)
}

/// Writes `value` at byte offset `at` of `buf`.
pub(super) fn write_at<T: IntoBytes + Immutable>(
    buf: &mut [u8],
    at: usize,
    value: &T,
) -> Result<(), EmitError> {
    let available = buf.len();
    buf.get_mut(at..)
        .and_then(|rest| value.write_to_prefix(rest).ok())
        .ok_or(EmitError::BufferTooSmall {
            needed: at.saturating_add(size_of::<T>()),
            available,
        })
}

/// Writes the first `len` bytes of `value` at byte offset `at` of `buf`, and
/// zeros for `len` beyond the size of `value`.
pub(super) fn write_prefix_at<T: IntoBytes + Immutable>(
    buf: &mut [u8],
    at: usize,
    value: &T,
    len: usize,
) -> Result<(), EmitError> {
    let available = buf.len();
    let too_small = EmitError::BufferTooSmall {
        needed: at.saturating_add(len),
        available,
    };
    let dst = buf
        .get_mut(at..at.checked_add(len).ok_or(too_small)?)
        .ok_or(too_small)?;
    let src = value.as_bytes();
    for (i, slot) in dst.iter_mut().enumerate() {
        *slot = src.get(i).copied().unwrap_or(0);
    }
    Ok(())
}

/// Copies `src` into a zeroed `N`-byte array, truncating it to `N` bytes.
pub(super) fn zero_extended<const N: usize>(src: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (slot, byte) in out.iter_mut().zip(src) {
        *slot = *byte;
    }
    out
}

/// Checks that `buf` can hold `needed` bytes.
pub(super) fn ensure_room(buf: &[u8], needed: usize) -> Result<(), EmitError> {
    if buf.len() < needed {
        return Err(EmitError::BufferTooSmall {
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}
