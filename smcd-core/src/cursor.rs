//! CDC cursor arithmetic over a ring of `size` bytes (`docs/protocol/cdc.md` §3).
//!
//! A [`Cursor`] is a position in a byte stream that wraps around a ring:
//! `count` is the offset inside the ring and `wrap` counts completed laps
//! (16 bits, rolling over from 0xFFFF to 0). The functions here reproduce the
//! arithmetic of Linux `net/smc/smc_cdc.h` (v6.10+) exactly, including its
//! behaviour outside the intended range, because the window rules of
//! `docs/protocol/cdc.md` §7 and the interoperability with Linux peers depend on it:
//!
//! | function | intended use | outside that range |
//! |---|---|---|
//! | [`diff`] | `old` ≤ `new`, at most one ring apart | wraps are compared for equality only: more than one ring ahead is under-counted, `new` behind `old` on another wrap gives a positive (wrong) value |
//! | [`comp`] | signed distance | no wrap roll-over handling: the sign is wrong across 0xFFFF → 0 |
//! | [`diff_large`] | several wraps apart | capped at one ring |
//! | [`Cursor::add`] | advance by ≤ `size` | one subtraction only |
//!
//! Cursors read from peer-written memory must first pass [`Cursor::validate`]
//! (count inside the ring) and the movement checks of [`forward_distance`];
//! then `diff` is exact.
//!
//! ```
//! use smcd_core::cursor::{diff, Cursor};
//!
//! const RING: u32 = 16 * 1024 - 32;
//! let old = Cursor::new(0, 16000);
//! let new = old.add(RING, 1000); // wraps
//! assert_eq!(new, Cursor::new(1, 648));
//! assert_eq!(diff(RING, old, new), 1000);
//! ```

use core::fmt;

/// A CDC cursor: `wrap` laps completed around a ring, `count` bytes into the
/// current lap (`docs/protocol/cdc.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cursor {
    /// Wrap counter (rolls over 0xFFFF → 0).
    pub wrap: u16,
    /// Offset inside the ring (`0 ≤ count < size` when valid).
    pub count: u32,
}

/// A cursor whose count does not lie inside its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CursorError {
    /// The offending count.
    pub count: u32,
    /// The ring size it was checked against.
    pub size: u32,
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cursor count {} is outside the {}-byte ring",
            self.count, self.size
        )
    }
}

impl core::error::Error for CursorError {}

impl Cursor {
    /// The cursor at the start of the stream, (0, 0).
    pub const ZERO: Cursor = Cursor { wrap: 0, count: 0 };

    /// A cursor from its parts (not validated).
    pub const fn new(wrap: u16, count: u32) -> Self {
        Self { wrap, count }
    }

    /// Advance by `value` bytes in a ring of `size` bytes (Linux `smc_curs_add`).
    ///
    /// `count += value`; if that reaches `size`, `wrap` goes up by one
    /// (rolling over) and `size` is subtracted once. Meant for a valid cursor
    /// and `value ≤ size`; outside that the count may stay ≥ `size`, exactly as
    /// in Linux. Never panics (the count addition wraps at 2³²).
    #[must_use]
    pub const fn add(self, size: u32, value: u32) -> Cursor {
        let count = self.count.wrapping_add(value);
        if count >= size {
            Cursor {
                wrap: self.wrap.wrapping_add(1),
                count: count.wrapping_sub(size),
            }
        } else {
            Cursor {
                wrap: self.wrap,
                count,
            }
        }
    }

    /// Check that the count lies inside a ring of `size` bytes.
    ///
    /// # Errors
    ///
    /// [`CursorError`] if `count ≥ size`.
    pub const fn validate(self, size: u32) -> Result<Cursor, CursorError> {
        if self.count < size {
            Ok(self)
        } else {
            Err(CursorError {
                count: self.count,
                size,
            })
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.wrap, self.count)
    }
}

/// `max(0, v as i32)` of a 32-bit unsigned intermediate, as Linux's
/// `max_t(int, 0, …)` does.
const fn floor_zero(v: u32) -> u32 {
    if (v as i32) < 0 { 0 } else { v }
}

/// Distance from `old` to `new` in a ring of `size` bytes (Linux `smc_curs_diff`).
///
/// Exact when `old ≤ new` and they are at most one ring apart. Otherwise it
/// reproduces Linux: the wraps are compared for equality only, so a cursor
/// two rings ahead is under-counted and a *stale* `new` on another wrap gives
/// a positive value that may exceed `size` (`docs/protocol/cdc.md` §8 #11, #13); with
/// equal wraps a negative distance becomes 0.
pub const fn diff(size: u32, old: Cursor, new: Cursor) -> u32 {
    if old.wrap != new.wrap {
        floor_zero(size.wrapping_sub(old.count).wrapping_add(new.count))
    } else {
        floor_zero(new.count.wrapping_sub(old.count))
    }
}

/// Signed distance from `old` to `new` (Linux `smc_curs_comp`).
///
/// Negative when `old` is ahead (larger wrap, or equal wrap and larger
/// count). Wraps are compared numerically without roll-over handling, so
/// across 0xFFFF → 0 the sign is wrong (`docs/protocol/cdc.md` §8 #12).
pub const fn comp(size: u32, old: Cursor, new: Cursor) -> i32 {
    if old.wrap > new.wrap || (old.wrap == new.wrap && old.count > new.count) {
        (diff(size, new, old) as i32).wrapping_neg()
    } else {
        diff(size, old, new) as i32
    }
}

/// Distance from `old` to `new` allowing several wraps, capped at `size`
/// (Linux `smc_curs_diff_large`).
///
/// A smaller `new.wrap` is taken as a roll-over past 0xFFFF (counting
/// `new.wrap + 0xFFFF − old.wrap` full laps in between). Equal wraps give
/// `max(0, new.count − old.count)`.
///
/// Computed in 64 bits and clamped to `0 ..= size`; Linux computes the
/// multi-lap product in 32 bits, which only differs when the wrap distance
/// times `size` exceeds 2³¹ — where the result is capped at `size` anyway.
pub const fn diff_large(size: u32, old: Cursor, new: Cursor) -> u32 {
    if old.wrap == new.wrap {
        return floor_zero(new.count.wrapping_sub(old.count));
    }
    let laps = if old.wrap < new.wrap {
        (new.wrap - old.wrap - 1) as i64
    } else {
        new.wrap as i64 + 0xFFFF - old.wrap as i64
    };
    let v = (size as i64 - old.count as i64) + new.count as i64 + laps * size as i64;
    if v < 0 {
        0
    } else if v > size as i64 {
        size
    } else {
        v as u32
    }
}

/// How a cursor moved between two valid positions in a ring of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Movement {
    /// Forward by this many bytes (0 if unchanged), at most `size`.
    Forward(u32),
    /// Same wrap, smaller count.
    CountBackwards,
    /// The wrap counter went down (more than half of the 16-bit wrap space
    /// behind, modulo roll-over).
    WrapBackwards,
    /// More than one whole ring ahead.
    TooFar,
}

/// Classify the movement from `old` to `new` for validation of cursors read
/// from peer-written memory. Both counts must already be `< size`.
///
/// Unlike [`diff`], this counts wrap differences modulo 2¹⁶ (so the
/// 0xFFFF → 0 roll-over is a forward step of one lap) and reports anything
/// that is not a forward move of at most one ring.
pub const fn forward_distance(size: u32, old: Cursor, new: Cursor) -> Movement {
    let laps = new.wrap.wrapping_sub(old.wrap);
    if laps == 0 {
        if new.count < old.count {
            Movement::CountBackwards
        } else {
            Movement::Forward(new.count.wrapping_sub(old.count))
        }
    } else if laps > 0x8000 {
        Movement::WrapBackwards
    } else if laps == 1 && new.count <= old.count {
        // (size − old.count) + new.count ≤ size for valid counts; wrapping
        // keeps invalid input from panicking.
        Movement::Forward(size.wrapping_sub(old.count).wrapping_add(new.count))
    } else {
        Movement::TooFar
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmb::{CDC_HEADER_LEN_BYTES, DMB_MIN_SIZE_BYTES};

    /// Ring of a 16 KiB DMB, as in the worked examples of `docs/protocol/cdc.md` §8.
    const RING: u32 = (DMB_MIN_SIZE_BYTES - CDC_HEADER_LEN_BYTES) as u32;

    fn c(wrap: u16, count: u32) -> Cursor {
        Cursor::new(wrap, count)
    }

    #[test]
    fn example_1_add_wraps() {
        assert_eq!(c(0, 16000).add(RING, 1000), c(1, 648));
    }

    #[test]
    fn example_2_diff_across_one_wrap() {
        assert_eq!(diff(RING, c(0, 16000), c(1, 648)), 1000);
    }

    #[test]
    fn example_3_diff_equal() {
        assert_eq!(diff(RING, c(1, 648), c(1, 648)), 0);
    }

    #[test]
    fn example_4_comp_old_ahead() {
        assert_eq!(comp(RING, c(1, 700), c(1, 648)), -52);
    }

    #[test]
    fn example_5_diff_large_capped() {
        assert_eq!(diff_large(RING, c(0, 100), c(2, 50)), RING);
    }

    #[test]
    fn example_6_diff_large_rollover() {
        assert_eq!(diff_large(RING, c(0xFFFF, 16000), c(0, 500)), 852);
    }

    #[test]
    fn example_11_diff_stale_cursor_is_garbage() {
        assert_eq!(diff(RING, c(1, 648), c(0, 16000)), 31704);
    }

    #[test]
    fn example_12_comp_rollover_sign_is_wrong() {
        assert_eq!(comp(RING, c(0xFFFF, 100), c(0, 50)), -16402);
    }

    #[test]
    fn example_13_diff_two_wraps_under_counts() {
        assert_eq!(diff(RING, c(0, 100), c(2, 50)), 16302);
    }

    #[test]
    fn diff_equal_wrap_backwards_floors_at_zero() {
        assert_eq!(diff(RING, c(3, 700), c(3, 648)), 0);
        assert_eq!(diff_large(RING, c(3, 700), c(3, 648)), 0);
    }

    #[test]
    fn comp_forward_is_positive() {
        assert_eq!(comp(RING, c(0, 16000), c(1, 648)), 1000);
        assert_eq!(comp(RING, c(4, 10), c(4, 10)), 0);
    }

    #[test]
    fn add_rolls_the_wrap_counter_over() {
        assert_eq!(c(0xFFFF, RING - 1).add(RING, 1), c(0, 0));
        assert_eq!(c(0xFFFF, 10).add(RING, 5), c(0xFFFF, 15));
    }

    #[test]
    fn add_out_of_range_subtracts_once() {
        // value > size: one subtraction only, count stays ≥ size (as Linux).
        assert_eq!(c(0, 10).add(100, 250), c(1, 160));
        // Never panics, even at the extremes.
        assert_eq!(c(0, u32::MAX).add(100, 1), c(0, 0));
    }

    #[test]
    fn validate_checks_the_ring() {
        assert_eq!(c(7, RING - 1).validate(RING), Ok(c(7, RING - 1)));
        assert_eq!(
            c(7, RING).validate(RING),
            Err(CursorError {
                count: RING,
                size: RING
            })
        );
        assert!(c(0, 0).validate(0).is_err());
    }

    #[test]
    fn diff_large_clamps_out_of_ring_counts() {
        // An invalid `old` count (beyond the ring) makes the raw distance
        // negative: clamped to 0, not wrapped to a huge value.
        assert_eq!(diff_large(100, c(0, 500), c(1, 0)), 0);
    }

    #[test]
    fn cursors_and_errors_display() {
        use std::format;
        assert_eq!(format!("{}", c(7, 42)), "(7, 42)");
        let e = c(1, RING).validate(RING).unwrap_err();
        assert_eq!(
            format!("{e}"),
            "cursor count 16352 is outside the 16352-byte ring"
        );
    }

    #[test]
    fn forward_distance_classifies() {
        assert_eq!(
            forward_distance(RING, c(0, 16000), c(1, 648)),
            Movement::Forward(1000)
        );
        assert_eq!(
            forward_distance(RING, c(0xFFFF, 16000), c(0, 16000)),
            Movement::Forward(RING)
        );
        assert_eq!(
            forward_distance(RING, c(5, 5), c(5, 5)),
            Movement::Forward(0)
        );
        assert_eq!(
            forward_distance(RING, c(5, 6), c(5, 5)),
            Movement::CountBackwards
        );
        assert_eq!(
            forward_distance(RING, c(5, 6), c(4, 9)),
            Movement::WrapBackwards
        );
        // Exactly half the 16-bit wrap space ahead is not yet "behind".
        assert_eq!(
            forward_distance(RING, c(0, 5), c(0x8000, 5)),
            Movement::TooFar
        );
        assert_eq!(
            forward_distance(RING, c(0, 5), c(0x8001, 5)),
            Movement::WrapBackwards
        );
        assert_eq!(
            forward_distance(RING, c(0, 6), c(0xFFFF, 9)),
            Movement::WrapBackwards
        );
        assert_eq!(forward_distance(RING, c(5, 6), c(6, 7)), Movement::TooFar);
        assert_eq!(forward_distance(RING, c(5, 6), c(7, 0)), Movement::TooFar);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::vec::Vec;

        /// The cursor of absolute stream position `pos` in a ring of `size`.
        fn at(size: u32, pos: u64) -> Cursor {
            Cursor::new(
                ((pos / u64::from(size)) % 0x1_0000) as u16,
                (pos % u64::from(size)) as u32,
            )
        }

        /// A ring size, a start position anywhere in the 16-bit wrap space
        /// (so sequences cross the 0xFFFF → 0 roll-over), and advances.
        fn walk() -> impl Strategy<Value = (u32, u64, Vec<u32>)> {
            (1u32..=(1 << 20)).prop_flat_map(|size| {
                (
                    Just(size),
                    0u64..(0x1_0000 * u64::from(size)),
                    proptest::collection::vec(0..=size, 1..64),
                )
            })
        }

        // Not under Miri: this module has no `unsafe` (Miri finds nothing
        // that the plain run does not), and proptest under the interpreter
        // costs about a minute of the `miri` section for these three. The
        // `test` section runs them with 256 cases; the example tests above
        // (the 16-bit roll-over included) still run under Miri.
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            #[cfg_attr(miri, ignore = "no unsafe here; see above")]
            fn add_tracks_the_stream_position((size, start, steps) in walk()) {
                let mut pos = start;
                let mut cur = at(size, pos);
                for v in steps {
                    let next = cur.add(size, v);
                    let old = cur;
                    pos += u64::from(v);
                    cur = next;
                    prop_assert_eq!(cur, at(size, pos));
                    prop_assert!(cur.validate(size).is_ok());
                    prop_assert_eq!(diff(size, old, cur), v);
                    prop_assert_eq!(diff_large(size, old, cur), v);
                    prop_assert_eq!(forward_distance(size, old, cur), Movement::Forward(v));
                    if old.wrap <= cur.wrap {
                        prop_assert_eq!(comp(size, old, cur), v as i32);
                        prop_assert_eq!(comp(size, cur, old), (v as i32).wrapping_neg());
                    }
                }
            }

            #[test]
            #[cfg_attr(miri, ignore = "no unsafe here; see above")]
            fn diff_large_caps_multi_lap_distances(
                (size, start, steps) in walk(),
                // The wrap distance (laps plus < 64 from `walk`) stays below
                // half the 16-bit wrap space, so stepping back from `new` to
                // `old` is still recognisably backwards.
                laps in 0u64..(0x7FFF - 63),
            ) {
                let old = at(size, start);
                let d: u64 = steps.iter().map(|&v| u64::from(v)).sum::<u64>()
                    + laps * u64::from(size);
                let new = at(size, start + d);
                prop_assert_eq!(
                    u64::from(diff_large(size, old, new)),
                    d.min(u64::from(size))
                );
                let moved = forward_distance(size, old, new);
                if d <= u64::from(size) {
                    prop_assert_eq!(moved, Movement::Forward(d as u32));
                    prop_assert_eq!(u64::from(diff(size, old, new)), d);
                } else {
                    prop_assert_eq!(moved, Movement::TooFar);
                }
                if d > 0 {
                    let back = forward_distance(size, new, old);
                    prop_assert!(
                        back == Movement::CountBackwards || back == Movement::WrapBackwards,
                        "{:?}", back
                    );
                }
            }

            #[test]
            #[cfg_attr(miri, ignore = "no unsafe here; see above")]
            fn arithmetic_never_panics(
                size in any::<u32>(),
                a in any::<(u16, u32)>(),
                b in any::<(u16, u32)>(),
                v in any::<u32>(),
            ) {
                let (a, b) = (Cursor::new(a.0, a.1), Cursor::new(b.0, b.1));
                let _ = (a.add(size, v), diff(size, a, b), comp(size, a, b));
                if a.wrap != b.wrap {
                    prop_assert!(diff_large(size, a, b) <= size);
                }
                let _ = forward_distance(size, a, b);
            }
        }
    }
}
