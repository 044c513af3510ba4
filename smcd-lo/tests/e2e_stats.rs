//! End to end on the loopback device: each host's link-group table counts
//! how that host's handshakes ended, per role — NOUEID fallbacks, an
//! established SMC-D connection and a timeout.

mod e2e_util;

use e2e_util::{Lo, assert_all_given_back, config, loopback};
use smcd_core::clc::{CLC_WAIT_MS, ClcConfig};
use smcd_core::endpoint::testing::{Fixture, close_both, drive, pair_on, transfer};
use smcd_core::endpoint::{Endpoint, Host, Pipe};
use smcd_core::wire::clc::DeclineReason;

const NOUEID: u32 = 0x0303_0008;

#[test]
fn host_tables_count_fallbacks_an_established_connection_and_a_timeout() {
    let lo: Lo = loopback(11);
    // A host with the test UEID, and one without any UEID (Linux on
    // x86/arm64 without a UEID), on one device.
    let smc = Fixture::new(&lo, config(16 * 1024));
    let plain = Host::<_, 4>::with_config(ClcConfig::empty(), &lo);
    assert_eq!(DeclineReason::NoUeid.code(), NOUEID);

    // NOUEID between two hosts without a UEID, then from a client without
    // one to the server with one.
    for (client, server) in [(&plain, &plain), (&plain, &smc.host)] {
        let pipe = Pipe::<1024>::new();
        let (mut c, mut s) = pair_on(client, server, &pipe);
        drive(&mut c, &mut s, 0);
        assert!(!c.transport().is_smcd() && !s.transport().is_smcd());
    }

    let (mut c2, mut s2) = smc.pair();
    drive(&mut c2, &mut s2, 0);
    assert!(c2.transport().is_smcd());
    let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    assert_eq!(transfer(&mut c2, &mut s2, &data, 4_000), data);
    close_both(&mut c2, &mut s2);

    let silent = Pipe::<1024>::new();
    let (a, _b) = silent.ends();
    let mut lonely = Endpoint::client(&smc.host, a, 0);
    let _ = lonely.poll(0);
    assert!(lonely.poll(CLC_WAIT_MS).is_err());

    // The host with the UEID: one fallback (as server), one connection
    // each way, one timeout (as client).
    let stats = smc.host.clc_stats();
    assert_eq!(stats, smc.host.groups().clc_stats());
    for role in [&stats.client, &stats.server] {
        assert_eq!((role.established_v1, role.established_v2), (0, 1));
        assert_eq!(role.protocol_errors, 0);
    }
    assert_eq!(stats.server.fallbacks.get(NOUEID), 1);
    assert_eq!(stats.server.fallbacks.total(), 1);
    assert_eq!(stats.client.fallbacks.total(), 0);
    assert_eq!((stats.client.timeouts, stats.server.timeouts), (1, 0));
    // No other reason code was counted.
    assert_eq!(stats.server.fallbacks.iter().count(), 1);
    assert_eq!(stats.client.fallbacks.iter().count(), 0);

    // The host without: two fallbacks as client, one as server, nothing else.
    let other = plain.clc_stats();
    assert_eq!(other, plain.groups().clc_stats());
    assert_eq!(other.client.fallbacks.get(NOUEID), 2);
    assert_eq!(other.server.fallbacks.get(NOUEID), 1);
    for role in [&other.client, &other.server] {
        assert_eq!(role.fallbacks.iter().count(), 1);
        assert_eq!(role.established(), 0);
        assert_eq!((role.timeouts, role.protocol_errors), (0, 0));
    }
    drop(lonely);
    assert_all_given_back(&lo, &smc.host);
    assert_all_given_back(&lo, &plain);
}
