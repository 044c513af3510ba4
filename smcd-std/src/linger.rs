//! Finishing closes in the background: a dropped SMC stream has sent its
//! close at once (every byte written before is in the peer's ring); what is
//! left — waiting for the peer's close, at most 2 s, then giving the DMBs
//! back — happens on one thread of the process, not in `drop`.

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use smcd_core::blocking::CLOSE_WAIT_MS;

use crate::stream::StdEndpoint;
use crate::wait::now_ms;

/// How often lingering endpoints are polled.
const TICK: Duration = Duration::from_millis(2);

#[derive(Default)]
struct Lingering {
    endpoints: Mutex<Vec<(Instant, StdEndpoint)>>,
    work: Condvar,
}

fn lingering() -> &'static Lingering {
    static L: OnceLock<&'static Lingering> = OnceLock::new();
    L.get_or_init(|| {
        let l: &'static Lingering = Box::leak(Box::default());
        let started = crate::quiet_thread::spawn("smcd-linger", move || run(l));
        if started.is_err() {
            tracing::warn!("cannot start the close thread: closes end with an abort");
        }
        l
    })
}

/// Finish the close of `ep` in the background (its close was sent).
pub(crate) fn keep(ep: StdEndpoint) {
    let l = lingering();
    let deadline = Instant::now() + Duration::from_millis(CLOSE_WAIT_MS);
    let mut eps = l
        .endpoints
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    eps.push((deadline, ep));
    // A thread with endpoints to poll wakes up by itself within a tick.
    if eps.len() == 1 {
        l.work.notify_one();
    }
}

fn run(l: &Lingering) {
    let mut eps = l
        .endpoints
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        while eps.is_empty() {
            eps = l
                .work
                .wait(eps)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let now = Instant::now();
        // Dropping an endpoint that did not finish aborts it and gives its
        // resources back.
        eps.retain_mut(|(deadline, ep)| {
            let _ = ep.poll(now_ms());
            !ep.is_closed() && *deadline > now
        });
        let (guard, _) = l
            .work
            .wait_timeout(eps, TICK)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        eps = guard;
    }
}
