//! The SMC-D echo of the examples library through a loopback device whose
//! doorbell unparks the DMB owners: copy and nocopy mode, small DMBs so that
//! the rings wrap many times, both receiving sides verified, every DMB given
//! back.

use std::time::Duration;

use examples::echo::Job;
use examples::park::ParkDoorbell;
use examples::payload::Payload;
use examples::smc::{Setup, echo};
use examples::wait::Waiting;
use rand::SeedableRng;
use rand::rngs::StdRng;
use smcd_core::blocking::BackoffPolicy;
use smcd_core::clc::ClcConfig;
use smcd_core::conn::SendMode;
use smcd_lo::{HeapMemory, LoopbackDevice};

type Loopback = LoopbackDevice<HeapMemory, StdRng, ParkDoorbell>;

fn loopback(seed: u64) -> Loopback {
    Loopback::new(HeapMemory, StdRng::seed_from_u64(seed), ParkDoorbell::new())
}

fn config() -> ClcConfig {
    ClcConfig::empty()
        .with_ueid("SMCD-TEST")
        .unwrap()
        .with_dmb_size(64 * 1024)
}

const WAITING: Waiting = Waiting {
    policy: BackoffPolicy::DEFAULT,
    spin_limit: Duration::from_micros(20),
};

fn setup<'a, D>(dev: &'a D, doorbell: &'a ParkDoorbell, config: &'a ClcConfig) -> Setup<'a, D> {
    Setup {
        dev,
        doorbell,
        config,
        waiting: WAITING,
    }
}

#[test]
fn copy_and_nocopy_echo_verify_and_give_everything_back() {
    let payload = Payload::new(7, 300_007);
    // Odd sizes: pieces never line up with the 64 KiB rings.
    let job = Job::new(&payload, (5 << 20) + 13, 100_003, 70_001);
    let config = config();

    let copy_lo = loopback(1);
    copy_lo.set_nocopy(false);
    let (_, est) = echo(&setup(&copy_lo, copy_lo.doorbell(), &config), &job).unwrap();
    assert!(matches!(est.mode, SendMode::Copy));
    let stats = copy_lo.stats();
    assert_eq!(stats.dmbs_in_use, 0);
    assert!(stats.signals > 0);

    let nocopy = loopback(2);
    let (_, est) = echo(&setup(&nocopy, nocopy.doorbell(), &config), &job).unwrap();
    assert!(matches!(est.mode, SendMode::NoCopy));
    assert_eq!(nocopy.stats().dmbs_in_use, 0);
}

#[test]
fn a_wrong_expectation_fails_the_run() {
    let payload = Payload::new(7, 300_007);
    let job = Job::new(&payload, 1 << 20, 100_003, 70_001);
    let wrong = Job {
        expected: job.expected ^ 1,
        ..job
    };
    let config = config();
    let dev = loopback(3);
    let e = echo(&setup(&dev, dev.doorbell(), &config), &wrong).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    assert_eq!(dev.stats().dmbs_in_use, 0);
}
