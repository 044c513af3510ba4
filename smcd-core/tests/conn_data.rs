//! Data path of `Connection`: send/recv, wrap-around, flow control and
//! window updates (`docs/protocol/cdc.md` §5–§8), both send modes, zero-copy.

mod conn_util;

use conn_util::{DMB, FakeDev, Move, Pair, RING, pattern};
use smcd_core::conn::{ConnError, Connection, update_limit};
use smcd_core::cursor::Cursor;
use smcd_core::wire::cdc::{ConnStateFlags, ProducerFlags};

/// Send non-empty `data` from `c`: the bytes accepted, at least one, or
/// none with [`ConnError::WouldBlock`] on a full ring (never `Ok(0)`).
fn send_some(c: &mut Connection, dev: &FakeDev, data: &[u8]) -> usize {
    assert!(!data.is_empty());
    match c.send(dev, data) {
        Ok(n) => {
            assert!(n > 0, "Ok(0) for non-empty data");
            n
        }
        Err(ConnError::WouldBlock) => {
            assert_eq!(c.send_space(), 0, "would block with room in the ring");
            0
        }
        Err(e) => panic!("send failed: {e}"),
    }
}

/// Send all of `data` from A (asserting it fits) and deliver the signal.
fn a_sends(p: &mut Pair, data: &[u8]) {
    assert_eq!(p.a.send(&p.dev, data).unwrap(), data.len());
    p.pump();
}

/// B reads exactly `n` bytes and returns them.
fn b_reads(p: &mut Pair, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        got += p.b.recv(&p.dev, &mut buf[got..]).unwrap();
    }
    buf
}

#[test]
fn copy_mode_moves_data_then_header() {
    let mut p = Pair::new(false);
    let bt = p.b.own_token();
    assert_eq!(p.a.send(&p.dev, b"hello").unwrap(), 5);
    assert_eq!(
        p.dev.take_moves(),
        [
            Move {
                token: bt,
                offset: 32,
                len: 5,
                signal: false
            },
            Move {
                token: bt,
                offset: 0,
                len: 32,
                signal: true
            },
        ]
    );
    let h = p.a_header();
    assert_eq!(h.prod, Cursor::new(0, 5));
    assert_eq!(h.cons, Cursor::ZERO);
    assert!(h.prod_flags.is_empty() && h.conn_state_flags.is_empty());
    p.pump();
    assert_eq!(p.b.bytes_available(), 5);
    assert!(p.b.readable());
    assert_eq!(b_reads(&mut p, 5), b"hello");
    assert!(!p.b.readable());
}

#[test]
fn nocopy_mode_writes_in_place_and_only_signals_the_header() {
    let mut p = Pair::new(true);
    let bt = p.b.own_token();
    assert_eq!(p.a.send(&p.dev, b"hello").unwrap(), 5);
    assert_eq!(
        p.dev.take_moves(),
        [Move {
            token: bt,
            offset: 0,
            len: 32,
            signal: true
        }]
    );
    p.pump();
    assert_eq!(b_reads(&mut p, 5), b"hello");
}

#[test]
fn recv_would_block_until_data_arrives() {
    let mut p = Pair::new(false);
    let mut buf = [0u8; 8];
    assert_eq!(p.b.recv(&p.dev, &mut buf), Err(ConnError::WouldBlock));
    p.a.send(&p.dev, b"x").unwrap();
    // Not processed yet: still nothing.
    assert_eq!(p.b.recv(&p.dev, &mut buf), Err(ConnError::WouldBlock));
    p.pump();
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(1));
    assert_eq!(p.b.recv(&p.dev, &mut []), Err(ConnError::WouldBlock));
}

/// `docs/protocol/cdc.md` §8 #1–#2: a send that wraps is written in two chunks and
/// the receiver counts it across the wrap.
#[test]
fn example_1_send_across_the_ring_end() {
    for nocopy in [false, true] {
        let mut p = Pair::new(nocopy);
        let bt = p.b.own_token();
        a_sends(&mut p, &pattern(0, 16000));
        assert_eq!(b_reads(&mut p, 16000), pattern(0, 16000));
        p.pump(); // B's window update reaches A
        assert_eq!(p.a.send_space(), RING);
        p.dev.take_moves();

        a_sends(&mut p, &pattern(16000, 1000));
        let data_moves: Vec<_> = p
            .dev
            .take_moves()
            .into_iter()
            .filter(|m| !m.signal)
            .collect();
        if nocopy {
            assert!(data_moves.is_empty());
        } else {
            assert_eq!(
                data_moves,
                [
                    Move {
                        token: bt,
                        offset: 32 + 16000,
                        len: 352,
                        signal: false
                    },
                    Move {
                        token: bt,
                        offset: 32,
                        len: 648,
                        signal: false
                    },
                ]
            );
        }
        assert_eq!(p.a_header().prod, Cursor::new(1, 648));
        assert_eq!(p.b.bytes_available(), 1000);
        assert_eq!(b_reads(&mut p, 1000), pattern(16000, 1000));
    }
}

/// `docs/protocol/cdc.md` §8 #14–#16: filling the ring exactly sets `write_blocked`,
/// the rest waits for the peer's consumer cursor.
#[test]
fn examples_14_to_16_window_closes_and_reopens() {
    for nocopy in [false, true] {
        let mut p = Pair::new(nocopy);
        a_sends(&mut p, &pattern(0, 10000));
        assert_eq!(p.a.send_space(), 6352);
        assert!(
            !p.a_header()
                .prod_flags
                .contains(ProducerFlags::WRITE_BLOCKED)
        );

        let second = pattern(10000, 8000);
        assert_eq!(p.a.send(&p.dev, &second).unwrap(), 6352);
        let h = p.a_header();
        assert_eq!(h.prod, Cursor::new(1, 0));
        assert!(h.prod_flags.contains(ProducerFlags::WRITE_BLOCKED));
        assert_eq!(p.a.send_space(), 0);
        assert!(!p.a.writable());
        // A full ring would block; nothing is written or announced.
        p.dev.take_moves();
        assert_eq!(
            p.a.send(&p.dev, &second[6352..]),
            Err(ConnError::WouldBlock)
        );
        assert!(p.dev.take_moves().is_empty());
        assert_eq!(p.a.error(), None, "would-block is not sticky");
        assert_eq!(p.a.stats().buffer_full, 1);
        // Empty input is `Ok(0)`, full ring or not.
        assert_eq!(p.a.send(&p.dev, b""), Ok(0));
        assert_eq!(p.a.stats().buffer_full, 1);
        p.pump();

        // B reads 4000 (> limit 2304, A said write_blocked): update at once.
        p.dev.take_moves();
        assert_eq!(b_reads(&mut p, 4000), pattern(0, 4000));
        assert_eq!(p.b_header().cons, Cursor::new(0, 4000));
        assert_eq!(p.dev.take_moves().len(), 1);
        p.pump();
        assert_eq!(p.a.send_space(), 4000);
        assert!(p.a.writable());

        // The remaining 1648 bytes land at ring 0…1647, already consumed by B.
        assert_eq!(p.a.send(&p.dev, &second[6352..]).unwrap(), 1648);
        assert_eq!(p.a_header().prod, Cursor::new(1, 1648));
        p.pump();
        assert_eq!(b_reads(&mut p, 14000), pattern(4000, 14000));
    }
}

/// §8 #7–#9: the receiver confirms consumption only past the limit and when
/// the sender is at least half full.
#[test]
fn examples_7_to_9_window_update_thresholds() {
    assert_eq!(update_limit(RING as u32), 2304);

    let mut p = Pair::new(false);
    a_sends(&mut p, &pattern(0, 16000));
    p.dev.take_moves();
    b_reads(&mut p, 2000); // #7: 2000 ≤ 2304
    assert!(p.dev.take_moves().is_empty());
    b_reads(&mut p, 400); // #8: 2400 > 2304, sender_free 352 ≤ 8176
    assert_eq!(p.dev.take_moves().len(), 1);
    assert_eq!(p.b_header().cons, Cursor::new(0, 2400));
    assert_eq!(p.b.stats().window_updates_sent, 1);

    let mut p = Pair::new(false);
    a_sends(&mut p, &pattern(0, 3000));
    p.dev.take_moves();
    b_reads(&mut p, 2400); // #9: sender_free 13352 > 8176
    assert!(p.dev.take_moves().is_empty());
    assert_eq!(p.b_header().cons, Cursor::ZERO);
}

/// §8 #10 and §7 step 6: a recorded `write_blocked` triggers an update past
/// the limit and is forgotten once everything is read.
#[test]
fn example_10_write_blocked_triggers_update() {
    let mut p = Pair::new(false);
    a_sends(&mut p, &pattern(0, 3000));
    let mut h = p.a_header();
    h.prod_flags |= ProducerFlags::WRITE_BLOCKED;
    p.dev.inject(p.b.own_token(), &h);
    p.pump();
    p.dev.take_moves();
    b_reads(&mut p, 2400);
    assert_eq!(p.dev.take_moves().len(), 1);
    assert_eq!(p.b_header().cons, Cursor::new(0, 2400));
}

#[test]
fn consumer_update_request_is_answered_at_once() {
    let mut p = Pair::new(false);
    a_sends(&mut p, &pattern(0, 100));
    b_reads(&mut p, 100); // below the limit: no update
    p.dev.take_moves();
    let mut h = p.a_header();
    h.prod_flags |= ProducerFlags::CONS_CURS_UPD_REQ;
    p.dev.inject(p.b.own_token(), &h);
    p.b.handle_signal(&p.dev).unwrap();
    let moves = p.dev.take_moves();
    assert_eq!(moves.len(), 1);
    assert!(moves[0].signal && moves[0].token == p.a.own_token());
    assert_eq!(p.b_header().cons, Cursor::new(0, 100));
    // The same header again is not a new request.
    p.b.handle_signal(&p.dev).unwrap();
    assert!(p.dev.take_moves().is_empty());
    p.a.handle_signal(&p.dev).unwrap();
    assert_eq!(p.a.send_space(), RING);
    assert_eq!(p.a.stats().window_updates_received, 1);
}

#[test]
fn both_directions_at_once() {
    let mut p = Pair::new(false);
    p.a.send(&p.dev, b"ping").unwrap();
    p.b.send(&p.dev, b"pong!").unwrap();
    p.pump();
    let mut buf = [0u8; 8];
    assert_eq!(p.b.recv(&p.dev, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");
    assert_eq!(p.a.recv(&p.dev, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"pong!");
    // B sent before reading: its consumption is confirmed by a later header.
    assert_eq!(p.b_header().cons, Cursor::ZERO);
    p.b.send(&p.dev, b".").unwrap();
    assert_eq!(p.b_header().cons, Cursor::new(0, 4));
}

#[test]
fn unequal_dmb_sizes() {
    // A's ring is 16352, B's 65504: A produces in B-ring units.
    let mut p = Pair::with_sizes(DMB, 64 * 1024, false);
    assert_eq!(p.a.send_space(), 64 * 1024 - 32);
    assert_eq!(p.b.send_space(), RING);
    let data = pattern(0, 64 * 1024);
    assert_eq!(p.a.send(&p.dev, &data).unwrap(), 64 * 1024 - 32);
    assert_eq!(p.a_header().prod, Cursor::new(1, 0));
    p.pump();
    assert_eq!(b_reads(&mut p, 64 * 1024 - 32), data[..64 * 1024 - 32]);
}

#[test]
fn recv_with_sees_the_contiguous_part() {
    let mut p = Pair::new(false);
    a_sends(&mut p, &pattern(0, 16000));
    b_reads(&mut p, 16000);
    p.pump();
    a_sends(&mut p, &pattern(16000, 1000));
    let mut seen = Vec::new();
    let n =
        p.b.recv_with(&p.dev, |d| {
            seen.extend_from_slice(d);
            d.len()
        })
        .unwrap();
    assert_eq!(n, 352);
    // A closure claiming more than it got takes only what it saw.
    let n =
        p.b.recv_with(&p.dev, |d| {
            seen.extend_from_slice(d);
            usize::MAX
        })
        .unwrap();
    assert_eq!(n, 648);
    assert_eq!(seen, pattern(16000, 1000));
    assert_eq!(
        p.b.recv_with(&p.dev, |_| unreachable!()),
        Err(ConnError::WouldBlock)
    );
}

#[test]
fn recv_with_partial_consumption() {
    let mut p = Pair::new(false);
    a_sends(&mut p, b"abcdef");
    assert_eq!(p.b.recv_with(&p.dev, |d| d.len() - 2), Ok(4));
    assert_eq!(p.b.bytes_available(), 2);
    let mut buf = [0u8; 4];
    assert_eq!(p.b.recv(&p.dev, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"ef");
}

#[test]
fn send_with_in_nocopy_mode() {
    let mut p = Pair::new(true);
    let n =
        p.a.send_with(&p.dev, |buf| {
            assert_eq!(buf.len(), RING);
            buf[..3].copy_from_slice(b"abc");
            3
        })
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(p.a_header().prod, Cursor::new(0, 3));
    assert!(
        !p.a_header()
            .prod_flags
            .contains(ProducerFlags::WRITE_BLOCKED)
    );
    // Filling the rest exactly sets write_blocked; then the ring is full.
    assert_eq!(p.a.send_with(&p.dev, |b| b.len()).unwrap(), RING - 3);
    assert!(
        p.a_header()
            .prod_flags
            .contains(ProducerFlags::WRITE_BLOCKED)
    );
    assert_eq!(
        p.a.send_with(&p.dev, |_| unreachable!()),
        Err(ConnError::WouldBlock)
    );
    p.pump();
    assert_eq!(&b_reads(&mut p, 3000)[..3], b"abc");
    p.pump();
    assert_eq!(p.a.send_space(), 3000);
    // Writing nothing sends nothing.
    p.dev.take_moves();
    assert_eq!(p.a.send_with(&p.dev, |_| 0).unwrap(), 0);
    assert!(p.dev.take_moves().is_empty());
}

#[test]
fn send_with_needs_nocopy() {
    let mut p = Pair::new(false);
    assert_eq!(
        p.a.send_with(&p.dev, |_| unreachable!()),
        Err(ConnError::NocopyRequired)
    );
}

#[test]
fn peer_urgent_is_inline() {
    let mut p = Pair::new(false);
    // A (Linux-like) peer marks its last byte urgent: delivered in stream order.
    p.a.send(&p.dev, b"ab!").unwrap();
    let mut h = p.a_header();
    h.prod_flags |= ProducerFlags::URG_DATA_PENDING | ProducerFlags::URG_DATA_PRESENT;
    p.dev.inject(p.b.own_token(), &h);
    p.pump();
    assert_eq!(b_reads(&mut p, 3), b"ab!");
    assert_eq!(p.b.error(), None);
}

#[test]
fn stats_count_calls_and_bytes() {
    let mut p = Pair::new(false);
    a_sends(&mut p, &pattern(0, RING));
    assert_eq!(p.a.send(&p.dev, b"more"), Err(ConnError::WouldBlock));
    b_reads(&mut p, RING);
    p.pump();
    let a = p.a.stats();
    assert_eq!(a.bytes_sent, RING as u64);
    assert_eq!(a.send_calls, 2);
    assert_eq!(a.buffer_full, 1);
    assert_eq!(a.window_updates_received, 1);
    assert_eq!(a.aborts, 0);
    let b = p.b.stats();
    assert_eq!(b.bytes_received, RING as u64);
    assert_eq!(b.window_updates_sent, 1);
    assert!(b.recv_calls >= 1);
}

#[test]
fn many_wraps_with_odd_chunks() {
    for nocopy in [false, true] {
        let mut p = Pair::new(nocopy);
        // Miri interprets every step: two laps there (the wrap counter
        // still advances twice, the ring end is crossed at odd offsets).
        let laps: u16 = if cfg!(miri) { 2 } else { 20 };
        let total = usize::from(laps) * RING + 12345;
        let data = pattern(0, total);
        let (mut sent, mut got) = (0, Vec::with_capacity(total));
        let mut chunk = 1;
        while got.len() < total {
            let end = (sent + chunk).min(total);
            if sent < total {
                sent += send_some(&mut p.a, &p.dev, &data[sent..end]);
            }
            p.pump();
            let mut buf = vec![0u8; chunk * 3 / 2 + 1];
            if let Ok(n) = p.b.recv(&p.dev, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            p.pump();
            chunk = chunk * 7 % 9973 + 1;
        }
        assert_eq!(got, data);
        let h = p.a_header();
        assert_eq!(h.prod, Cursor::new(laps, 12345));
        assert!(!h.conn_state_flags.contains(ConnStateFlags::PEER_CONN_ABORT));
    }
}

/// Two real threads, no locks between the connections: the ordering of
/// `wire::cdc::publish`/`snapshot` is what keeps the data intact.
#[test]
fn threads_stream_and_close() {
    for (nocopy, b_len) in [(false, DMB), (true, DMB), (false, 64 * 1024)] {
        let p = Pair::with_sizes(DMB, b_len, nocopy);
        let (dev, mut a, mut b) = (p.dev, p.a, p.b);
        // Miri interprets every step: a ring and a bit there (the 16 KiB
        // rings wrap once, mid-chunk), a megabyte natively.
        let total = if cfg!(miri) { RING + 5005 } else { 1 << 20 };
        let data = pattern(0, total);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut sent = 0;
                while sent < total {
                    a.handle_signal(&dev).unwrap();
                    let end = (sent + 5000).min(total);
                    sent += send_some(&mut a, &dev, &data[sent..end]);
                    std::thread::yield_now();
                }
                a.close(&dev).unwrap();
                while !a.is_closed() {
                    a.handle_signal(&dev).unwrap();
                    std::thread::yield_now();
                }
            });
            let mut got = Vec::with_capacity(total);
            let mut buf = vec![0u8; 7000];
            loop {
                b.handle_signal(&dev).unwrap();
                match b.recv(&dev, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(ConnError::WouldBlock) => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(got == data, "stream corrupted");
            b.close(&dev).unwrap();
            assert!(b.is_closed());
        });
    }
}

#[test]
fn accessors_report_sizes_and_bytes_in_flight() {
    let mut p = Pair::with_sizes(2 * DMB, DMB, false);
    assert_eq!((p.a.own_dmb_len(), p.a.peer_dmb_len()), (2 * DMB, DMB));
    assert_eq!((p.b.own_dmb_len(), p.b.peer_dmb_len()), (DMB, 2 * DMB));
    assert_eq!((p.a.bytes_in_flight(), p.a.send_space()), (0, RING));

    // More than half of B's ring: B confirms once it read past the update
    // limit, and A's bytes in flight drop to what B has not consumed yet.
    let data = pattern(0, RING / 2 + 1000);
    a_sends(&mut p, &data);
    assert_eq!(p.a.bytes_in_flight(), data.len());
    assert_eq!(p.a.send_space(), RING - data.len());
    let read = update_limit(RING as u32) as usize + 1;
    assert_eq!(b_reads(&mut p, read), data[..read]);
    p.pump();
    assert_eq!(p.a.bytes_in_flight(), data.len() - read);
    assert_eq!(p.a.send_space(), RING - (data.len() - read));
}

/// A peer that said `write_blocked` keeps getting updates while the ring is
/// being drained, even once more than half of it is free again; a data
/// header from the peer is no window update.
#[test]
fn write_blocked_keeps_updates_coming_until_all_is_read() {
    let mut p = Pair::new(false);
    p.b.send(&p.dev, b"data").unwrap();
    p.pump();
    assert_eq!(p.a.stats().window_updates_received, 0);

    a_sends(&mut p, &pattern(0, RING));
    assert!(
        p.a_header()
            .prod_flags
            .contains(ProducerFlags::WRITE_BLOCKED)
    );
    // Each read of 3000 passes the update limit (2304). The fourth leaves
    // 9000 bytes free at A (more than half the ring): only A's
    // `write_blocked`, still standing with bytes unread, asks for it.
    for (i, start) in (0..4).map(|i| (i + 1, i * 3000)) {
        assert_eq!(b_reads(&mut p, 3000), pattern(start, 3000));
        assert_eq!(p.b.stats().window_updates_sent, i as u64, "read {i}");
    }
}
