//! # smcd-scenario
//!
//! The scenario every bare-metal image under `targets/` runs, written once.
//! One `smcd_lo::LoopbackDevice` over a `StaticArena` (no heap), and pairs of
//! `smcd_core::endpoint::Endpoint`s — client and server — whose "TCP
//! connection" is an in-image `Pipe`:
//!
//! 1. **copy mode**: the CLC handshake (Proposal, Accept, Confirm), then data
//!    both ways through several ring wrap-arounds with `send`/`recv`, close;
//! 2. **nocopy mode**: the same with the peer's DMB attached, written and
//!    read in place with `Connection::send_with`/`recv_with`;
//! 3. **fallback**: a client without a UEID gets Decline NOUEID, and both
//!    ends carry their data over the stream instead, close;
//!
//! then every DMB must be back with the device and the checksums of what was
//! received must equal those of what was sent. The images only provide a
//! runtime (entry, console, exit) and report the [`Summary`] or [`Failure`].
#![cfg_attr(not(test), no_std)]

mod arena;
mod checksum;
mod inject;
mod pattern;
mod rng;
mod summary;
mod transfer;

use core::fmt;

use smcd_core::clc::{ClcConfig, DeclinedBy};
use smcd_core::conn::SendMode;
use smcd_core::dmb::{CDC_HEADER_LEN_BYTES, DMB_MIN_SIZE_BYTES};
use smcd_core::endpoint::{Endpoint, Host, Pipe, Transport};
use smcd_core::wire::clc::DeclineReason;
use smcd_lo::{LoopbackDevice, NoDoorbell, StaticArena};

use crate::rng::XorShift64Star;
use crate::transfer::{Api, Sums};

pub use arena::{ARENA_BYTES, take_arena};
pub use inject::Inject;
pub use summary::{Failure, Summary};

/// Payload bytes sent in each direction per mode: about six trips around a
/// 16 KiB ring.
pub const BYTES_PER_DIRECTION: usize = 100_000;
/// Bytes sent in each direction over the stream after the fallback.
pub const FALLBACK_BYTES_PER_DIRECTION: usize = 16 * 1024;

/// The scenario's device: DMBs from the static arena, at most four at once
/// (two per connection).
type Device = LoopbackDevice<StaticArena, XorShift64Star, NoDoorbell, MAX_DMBS>;
/// DMB limit of the device.
const MAX_DMBS: usize = 4;
/// Seed of the device's RNG (see [`rng`] on why a fixed seed).
const RNG_SEED: u64 = 0x736d_6364_7461_7267;
/// Capacity of each direction of the in-image stream.
const PIPE_BYTES: usize = 4096;
/// The UEID both ends are configured with (SMC-Dv2 needs one, `docs/protocol/handshake.md` §4).
const UEID: &str = "SMCD-TARGETS-SCENARIO";
/// Link groups the engines may create.
const LINK_GROUPS: usize = 2;
/// Stream seeds (client→server, server→client) per part of the run.
const SEEDS_COPY: (u32, u32) = (0x5eed_c0a2, 0x5eed_c0b2);
const SEEDS_NOCOPY: (u32, u32) = (0x5eed_a0a2, 0x5eed_a0b2);
const SEEDS_FALLBACK: (u32, u32) = (0x5eed_fa12, 0x5eed_fa21);

/// Run the scenario on `arena` (the DMB memory), with the failure `inject`
/// asks for.
///
/// # Errors
///
/// The first [`Failure`] met; the run stops there.
///
/// # Panics
///
/// Only with [`Inject::Panic`].
pub fn run(arena: &'static mut [u8], inject: Inject) -> Result<Summary, Failure> {
    let device: Device = LoopbackDevice::new(
        StaticArena::new(arena),
        XorShift64Star::new(RNG_SEED),
        NoDoorbell,
    );
    let config = ClcConfig::empty()
        .with_ueid(UEID)?
        .with_dmb_size(DMB_MIN_SIZE_BYTES);
    let host: PairHost<'_> = Host::with_config(config, &device);

    device.set_nocopy(false);
    let copy = smcd_pair(&host, Api::Copying, SEEDS_COPY)?;
    device.set_nocopy(true);
    let nocopy = smcd_pair(&host, Api::InPlace, SEEDS_NOCOPY)?;
    device.set_nocopy(false);
    let fallback = fallback_pair(&host)?;
    let stats = device.stats();
    if stats.dmbs_in_use != 0 {
        return Err(Failure::Leak(stats.dmbs_in_use));
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
        clc_version: copy.version.min(nocopy.version),
        bytes_per_direction: BYTES_PER_DIRECTION as u32,
        wraps_per_direction: copy.wraps.min(nocopy.wraps),
        fallback_reason: DeclineReason::NoUeid.code(),
        fallback_bytes_per_direction: FALLBACK_BYTES_PER_DIRECTION as u32,
        dmbs_registered: stats.dmbs_registered,
        signals: stats.signals,
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

/// The host every pair runs on: the device borrowed, so that copy and
/// nocopy are one type and generic code is instantiated once.
type PairHost<'a> = Host<&'a Device, LINK_GROUPS>;

/// Handshake, data both ways through `api`, close: one endpoint pair of
/// `host` (whose device's nocopy switch decides the data mode).
fn smcd_pair(host: &PairHost<'_>, api: Api, seeds: (u32, u32)) -> Result<PairReport, Failure> {
    let pipe = Pipe::<PIPE_BYTES>::new();
    let (client_end, server_end) = pipe.ends();
    let mut client = Endpoint::client(host, client_end, 0);
    let mut server = Endpoint::server(host, server_end, 0);
    transfer::settle(&mut client, &mut server)?;
    let est = match (client.transport(), server.transport()) {
        (Transport::SmcD(est), Transport::SmcD(_)) => est,
        (Transport::Tcp(f), _) | (_, Transport::Tcp(f)) => return Err(Failure::Fallback(f)),
        _ => {
            return Err(Failure::Unexpected(
                "no SMC-D connection after the handshake",
            ));
        }
    };
    if matches!(est.mode, SendMode::NoCopy) != (api == Api::InPlace) {
        return Err(Failure::Unexpected(
            "data mode differs from the device's nocopy support",
        ));
    }
    let sums = transfer::both_ways(&mut client, &mut server, BYTES_PER_DIRECTION, seeds, api)?;
    transfer::close(&mut client, &mut server)?;
    let ring = est
        .peer_dmb_size
        .saturating_sub(CDC_HEADER_LEN_BYTES)
        .max(1);
    Ok(PairReport {
        version: est.version,
        wraps: (BYTES_PER_DIRECTION / ring) as u32,
        sums,
    })
}

/// A client without UEID proposes SMC-Dv2 with no EID; the server (of
/// `server_host`) declines NOUEID, as Linux does, and both ends carry their
/// bytes over the stream.
fn fallback_pair(server_host: &PairHost<'_>) -> Result<(Sums, Sums), Failure> {
    let client_config = ClcConfig::empty().with_dmb_size(DMB_MIN_SIZE_BYTES);
    let client_host: PairHost<'_> = Host::with_config(client_config, *server_host.device());
    let pipe = Pipe::<PIPE_BYTES>::new();
    let (client_end, server_end) = pipe.ends();
    let mut client = Endpoint::client(&client_host, client_end, 0);
    let mut server = Endpoint::server(server_host, server_end, 0);
    transfer::settle(&mut client, &mut server)?;
    for (transport, by) in [
        (client.transport(), DeclinedBy::Peer),
        (server.transport(), DeclinedBy::Local),
    ] {
        match transport {
            Transport::Tcp(f) if f.reason == DeclineReason::NoUeid && f.declined_by == by => {}
            Transport::Tcp(f) => return Err(Failure::Fallback(f)),
            _ => return Err(Failure::Unexpected("no fallback for a client without UEID")),
        }
    }
    let sums = transfer::both_ways(
        &mut client,
        &mut server,
        FALLBACK_BYTES_PER_DIRECTION,
        SEEDS_FALLBACK,
        Api::Copying,
    )?;
    transfer::close(&mut client, &mut server)?;
    Ok(sums)
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
        assert!(s.dmbs_registered >= 4, "{s:?}");
    }

    #[test]
    fn small_arena_falls_back() {
        // Room for one DMB only: the server cannot register its own.
        let small = &mut arena()[..DMB_MIN_SIZE_BYTES + 64];
        assert!(matches!(
            run(small, Inject::None),
            Err(Failure::Fallback(f)) if f.reason == DeclineReason::Mem
        ));
    }

    #[test]
    fn injected_checksum_error_fails_the_run() {
        match run(arena(), Inject::Checksum) {
            Err(Failure::ChecksumMismatch { sent, received }) => assert_eq!(sent ^ received, 0xff),
            other => panic!("{other:?}"),
        }
    }
}
