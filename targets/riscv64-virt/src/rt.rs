//! Runtime: entry, trap and panic handlers, and the scenario call.
#![allow(unsafe_code)]

use core::fmt::Write;

use crate::console::{Uart, exit};

/// The failure this build injects (`SMCD_TARGETS_INJECT`).
const INJECT: smcd_scenario::Inject = smcd_scenario::inject!();
/// Name printed in front of every line.
const IMAGE: &str = "smcd riscv64-virt";
/// Exit status after a CPU trap.
const EXIT_TRAP: u16 = 238;

// Hart 0 only: set the stack, a trap vector that exits QEMU, enable the FPU
// (riscv64gc code may touch f/d registers; FS is off at reset), zero .bss.
core::arch::global_asm!(
    r#"
    .section .text.init, "ax"
    .global _start
_start:
    csrr t0, mhartid
    bnez t0, 2f
    la sp, _stack_top
    la t0, _trap
    csrw mtvec, t0
    li t0, 1 << 13
    csrs mstatus, t0
    la t0, _sbss
    la t1, _ebss
1:
    bgeu t0, t1, 3f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
3:
    call kmain
2:
    wfi
    j 2b

    .balign 4
_trap:
    call trap_handler
"#
);

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    if INJECT == smcd_scenario::Inject::Fault {
        // SAFETY: deliberately illegal instruction; the trap handler exits QEMU.
        unsafe { core::arch::asm!("unimp") };
    }
    let passed = smcd_scenario::run_and_report(IMAGE, INJECT, &mut Uart);
    exit(if passed { 0 } else { 1 })
}

#[unsafe(no_mangle)]
extern "C" fn trap_handler() -> ! {
    let (cause, epc, tval): (usize, usize, usize);
    // SAFETY: reading M-mode CSRs has no side effects.
    unsafe {
        core::arch::asm!("csrr {}, mcause", out(reg) cause);
        core::arch::asm!("csrr {}, mepc", out(reg) epc);
        core::arch::asm!("csrr {}, mtval", out(reg) tval);
    }
    let _ = writeln!(
        Uart,
        "{IMAGE}: FAIL trap mcause={cause:#x} mepc={epc:#x} mtval={tval:#x}"
    );
    exit(EXIT_TRAP)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "{IMAGE}: FAIL {info}");
    exit(1)
}
