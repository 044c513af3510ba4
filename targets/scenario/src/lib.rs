//! # smcd-scenario
//!
//! The scenario every bare-metal image under `targets/` runs, written once:
//! two endpoints exchange data both ways through DMBs carved from one static
//! arena, through several ring wrap-arounds, and compare checksums of what
//! was sent and what was received. The images only provide a runtime
//! (entry, console, exit) and report the [`Summary`] or [`Failure`].
//!
//! No heap: all memory is the static arena of [`take_arena`] and the stack.
#![cfg_attr(not(test), no_std)]

mod arena;
mod checksum;
mod inject;
mod pattern;
mod ring;
mod summary;

use core::fmt;

use smcd_core::dmb::DMB_MIN_SIZE_BYTES;
use smcd_core::mem::DmbMem;

pub use arena::{ARENA_BYTES, take_arena};
pub use inject::{Inject, inject};
pub use summary::{DataPath, Failure, Summary};

/// Payload bytes sent in each direction: about six trips around a 16 KiB ring.
pub const BYTES_PER_DIRECTION: usize = 100_000;

/// Stream seeds of the two directions.
const SEED_A_TO_B: u32 = 0x5eed_a2b0;
const SEED_B_TO_A: u32 = 0x5eed_b2a0;

/// Run the scenario on `arena` (8-byte aligned, at least two minimum-size DMBs).
///
/// # Errors
///
/// The first [`Failure`] met; the run stops there.
///
/// # Panics
///
/// Only when built with `SMCD_TARGETS_INJECT=panic`.
pub fn run(arena: &'static mut [u8]) -> Result<Summary, Failure> {
    let (dmb_a, rest) = arena
        .split_at_mut_checked(DMB_MIN_SIZE_BYTES)
        .ok_or(Failure::ArenaTooSmall)?;
    let dmb_b = rest
        .get_mut(..DMB_MIN_SIZE_BYTES)
        .ok_or(Failure::ArenaTooSmall)?;
    let (mem_a, mem_b) = (DmbMem::from_static(dmb_a)?, DmbMem::from_static(dmb_b)?);

    let a_to_b = ring::pump(mem_b, BYTES_PER_DIRECTION, SEED_A_TO_B)?;
    let b_to_a = ring::pump(mem_a, BYTES_PER_DIRECTION, SEED_B_TO_A)?;

    if inject() == Inject::Panic {
        panic!("injected panic (SMCD_TARGETS_INJECT=panic)");
    }
    let flip = if inject() == Inject::Checksum {
        0xff
    } else {
        0
    };
    let sent = a_to_b.sent ^ b_to_a.sent.rotate_left(16);
    let received = (a_to_b.received ^ flip) ^ b_to_a.received.rotate_left(16);
    if sent != received {
        return Err(Failure::ChecksumMismatch { sent, received });
    }
    Ok(Summary {
        path: DataPath::DmbMemOnly,
        bytes_per_direction: BYTES_PER_DIRECTION as u32,
        wraps_per_direction: u32::from(a_to_b.wraps.min(b_to_a.wraps)),
        checksum: received,
    })
}

/// Run the scenario once on the static arena and write its outcome to `out`
/// as one line prefixed with `image`; `true` if it passed.
///
/// Used by the images whose console is a [`fmt::Write`] (all but Cortex-M4,
/// which logs the same [`Summary`]/[`Failure`] with defmt).
pub fn run_and_report(image: &str, out: &mut impl fmt::Write) -> bool {
    let outcome = take_arena().ok_or(Failure::ArenaTaken).and_then(run);
    // A console error cannot be reported anywhere; the exit status still is.
    let _ = match &outcome {
        Ok(summary) => writeln!(out, "{image}: {summary}"),
        Err(failure) => writeln!(out, "{image}: FAIL {failure}"),
    };
    outcome.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(64))]
    struct Buf([u8; 2 * DMB_MIN_SIZE_BYTES]);

    #[test]
    fn scenario_passes_on_the_host() {
        let buf = Box::leak(Box::new(Buf([0; 2 * DMB_MIN_SIZE_BYTES])));
        let s = run(&mut buf.0).expect("scenario passes");
        assert_eq!(s.bytes_per_direction as usize, BYTES_PER_DIRECTION);
        assert!(s.wraps_per_direction >= 5, "{s:?}");
    }

    #[test]
    fn small_arena_is_refused() {
        let buf = Box::leak(Box::new(Buf([0; 2 * DMB_MIN_SIZE_BYTES])));
        let small = &mut buf.0[..DMB_MIN_SIZE_BYTES];
        assert_eq!(run(small), Err(Failure::ArenaTooSmall));
    }
}
