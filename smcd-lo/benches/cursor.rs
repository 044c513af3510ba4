//! CDC cursor arithmetic (`smcd_core::cursor`), the per-header work of every
//! send and receive: advancing a cursor, the distances of `diff`, `comp`
//! and `diff_large`, and the checks a cursor read from peer memory passes
//! (`Cursor::validate`, `forward_distance`). The CDC header's own
//! encode/decode sits here too (`cdc_header`: `to_bytes` when sending,
//! `from_words` as the receiver's snapshot does, `parse` of 32 bytes),
//! since each data header pays it once.
//!
//! Each benchmark runs over a batch of [`BATCH`] cursor pairs taken from a
//! walk around a 64 KiB DMB's ring (wraps and the 0xFFFF → 0 roll-over
//! included), so a figure is "per call" = time / [`BATCH`] elements.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smcd_core::cursor::{Cursor, comp, diff, diff_large, forward_distance};
use smcd_core::wire::cdc::{CdcHeader, ConnStateFlags, ProducerFlags};

/// Ring of a 64 KiB DMB (its 32-byte CDC header excluded).
const RING: u32 = 64 * 1024 - 32;
/// Cursor pairs per benchmark iteration.
const BATCH: usize = 1024;

/// `BATCH` (old, new, step) triples: a walk with steps of 0 ..= RING that
/// starts a few laps before the wrap counter rolls over.
fn walk() -> Vec<(Cursor, Cursor, u32)> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut cur = Cursor::new(0xFFF0, 12_345);
    (0..BATCH)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let step = (state % (u64::from(RING) + 1)) as u32;
            let next = cur.add(RING, step);
            let triple = (cur, next, step);
            cur = next;
            triple
        })
        .collect()
}

fn cursor_math(c: &mut Criterion) {
    let pairs = walk();
    let mut g = c.benchmark_group("cursor");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("add", |b| {
        b.iter(|| {
            for &(old, _, step) in black_box(&pairs) {
                black_box(old.add(black_box(RING), step));
            }
        });
    });
    g.bench_function("diff", |b| {
        b.iter(|| {
            for &(old, new, _) in black_box(&pairs) {
                black_box(diff(black_box(RING), old, new));
            }
        });
    });
    g.bench_function("comp", |b| {
        b.iter(|| {
            for &(old, new, _) in black_box(&pairs) {
                black_box(comp(black_box(RING), old, new));
            }
        });
    });
    g.bench_function("diff_large", |b| {
        b.iter(|| {
            for &(old, new, _) in black_box(&pairs) {
                black_box(diff_large(black_box(RING), old, new));
            }
        });
    });
    // What a receiver does with a peer's cursor: validate the count, then
    // classify the movement from the last one.
    g.bench_function("validate+forward_distance", |b| {
        b.iter(|| {
            for &(old, new, _) in black_box(&pairs) {
                let ring = black_box(RING);
                if let Ok(new) = new.validate(ring) {
                    black_box(forward_distance(ring, old, new));
                }
            }
        });
    });
    g.finish();
}

fn cdc_header(c: &mut Criterion) {
    let pairs = walk();
    let headers: Vec<CdcHeader> = pairs
        .iter()
        .map(|&(cons, prod, _)| CdcHeader {
            prod,
            cons,
            prod_flags: ProducerFlags::WRITE_BLOCKED,
            conn_state_flags: ConnStateFlags::empty(),
        })
        .collect();
    let bytes: Vec<[u8; 32]> = headers.iter().map(CdcHeader::to_bytes).collect();
    let mut g = c.benchmark_group("cdc_header");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_with_input(BenchmarkId::new("to_bytes", BATCH), &headers, |b, hs| {
        b.iter(|| {
            for h in black_box(hs) {
                black_box(h.to_bytes());
            }
        });
    });
    // What the receiver's `cdc::snapshot` does after its two atomic loads.
    let words: Vec<(u64, u64)> = headers
        .iter()
        .map(|h| (h.prod_word(), h.cons_word()))
        .collect();
    g.bench_with_input(BenchmarkId::new("from_words", BATCH), &words, |b, ws| {
        b.iter(|| {
            for &(prod, cons) in black_box(ws) {
                black_box(CdcHeader::from_words(prod, cons));
            }
        });
    });
    g.bench_with_input(BenchmarkId::new("parse", BATCH), &bytes, |b, bs| {
        b.iter(|| {
            for raw in black_box(bs) {
                let _ = black_box(CdcHeader::parse(raw));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, cursor_math, cdc_header);
criterion_main!(benches);
