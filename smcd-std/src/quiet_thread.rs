//! The threads smcd starts inside an application (the device socket's
//! server, the close finisher) start with every signal blocked.
//!
//! A signal sent to a process goes to any one of its threads that does not
//! block it. Programs that block their signals and wait for them in
//! `sigsuspend` (nginx's master, which sleeps there until SIGCHLD or
//! SIGQUIT) would otherwise lose them to our thread: its handler runs
//! there, and the waiting thread never wakes up.
#![allow(unsafe_code)] // audited: two pthread_sigmask calls on local sets

use std::io;
use std::mem::MaybeUninit;
use std::thread::{Builder, JoinHandle};

/// Start `f` on a thread called `name` whose signal mask blocks every
/// signal (it inherits the mask in effect while it is created, so no
/// signal can reach it before it runs).
pub(crate) fn spawn<F>(name: &str, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let mut all = MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigfillset` initialises the set it is given; `pthread_sigmask`
    // reads that initialised set and writes the previous mask into `old`.
    let blocked = unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr())
    };
    if blocked != 0 {
        return Err(io::Error::from_raw_os_error(blocked));
    }
    let started = Builder::new().name(name.into()).spawn(f);
    // SAFETY: `old` was initialised by the successful call above; this puts
    // the calling thread's own mask back.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), core::ptr::null_mut()) };
    started
}
