//! smcd scenario image for QEMU `aarch64 virt` (`aarch64-unknown-none`).
//!
//! Runs [`smcd_scenario`] at EL1 with the MMU off on core 0, prints through
//! the PL011 UART and exits QEMU through semihosting `SYS_EXIT`: 0 on pass,
//! 1 on a failed scenario or a panic, 238 on a CPU exception. On the host
//! this crate is an empty stub so that workspace-wide host builds stay green.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod console;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod rt;

/// Host stub: the image only does something on `aarch64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
