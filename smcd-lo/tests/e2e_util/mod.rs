//! Shared pieces of the `e2e_*` tests: a loopback device on a leaked static
//! arena, host configurations, checks on what crossed the pipe, and the
//! check that a device and a host hold nothing any more.
#![allow(dead_code)] // each test binary uses a different subset

use rand::SeedableRng;
use rand::rngs::StdRng;
use smcd_core::clc::{ClcConfig, DeclinedBy, Fallback};
use smcd_core::endpoint::{ByteStream, EndpointError, Host, Transport};
use smcd_core::wire::clc::{ClcHeaderRepr, ClcMessage, DeclineReason, DeclineRepr};
use smcd_lo::{LoopbackDevice, NoDoorbell, StaticArena};

/// The vector helper of smcd-core's tests, whose vectors these tests read.
#[path = "../../../smcd-core/tests/common/hex.rs"]
mod hex;

/// The loopback device of these tests: DMBs from a static arena, at most
/// `N` DMBs.
pub(crate) type Lo<const N: usize = 64> = LoopbackDevice<StaticArena, StdRng, NoDoorbell, N>;

/// The DMB size of most tests: the smallest there is (16 KiB).
pub(crate) const DMB: usize = smcd_core::dmb::DMB_MIN_SIZE_BYTES;

/// Arena size: room for a handful of 64 KiB DMBs.
const ARENA_BYTES: usize = 1 << 20;

/// A loopback device with a seeded RNG and a leaked arena.
pub(crate) fn loopback<const N: usize>(seed: u64) -> Lo<N> {
    let region = Box::leak(vec![0u8; ARENA_BYTES].into_boxed_slice());
    LoopbackDevice::new(
        StaticArena::new(region),
        StdRng::seed_from_u64(seed),
        NoDoorbell,
    )
}

/// A host with the test UEID (and no other: not the default UEID) and
/// `dmb` bytes of DMB.
pub(crate) fn config(dmb: usize) -> ClcConfig {
    ClcConfig::empty()
        .with_ueid("SMCD-E2E")
        .unwrap()
        .with_hostname("e2e")
        .with_dmb_size(dmb)
}

/// The fallback of a transport, which must be TCP.
pub(crate) fn fallback(t: Transport) -> Fallback {
    match t {
        Transport::Tcp(f) => f,
        other => panic!("expected a fallback, got {other:?}"),
    }
}

/// Both sides fell back for `reason`, declined by the side `by` names.
pub(crate) fn assert_both_fell_back(
    client: Transport,
    server: Transport,
    reason: DeclineReason,
    by_server: bool,
) {
    let (c, s) = (fallback(client), fallback(server));
    assert_eq!((c.reason, s.reason), (reason, reason));
    let (cb, sb) = if by_server {
        (DeclinedBy::Peer, DeclinedBy::Local)
    } else {
        (DeclinedBy::Local, DeclinedBy::Peer)
    };
    assert_eq!((c.declined_by, s.declined_by), (cb, sb));
}

/// Read everything available on a raw stream end.
pub(crate) fn read_all(end: &mut impl ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = end.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Split a stream into its CLC messages up to and including a Decline, and
/// the bytes after them.
pub(crate) fn split_clc(mut stream: &[u8]) -> (Vec<ClcMessage>, &[u8]) {
    let mut msgs = Vec::new();
    while let Ok(h) = ClcHeaderRepr::peek(stream) {
        let Ok(m) = ClcMessage::parse(stream) else {
            break;
        };
        let decline = matches!(m, ClcMessage::Decline(_));
        msgs.push(m);
        stream = &stream[usize::from(h.length)..];
        if decline {
            break;
        }
    }
    (msgs, stream)
}

/// The Decline ending `stream`'s CLC part, and the bytes after it.
pub(crate) fn decline_in(stream: &[u8]) -> (DeclineRepr, &[u8]) {
    let (msgs, rest) = split_clc(stream);
    match msgs.last() {
        Some(ClcMessage::Decline(d)) => (*d, rest),
        other => panic!("no Decline at the end of the CLC bytes: {other:?}"),
    }
}

/// Whether an endpoint error is "would block".
pub(crate) fn would_block<T>(r: &Result<T, EndpointError>) -> bool {
    matches!(r, Err(EndpointError::WouldBlock))
}

/// The bytes of the spec vector `smcd-core/tests/vectors/<name>`.
pub(crate) fn vector(name: &str) -> Vec<u8> {
    hex::read(&format!(
        "{}/../smcd-core/tests/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// Every DMB `dev` handed out is back and unmapped, and `host`'s link groups
/// hold no connection.
#[track_caller]
pub(crate) fn assert_all_given_back<M, R, D, const N: usize, H, const G: usize>(
    dev: &LoopbackDevice<M, R, D, N>,
    host: &Host<H, G>,
) where
    M: smcd_lo::DmbMemory,
    R: rand::RngCore,
    D: smcd_lo::Doorbell,
{
    let s = dev.stats();
    assert_eq!(
        (s.dmbs_in_use, s.attachments, host.groups().in_use()),
        (0, 0, 0),
        "DMBs in use, nocopy mappings, link-group connections"
    );
}
