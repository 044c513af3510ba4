//! Sending and receiving on an established in-process pair: two endpoints
//! of one host over a [`LoopbackDevice`] (64 KiB DMBs, the default), one
//! thread, no doorbell — the data path of the core without any waiting.
//!
//! One iteration moves one message of 14 B, 1 KiB or 64000 B from the client
//! to the server: `send` until all of it is in, the server's `poll` (what a
//! doorbell triggers: the peer's CDC header is read and validated), receive
//! until all of it is out, and the client's `poll` (the server's window
//! update). Groups:
//!
//! | group | device mode | receive |
//! |---|---|---|
//! | `conn_copy` | copy (`move_data` into the peer DMB) | `recv` (copied out) |
//! | `conn_nocopy` | nocopy (written into the attached peer DMB) | `recv` (copied out) |
//! | `conn_nocopy_in_place` | nocopy | `recv_with` (read in place, not touched) |
//! | `memcpy` | reference: the same bytes copied twice (in, out) with `copy_from_slice` | |
//!
//! Throughput is message bytes per second. Two groups take the fixed and
//! the per-byte part apart:
//!
//! - `dmb_mem`: one copy of N bytes into (`write`) and out of (`read`) DMB
//!   memory through `DmbMem` (relaxed atomic words, race-free against a
//!   concurrent peer), against one `copy_from_slice` (`memcpy`).
//! - `endpoint_idle`: what an endpoint costs when nothing happened —
//!   `Endpoint::poll` (the unchanged header is skipped, then the stream is
//!   read for the peer going away) and `Connection::handle_signal` alone.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use smcd_core::conn::ConnError;
use smcd_core::endpoint::{ByteStream, Endpoint, EndpointError, Host, HostRef, Pipe, pair};
use smcd_core::mem::DmbMem;
use smcd_lo::{LoopbackDevice, NoDoorbell, StaticArena};

/// The device of these benchmarks.
type Lo = LoopbackDevice<StaticArena, SmallRng, NoDoorbell>;

/// Message sizes: a small request, a 1 KiB record, a 64000 B stream write.
const SIZES: [usize; 3] = [14, 1024, 64_000];

/// DMB arena of one device: room for both 64 KiB DMBs of a pair and more.
const ARENA_BYTES: usize = 1 << 20;

/// How the server takes the bytes.
#[derive(Clone, Copy)]
enum Recv {
    /// `Endpoint::recv` into a buffer.
    Copy,
    /// `Connection::recv_with`, in place.
    InPlace,
}

fn device(nocopy: bool) -> Lo {
    let region = Box::leak(vec![0u8; ARENA_BYTES].into_boxed_slice());
    let dev = LoopbackDevice::new(
        StaticArena::new(region),
        SmallRng::seed_from_u64(0x5eed),
        NoDoorbell,
    );
    dev.set_nocopy(nocopy);
    dev
}

/// Whatever `EndpointError::WouldBlock` means "nothing now".
fn ok_or_block(r: Result<usize, EndpointError>) -> Option<usize> {
    match r {
        Ok(n) => Some(n),
        Err(EndpointError::WouldBlock) => None,
        Err(e) => panic!("transfer failed: {e:?}"),
    }
}

/// Move all of `msg` from `client` to `server`.
fn transfer<H: HostRef, S: ByteStream>(
    client: &mut Endpoint<H, S>,
    server: &mut Endpoint<H, S>,
    msg: &[u8],
    buf: &mut [u8],
    how: Recv,
) {
    let mut sent = 0;
    let mut got = 0;
    while got < msg.len() {
        if sent < msg.len() {
            sent += ok_or_block(client.send(&msg[sent..])).unwrap_or(0);
        }
        server.poll(0).expect("server poll");
        loop {
            let n = match how {
                Recv::Copy => ok_or_block(server.recv(buf)),
                Recv::InPlace => {
                    let (conn, dev) = server.connection_mut().expect("SMC-D connection");
                    match conn.recv_with(dev, |bytes| black_box(bytes).len()) {
                        Ok(n) => Some(n),
                        Err(ConnError::WouldBlock) => None,
                        Err(e) => panic!("recv_with failed: {e:?}"),
                    }
                }
            };
            match n {
                Some(0) => panic!("unexpected EOF"),
                Some(n) => got += n,
                None => break,
            }
        }
        client.poll(0).expect("client poll");
    }
}

fn bench_mode(c: &mut Criterion, group: &str, nocopy: bool, how: Recv) {
    let dev = device(nocopy);
    let host: Host<&Lo> = Host::new(&dev);
    let pipe = Pipe::<1024>::new();
    let (mut client, mut server) = pair(&host, &host, &pipe, 0).expect("handshake");
    assert!(client.transport().is_smcd(), "{:?}", client.transport());
    let msg: Vec<u8> = (0..SIZES[2]).map(|i| (i * 7) as u8).collect();
    let mut buf = vec![0u8; SIZES[2]];
    let mut g = c.benchmark_group(group);
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter(|| transfer(&mut client, &mut server, &msg[..size], &mut buf, how));
        });
    }
    g.finish();
}

fn conn_copy(c: &mut Criterion) {
    bench_mode(c, "conn_copy", false, Recv::Copy);
}

fn conn_nocopy(c: &mut Criterion) {
    bench_mode(c, "conn_nocopy", true, Recv::Copy);
}

fn conn_nocopy_in_place(c: &mut Criterion) {
    bench_mode(c, "conn_nocopy_in_place", true, Recv::InPlace);
}

/// The floor for the copying groups: the same bytes into a DMB-sized
/// buffer and out again, with plain `copy_from_slice`.
fn memcpy(c: &mut Criterion) {
    let msg: Vec<u8> = (0..SIZES[2]).map(|i| (i * 7) as u8).collect();
    let mut ring = vec![0u8; 64 * 1024];
    let mut buf = vec![0u8; SIZES[2]];
    let mut g = c.benchmark_group("memcpy");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter(|| {
                ring[32..32 + size].copy_from_slice(black_box(&msg[..size]));
                buf[..size].copy_from_slice(black_box(&ring[32..32 + size]));
                black_box(&buf);
            });
        });
    }
    g.finish();
}

/// One copy into and out of DMB memory, and the plain copy it replaces.
fn dmb_mem(c: &mut Criterion) {
    let size_max = SIZES[2];
    let raw = Box::leak(vec![0u8; size_max + 8].into_boxed_slice());
    let skip = raw.as_ptr().align_offset(8);
    let mem = DmbMem::from_static(&mut raw[skip..skip + size_max]).expect("aligned");
    let msg: Vec<u8> = (0..size_max).map(|i| (i * 7) as u8).collect();
    let mut plain = vec![0u8; size_max];
    let mut buf = vec![0u8; size_max];
    let mut g = c.benchmark_group("dmb_mem");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("write", size), &size, |b, &size| {
            b.iter(|| mem.write(0, black_box(&msg[..size])));
        });
        g.bench_with_input(BenchmarkId::new("read", size), &size, |b, &size| {
            b.iter(|| mem.read(0, black_box(&mut buf[..size])));
        });
        g.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, &size| {
            b.iter(|| plain[..size].copy_from_slice(black_box(&msg[..size])));
        });
    }
    g.finish();
}

/// An established endpoint with nothing new: the floor of every poll.
fn endpoint_idle(c: &mut Criterion) {
    let dev = device(true);
    let host: Host<&Lo> = Host::new(&dev);
    let pipe = Pipe::<1024>::new();
    let (_client, mut server) = pair(&host, &host, &pipe, 0).expect("handshake");
    let mut g = c.benchmark_group("endpoint_idle");
    g.bench_function("poll", |b| {
        b.iter(|| server.poll(black_box(0)).expect("poll"));
    });
    g.bench_function("handle_signal", |b| {
        b.iter(|| {
            let (conn, dev) = server.connection_mut().expect("SMC-D connection");
            conn.handle_signal(dev).expect("handle_signal");
        });
    });
    g.finish();
}

criterion_group!(
    benches,
    conn_copy,
    conn_nocopy,
    conn_nocopy_in_place,
    memcpy,
    dmb_mem,
    endpoint_idle
);
criterion_main!(benches);
