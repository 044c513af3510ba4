//! CLC messages (`smcd_core::wire::clc`): parsing with every receive-side
//! check, and emitting, for the valid spec vectors of
//! `smcd-core/tests/vectors/` (Proposal, Accept, Confirm, Decline, v1 and
//! v2), plus the server's pre-check of a parsed v2 Proposal.
//!
//! Groups: `clc_parse` (`ClcMessage::parse` of the bytes), `clc_emit`
//! (`ClcMessage::emit` of the parsed message into a buffer),
//! `clc_precheck` (`server_precheck`). Throughput is message bytes.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smcd_core::wire::clc::{ClcMessage, server_precheck};

/// The vector helper of smcd-core's tests.
#[path = "../../smcd-core/tests/common/hex.rs"]
mod hex;

macro_rules! vectors {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../smcd-core/tests/vectors/", $name, ".hex")))),*]
    };
}

/// The valid CLC vectors: (name, hex text).
const VECTORS: [(&str, &str); 7] = vectors![
    "clc-proposal-v1-smcd",
    "clc-proposal-v2-loopback",
    "clc-accept-v1-smcd",
    "clc-accept-v2-fce-loopback",
    "clc-confirm-v2-loopback",
    "clc-decline-v1-syncerr",
    "clc-decline-v2",
];

/// Every vector as (name, bytes, parsed message).
fn messages() -> Vec<(&'static str, Vec<u8>, ClcMessage)> {
    VECTORS
        .iter()
        .map(|&(name, text)| {
            let bytes = hex::decode(text);
            let msg = ClcMessage::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes, msg)
        })
        .collect()
}

fn clc_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("clc_parse");
    for (name, bytes, _) in messages() {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| ClcMessage::parse(black_box(bytes)));
        });
    }
    g.finish();
}

fn clc_emit(c: &mut Criterion) {
    let mut g = c.benchmark_group("clc_emit");
    for (name, bytes, msg) in messages() {
        let mut out = vec![0u8; bytes.len()];
        assert_eq!(msg.emit(&mut out), Ok(bytes.len()), "{name}");
        assert_eq!(out, bytes, "{name}: re-emitted bytes differ");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &msg, |b, msg| {
            b.iter(|| black_box(msg).emit(black_box(&mut out)));
        });
    }
    g.finish();
}

fn clc_precheck(c: &mut Criterion) {
    let mut g = c.benchmark_group("clc_precheck");
    for (name, bytes, msg) in messages() {
        let ClcMessage::Proposal(proposal) = msg else {
            continue;
        };
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &proposal, |b, p| {
            b.iter(|| {
                let _ = black_box(server_precheck(black_box(p), true));
            });
        });
    }
    g.finish();
}

criterion_group!(benches, clc_parse, clc_emit, clc_precheck);
criterion_main!(benches);
