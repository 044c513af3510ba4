//! # smcd-preload — unmodified programs over SMC-D
//!
//! `libsmcd_preload.so`, preloaded by `smcd run -- CMD`, keeps every fd of
//! the application a real kernel socket and attaches smcd state to the TCP
//! connections whose peer also runs smcd on this host: their bytes then move
//! through smcd-std's shared-memory streams, with the same rendezvous,
//! handshake, fallback and security rules. Every other fd, and every call on
//! it, passes straight through to glibc. Design: `docs/preload.md`.
//!
//! The hooks are the exported `extern "C"` functions of [`hooks`]; the pointers
//! to glibc's definitions are resolved by the constructor (module `real`).
#![deny(unsafe_op_in_unsafe_fn)]

mod data;
mod epoll;
mod guard;
pub mod hooks;
mod nest;
mod ready;
mod real;
mod shared;
mod sock;
mod table;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

use smcd_std::SmcConfig;

/// The configuration (a leaked box: replaced, never freed, in a child
/// after fork — so reading it takes no lock that fork could leave held).
static CONFIG: AtomicPtr<SmcConfig> = AtomicPtr::new(core::ptr::null_mut());
/// Where `smcd run --stats` collects the per-process counters.
static STATS_DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

/// The configuration, read from the environment in the constructor (nginx
/// clears its environment before it starts workers).
pub(crate) fn config() -> &'static SmcConfig {
    let p = CONFIG.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: every pointer stored is a leaked box, never freed.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::new(SmcConfig::from_env()));
    match CONFIG.compare_exchange(
        core::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: just leaked.
        Ok(_) => unsafe { &*fresh },
        Err(won) => {
            // SAFETY: `fresh` was never shared; `won` is a leaked box.
            unsafe {
                drop(Box::from_raw(fresh));
                &*won
            }
        }
    }
}

/// `pthread_atfork` handlers: the fd table is held across the fork (so the
/// child never inherits it locked), the child takes its holder locks of
/// everything it inherited before the family's fork counter lets a parent's
/// release decide, and the child starts its own smcd device on first use.
/// Rings held by corked streams are rung first: neither process is left
/// holding the other's.
extern "C" fn before_fork() {
    smcd_std::device::release_held();
    let _ = guard::enter("fork", || {
        shared::fork_begins();
        table::freeze_for_fork();
        smcd_std::adopt::before_fork();
        Ok(0)
    });
}

extern "C" fn after_fork_parent() {
    smcd_std::adopt::after_fork_in_parent();
    table::thaw_after_fork(|_| {});
}

extern "C" fn after_fork_child() {
    let _ = guard::enter("fork", || {
        table::thaw_after_fork(sock::Sock::relock);
        shared::fork_done_in_child();
        smcd_std::adopt::after_fork_in_child();
        let detached = Box::into_raw(Box::new(config().detached()));
        // The old box stays leaked: streams inherited from the parent may
        // still refer to its host.
        CONFIG.store(detached, Ordering::Release);
        Ok(0)
    });
}

/// Where the shim's own fds go (see [`fd_floor`]).
pub(crate) static FD_FLOOR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The lowest number for the shim's and smcd-std's long-lived fds: half the
/// soft fd limit, at most 4096 (`SMCD_FD_FLOOR` overrides; 0: anywhere) — so
/// the application's own fds keep the low numbers they would have without
/// the shim (`select`'s FD_SETSIZE, event loops sized by fd number).
fn fd_floor() -> i32 {
    if let Some(n) = std::env::var("SMCD_FD_FLOOR")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return n;
    }
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    if soft < 256 {
        return 0;
    }
    i32::try_from((soft / 2).min(4096)).unwrap_or(0)
}

/// The constructor: resolve glibc's definitions, read the configuration,
/// arrange for the exit work.
extern "C" fn init() {
    real::resolve_all();
    real::resolve_variadic();
    shared::init();
    let _ = guard::enter("init", || {
        let _ = config();
        smcd_std::adopt::read_env_now();
        FD_FLOOR.store(fd_floor(), Ordering::Relaxed);
        smcd_std::adopt::set_fd_floor(FD_FLOOR.load(Ordering::Relaxed));
        // SAFETY: three `extern "C" fn()` that live as long as the process.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_parent),
                Some(after_fork_child),
            )
        };
        let _ = STATS_DIR.set(std::env::var_os("SMCD_STATS_DIR").map(Into::into));
        // SAFETY: `at_exit` is an `extern "C" fn()` that lives as long as
        // the process (this library is never unloaded while it runs).
        unsafe { libc::atexit(at_exit) };
        Ok(0)
    });
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;

/// At exit: close every smcd connection properly (the peer then reads EOF
/// after every byte, not a reset), then write the counters.
extern "C" fn at_exit() {
    let _ = guard::enter("exit", || {
        drop(table::take_all());
        if let Some(Some(dir)) = STATS_DIR.get() {
            let path = dir.join(format!("{}.json", std::process::id()));
            if let Ok(json) = serde_json::to_string(&smcd_std::stats()) {
                let _ = std::fs::write(path, json);
            }
        }
        Ok(0)
    });
}
