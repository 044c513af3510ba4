//! smcd scenario image for ARMv6-M (Cortex-M0/M0+, thumbv6m-none-eabi).
//!
//! Booted on QEMU `mps2-an385`, whose Cortex-M3 runs ARMv6-M code and has
//! the RAM for two DMBs (the micro:bit's 16 KiB cannot hold them). Prints
//! with semihosting and exits QEMU through semihosting: status 0 on pass, 1
//! on a failed scenario, a panic or a HardFault. On the host this crate is
//! an empty stub so that workspace-wide host builds stay green.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod rt;

/// Host stub: the image only does something on `thumbv6m-none-eabi`.
#[cfg(not(target_os = "none"))]
fn main() {}
