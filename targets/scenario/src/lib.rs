//! # smcd-scenario
//!
//! The scenario every bare-metal image under `targets/` runs, written once.
//! On one device over a static arena (no heap):
//!
//! 1. **copy mode**: a client and a server engine run the CLC handshake
//!    (Proposal, Accept, Confirm) over an in-image byte stream, then move
//!    data both ways through several ring wrap-arounds with `send`/`recv`
//!    and close;
//! 2. **nocopy mode**: the same with the peer's DMB attached, written and
//!    read in place with `send_with`/`recv_with`;
//! 3. **fallback**: a client without a UEID gets Decline NOUEID, and both
//!    ends carry their data over the stream instead;
//!
//! then every DMB must be back with the device and the checksums of what was
//! received must equal those of what was sent. The images only provide a
//! runtime (entry, console, exit) and report the [`Summary`] or [`Failure`].
#![cfg_attr(not(test), no_std)]

mod arena;
mod checksum;
mod copy_only;
mod device;
mod handshake;
mod inject;
mod pattern;
mod pipe;
mod summary;
mod transfer;

use core::fmt;

use smcd_core::clc::{
    ClcConfig, ClcDevice, DeclinedBy, Devices, Established, Handshake, LinkGroups, Outcome,
};
use smcd_core::conn::{Connection, SendMode};
use smcd_core::dmb::CDC_HEADER_LEN_BYTES;
use smcd_core::ops::SmcdOps;
use smcd_core::wire::clc::DeclineReason;

use crate::checksum::Checksum;
use crate::copy_only::CopyOnly;
use crate::device::{SLOT_BYTES, StaticDevice};
use crate::handshake::Stream;
use crate::pattern::Pattern;
use crate::transfer::{Api, Sums};

pub use arena::{ARENA_BYTES, take_arena};
pub use inject::Inject;
pub use summary::{DataPath, Failure, Summary};

/// Payload bytes sent in each direction per mode: about six trips around a
/// 16 KiB ring.
pub const BYTES_PER_DIRECTION: usize = 100_000;
/// Bytes sent in each direction over the stream after the fallback.
pub const FALLBACK_BYTES_PER_DIRECTION: usize = 8 * 1024;

/// The UEID both ends are configured with (SMC-Dv2 needs one, `spec/handshake.md` §4).
const UEID: &str = "SMCD-TARGETS-SCENARIO";
/// Link groups the engines may create.
const LINK_GROUPS: usize = 2;
/// Stream seeds (client→server, server→client) per part of the run.
const SEEDS_COPY: (u32, u32) = (0x5eed_c0a2, 0x5eed_c0b2);
const SEEDS_NOCOPY: (u32, u32) = (0x5eed_a0a2, 0x5eed_a0b2);
const SEEDS_FALLBACK: (u32, u32) = (0x5eed_fa12, 0x5eed_fa21);

/// Run the scenario on `arena` (8-byte aligned, [`ARENA_BYTES`] long), with
/// the failure `inject` asks for.
///
/// # Errors
///
/// The first [`Failure`] met; the run stops there.
///
/// # Panics
///
/// Only with [`Inject::Panic`].
pub fn run(arena: &'static mut [u8], inject: Inject) -> Result<Summary, Failure> {
    let device = StaticDevice::new(arena).ok_or(Failure::ArenaTooSmall)?;
    let config = ClcConfig::new().with_ueid(UEID)?.with_dmb_size(SLOT_BYTES);
    let lgrs = LinkGroups::<LINK_GROUPS>::new();

    let copy = smcd_pair(&CopyOnly(&device), &config, &lgrs, Api::Copying, SEEDS_COPY)?;
    let nocopy = smcd_pair(&device, &config, &lgrs, Api::InPlace, SEEDS_NOCOPY)?;
    let fallback = fallback_pair(&device, &config, &lgrs)?;
    if device.live_dmbs() != 0 {
        return Err(Failure::Leak(device.live_dmbs()));
    }

    if inject == Inject::Panic {
        panic!("injected panic (SMCD_TARGETS_INJECT=panic)");
    }
    let all = [
        copy.sums.0,
        copy.sums.1,
        nocopy.sums.0,
        nocopy.sums.1,
        fallback.0,
        fallback.1,
    ];
    let sent = all.iter().fold(0u32, |acc, s| acc.rotate_left(5) ^ s.sent);
    let mut received = all
        .iter()
        .fold(0u32, |acc, s| acc.rotate_left(5) ^ s.received);
    if inject == Inject::Checksum {
        received ^= 0xff;
    }
    if sent != received {
        return Err(Failure::ChecksumMismatch { sent, received });
    }
    Ok(Summary {
        path: DataPath::InterimDevice,
        clc_version: copy.version.min(nocopy.version),
        bytes_per_direction: BYTES_PER_DIRECTION as u32,
        wraps_per_direction: copy.wraps.min(nocopy.wraps),
        fallback_reason: DeclineReason::NoUeid.code(),
        fallback_bytes_per_direction: FALLBACK_BYTES_PER_DIRECTION as u32,
        checksum: received,
    })
}

/// Run the scenario once on the static arena and write its outcome to `out`
/// as one line prefixed with `image`; `true` if it passed.
///
/// Used by the images whose console is a [`fmt::Write`] (all but Cortex-M4,
/// which logs the same [`Summary`]/[`Failure`] with defmt).
pub fn run_and_report(image: &str, inject: Inject, out: &mut impl fmt::Write) -> bool {
    let outcome = take_arena()
        .ok_or(Failure::ArenaTaken)
        .and_then(|arena| run(arena, inject));
    // A console error cannot be reported anywhere; the exit status still is.
    let _ = match &outcome {
        Ok(summary) => writeln!(out, "{image}: {summary}"),
        Err(failure) => writeln!(out, "{image}: FAIL {failure}"),
    };
    outcome.is_ok()
}

/// What one SMC-D connection pair did.
struct PairReport {
    version: u8,
    wraps: u32,
    sums: (Sums, Sums),
}

/// Handshake, data both ways through `api`, close, on device `dev`.
fn smcd_pair<D: SmcdOps>(
    dev: &D,
    config: &ClcConfig,
    lgrs: &LinkGroups<LINK_GROUPS>,
    api: Api,
    seeds: (u32, u32),
) -> Result<PairReport, Failure> {
    let list: [&dyn ClcDevice; 1] = [dev];
    let devices = Devices::new(&list);
    let mut client = Handshake::client(config, devices, lgrs, 0);
    let mut server = Handshake::server(config, devices, lgrs, 0);
    let (c, s) = handshake::complete(&mut client, &mut server, &mut Stream::new())?;
    let (c, s) = (established(c)?, established(s)?);
    let nocopy = matches!(c.mode, SendMode::NoCopy(_));
    if nocopy != (api == Api::InPlace) {
        return Err(Failure::Unexpected(
            "data mode differs from the device's nocopy support",
        ));
    }
    let (mut a, mut b) = (
        Connection::new(c.conn_params())?,
        Connection::new(s.conn_params())?,
    );
    let sums = transfer::both_ways(dev, &mut a, &mut b, BYTES_PER_DIRECTION, seeds, api)?;
    transfer::close(dev, a, b)?;
    lgrs.release(c.link_group);
    lgrs.release(s.link_group);
    let ring = c.peer_dmb_size.saturating_sub(CDC_HEADER_LEN_BYTES).max(1);
    Ok(PairReport {
        version: c.version,
        wraps: (BYTES_PER_DIRECTION / ring) as u32,
        sums,
    })
}

fn established(outcome: Outcome) -> Result<Established, Failure> {
    match outcome {
        Outcome::Established(e) => Ok(e),
        Outcome::Fallback(f) => Err(Failure::Fallback(f)),
        Outcome::Failed(e) => Err(Failure::Handshake(e)),
    }
}

/// A client without UEID proposes SMC-Dv2 with no EID; the server declines
/// NOUEID, as Linux does, and both ends carry their bytes over the stream.
fn fallback_pair<D: SmcdOps>(
    dev: &D,
    server_config: &ClcConfig,
    lgrs: &LinkGroups<LINK_GROUPS>,
) -> Result<(Sums, Sums), Failure> {
    let client_config = ClcConfig::new().with_dmb_size(SLOT_BYTES);
    let list: [&dyn ClcDevice; 1] = [dev];
    let devices = Devices::new(&list);
    let mut client = Handshake::client(&client_config, devices, lgrs, 0);
    let mut server = Handshake::server(server_config, devices, lgrs, 0);
    let mut stream = Stream::new();
    let (c, s) = handshake::complete(&mut client, &mut server, &mut stream)?;
    for (outcome, by) in [(c, DeclinedBy::Peer), (s, DeclinedBy::Local)] {
        match outcome {
            Outcome::Fallback(f) if f.reason == DeclineReason::NoUeid && f.declined_by == by => {}
            Outcome::Fallback(f) => return Err(Failure::Fallback(f)),
            Outcome::Failed(e) => return Err(Failure::Handshake(e)),
            Outcome::Established(_) => return Err(Failure::Unexpected("SMC-D without a UEID")),
        }
    }
    if !stream.up.readable().is_empty() || !stream.down.readable().is_empty() {
        return Err(Failure::Unexpected(
            "CLC bytes left on the stream after the fallback",
        ));
    }
    let up = over_stream(&mut stream.up, SEEDS_FALLBACK.0)?;
    let down = over_stream(&mut stream.down, SEEDS_FALLBACK.1)?;
    Ok((up, down))
}

/// Move [`FALLBACK_BYTES_PER_DIRECTION`] pattern bytes through one direction
/// of the stream (plain TCP after a fallback).
fn over_stream(pipe: &mut pipe::Pipe, seed: u32) -> Result<Sums, Failure> {
    let mut pattern = Pattern::new(seed);
    let (mut sent, mut received) = (Checksum::new(), Checksum::new());
    let mut chunk = [0u8; 1000];
    let mut left = FALLBACK_BYTES_PER_DIRECTION;
    while left > 0 {
        let chunk = &mut chunk[..left.min(1000)];
        pattern.fill(chunk);
        sent.update(chunk);
        if pipe.write(chunk) != chunk.len() {
            return Err(Failure::PipeFull);
        }
        received.update(pipe.readable());
        pipe.consume(chunk.len());
        left -= chunk.len();
    }
    Ok(Sums {
        sent: sent.value(),
        received: received.value(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(64))]
    struct Buf([u8; ARENA_BYTES]);

    fn arena() -> &'static mut [u8] {
        &mut Box::leak(Box::new(Buf([0; ARENA_BYTES]))).0
    }

    #[test]
    fn scenario_passes_on_the_host() {
        let s = run(arena(), Inject::None).expect("scenario passes");
        assert_eq!(s.bytes_per_direction as usize, BYTES_PER_DIRECTION);
        assert_eq!(s.clc_version, 2);
        assert!(s.wraps_per_direction >= 5, "{s:?}");
        assert_eq!(s.fallback_reason, 0x0303_0008);
    }

    #[test]
    fn small_arena_is_refused() {
        let small = &mut arena()[..SLOT_BYTES];
        assert_eq!(run(small, Inject::None), Err(Failure::ArenaTooSmall));
    }

    #[test]
    fn injected_checksum_error_fails_the_run() {
        match run(arena(), Inject::Checksum) {
            Err(Failure::ChecksumMismatch { sent, received }) => assert_eq!(sent ^ received, 0xff),
            other => panic!("{other:?}"),
        }
    }
}
