//! smcd scenario image for QEMU `mps2-an386` (Cortex-M4F, thumbv7em-none-eabihf).
//!
//! Logs with defmt over semihosting (decode on the host with
//! `defmt-print -e <elf>`) and exits QEMU through semihosting: status 0 on
//! pass, 1 on a failed scenario, a panic or a HardFault. On the host this
//! crate is an empty stub so that workspace-wide host builds stay green.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod rt;

/// Host stub: the image only does something on `thumbv7em-none-eabihf`.
#[cfg(not(target_os = "none"))]
fn main() {}
