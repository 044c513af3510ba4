//! The blocking driver with embedded-hal-mock delays: the exact back-off
//! sequence (default and custom policies), the CLC timeout after 6 s of
//! accumulated delays (or of what a wakeable pause reports), waiting for
//! room and for data, and close with and without the peer's answer.

mod conn_util;

use std::cell::{Cell, RefCell};

use conn_util::FakeDev;
use embedded_hal::delay::DelayNs;
use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction};
use smcd_core::blocking::{
    BACKOFF_MAX_NS, BACKOFF_MIN_NS, BackoffPolicy, Blocking, CLOSE_WAIT_MS, Pause, SPIN_ROUNDS,
};
use smcd_core::clc::{CLC_WAIT_MS, ClcConfig, HandshakeError};
use smcd_core::conn::{CloseState, ConnError};
use smcd_core::endpoint::testing::{Fixture, PIPE_BYTES, PipeEndpoint, drive};
use smcd_core::endpoint::{ByteStream, Endpoint, EndpointError, Failure, PipeEnd, Transport};
use smcd_core::wire::clc::ClcMessage;

/// A delay that records into `inner` and lets the peer act after each call
/// (`act` gets the 1-based call number).
struct Acting<T, F> {
    inner: T,
    calls: usize,
    act: F,
}

impl<T: DelayNs, F: FnMut(usize)> DelayNs for Acting<T, F> {
    fn delay_ns(&mut self, ns: u32) {
        self.inner.delay_ns(ns);
        self.calls += 1;
        (self.act)(self.calls);
    }
}

fn acting<T, F: FnMut(usize)>(inner: T, act: F) -> Acting<T, F> {
    Acting {
        inner,
        calls: 0,
        act,
    }
}

/// The pause cap of the timeout tests: the default 1 ms means 6000 pauses
/// (each a poll of the endpoint) before the CLC timer fires. Under Miri,
/// which interprets every poll, it is 64 ms instead: the same code paths and
/// timers in about 100 pauses.
const MAX_NS: u32 = if cfg!(miri) {
    64_000_000
} else {
    BACKOFF_MAX_NS
};

/// The default back-off with the pause cap [`MAX_NS`].
fn policy() -> BackoffPolicy {
    BackoffPolicy {
        max_ns: MAX_NS,
        ..BackoffPolicy::DEFAULT
    }
}

/// The largest pause of [`policy`], in ms: the timers fire within one of it.
const MAX_PAUSE_MS: u64 = MAX_NS as u64 / 1_000_000;

/// The delays of the default back-off capped at `max_ns` ([`MAX_NS`] for
/// [`policy`]), in order, until they add up to at least `total_ns`.
fn backoff_delays(total_ns: u64, max_ns: u32) -> Vec<u32> {
    let (mut sum, mut next, mut out) = (0u64, BACKOFF_MIN_NS, Vec::new());
    while sum < total_ns {
        out.push(next);
        sum += u64::from(next);
        next = (next * 2).min(max_ns);
    }
    out
}

fn expect(delays: &[u32]) -> CheckedDelay {
    let t: Vec<Transaction> = delays.iter().map(|&ns| Transaction::delay_ns(ns)).collect();
    CheckedDelay::new(&t)
}

fn config() -> ClcConfig {
    ClcConfig::empty()
        .with_ueid("SMCD-TEST")
        .unwrap()
        .with_dmb_size(16 * 1024)
}

type Ep<'a> = PipeEndpoint<'a, FakeDev>;

/// An established SMC-D pair (client, server) on the fixture's pipe.
fn established<'a>(fx: &'a Fixture<'_, FakeDev>) -> (Ep<'a>, Ep<'a>) {
    let (mut client, mut server) = fx.pair();
    drive(&mut client, &mut server, 0);
    assert!(client.transport().is_smcd() && server.transport().is_smcd());
    (client, server)
}

/// Run the client handshake on `end` with [`policy`] until the CLC timer
/// fires, which must be at 6 s of the driver's clock (within the last pause:
/// exactly 6000 ms with the default 1 ms cap).
fn handshake_times_out(fx: &Fixture<'_, FakeDev>, end: PipeEnd<'_, PIPE_BYTES>, pause: impl Pause) {
    let mut client = Blocking::new(Endpoint::client(&fx.host, end, 0), pause);
    client.set_backoff(policy());
    assert_eq!(
        client.handshake().unwrap_err(),
        EndpointError::Failed(Failure::Handshake(HandshakeError::Timeout))
    );
    let now = client.now_ms();
    assert!(
        (CLC_WAIT_MS..CLC_WAIT_MS + MAX_PAUSE_MS).contains(&now),
        "timer fired at {now} ms"
    );
}

#[test]
fn clc_timeout_after_six_seconds_of_delays() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (a, mut peer) = fx.pipe.ends(); // the peer never answers

    let delays = backoff_delays(CLC_WAIT_MS * 1_000_000, MAX_NS);
    if !cfg!(miri) {
        // 1, 2, 4 … 512 µs, then 1 ms each: 1.023 ms + 5999 ms ≥ 6 s.
        assert_eq!(delays.len(), 10 + 5_999);
        let total: u64 = delays.iter().map(|&d| u64::from(d)).sum();
        assert_eq!(total, 6_000_023_000);
    }
    let mut check = expect(&delays);
    handshake_times_out(&fx, a, check.clone());
    check.done();
    // The Proposal went out; no Decline followed, the stream was shut down.
    let mut buf = [0u8; 512];
    let n = peer.read(&mut buf).unwrap();
    assert!(matches!(
        ClcMessage::parse(&buf[..n]),
        Ok(ClcMessage::Proposal(_))
    ));
    assert_eq!(peer.read(&mut buf), Ok(0));
}

#[test]
fn the_clock_counts_what_the_pause_reports() {
    /// Woken half-way through every pause: reports half of what was asked.
    struct Halved<'a>(&'a Cell<usize>);
    impl Pause for Halved<'_> {
        fn pause_ns(&mut self, ns: u32) -> u32 {
            self.0.set(self.0.get() + 1);
            ns / 2
        }
    }
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (a, _peer) = fx.pipe.ends(); // the peer never answers
    let pauses = Cell::new(0);
    handshake_times_out(&fx, a, Halved(&pauses));
    // Every asked pause is a whole number of µs, so halves add up exactly:
    // the timer needs the pauses of 12 s of asked time.
    let delays = backoff_delays(2 * CLC_WAIT_MS * 1_000_000, MAX_NS);
    assert_eq!(pauses.get(), delays.len());
    if !cfg!(miri) {
        assert_eq!(delays.len(), 10 + 11_999);
    }
}

#[test]
fn a_custom_backoff_policy_shapes_the_pauses() {
    let dev = FakeDev::new(false);
    let fx = Fixture::new(&dev, config());
    let (client, server) = established(&fx);
    let server = RefCell::new(server);
    // No spinning; 5 µs doubling up to 20 µs; data arrives in the 4th pause.
    let mut check = expect(&[5_000, 10_000, 20_000, 20_000]);
    let delay = acting(check.clone(), |call| {
        if call == 4 {
            server.borrow_mut().send(b"x").unwrap();
        }
    });
    let mut client = Blocking::new(client, delay);
    client.set_backoff(BackoffPolicy {
        spin_rounds: 0,
        min_ns: 5_000,
        max_ns: 20_000,
    });
    assert_eq!(client.recv(&mut [0u8; 4]), Ok(1));
    check.done();
}

#[test]
fn recv_backs_off_exponentially_and_starts_over_after_data() {
    let dev = FakeDev::new(false);
    let fx = Fixture::new(&dev, config());
    let (client, server) = established(&fx);
    let server = RefCell::new(server);

    // 12 delays (1 µs … 512 µs, 1 ms, 1 ms) before the first data, then
    // 1, 2, 4 µs before the second.
    let mut delays = backoff_delays(3_023_000, BACKOFF_MAX_NS);
    assert_eq!(delays.len(), 12);
    delays.extend([1_000, 2_000, 4_000]);
    let mut check = expect(&delays);
    let delay = acting(check.clone(), |call| {
        if call == 12 || call == 15 {
            server.borrow_mut().send(b"hi").unwrap();
        }
    });
    let mut client = Blocking::new(client, delay);
    let mut buf = [0u8; 8];
    assert_eq!(client.recv(&mut buf), Ok(2));
    assert_eq!(client.now_ms(), 3);
    assert_eq!(client.recv(&mut buf), Ok(2));
    assert_eq!(&buf[..2], b"hi");
    check.done();
}

#[test]
fn send_all_waits_for_room_across_many_ring_laps() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (client, server) = established(&fx);
    let server = RefCell::new(server);
    let got = RefCell::new(Vec::new());
    // Twelve laps of the 16 KiB ring; under Miri, which interprets every
    // byte copied, 2.4 laps (still crossing the ring's end twice).
    let len = if cfg!(miri) { 40_000u32 } else { 200_000 };
    let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();

    // The peer reads whatever is there whenever the sender waits.
    let drain = || {
        let mut buf = [0u8; 4096];
        let mut s = server.borrow_mut();
        s.poll(0).unwrap();
        while let Ok(n) = s.recv(&mut buf) {
            got.borrow_mut().extend_from_slice(&buf[..n]);
        }
    };
    let mut client = Blocking::new(client, acting(NoopDelay::new(), |_| drain()));
    client.send_all(&data).unwrap();
    drain();
    assert_eq!(*got.borrow(), data);
    let stats = client.endpoint().connection().unwrap().stats();
    assert!(stats.buffer_full > 0, "the ring never filled: {stats:?}");
}

#[test]
fn close_waits_for_the_peer_then_gives_everything_back() {
    let dev = FakeDev::new(true);
    let fx = Fixture::new(&dev, config());
    let (client, server) = established(&fx);
    let token = client.connection().unwrap().own_token();
    let server = RefCell::new(server);

    // The peer closes during the third delay.
    let mut check = expect(&[1_000, 2_000, 4_000]);
    let delay = acting(check.clone(), |call| {
        if call == 3 {
            let mut s = server.borrow_mut();
            s.poll(0).unwrap();
            assert_eq!(s.connection().unwrap().state(), CloseState::AppCloseWait1);
            s.close().unwrap();
        }
    });
    let client = Blocking::new(client, delay);
    assert_eq!(client.close(), Ok(true));
    check.done();
    assert!(!dev.is_registered(token));
    assert_eq!(dev.attach_count(token), 0);
    assert!(server.borrow().is_closed());
    assert_eq!(fx.host.groups().in_use(), 0);
}

#[test]
fn close_aborts_when_the_peer_does_not_answer_in_time() {
    let dev = FakeDev::new(false);
    let fx = Fixture::new(&dev, config());
    let (client, mut server) = established(&fx);
    let token = client.connection().unwrap().own_token();

    let mut check = expect(&backoff_delays(CLOSE_WAIT_MS * 1_000_000, MAX_NS));
    let mut client = Blocking::new(client, check.clone());
    client.set_backoff(policy());
    assert_eq!(client.close(), Ok(false));
    check.done();
    assert!(!dev.is_registered(token));
    // The peer sees the close, then the abort.
    server.poll(0).unwrap();
    assert_eq!(server.connection().unwrap().error(), Some(ConnError::Reset));
}

#[test]
fn fallback_close_flushes_the_decline_first() {
    let dev = FakeDev::new(false);
    let fx = Fixture::new(&dev, ClcConfig::empty()); // no UEID: the server declines
    let (mut client, mut server) = fx.pair();
    let (mut a, mut s_end) = fx.pipe.ends();
    client.poll(0).unwrap(); // Proposal
    // Leave room for only 20 bytes of the 44-byte Decline.
    const FILLER: usize = PIPE_BYTES - 20;
    s_end.write(&[0u8; FILLER]).unwrap();
    server.poll(0).unwrap();
    assert!(matches!(server.transport(), Transport::Tcp(_)));
    assert!(server.has_pending_output());

    // The client side drains the filler during the first delay.
    let delay = acting(NoopDelay::new(), |call| {
        if call == 1 {
            let mut sink = [0u8; FILLER];
            a.read(&mut sink).unwrap();
        }
    });
    assert_eq!(Blocking::new(server, delay).close(), Ok(true));
    client.poll(0).unwrap();
    assert!(matches!(client.transport(), Transport::Tcp(_)));
    assert_eq!(client.recv(&mut [0u8; 8]), Ok(0), "Decline, then EOF");
}

#[test]
fn wait_backs_off_only_when_nothing_happened() {
    let dev = FakeDev::new(false);
    let fx = Fixture::new(&dev, config());
    let (client, _server) = established(&fx);
    let mut check = expect(&[1_000, 1_000, 2_000]);
    let mut client = Blocking::new(client, check.clone());
    for _ in 0..SPIN_ROUNDS {
        client.wait(false).unwrap();
    }
    client.wait(false).unwrap(); // 1 µs
    client.wait(true).unwrap(); // the caller made progress: start over
    for _ in 0..SPIN_ROUNDS {
        client.wait(false).unwrap();
    }
    client.wait(false).unwrap(); // 1 µs again
    client.wait(false).unwrap(); // 2 µs
    check.done();
}
