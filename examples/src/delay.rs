//! [`StdDelay`]: an embedded-hal delay for the blocking driver on `std`.

use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;

/// Below this, a delay yields the CPU in a loop instead of sleeping: a
/// sleep takes tens of microseconds however short it is asked to be.
const YIELD_BELOW: Duration = Duration::from_micros(50);

/// Waits at least the asked time: yields for short delays, sleeps otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdDelay;

impl DelayNs for StdDelay {
    fn delay_ns(&mut self, ns: u32) {
        let d = Duration::from_nanos(ns.into());
        if d < YIELD_BELOW {
            let start = Instant::now();
            while start.elapsed() < d {
                std::thread::yield_now();
            }
        } else {
            std::thread::sleep(d);
        }
    }
}
