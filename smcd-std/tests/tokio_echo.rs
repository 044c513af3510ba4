//! Feature `tokio`: async streams and listeners over SMC-D and over TCP,
//! driven only by the runtime's reactor.
#![cfg(feature = "tokio")]

use std::time::Duration;

use smcd_core::conn::SendMode;
use smcd_std::tokio::{SmcListener, SmcStream};
use smcd_std::{SmcConfig, TcpReason, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Every test ends within this, or fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// FNV-1a over a byte stream (independent of how it is chunked).
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// Read to EOF: (bytes, checksum).
async fn drain(mut r: impl AsyncRead + Unpin) -> (usize, u64) {
    let (mut n, mut h) = (0, FNV0);
    let mut buf = vec![0u8; 50_000];
    loop {
        match r.read(&mut buf).await.expect("read") {
            0 => return (n, h),
            k => (n, h) = (n + k, fnv(h, &buf[..k])),
        }
    }
}

/// Write `out` in uneven chunks, then shut the write side down.
async fn send(mut w: impl AsyncWrite + Unpin, out: &[u8]) {
    for chunk in out.chunks(70_001) {
        w.write_all(chunk).await.expect("write");
    }
    w.shutdown().await.expect("shutdown");
}

/// One connection of an echo server: copy until EOF, then shut down.
async fn echo(mut s: SmcStream) -> Transport {
    let t = s.transport().await.expect("server handshake");
    let (mut r, mut w) = s.split();
    tokio::io::copy(&mut r, &mut w).await.expect("echo");
    w.shutdown().await.expect("echo shutdown");
    t
}

/// `total` bytes through an async echo over SMC-D with `config`; the
/// client's reader and writer are two tasks.
async fn smcd_round_trip(config: SmcConfig, total: usize) -> (Transport, Transport) {
    let listener = SmcListener::bind_with(&config, "127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { echo(listener.accept().await.unwrap().0).await });
    let client = SmcStream::connect_with(&config, addr).await.unwrap();
    let t = client.transport().await.unwrap();
    let out = data(total);
    let sum = fnv(FNV0, &out);
    let (r, w) = client.into_split();
    let writer = tokio::spawn(async move { send(w, &out).await });
    assert_eq!(drain(r).await, (total, sum), "bytes changed ({t})");
    writer.await.unwrap();
    (t, server.await.unwrap())
}

fn assert_smcd(t: &Transport, nocopy: bool) {
    let Transport::SmcD(info) = t else {
        panic!("not SMC-D: {t}");
    };
    let mode = if nocopy {
        SendMode::NoCopy
    } else {
        SendMode::Copy
    };
    assert_eq!(info.mode, mode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_echo_over_smc_d_moves_megabytes_copy_and_nocopy() {
    for nocopy in [false, true] {
        let config = SmcConfig::new().nocopy(nocopy).dmb_size(64 * 1024);
        let (client, server) = tokio::time::timeout(LIMIT, smcd_round_trip(config, 8_000_000))
            .await
            .expect("timed out");
        assert_smcd(&client, nocopy);
        assert_smcd(&server, nocopy);
    }
}

/// Connect, accept, handshake and echo in one thread: nothing blocks it.
#[tokio::test(flavor = "current_thread")]
async fn one_runtime_thread_runs_both_ends() {
    for nocopy in [false, true] {
        let config = SmcConfig::new().nocopy(nocopy).dmb_size(16 * 1024);
        let (client, server) = tokio::time::timeout(LIMIT, smcd_round_trip(config, 3_000_000))
            .await
            .expect("timed out");
        assert_smcd(&client, nocopy);
        assert_smcd(&server, nocopy);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_client_gets_plain_tcp_from_a_tokio_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let client = tokio::time::timeout(LIMIT, SmcStream::connect(addr))
        .await
        .expect("timed out")
        .unwrap();
    assert_eq!(
        client.transport().await.unwrap(),
        Transport::Tcp(TcpReason::NoSmcPeer)
    );
    let out = data(2_000_000);
    let sum = fnv(FNV0, &out);
    let (r, w) = client.into_split();
    let writer = tokio::spawn(async move { send(w, &out).await });
    let got = tokio::time::timeout(LIMIT, drain(r))
        .await
        .expect("timed out");
    assert_eq!(got, (2_000_000, sum));
    writer.await.unwrap();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_client_gets_plain_tcp_from_an_async_listener() {
    let listener = SmcListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        assert_eq!(
            s.transport().await.unwrap(),
            Transport::Tcp(TcpReason::PlainClient)
        );
        // The server speaks first: a plain client gets these bytes as is.
        s.write_all(b"220 hello\r\n").await.unwrap();
        echo(s).await
    });
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut greeting = [0u8; 11];
    c.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"220 hello\r\n");
    c.write_all(b"plain bytes").await.unwrap();
    c.shutdown().await.unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"plain bytes");
    server.await.unwrap();
}

/// Both ends split; each half in its own task (a reader and a writer that
/// wait at the same time must each be woken), then put back together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_halves_work_from_two_tasks_and_reunite() {
    let config = SmcConfig::new().dmb_size(16 * 1024);
    let listener = SmcListener::bind_with(&config, "127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 30_000];
            loop {
                match r.read(&mut buf).await.unwrap() {
                    0 => break r,
                    n => tx.send(buf[..n].to_vec()).await.unwrap(),
                }
            }
        });
        let writer = tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                w.write_all(&chunk).await.unwrap();
            }
            w
        });
        let (r, w) = (reader.await.unwrap(), writer.await.unwrap());
        let mut s = r.reunite(w).expect("same stream");
        assert!(s.transport().await.unwrap().is_smcd());
        s.shutdown().await.unwrap();
        s.into_std().unwrap()
    });
    let run = async {
        let client = SmcStream::connect_with(&config, addr).await.unwrap();
        assert!(client.transport().await.unwrap().is_smcd());
        let out = data(4_000_000);
        let sum = fnv(FNV0, &out);
        let (r, w) = tokio::io::split(client);
        let writer = tokio::spawn(async move { send(w, &out).await });
        let reader = tokio::spawn(drain(r));
        assert_eq!(reader.await.unwrap(), (4_000_000, sum));
        writer.await.unwrap();
        server.await.unwrap()
    };
    let std = tokio::time::timeout(LIMIT, run).await.expect("timed out");
    assert!(std.transport().unwrap().is_smcd());
}

#[tokio::test(flavor = "current_thread")]
async fn halves_of_two_streams_do_not_reunite() {
    let listener = SmcListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let a = listener.accept().await.unwrap().0;
        let b = listener.accept().await.unwrap().0;
        (a, b)
    });
    let c1 = SmcStream::connect(addr).await.unwrap();
    let c2 = SmcStream::connect(addr).await.unwrap();
    let (r1, w1) = c1.into_split();
    let (r2, w2) = c2.into_split();
    let back = r1.reunite(w2).unwrap_err();
    assert!(back.0.reunite(w1).is_ok());
    assert!(r2.reunite(back.1).is_ok());
    drop(accept.await.unwrap());
}
