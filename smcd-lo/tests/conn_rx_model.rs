//! The `conn_rx` fuzz model (`rx_model`: a connection on the loopback
//! device, fed peer-written headers and ring bytes between receives and
//! sends) under proptest, so the normal `cargo test` covers the receive
//! path's validator without nightly fuzzing: once on raw bytes decoded the
//! way the fuzzer's are, once on operations drawn so that the peer mostly
//! conforms (small cursor moves, few flags) and the connection lives long
//! enough to deliver data, wrap and get its window back. What each step
//! checks: `rx_model`'s docs. `PROPTEST_CASES` sets the cases (256).

mod rx_model;

use proptest::collection::vec;
use proptest::prelude::*;
use rx_model::Op;

/// A flags byte: mostly none, sometimes one bit, rarely anything.
fn flags() -> impl Strategy<Value = u8> {
    prop_oneof![
        30 => Just(0u8),
        2 => (0u32..8).prop_map(|b| 1u8 << b),
        1 => any::<u8>(),
    ]
}

/// One step, weighted towards a conforming peer and a busy application.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => any::<(u8, u8)>().prop_map(|(p, c)| Op::Honest {
            prod_share: p,
            cons_share: c,
        }),
        1 => any::<[u8; 32]>().prop_map(Op::RawHeader),
        2 => (0u16..3000, 0u16..64, flags(), flags()).prop_map(|(p, c, pf, cf)| Op::Header {
            prod_by: p,
            cons_by: c,
            prod_flags: pf,
            conn_flags: cf,
        }),
        1 => any::<(u16, u16, u8, u8)>().prop_map(|(p, c, pf, cf)| Op::Header {
            prod_by: p,
            cons_by: c,
            prod_flags: pf,
            conn_flags: cf,
        }),
        2 => (any::<u16>(), vec(any::<u8>(), 0..256)).prop_map(|(at, bytes)| Op::Data { at, bytes }),
        6 => Just(Op::Signal),
        4 => any::<u16>().prop_map(Op::Recv),
        3 => any::<u16>().prop_map(Op::RecvWith),
        4 => any::<u16>().prop_map(Op::Send),
        2 => any::<u16>().prop_map(Op::SendWith),
    ]
}

proptest! {
    #[test]
    fn raw_bytes_as_the_fuzzer_feeds_them(input in vec(any::<u8>(), 0..2048)) {
        rx_model::run(&input);
    }

    #[test]
    fn a_mostly_conforming_peer(nocopy in any::<bool>(), ops in vec(op(), 0..300)) {
        rx_model::run_ops(nocopy, ops);
    }
}
