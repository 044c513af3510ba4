//! Hostile values in peer-written memory: every one aborts the connection
//! with a typed reason, sends our abort flag, and nothing is read or written
//! outside the DMBs.

mod conn_util;

use conn_util::{Pair, RING, pattern};
use proptest::prelude::*;
use smcd_core::conn::{CloseState, ConnError, CursorRole, Violation};
use smcd_core::cursor::Cursor;
use smcd_core::ops::ErrorKind;
use smcd_core::wire::cdc::{CdcHeader, ConnStateFlags, ProducerFlags};

const RING32: u32 = RING as u32;

/// A pair where A sent 1000 bytes (B read 100) and B sent 500 (A read none).
fn busy_pair() -> Pair {
    let mut p = Pair::new(false);
    p.a.send(&p.dev, &pattern(0, 1000)).unwrap();
    p.b.send(&p.dev, &pattern(0, 500)).unwrap();
    p.pump();
    let mut buf = [0u8; 100];
    assert_eq!(p.b.recv(&p.dev, &mut buf).unwrap(), 100);
    p
}

/// Write `hdr` into B's DMB as if A wrote it, and check that B aborts with
/// `expect`, tells A, and stays dead.
fn b_rejects(mut p: Pair, hdr: CdcHeader, expect: Violation) {
    p.dev.inject(p.b.own_token(), &hdr);
    assert_eq!(p.b.handle_signal(&p.dev), Err(ConnError::Violation(expect)));
    assert_eq!(p.b.state(), CloseState::Closed);
    assert_eq!(p.b.error(), Some(ConnError::Violation(expect)));
    assert_eq!(p.b.stats().aborts, 1);
    // Our abort flag went to the peer, cursors unchanged.
    let sent = p.b_header();
    assert!(
        sent.conn_state_flags
            .contains(ConnStateFlags::PEER_CONN_ABORT)
    );
    assert_eq!(sent.prod, Cursor::new(0, 500));
    // Nothing of the bad header was used, and the connection stays dead.
    let mut buf = [0u8; 8];
    assert_eq!(
        p.b.recv(&p.dev, &mut buf),
        Err(ConnError::Violation(expect))
    );
    assert_eq!(p.b.send(&p.dev, b"x"), Err(ConnError::Violation(expect)));
    assert_eq!(p.b.handle_signal(&p.dev), Ok(()));
    assert!(p.b.readable() && p.b.writable());
    // A sees the abort.
    p.a.handle_signal(&p.dev).unwrap();
    assert_eq!(p.a.error(), Some(ConnError::Reset));
    assert_eq!(p.a.state(), CloseState::ProcessAbort);
}

/// [`b_rejects`] on a [`busy_pair`] for A's current header changed by `edit`.
fn busy_b_rejects(edit: impl FnOnce(&mut CdcHeader), expect: Violation) {
    let p = busy_pair();
    let mut h = p.a_header();
    edit(&mut h);
    b_rejects(p, h, expect);
}

#[test]
fn producer_cursor_beyond_ring() {
    for count in [RING32, RING32 + 1, u32::MAX] {
        busy_b_rejects(
            |h| h.prod.count = count,
            Violation::OutOfRange {
                cursor: CursorRole::Producer,
                count,
                ring: RING32,
            },
        );
    }
}

#[test]
fn consumer_cursor_beyond_ring() {
    busy_b_rejects(
        |h| h.cons.count = RING32,
        Violation::OutOfRange {
            cursor: CursorRole::Consumer,
            count: RING32,
            ring: RING32,
        },
    );
}

#[test]
fn producer_wrap_going_backwards() {
    busy_b_rejects(
        |h| h.prod.wrap = 0xFFFF,
        Violation::WrapBackwards {
            cursor: CursorRole::Producer,
        },
    );
}

#[test]
fn consumer_wrap_going_backwards() {
    busy_b_rejects(
        |h| h.cons.wrap = 0x8001,
        Violation::WrapBackwards {
            cursor: CursorRole::Consumer,
        },
    );
}

#[test]
fn producer_count_going_backwards() {
    busy_b_rejects(
        |h| h.prod.count = 999,
        Violation::CountBackwards {
            cursor: CursorRole::Producer,
        },
    );
}

#[test]
fn producer_moving_more_than_free_space() {
    // B has 900 unread bytes: A may add at most RING − 900.
    busy_b_rejects(
        |h| h.prod = Cursor::new(0, 1000).add(RING32, RING32 - 899),
        Violation::Overrun {
            cursor: CursorRole::Producer,
            moved: RING32 - 899,
            limit: RING32 - 900,
        },
    );
}

#[test]
fn producer_moving_more_than_a_ring() {
    busy_b_rejects(
        |h| h.prod = Cursor::new(2, 0),
        Violation::Overrun {
            cursor: CursorRole::Producer,
            moved: u32::MAX,
            limit: RING32 - 900,
        },
    );
}

#[test]
fn consumer_beyond_what_we_produced() {
    // B produced 500 bytes; A claims to have consumed 501.
    busy_b_rejects(
        |h| h.cons = Cursor::new(0, 501),
        Violation::Overrun {
            cursor: CursorRole::Consumer,
            moved: 501,
            limit: 500,
        },
    );
}

#[test]
fn impossible_flag_combinations() {
    for bits in [
        ProducerFlags::FAILOVER_VALIDATION.bits(),
        ProducerFlags::URG_DATA_PRESENT.bits(),
        (ProducerFlags::URG_DATA_PRESENT | ProducerFlags::WRITE_BLOCKED).bits(),
    ] {
        busy_b_rejects(
            |h| h.prod_flags = ProducerFlags::from_bits_retain(bits),
            Violation::ImpossibleFlags {
                prod_flags: bits,
                conn_state_flags: 0,
            },
        );
    }
}

#[test]
fn sticky_flag_cleared() {
    let mut p = busy_pair();
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    assert_eq!(p.b.state(), CloseState::AppCloseWait1);
    let mut h = p.a_header();
    h.conn_state_flags = ConnStateFlags::empty();
    p.dev.inject(p.b.own_token(), &h);
    assert_eq!(
        p.b.handle_signal(&p.dev),
        Err(ConnError::Violation(Violation::StickyFlagCleared {
            before: 0x80,
            now: 0
        }))
    );
    assert_eq!(p.b.state(), CloseState::Closed);
    assert!(
        p.b_header()
            .conn_state_flags
            .contains(ConnStateFlags::PEER_CONN_ABORT)
    );
}

/// A's current header with its producer `n` bytes further, as a peer that
/// keeps writing would publish it (the bytes themselves do not matter: B
/// must not read them).
fn a_header_producing(p: &Pair, n: u32) -> CdcHeader {
    let mut h = p.a_header();
    h.prod = h.prod.add(RING32, n);
    h
}

#[test]
fn data_after_done_writing() {
    let mut p = busy_pair();
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    assert_eq!(p.b.state(), CloseState::AppCloseWait1);
    let h = a_header_producing(&p, 10);
    b_rejects(
        p,
        h,
        Violation::DataAfterShutdown {
            moved: 10,
            conn_state_flags: ConnStateFlags::PEER_DONE_WRITING.bits(),
        },
    );
}

#[test]
fn data_after_close() {
    let mut p = busy_pair();
    // A closes (its header says so, nothing else changes) ...
    let mut closed = p.a_header();
    closed.conn_state_flags |= ConnStateFlags::PEER_CONN_CLOSED;
    p.dev.inject(p.b.own_token(), &closed);
    p.b.handle_signal(&p.dev).unwrap();
    assert!(p.b.peer_done_writing());
    // ... and then writes more.
    let mut h = closed;
    h.prod = h.prod.add(RING32, 1);
    b_rejects(
        p,
        h,
        Violation::DataAfterShutdown {
            moved: 1,
            conn_state_flags: ConnStateFlags::PEER_CONN_CLOSED.bits(),
        },
    );
}

#[test]
fn data_after_recv_returned_eof() {
    let mut p = busy_pair();
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    let mut buf = vec![0u8; RING];
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(900));
    assert_eq!(buf[..900], pattern(100, 900));
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(0), "EOF");
    // The peer writes bytes behind the EOF into B's ring and announces them:
    // B must not hand them out as if the stream went on.
    let late = b"after the end";
    p.dev
        .with_mem(p.b.own_token(), |m| m.write(32 + 1000, late))
        .unwrap();
    let h = a_header_producing(&p, late.len() as u32);
    b_rejects(
        p,
        h,
        Violation::DataAfterShutdown {
            moved: late.len() as u32,
            conn_state_flags: ConnStateFlags::PEER_DONE_WRITING.bits(),
        },
    );
}

#[test]
fn done_writing_with_the_last_data_delivers_it_all() {
    let mut p = Pair::new(false);
    // B sees one header with both the last 300 bytes and done_writing.
    p.a.send(&p.dev, &pattern(0, 300)).unwrap();
    p.a.shutdown_write(&p.dev).unwrap();
    let h = p.a_header();
    assert_eq!(h.prod, Cursor::new(0, 300));
    assert!(
        h.conn_state_flags
            .contains(ConnStateFlags::PEER_DONE_WRITING)
    );
    p.b.handle_signal(&p.dev).unwrap();
    assert_eq!(p.b.error(), None);
    let mut buf = vec![0u8; RING];
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(300));
    assert_eq!(buf[..300], pattern(0, 300));
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(0), "EOF");
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(0), "EOF stays");
    // A later header that moves no producer is still fine.
    let mut h = h;
    h.prod_flags |= ProducerFlags::CONS_CURS_UPD_REQ;
    p.dev.inject(p.b.own_token(), &h);
    p.b.handle_signal(&p.dev).unwrap();
    assert_eq!(p.b.error(), None);
    assert_eq!(p.b.stats().aborts, 0);
}

#[test]
fn device_failure_kills_the_connection() {
    let mut p = Pair::new(false);
    p.dev.fail_moves(Some(ErrorKind::PeerGone));
    assert_eq!(
        p.a.send(&p.dev, b"x"),
        Err(ConnError::Device(ErrorKind::PeerGone))
    );
    assert_eq!(p.a.state(), CloseState::Closed);
    assert_eq!(p.a.stats().aborts, 1);
    p.dev.fail_moves(None);
    assert_eq!(
        p.a.send(&p.dev, b"x"),
        Err(ConnError::Device(ErrorKind::PeerGone))
    );
    let mut buf = [0u8; 1];
    assert_eq!(
        p.a.recv(&p.dev, &mut buf),
        Err(ConnError::Device(ErrorKind::PeerGone))
    );
    // Aborting a dead connection is a no-op and sends nothing.
    p.dev.take_moves();
    p.a.abort(&p.dev);
    assert!(p.dev.take_moves().is_empty());
}

#[test]
fn failed_window_update_is_reported_by_the_next_call() {
    let mut p = Pair::new(false);
    p.a.send(&p.dev, &pattern(0, 16000)).unwrap();
    p.pump();
    p.dev.fail_moves(Some(ErrorKind::PeerGone));
    let mut buf = vec![0u8; 3000];
    // The bytes are delivered, the update write fails.
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(3000));
    assert_eq!(buf, pattern(0, 3000));
    assert_eq!(
        p.b.recv(&p.dev, &mut buf),
        Err(ConnError::Device(ErrorKind::PeerGone))
    );
}

proptest! {
    // Miri interprets every step (fewer cases there) and isolates the
    // file system (no failure persistence).
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    /// Whatever the peer writes into our header, B never panics, never
    /// reports more bytes or space than a ring, and either accepts the
    /// header or aborts with a violation.
    #[test]
    fn arbitrary_headers_are_contained(
        words in proptest::collection::vec((any::<u64>(), any::<u64>()), 1..8),
    ) {
        let mut p = busy_pair();
        for (prod, cons) in words {
            let h = CdcHeader::from_words(prod, cons);
            p.dev.inject(p.b.own_token(), &h);
            match p.b.handle_signal(&p.dev) {
                Ok(()) => {}
                Err(ConnError::Violation(_)) => {
                    prop_assert_eq!(p.b.state(), CloseState::Closed);
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
            prop_assert!(p.b.bytes_available() <= RING);
            prop_assert!(p.b.send_space() <= RING);
            let mut buf = vec![0u8; RING + 1];
            let _ = p.b.recv(&p.dev, &mut buf);
            let _ = p.b.recv_with(&p.dev, |d| d.len());
            let _ = p.b.send(&p.dev, &buf);
        }
    }
}

/// A connection that closed cleanly reads no more headers: whatever the
/// peer writes into our DMB afterwards is ignored, not judged.
#[test]
fn closed_connection_ignores_later_headers() {
    let mut p = Pair::new(false);
    p.a.close(&p.dev).unwrap();
    p.pump();
    p.b.close(&p.dev).unwrap();
    p.pump();
    assert!(p.a.is_closed() && p.b.is_closed());
    let mut h = p.a_header();
    h.prod = Cursor::new(0, RING32 + 7);
    p.dev.inject(p.b.own_token(), &h);
    assert_eq!(p.b.handle_signal(&p.dev), Ok(()));
    assert_eq!((p.b.error(), p.b.stats().aborts), (None, 0));
}

#[test]
fn errors_name_their_reason() {
    use std::error::Error;
    let v = Violation::OutOfRange {
        cursor: CursorRole::Producer,
        count: 99_999,
        ring: RING32,
    };
    let e = ConnError::Violation(v);
    assert_eq!(
        e.to_string(),
        "protocol violation by peer: peer producer cursor count 99999 outside the 16352-byte ring"
    );
    assert_eq!(e.source().map(|s| s.to_string()), Some(v.to_string()));
    let back = Violation::CountBackwards {
        cursor: CursorRole::Consumer,
    };
    assert_eq!(back.to_string(), "peer consumer cursor went backwards");
    assert_eq!(ConnError::Reset.to_string(), "connection reset by peer");
    assert!(ConnError::Reset.source().is_none());
}
