//! End to end on the loopback device: the host's link-group table counts
//! how its handshakes ended, per role — a NOUEID fallback, an established
//! SMC-D connection and a timeout on one shared table.

mod e2e_util;

use e2e_util::{Lo, config, loopback};
use smcd_core::clc::{CLC_WAIT_MS, ClcConfig, LinkGroups};
use smcd_core::endpoint::testing::{Fixture, close_both, drive, pair_on, transfer};
use smcd_core::endpoint::{Endpoint, Groups, Pipe};
use smcd_core::stats::RoleStats;
use smcd_core::wire::clc::DeclineReason;

const NOUEID: u32 = 0x0303_0008;

#[test]
fn one_table_counts_a_fallback_an_established_connection_and_a_timeout() {
    let lo: Lo = loopback(11);
    let groups = LinkGroups::<4>::new();

    let plain = Fixture::new(&lo, ClcConfig::new()); // no UEID
    let (mut client, mut server) = pair_on(
        plain.host_with(&groups),
        plain.host_with(&groups),
        &plain.pipe,
    );
    drive(&mut client, &mut server, 0);
    assert!(!client.transport().is_smcd());
    assert_eq!(DeclineReason::NoUeid.code(), NOUEID);

    let smc = Fixture::new(&lo, config(16 * 1024));
    let (mut c2, mut s2) = pair_on(smc.host_with(&groups), smc.host_with(&groups), &smc.pipe);
    drive(&mut c2, &mut s2, 0);
    assert!(c2.transport().is_smcd());
    let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    assert_eq!(transfer(&mut c2, &mut s2, &data, 4_000), data);
    close_both(&mut c2, &mut s2);

    let silent = Pipe::<1024>::new();
    let (a, _b) = silent.ends();
    let mut lonely = Endpoint::client(smc.host_with(&groups), a, 0);
    let _ = lonely.poll(0);
    assert!(lonely.poll(CLC_WAIT_MS).is_err());

    let stats = groups.clc_stats();
    assert_eq!(stats, Groups::clc_stats(&groups));
    for role in [&stats.client, &stats.server] {
        assert_eq!(role.fallbacks.get(NOUEID), 1);
        assert_eq!(role.fallbacks.total(), 1);
        assert_eq!((role.established_v1, role.established_v2), (0, 1));
        assert_eq!(role.protocol_errors, 0);
    }
    assert_eq!((stats.client.timeouts, stats.server.timeouts), (1, 0));
    // No other reason code was counted.
    assert_eq!(stats.server.fallbacks.iter().count(), 1);
    assert_eq!(plain.groups.clc_stats().client, RoleStats::new());
}
