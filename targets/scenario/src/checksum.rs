//! The stream checksum both ends compute: 32-bit FNV-1a over every byte.

/// FNV-1a offset basis (32-bit).
const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
/// FNV-1a prime (32-bit).
const FNV_PRIME: u32 = 0x0100_0193;

/// A running 32-bit FNV-1a checksum of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checksum(u32);

impl Checksum {
    /// The checksum of the empty stream.
    pub(crate) const fn new() -> Self {
        Self(FNV_OFFSET_BASIS)
    }

    /// Feed `bytes` into the checksum.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u32::from(b)).wrapping_mul(FNV_PRIME);
        }
    }

    /// The checksum of everything fed so far.
    pub(crate) const fn value(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fnv1a_values() {
        let mut c = Checksum::new();
        assert_eq!(c.value(), 0x811c_9dc5);
        c.update(b"a");
        assert_eq!(c.value(), 0xe40c_292c);
        let mut d = Checksum::new();
        d.update(b"foobar");
        assert_eq!(d.value(), 0xbf9c_f968);
    }

    #[test]
    fn split_updates_equal_one_update() {
        let mut whole = Checksum::new();
        whole.update(b"hello, world");
        let mut parts = Checksum::new();
        parts.update(b"hello");
        parts.update(b", world");
        assert_eq!(whole, parts);
    }
}
