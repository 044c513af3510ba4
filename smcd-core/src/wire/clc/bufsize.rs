//! The 4-bit compressed buffer size `dmbe_size` (`docs/protocol/clc.md` §9).
//!
//! Compressed value `c` means `2^(c + 14)` bytes: 0 = 16 KiB … 6 = 1 MiB.
//! The size is the whole DMB including the 32-byte CDC header.
//!
//! ```
//! use smcd_core::wire::clc::bufsize;
//!
//! assert_eq!(bufsize::encode_smcd(64 * 1024), 2);
//! assert_eq!(bufsize::encode_smcd(64 * 1024 + 1), 3); // rounds up
//! assert_eq!(bufsize::encode_smcd(64 << 20), 6); // clamped for SMC-D
//! assert_eq!(bufsize::decode(2), 64 * 1024);
//! ```

use crate::dmb::{DMB_MAX_SIZE_BYTES, DMB_MIN_SIZE_BYTES};

/// Largest compressed size Linux uses for SMC-D (6: 1 MiB).
pub const SMCD_MAX_COMPRESSED: u8 = (DMB_MAX_SIZE_BYTES.ilog2() - BASE_SHIFT) as u8;

/// log2 of the size of compressed value 0 (14: 16 KiB).
const BASE_SHIFT: u32 = DMB_MIN_SIZE_BYTES.ilog2();

// Both ends are powers of two, so compressed sizes hit them exactly.
const _: () =
    assert!(decode(0) == DMB_MIN_SIZE_BYTES && decode(SMCD_MAX_COMPRESSED) == DMB_MAX_SIZE_BYTES);

/// Bytes meant by compressed size `c`; any 4-bit value decodes (bits above
/// the low nibble are ignored), up to 2^29 for 15.
pub const fn decode(c: u8) -> usize {
    1usize << ((c & 0x0f) as u32 + BASE_SHIFT)
}

/// Compressed size for a DMB of `size_bytes`, as Linux encodes it for SMC-D:
/// rounded **up** to a power of two, at least 0 (16 KiB), clamped to
/// [`SMCD_MAX_COMPRESSED`].
pub const fn encode_smcd(size_bytes: usize) -> u8 {
    if size_bytes <= decode(0) {
        return 0;
    }
    // size > 16384, so (size - 1) >> 14 >= 1 and its log2 is defined.
    let units = (size_bytes - 1) >> BASE_SHIFT;
    let c = usize::BITS - units.leading_zeros();
    if c > SMCD_MAX_COMPRESSED as u32 {
        SMCD_MAX_COMPRESSED
    } else {
        c as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        let table = [16384, 32768, 65536, 131072, 262144, 524288, 1048576];
        for (c, bytes) in table.iter().enumerate() {
            assert_eq!(decode(c as u8), *bytes);
            assert_eq!(encode_smcd(*bytes), c as u8);
        }
        assert_eq!(decode(15), 1 << 29);
        assert_eq!(decode(0x12), decode(2));
    }

    #[test]
    fn encode_rounds_up_and_clamps() {
        assert_eq!(encode_smcd(0), 0);
        assert_eq!(encode_smcd(1), 0);
        assert_eq!(encode_smcd(16385), 1);
        assert_eq!(encode_smcd(32769), 2);
        assert_eq!(encode_smcd(1048577), 6);
        assert_eq!(encode_smcd(usize::MAX), 6);
    }
}
