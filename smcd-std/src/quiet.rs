//! smcd's own threads (the device socket's server, the close thread) take
//! no signals: the application's handlers must run on its own threads. A
//! program that waits for a signal in `sigsuspend` (nginx's master, for
//! the `SIGCHLD` of its workers) would otherwise wait forever when the
//! kernel hands the signal to a thread of ours, which runs the handler and
//! leaves the sleeper asleep.
#![allow(unsafe_code)] // audited: the signal masks of one call, each with a SAFETY note

use std::io;
use std::thread::JoinHandle;

/// Start a thread named `name` that has every signal blocked (blocked in
/// the caller while it is created, so the new thread inherits the mask
/// and no signal reaches it even before its first instruction).
pub(crate) fn spawn<F>(name: &str, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    // SAFETY: sigfillset initialises the set it is given.
    let all = unsafe {
        let mut set = core::mem::zeroed::<libc::sigset_t>();
        libc::sigfillset(&mut set);
        set
    };
    // SAFETY: zeroed is a valid value of the plain C struct.
    let mut old = unsafe { core::mem::zeroed::<libc::sigset_t>() };
    // SAFETY: both sets are valid for the call. glibc's pthread_sigmask
    // leaves its internal signals (cancellation, setxid) unblocked.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) };
    let started = std::thread::Builder::new().name(name.into()).spawn(f);
    // SAFETY: `old` is the mask read above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    started
}

#[cfg(test)]
mod tests {
    /// The thread's mask has every ordinary signal blocked, and the
    /// caller's mask is as it was.
    #[test]
    fn quiet_threads_block_signals() {
        let blocked = |sig| {
            // SAFETY: valid sets; a null new set only reads the mask.
            unsafe {
                let mut cur = core::mem::zeroed::<libc::sigset_t>();
                libc::pthread_sigmask(libc::SIG_SETMASK, core::ptr::null(), &mut cur);
                libc::sigismember(&cur, sig) == 1
            }
        };
        let before = blocked(libc::SIGCHLD);
        let h = super::spawn("quiet-test", move || {
            assert!(blocked(libc::SIGCHLD) && blocked(libc::SIGTERM) && blocked(libc::SIGINT));
        })
        .expect("spawn");
        h.join().expect("the thread's asserts hold");
        assert_eq!(blocked(libc::SIGCHLD), before);
    }
}
