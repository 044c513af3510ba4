//! The CLC handshake engine on arbitrary byte streams: a server and a client
//! (loopback-like fake device, faults chosen by the input) each get the same
//! bytes in pieces of an input-chosen size. Nothing may panic, every byte the
//! engine writes must be valid CLC, no CLC byte follows a Decline, the
//! outcome comes exactly once (with its resources for an SMC-D outcome
//! only), and every DMB, attachment and link-group reference is given back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smcd_core::clc::testing::{FakeDevice, Pair};
use smcd_core::clc::{
    CLC_WAIT_MS, ClcConfig, ClcContext, ClcDevice, Context, DeclinedBy, Devices, Handshake,
    LinkGroup, LinkGroups, Outcome,
};
use smcd_core::dmb::Gid;
use smcd_core::ops::{self, ErrorKind};
use smcd_core::wire::clc::{ClcHeaderRepr, ClcMessage};

const LO_GID: Gid = Gid::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);

/// Knobs taken from the first input byte.
struct Knobs {
    ueid: bool,
    dmb_limit: bool,
    attach_fails: bool,
    small_memory: bool,
    known_peer: bool,
    copy_only: bool,
}

impl Knobs {
    fn new(b: u8) -> Self {
        Self {
            ueid: b & 0x01 == 0,
            dmb_limit: b & 0x02 != 0,
            attach_fails: b & 0x04 != 0,
            small_memory: b & 0x08 != 0,
            known_peer: b & 0x10 != 0,
            copy_only: b & 0x20 != 0,
        }
    }

    fn device(&self) -> FakeDevice {
        let mut dev = FakeDevice::loopback(LO_GID);
        if self.dmb_limit {
            dev = dev.max_dmbs(1);
        }
        if self.attach_fails {
            dev = dev.failing_attach(ErrorKind::InvalidToken);
        }
        if self.small_memory {
            dev = dev.max_dmb_size(16 * 1024);
        }
        if self.copy_only {
            dev = dev.without_nocopy();
        }
        dev
    }
}

/// Every CLC message in `sent` parses; a Decline is the last one.
fn check_sent(sent: &[u8], outcome: &Outcome) {
    let mut rest = sent;
    let mut last = None;
    while !rest.is_empty() {
        assert!(
            !matches!(last, Some(ClcMessage::Decline(_))),
            "CLC after a Decline"
        );
        let header = ClcHeaderRepr::peek(rest).expect("own header");
        let msg = ClcMessage::parse(rest).expect("own message");
        rest = &rest[usize::from(header.length)..];
        last = Some(msg);
    }
    if let Outcome::Fallback(f) = outcome
        && f.declined_by == DeclinedBy::Local
    {
        match last {
            Some(ClcMessage::Decline(d)) => assert_eq!(d.peer_diagnosis, f.reason),
            other => panic!("local fallback without Decline: {other:?}"),
        }
    }
}

/// Feed `data` to `h` in pieces of `chunk`, then let the timer run out.
/// Gives the DMBs of an SMC-D outcome back; returns the outcome and, for
/// SMC-D, the link-group reference the connection held.
fn run(
    h: &mut Handshake<impl ClcContext>,
    data: &[u8],
    chunk: usize,
    dev: &FakeDevice,
) -> (Outcome, Option<LinkGroup>) {
    let mut sent = Vec::new();
    let mut buf = [0u8; 97];
    let mut now = 0;
    for piece in data.chunks(chunk) {
        let was_running = h.is_handshaking();
        let used = h.handle_input(now, piece);
        assert!(used <= piece.len());
        if !was_running {
            assert_eq!(used, 0, "input consumed after the end");
        }
        while let Some(n) = h.poll_transmit(&mut buf) {
            sent.extend_from_slice(&buf[..n]);
        }
        now += 1;
    }
    h.handle_timeout(now + CLC_WAIT_MS);
    assert!(!h.is_handshaking());
    assert_eq!(h.poll_timeout(), None);
    let outcome = h.poll_outcome().expect("an outcome after the deadline");
    assert!(h.poll_outcome().is_none(), "outcome handed out twice");
    while let Some(n) = h.poll_transmit(&mut buf) {
        sent.extend_from_slice(&buf[..n]);
    }
    check_sent(&sent, &outcome);
    let Outcome::Established(info) = outcome else {
        assert!(h.take_established().is_none(), "resources without SMC-D");
        return (outcome, None);
    };
    let est = h.take_established().expect("SMC-D hands out its resources");
    assert!(h.take_established().is_none(), "resources handed out twice");
    assert_eq!(est.info(), info);
    // The caller's part: give the connection's resources back.
    let (conn, lgr) = est.into_connection();
    assert_eq!(conn.mode(), info.mode);
    assert_eq!(conn.peer_dmb_len(), info.peer_dmb_size);
    assert_eq!(conn.own_dmb_len(), info.own_dmb_size);
    let (own, peer) = conn.into_dmbs();
    ops::give_back(dev, Some(own), Some(peer)).expect("handles of the engine's device");
    (outcome, Some(lgr))
}

fuzz_target!(|input: &[u8]| {
    let [knobs, chunk, data @ ..] = input else {
        return;
    };
    let knobs = Knobs::new(*knobs);
    let chunk = usize::from(*chunk).max(1);
    // No UEID at all, or one both ends share (SMC-Dv2 needs one).
    let config = if knobs.ueid {
        ClcConfig::empty().with_ueid("SMCD-TEST").unwrap()
    } else {
        ClcConfig::empty()
    };
    let dev = knobs.device();
    let list: [&dyn ClcDevice; 1] = [&dev];
    let lgrs = LinkGroups::<4>::new();
    let ctx = Context::new(&config, Devices::new(&list), &lgrs);
    if knobs.known_peer {
        // A finished handshake leaves an idle group to join (or to fail on).
        // Dropping the engines gives back what they hold (their outcome's
        // resources were never taken).
        let mut pair = Pair::new(Handshake::client(ctx, 0), Handshake::server(ctx, 0));
        pair.drive();
    }
    let base = (dev.live_dmbs(), dev.attachments(), lgrs.in_use());

    for server in [true, false] {
        let mut h = if server {
            Handshake::server(ctx, 0)
        } else {
            Handshake::client(ctx, 0)
        };
        if let (_, Some(lgr)) = run(&mut h, data, chunk, &dev) {
            lgrs.release(lgr);
        }
        drop(h);
        assert_eq!((dev.live_dmbs(), dev.attachments(), lgrs.in_use()), base);
    }
});
