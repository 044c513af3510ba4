//! The close state machine end to end between two connections
//! (`docs/protocol/close.md` §5 sequences, plus shutdown, abort and release).

mod conn_util;

use conn_util::{Pair, pattern};
use smcd_core::conn::{CloseState, ConnError};
use smcd_core::wire::cdc::ConnStateFlags;

const DW: ConnStateFlags = ConnStateFlags::PEER_DONE_WRITING;
const CL: ConnStateFlags = ConnStateFlags::PEER_CONN_CLOSED;
const AB: ConnStateFlags = ConnStateFlags::PEER_CONN_ABORT;

fn eof(p: &mut Pair, b_side: bool) -> Result<usize, ConnError> {
    let mut buf = [0u8; 16];
    if b_side {
        p.b.recv(&p.dev, &mut buf)
    } else {
        p.a.recv(&p.dev, &mut buf)
    }
}

fn release_both(p: Pair) {
    let (at, bt) = (p.a.own_token(), p.b.own_token());
    p.a.release(&p.dev).unwrap();
    p.b.release(&p.dev).unwrap();
    assert!(!p.dev.is_registered(at) && !p.dev.is_registered(bt));
    assert_eq!((p.dev.attach_count(at), p.dev.attach_count(bt)), (0, 0));
}

/// §5 "both close".
#[test]
fn both_close() {
    let mut p = Pair::new(false);
    p.a.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::PeerCloseWait1);
    assert_eq!(p.a_header().conn_state_flags, CL);
    p.pump();
    assert_eq!(p.b.state(), CloseState::AppCloseWait1);
    assert_eq!(eof(&mut p, true), Ok(0));
    assert_eq!(p.b.send(&p.dev, b"x"), Err(ConnError::PeerClosed));
    p.b.close(&p.dev).unwrap();
    assert_eq!(p.b.state(), CloseState::Closed);
    assert_eq!(p.b_header().conn_state_flags, CL);
    p.pump();
    assert_eq!(p.a.state(), CloseState::Closed);
    assert_eq!(p.a.error(), None);
    assert_eq!(p.b.error(), None);
    release_both(p);
}

/// §5 "A shuts down write". B closes after A's done-writing but before A's
/// close: §1 takes B to PEERFINCLOSEWAIT (the §5 table abbreviates this as
/// CLOSED), and A's close completes it.
#[test]
fn a_shuts_down_write() {
    let mut p = Pair::new(false);
    p.a.shutdown_write(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::PeerCloseWait1);
    assert_eq!(p.a_header().conn_state_flags, DW);
    assert_eq!(p.a.send(&p.dev, b"x"), Err(ConnError::WriteShutdown));
    p.pump();
    assert_eq!(p.b.state(), CloseState::AppCloseWait1);
    assert_eq!(eof(&mut p, true), Ok(0));
    // Half-close: B can still send to A.
    assert_eq!(p.b.send(&p.dev, b"reply").unwrap(), 5);
    p.pump();
    let mut buf = [0u8; 8];
    assert_eq!(p.a.recv(&p.dev, &mut buf), Ok(5));
    p.b.close(&p.dev).unwrap();
    assert_eq!(p.b.state(), CloseState::PeerFinCloseWait);
    assert_eq!(p.b_header().conn_state_flags, CL);
    p.pump();
    assert_eq!(p.a.state(), CloseState::AppFinCloseWait);
    assert_eq!(eof(&mut p, false), Ok(0));
    p.dev.take_moves();
    p.a.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::Closed);
    assert_eq!(p.a_header().conn_state_flags, DW | CL);
    assert_eq!(p.dev.take_moves().len(), 1);
    p.pump();
    assert_eq!(p.b.state(), CloseState::Closed);
    release_both(p);
}

/// §5 "A closes with unread data".
#[test]
fn a_closes_with_unread_data() {
    let mut p = Pair::new(false);
    p.b.send(&p.dev, b"unread").unwrap();
    p.pump();
    p.a.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::PeerCloseWait1);
    assert_eq!(p.a_header().conn_state_flags, AB);
    assert_eq!(p.a.stats().aborts, 1);
    p.pump();
    assert_eq!(p.b.state(), CloseState::ProcessAbort);
    assert_eq!(p.b.error(), Some(ConnError::Reset));
    assert_eq!(eof(&mut p, true), Err(ConnError::Reset));
    assert_eq!(p.b.send(&p.dev, b"x"), Err(ConnError::Reset));
    p.b.close(&p.dev).unwrap();
    assert_eq!(p.b.state(), CloseState::Closed);
    assert!(p.b_header().conn_state_flags.contains(AB));
    p.pump();
    assert_eq!(p.a.state(), CloseState::Closed);
    release_both(p);
}

#[test]
fn both_shut_down_write_then_close() {
    let mut p = Pair::new(false);
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    assert_eq!(p.b.state(), CloseState::AppCloseWait1);
    p.b.shutdown_write(&p.dev).unwrap();
    assert_eq!(p.b.state(), CloseState::AppCloseWait2);
    p.pump();
    assert_eq!(p.a.state(), CloseState::PeerCloseWait2);
    // A closes: it had only sent done-writing, so it sends close now.
    p.a.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::PeerCloseWait2);
    assert_eq!(p.a_header().conn_state_flags, DW | CL);
    p.pump();
    assert_eq!(p.b.state(), CloseState::AppCloseWait2);
    p.b.close(&p.dev).unwrap();
    assert_eq!(p.b.state(), CloseState::Closed);
    p.pump();
    assert_eq!(p.a.state(), CloseState::Closed);
    release_both(p);
}

#[test]
fn simultaneous_close() {
    let mut p = Pair::new(false);
    p.a.close(&p.dev).unwrap();
    p.b.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::PeerCloseWait1);
    assert_eq!(p.b.state(), CloseState::PeerCloseWait1);
    p.pump();
    assert_eq!(p.a.state(), CloseState::Closed);
    assert_eq!(p.b.state(), CloseState::Closed);
    release_both(p);
}

#[test]
fn close_after_peer_shutdown_waits_for_its_close() {
    let mut p = Pair::new(false);
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    p.b.close(&p.dev).unwrap();
    assert_eq!(p.b.state(), CloseState::PeerFinCloseWait);
    p.pump();
    assert_eq!(p.a.state(), CloseState::AppFinCloseWait);
    p.a.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::Closed);
    p.pump();
    assert_eq!(p.b.state(), CloseState::Closed);
}

#[test]
fn data_sent_before_close_is_delivered() {
    let mut p = Pair::new(false);
    let data = pattern(0, 9000);
    assert_eq!(p.a.send(&p.dev, &data).unwrap(), 9000);
    p.a.close(&p.dev).unwrap();
    // One signal processes both headers' worth: data and close flag.
    p.pump();
    assert_eq!(p.b.state(), CloseState::AppCloseWait1);
    assert!(p.b.peer_done_writing());
    let mut got = vec![0u8; 10000];
    assert_eq!(p.b.recv(&p.dev, &mut got), Ok(9000));
    assert_eq!(got[..9000], data[..]);
    assert_eq!(eof(&mut p, true), Ok(0));
}

#[test]
fn local_abort() {
    let mut p = Pair::new(false);
    p.a.send(&p.dev, b"lost").unwrap();
    p.a.abort(&p.dev);
    assert_eq!(p.a.state(), CloseState::Closed);
    assert_eq!(p.a.error(), Some(ConnError::Aborted));
    assert!(p.a_header().conn_state_flags.contains(AB));
    assert_eq!(p.a.send(&p.dev, b"x"), Err(ConnError::Aborted));
    p.pump();
    assert_eq!(p.b.state(), CloseState::ProcessAbort);
    assert_eq!(eof(&mut p, true), Err(ConnError::Reset));
    // A second abort changes nothing.
    p.dev.take_moves();
    p.a.abort(&p.dev);
    assert!(p.dev.take_moves().is_empty());
    assert_eq!(p.a.stats().aborts, 1);
}

#[test]
fn local_abort_after_peer_abort_sends_nothing() {
    let mut p = Pair::new(false);
    p.b.abort(&p.dev);
    p.pump();
    assert_eq!(p.a.state(), CloseState::ProcessAbort);
    p.dev.take_moves();
    p.a.abort(&p.dev);
    assert_eq!(p.a.state(), CloseState::Closed);
    assert!(p.dev.take_moves().is_empty());
    assert_eq!(p.a.error(), Some(ConnError::Reset));
}

#[test]
fn peer_abort_while_waiting_after_shutdown() {
    let mut p = Pair::new(false);
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    p.b.abort(&p.dev);
    p.pump();
    assert_eq!(p.a.state(), CloseState::ProcessAbort);
    p.a.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::Closed);
}

#[test]
fn calls_after_close() {
    let mut p = Pair::new(false);
    p.a.close(&p.dev).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(p.a.recv(&p.dev, &mut buf), Err(ConnError::Closed));
    assert_eq!(p.a.send(&p.dev, b"x"), Err(ConnError::Closed));
    assert_eq!(p.a.shutdown_write(&p.dev), Err(ConnError::Closed));
    // Closing again sends nothing more.
    p.dev.take_moves();
    p.a.close(&p.dev).unwrap();
    assert!(p.dev.take_moves().is_empty());
    assert_eq!(p.a.state(), CloseState::PeerCloseWait1);
}

#[test]
fn shutdown_twice_sends_once() {
    let mut p = Pair::new(false);
    p.a.shutdown_write(&p.dev).unwrap();
    p.dev.take_moves();
    p.a.shutdown_write(&p.dev).unwrap();
    assert!(p.dev.take_moves().is_empty());
    assert_eq!(p.a.state(), CloseState::PeerCloseWait1);
}

#[test]
fn close_header_failure_closes_locally() {
    let mut p = Pair::new(false);
    p.dev.fail_moves(Some(smcd_core::ops::ErrorKind::PeerGone));
    assert_eq!(
        p.a.close(&p.dev),
        Err(ConnError::Device(smcd_core::ops::ErrorKind::PeerGone))
    );
    assert!(p.a.is_closed());
}

#[test]
fn nocopy_release_detaches_the_peer_dmb() {
    let mut p = Pair::new(true);
    let (at, bt) = (p.a.own_token(), p.b.own_token());
    assert_eq!(p.dev.attach_count(at), 1);
    assert_eq!(p.dev.attach_count(bt), 1);
    p.a.close(&p.dev).unwrap();
    p.pump();
    p.b.close(&p.dev).unwrap();
    p.pump();
    assert!(p.a.is_closed() && p.b.is_closed());
    release_both(p);
}

/// `readable` and `writable` promise that `recv` and `send` return
/// something other than "would block": at EOF, after our own close, and on
/// a full ring that can no longer be written.
#[test]
fn readiness_at_eof_and_after_close() {
    let mut p = Pair::new(false);
    assert!(!p.b.readable() && p.b.writable());
    // EOF with nothing to read and no error: readable because of the
    // peer's done-writing alone.
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    assert_eq!(p.b.bytes_available(), 0);
    assert!(p.b.peer_done_writing() && p.b.readable());
    assert_eq!(eof(&mut p, true), Ok(0));

    // A full ring, then our own close: both calls now fail fast.
    let mut p = Pair::new(false);
    let ring = p.a.send_space();
    assert_eq!(p.a.send(&p.dev, &pattern(0, ring)).unwrap(), ring);
    assert!(!p.a.writable() && !p.a.readable());
    p.a.close(&p.dev).unwrap();
    assert!(!p.a.peer_done_writing());
    assert!(p.a.readable() && p.a.writable());
    assert_eq!(eof(&mut p, false), Err(ConnError::Closed));
    assert_eq!(p.a.send(&p.dev, b"x"), Err(ConnError::Closed));
}

/// The peer aborts after our done-writing: we sent only done-writing, so we
/// still owe it our abort (`ProcessAbort`), and the abort we send on close
/// keeps the sticky done-writing flag.
#[test]
fn peer_abort_after_our_done_writing_leaves_our_abort_owed() {
    let mut p = Pair::new(false);
    p.a.shutdown_write(&p.dev).unwrap();
    p.pump();
    p.b.abort(&p.dev);
    p.a.handle_signal(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::ProcessAbort);
    assert_eq!(p.a.error(), Some(ConnError::Reset));
    p.a.close(&p.dev).unwrap();
    assert_eq!(p.a.state(), CloseState::Closed);
    assert_eq!(p.a_header().conn_state_flags, DW | AB);
}
