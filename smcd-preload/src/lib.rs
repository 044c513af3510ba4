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
//! to glibc's definitions are resolved by the constructor ([`real`]).
#![deny(unsafe_op_in_unsafe_fn)]

mod data;
mod epoll;
mod guard;
pub mod hooks;
mod ready;
mod real;
mod sock;
mod table;

use std::sync::OnceLock;

use smcd_std::SmcConfig;

static CONFIG: OnceLock<SmcConfig> = OnceLock::new();
/// Where `smcd run --stats` collects the per-process counters.
static STATS_DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

/// The configuration, read from the environment in the constructor (nginx
/// clears its environment before it starts workers).
pub(crate) fn config() -> &'static SmcConfig {
    CONFIG.get_or_init(SmcConfig::from_env)
}

/// The constructor: resolve glibc's definitions, read the configuration,
/// arrange for the exit work.
extern "C" fn init() {
    real::resolve_all();
    real::resolve_variadic();
    let _ = guard::enter("init", || {
        let _ = config();
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
