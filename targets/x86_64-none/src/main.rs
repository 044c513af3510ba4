//! smcd scenario image for `x86_64-unknown-none`, booted by QEMU `-kernel`
//! through the PVH entry note (no bootloader).
//!
//! Switches to long mode with 1 GiB identity-mapped, prints through COM1 and
//! exits QEMU through `isa-debug-exit`: QEMU status 33 on pass, 3 on a failed
//! scenario, a panic or a CPU exception. Anything that escapes (a triple
//! fault under `-no-reboot`) makes QEMU exit 0, which the runner must count
//! as failure. On the host
//! this crate is an empty stub so that workspace-wide host builds stay green.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod console;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod rt;

/// Host stub: the image only does something on `x86_64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
