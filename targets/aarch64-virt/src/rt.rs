//! Runtime: entry, exception vectors, panic handler, the scenario call.
#![allow(unsafe_code)]

use core::fmt::Write;

use crate::console::{Uart, exit};

/// The failure this build injects (`SMCD_TARGETS_INJECT`).
const INJECT: smcd_scenario::Inject = smcd_scenario::inject!();
/// Name printed in front of every line.
const IMAGE: &str = "smcd aarch64-virt";
/// Exit status after a CPU exception.
const EXIT_EXCEPTION: u32 = 238;

// Core 0 only: set the stack, enable FP/SIMD (memcpy and formatting use it),
// install a vector table whose every entry exits QEMU, zero .bss.
core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mrs x0, mpidr_el1
    and x0, x0, #0xff
    cbnz x0, 2f
    ldr x0, =_stack_top
    mov sp, x0
    mov x0, #(3 << 20)
    msr cpacr_el1, x0
    ldr x0, =_vectors
    msr vbar_el1, x0
    isb
    ldr x0, =_sbss
    ldr x1, =_ebss
1:
    cmp x0, x1
    b.hs 3f
    str xzr, [x0], #8
    b 1b
3:
    bl kmain
2:
    wfe
    b 2b

    .section .text.vectors, "ax"
    .balign 0x800
_vectors:
    .rept 16
    .balign 0x80
    b exception_handler
    .endr
"#
);

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    if INJECT == smcd_scenario::Inject::Fault {
        // SAFETY: deliberately undefined instruction; the vector table exits QEMU.
        unsafe { core::arch::asm!("udf #0") };
    }
    let passed = smcd_scenario::run_and_report(IMAGE, INJECT, &mut Uart);
    exit(if passed { 0 } else { 1 })
}

#[unsafe(no_mangle)]
extern "C" fn exception_handler() -> ! {
    let (esr, elr, far): (u64, u64, u64);
    // SAFETY: reading EL1 system registers has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", out(reg) esr);
        core::arch::asm!("mrs {}, elr_el1", out(reg) elr);
        core::arch::asm!("mrs {}, far_el1", out(reg) far);
    }
    let _ = writeln!(
        Uart,
        "{IMAGE}: FAIL exception esr={esr:#x} elr={elr:#x} far={far:#x}"
    );
    exit(EXIT_EXCEPTION)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "{IMAGE}: FAIL {info}");
    exit(1)
}
