//! The hex text of the spec vectors (`smcd-core/tests/vectors/*.hex`) as
//! bytes, for tests: hex digit pairs, whitespace between them, and `#`
//! comments to the end of a line.
//!
//! One file for every test crate that reads vectors: smcd-core's tests take
//! it in with `#[path = ".../common/hex.rs"] mod hex;`, and so does smcd-lo's
//! `e2e_util`. Test input is ours, so anything else is a panic.
#![allow(dead_code)] // each test binary uses a different subset

/// The bytes of hex `text`.
pub(crate) fn decode(text: &str) -> Vec<u8> {
    let digits: Vec<u32> = text
        .lines()
        .flat_map(|line| line.split('#').next().unwrap_or("").chars())
        .filter(|ch| !ch.is_ascii_whitespace())
        .map(|ch| {
            ch.to_digit(16)
                .unwrap_or_else(|| panic!("{ch:?} is not a hex digit"))
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks_exact(2)
        .map(|pair| u8::try_from(pair[0] << 4 | pair[1]).unwrap())
        .collect()
}

/// The bytes of the hex file at `path`.
pub(crate) fn read(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    decode(&text)
}
