//! smcd scenario image for QEMU `riscv64 virt` (`-bios none`).
//!
//! Runs [`smcd_scenario`] in M-mode on hart 0, prints through the ns16550a
//! UART and exits QEMU through the SiFive test finisher: 0 on pass, 1 on a
//! failed scenario or a panic, 238 on a CPU trap. On the host this crate is
//! an empty stub so that workspace-wide host builds stay green.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "riscv64", target_os = "none"))]
mod console;
#[cfg(all(target_arch = "riscv64", target_os = "none"))]
mod rt;

/// Host stub: the image only does something on `riscv64gc-unknown-none-elf`.
#[cfg(not(target_os = "none"))]
fn main() {}
