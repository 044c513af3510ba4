//! The live-connection registry through the device socket: what
//! `smcd ss` / `smcd stats` see of a process (here: this test process).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

use smcd_std::naming::Place;
use smcd_std::query::{ConnReport, ProcessReport, Query, survey};
use smcd_std::{SmcConfig, SmcStream};

fn me() -> u32 {
    std::process::id()
}

/// This process's report, found among the host's devices.
fn my_report(what: Query) -> ProcessReport {
    let found = survey(&Place::from_env(), what);
    found
        .processes
        .into_iter()
        .find(|p| p.pid == me())
        .expect("this process answers its own device socket")
}

fn conn_between(r: &ProcessReport, local: SocketAddr, peer: SocketAddr) -> Option<ConnReport> {
    r.connections
        .iter()
        .find(|c| c.local == Some(local) && c.peer == Some(peer))
        .cloned()
}

/// A string that looks like a token, a GID or an address: 16 or more hex
/// digits in a row.
fn looks_secret(s: &str) -> bool {
    let mut run = 0;
    for ch in s.chars() {
        run = if ch.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 16 {
            return true;
        }
    }
    false
}

#[test]
fn two_streams_are_listed_with_transport_and_bytes() {
    for (nocopy, name) in [(true, "smc-d-nocopy"), (false, "smc-d-copy")] {
        let config = SmcConfig::new().nocopy(nocopy).dmb_size(64 * 1024);
        let listener = config.bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = vec![0u8; 100_000];
            s.read_exact(&mut got).unwrap();
            s.write_all(&got[..1234]).unwrap();
            // Stay open until the query is done.
            let _ = rx.recv();
            s
        });
        let mut client = config.connect(addr).unwrap();
        assert!(client.transport().unwrap().is_smcd());
        client.write_all(&vec![7u8; 100_000]).unwrap();
        let mut back = vec![0u8; 1234];
        client.read_exact(&mut back).unwrap();
        let local = client.local_addr().unwrap();

        let r = my_report(Query::Connections);
        let c = conn_between(&r, local, addr).expect("client stream listed");
        let s = conn_between(&r, addr, local).expect("server stream listed");
        for (conn, sent, received) in [(&c, 100_000, 1234), (&s, 1234, 100_000)] {
            assert_eq!(conn.transport, name);
            assert_eq!(conn.state, "active");
            assert_eq!(conn.version, Some(2));
            assert_eq!(conn.bytes_sent, Some(sent));
            assert_eq!(conn.bytes_received, Some(received));
            assert_eq!(conn.fallback, None);
        }
        let text = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v["connections"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for k in &keys {
            assert!(
                !k.contains("token") && !k.contains("gid") && !k.contains("addr_"),
                "{k}"
            );
        }
        assert!(!looks_secret(&text), "a token-like value in {text}");

        tx.send(()).unwrap();
        drop(server.join().unwrap());
        drop(client);
        // Both streams are gone from the registry once dropped.
        let r = my_report(Query::Connections);
        assert!(conn_between(&r, local, addr).is_none());
        assert!(conn_between(&r, addr, local).is_none());
    }
}

#[test]
fn plain_tcp_streams_are_listed_as_tcp_with_their_reason() {
    // An smcd client of a plain TCP listener: TCP, no CLC byte.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    // The device must be running for the process to be found.
    let smc = SmcConfig::new().bind("127.0.0.1:0").unwrap();
    let client = SmcStream::connect(addr).unwrap();
    let (_peer, _) = plain.accept().unwrap();
    let local = client.local_addr().unwrap();
    let r = my_report(Query::Connections);
    let c = conn_between(&r, local, addr).expect("plain stream listed");
    assert_eq!(c.transport, "tcp");
    assert_eq!(c.reason.as_deref(), Some("no-smcd-listener"));
    assert_eq!((c.bytes_sent, c.bytes_received), (None, None));
    // And a plain client of an smcd listener.
    let saddr = smc.local_addr().unwrap();
    let t = TcpStream::connect(saddr).unwrap();
    let (accepted, _) = smc.accept().unwrap();
    assert_eq!(
        conn_between(
            &my_report(Query::Connections),
            saddr,
            t.local_addr().unwrap()
        )
        .map(|c| c.reason),
        Some(Some("plain-client".into()))
    );
    drop(accepted);
}

#[test]
fn totals_carry_counters_and_no_connections() {
    let config = SmcConfig::new();
    let listener = config.bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut b = [0u8; 10];
        s.read_exact(&mut b).unwrap();
    });
    let mut client = config.connect(addr).unwrap();
    client.write_all(b"0123456789").unwrap();
    server.join().unwrap();
    let r = my_report(Query::Totals);
    assert!(r.connections.is_empty());
    assert!(r.stats.bytes_sent >= 10);
    assert!(r.stats.connections.values().sum::<u64>() >= 2);
    assert_eq!(r.uid, rustix::process::geteuid().as_raw());
    assert!(!r.command.is_empty());
}
