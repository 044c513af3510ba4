//! Copies between private slices and shared DMB memory that other parties
//! (the in-process peer on another thread, or another process) may write
//! while we copy.
//!
//! A plain `ptr::copy_nonoverlapping` racing such a write is a data race, and
//! undefined behaviour under the Rust memory model. Here every access to the
//! shared side is a relaxed atomic load or store instead: single bytes
//! ([`SharedU8`]) up to the first word boundary, native words
//! ([`SharedUsize`], 4 bytes on 32-bit targets) for the aligned middle, single
//! bytes for the tail. A racing write then makes the copy see some mix of old
//! and new bytes (every aligned word wholly old or wholly new), never UB.
//! Relaxed loads and stores of bytes and words are plain `mov`/`ldr`/`str`
//! instructions on every supported target; what is lost against `memcpy` is
//! the wider vector moves and, on targets without unaligned word loads
//! (thumbv6m, riscv64imac), word loads on the private side, which the compiler
//! then assembles from bytes.
//!
//! On 64-bit targets the middle loops move [`UNROLL`] words per iteration, a
//! fixed-size inner loop the compiler unrolls fully.
#![allow(unsafe_code)]

use core::mem::{align_of, size_of};

use crate::sync::{Ordering, SharedU8, SharedUsize};

/// Bytes of one native word.
const WORD: usize = size_of::<usize>();

// `SharedUsize::from_ptr` needs `align_of::<SharedUsize>()`; the word split
// below aligns to `WORD`. `core` makes the two equal on every target.
const _: () = assert!(align_of::<SharedUsize>() == WORD && size_of::<SharedUsize>() == WORD);

/// Words moved per iteration of the unrolled middle loops: 4 on 64-bit
/// targets (the hosts where throughput counts), none on the 32-bit
/// microcontrollers, where the code size does.
const UNROLL: usize = if cfg!(target_pointer_width = "64") {
    4
} else {
    1
};

/// Bytes from `addr` up to the next word boundary, at most `len`.
fn head_len(addr: usize, len: usize) -> usize {
    (addr.wrapping_neg() % WORD).min(len)
}

/// How a `len`-byte range of shared memory at `addr` splits: byte accesses
/// on `0..head` and `words_end..len`, word accesses on `head..words_end`
/// (word aligned in the shared memory).
fn split(addr: usize, len: usize) -> (usize, usize) {
    let head = head_len(addr, len);
    (head, head + (len - head) / WORD * WORD)
}

/// Store `src` into shared memory at `dst`, with relaxed atomic stores.
///
/// # Safety
///
/// - `dst..dst + src.len()` must be valid for reads and writes for the
///   duration of the call (atomic access formally needs both), and must not
///   overlap `src`.
/// - Nobody in this address space may access the range non-atomically during
///   the call. Concurrent atomic accesses are allowed; to stay inside the
///   Rust memory model they should have the same size and address as ours
///   (these functions on the same range do; racing overlapping accesses of
///   different sizes are outside the model, though benign on real hardware).
///   A writer in another address space may write the range at any time: the
///   stored bytes are then some mix of ours and theirs.
pub(crate) unsafe fn copy_to_shared(dst: *mut u8, src: &[u8]) {
    let (len, from) = (src.len(), src.as_ptr());
    let (head, words_end) = split(dst.addr(), len);
    // SAFETY: every offset below is `< len`, so inside both `src` and the
    // shared range, which is valid and only atomically accessed per this
    // function's contract; word offsets lie in `head..words_end`, where
    // `dst + offset` is word aligned (`split`). The private side is read
    // unaligned.
    unsafe {
        store_bytes(dst, from, 0, head);
        let mut at = head;
        while UNROLL > 1 && at + WORD * UNROLL <= words_end {
            for k in 0..UNROLL {
                let o = at + k * WORD;
                word(dst.add(o).cast()).store(
                    from.add(o).cast::<usize>().read_unaligned(),
                    Ordering::Relaxed,
                );
            }
            at += WORD * UNROLL;
        }
        while at < words_end {
            word(dst.add(at).cast()).store(
                from.add(at).cast::<usize>().read_unaligned(),
                Ordering::Relaxed,
            );
            at += WORD;
        }
        store_bytes(dst, from, words_end, len);
    }
}

/// Load shared memory at `src` into `dst`, with relaxed atomic loads.
///
/// # Safety
///
/// As for [`copy_to_shared`], with the range `src..src + dst.len()`: valid for
/// reads and writes (although only read), not overlapping `dst`, and only
/// atomically accessed by this address space during the call. Bytes written
/// concurrently read as either their old or their new value (every aligned
/// word wholly one or the other).
pub(crate) unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    let (len, to) = (dst.len(), dst.as_mut_ptr());
    let (head, words_end) = split(src.addr(), len);
    // SAFETY: every offset below is `< len`, so inside both `dst` and the
    // shared range, which is valid and only atomically accessed per this
    // function's contract; word offsets lie in `head..words_end`, where
    // `src + offset` is word aligned (`split`). The private side is written
    // unaligned.
    unsafe {
        load_bytes(src, to, 0, head);
        let mut at = head;
        while UNROLL > 1 && at + WORD * UNROLL <= words_end {
            for k in 0..UNROLL {
                let o = at + k * WORD;
                to.add(o)
                    .cast::<usize>()
                    .write_unaligned(word(src.add(o).cast()).load(Ordering::Relaxed));
            }
            at += WORD * UNROLL;
        }
        while at < words_end {
            to.add(at)
                .cast::<usize>()
                .write_unaligned(word(src.add(at).cast()).load(Ordering::Relaxed));
            at += WORD;
        }
        load_bytes(src, to, words_end, len);
    }
}

/// Set `len` bytes of shared memory at `dst` to zero, with relaxed atomic stores.
///
/// # Safety
///
/// As for [`copy_to_shared`], with the range `dst..dst + len`.
pub(crate) unsafe fn zero_shared(dst: *mut u8, len: usize) {
    let (head, words_end) = split(dst.addr(), len);
    // SAFETY: every offset below is `< len`, inside the shared range, which
    // is valid and only atomically accessed per this function's contract;
    // word offsets lie in `head..words_end`, where `dst + offset` is word
    // aligned (`split`).
    unsafe {
        zero_bytes(dst, 0, head);
        let mut at = head;
        while at < words_end {
            word(dst.add(at).cast()).store(0, Ordering::Relaxed);
            at += WORD;
        }
        zero_bytes(dst, words_end, len);
    }
}

/// The shared byte at `p`.
///
/// # Safety
///
/// `p` is valid for reads and writes for `'a` and only accessed atomically meanwhile.
unsafe fn byte<'a>(p: *const u8) -> &'a SharedU8 {
    // SAFETY: a byte is always aligned; validity and atomic-only access per
    // this function's contract.
    unsafe { SharedU8::from_ptr(p.cast_mut()) }
}

/// The shared word at `p`.
///
/// # Safety
///
/// `p` is word aligned, valid for reads and writes for `'a` and only accessed
/// atomically meanwhile.
unsafe fn word<'a>(p: *const usize) -> &'a SharedUsize {
    // SAFETY: aligned, valid and atomic-only per this function's contract;
    // `SharedUsize` has the size and alignment of `usize` (asserted above).
    unsafe { SharedUsize::from_ptr(p.cast_mut()) }
}

/// Store the private bytes `from + from_at .. from + to_at` into shared memory at
/// `dst + from_at ..`, one relaxed byte store each.
///
/// # Safety
///
/// Both ranges are valid, do not overlap, and the shared one is only
/// atomically accessed during the call.
#[inline(never)] // one copy for the head and the tail
unsafe fn store_bytes(dst: *mut u8, from: *const u8, from_at: usize, to_at: usize) {
    for at in from_at..to_at {
        // SAFETY: `at` lies in both ranges, per this function's contract.
        unsafe { byte(dst.add(at)).store(from.add(at).read(), Ordering::Relaxed) };
    }
}

/// Zero the shared bytes `dst + from_at .. dst + to_at`, one relaxed byte
/// store each.
///
/// # Safety
///
/// The range is valid and only atomically accessed during the call.
#[inline(never)] // one copy for the head and the tail
unsafe fn zero_bytes(dst: *mut u8, from_at: usize, to_at: usize) {
    for at in from_at..to_at {
        // SAFETY: `at` lies in the range, per this function's contract.
        unsafe { byte(dst.add(at)).store(0, Ordering::Relaxed) };
    }
}

/// Load the shared bytes `src + from_at .. src + to_at` into private memory at
/// `to + from_at ..`, one relaxed byte load each.
///
/// # Safety
///
/// As for [`store_bytes`].
#[inline(never)] // one copy for the head and the tail
unsafe fn load_bytes(src: *const u8, to: *mut u8, from_at: usize, to_at: usize) {
    for at in from_at..to_at {
        // SAFETY: `at` lies in both ranges, per this function's contract.
        unsafe { to.add(at).write(byte(src.add(at)).load(Ordering::Relaxed)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::vec;
    use std::vec::Vec;

    /// Shared buffer of the exhaustive tests: 16-aligned, room for offset
    /// 15 + length 63 + guard bytes.
    #[repr(C, align(16))]
    struct Buf([u8; 96]);

    const GUARD: u8 = 0xEE;

    /// Every head/middle/tail split: offsets 0..16 × lengths 0..64, with the
    /// private side at a varying misalignment too.
    #[test]
    fn every_split_matches_a_plain_copy() {
        // Built once: the interpreter (Miri) is slow at per-byte loops.
        let pattern: [u8; 160] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let mut src_store = [0u8; 64 + 8];
        for off in 0..16 {
            for len in 0..64 {
                let skew = (off * 5 + len) % 8;
                let src = &mut src_store[skew..skew + len];
                src.copy_from_slice(&pattern[off..off + len]);

                // copy_to_shared: the range gets `src`, nothing else changes.
                let mut buf = Buf([GUARD; 96]);
                // SAFETY: `off + len <= 78 < 96`; `buf` is only touched
                // through the pointer during the call; `src` is elsewhere.
                unsafe { copy_to_shared(buf.0.as_mut_ptr().add(off), src) };
                let mut want = [GUARD; 96];
                want[off..off + len].copy_from_slice(src);
                assert_eq!(buf.0, want, "copy_to_shared off {off} len {len}");

                // copy_from_shared: `dst` gets the range, the buffer is unchanged.
                let shared = &pattern[len..len + 96];
                buf.0.copy_from_slice(shared);
                let dst = &mut src_store[skew..skew + len];
                dst.fill(0);
                // SAFETY: as above, read only.
                unsafe { copy_from_shared(buf.0.as_mut_ptr().add(off), dst) };
                assert_eq!(
                    dst,
                    &shared[off..off + len],
                    "copy_from_shared off {off} len {len}"
                );
                assert_eq!(buf.0[..], *shared);

                // zero_shared: the range is zero, nothing else changes.
                let mut buf = Buf([GUARD; 96]);
                // SAFETY: as above.
                unsafe { zero_shared(buf.0.as_mut_ptr().add(off), len) };
                let mut want = [GUARD; 96];
                want[off..off + len].fill(0);
                assert_eq!(buf.0, want, "zero_shared off {off} len {len}");
            }
        }
    }

    /// A raw pointer that may cross threads (the tests' shared buffer).
    #[derive(Clone, Copy)]
    struct SharedPtr(*mut u8);
    // SAFETY: the pointee is only accessed atomically by the threads.
    unsafe impl Send for SharedPtr {}
    // SAFETY: as above.
    unsafe impl Sync for SharedPtr {}
    impl SharedPtr {
        // A method, so that closures capture the `Send` wrapper and not its field.
        fn at(self, offset: usize) -> *mut u8 {
            self.0.wrapping_add(offset)
        }
    }

    const ROUNDS: usize = if cfg!(miri) { 100 } else { 20_000 };

    /// One thread stores whole words while the other copies them out: every
    /// word read is wholly one of the written values.
    #[test]
    fn copy_races_word_writer() {
        const WORDS: usize = 8;
        let mut store = vec![0usize; WORDS + 2];
        let base = SharedPtr(store.as_mut_ptr().cast());
        std::thread::scope(|s| {
            s.spawn(move || {
                for k in 1..=ROUNDS {
                    let v = usize::from_ne_bytes([k as u8; WORD]);
                    for i in 1..=WORDS {
                        // SAFETY: word `i` of `store`, aligned, only accessed atomically.
                        unsafe { word(base.at(i * WORD).cast()) }.store(v, Ordering::Relaxed);
                    }
                }
            });
            s.spawn(move || {
                let mut out = [0u8; WORDS * WORD];
                for _ in 0..ROUNDS {
                    // SAFETY: words 1..=WORDS of `store`, only accessed atomically.
                    unsafe { copy_from_shared(base.at(WORD), &mut out) };
                    for w in out.chunks_exact(WORD) {
                        assert!(w.iter().all(|&b| b == w[0]), "torn word {w:?}");
                    }
                }
            });
        });
        // The guard words around the range were never written.
        assert_eq!(store[0], 0);
        assert_eq!(store[WORDS + 1], 0);
    }

    /// `copy_to_shared` racing `copy_from_shared` on the same unaligned range
    /// (byte head, words, byte tail): neither strays outside the range.
    #[test]
    fn copies_race_each_other() {
        const OFF: usize = 3;
        const LEN: usize = 37;
        const BYTES: usize = 48;
        let mut store = vec![0usize; BYTES / WORD];
        let base = SharedPtr(store.as_mut_ptr().cast());
        std::thread::scope(|s| {
            s.spawn(move || {
                for k in 1..=ROUNDS {
                    // SAFETY: `OFF + LEN <= BYTES`, only accessed atomically.
                    unsafe { copy_to_shared(base.at(OFF), &[k as u8 | 1; LEN]) };
                }
            });
            s.spawn(move || {
                let mut out = [0u8; LEN + 1];
                for _ in 0..ROUNDS {
                    // SAFETY: as above.
                    unsafe { copy_from_shared(base.at(OFF), &mut out[..LEN]) };
                    assert_eq!(out[LEN], 0, "read past the requested length");
                    // Every byte is the initial zero or a (odd) written value.
                    assert!(out[..LEN].iter().all(|&b| b == 0 || b % 2 == 1));
                }
            });
        });
        let bytes: Vec<u8> = store.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert!(
            bytes[..OFF].iter().all(|&b| b == 0),
            "wrote before the range"
        );
        assert!(
            bytes[OFF + LEN..].iter().all(|&b| b == 0),
            "wrote after the range"
        );
        assert!(bytes[OFF..OFF + LEN].iter().all(|&b| b % 2 == 1));
    }
}
