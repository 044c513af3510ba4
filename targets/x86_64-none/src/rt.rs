//! Runtime: PVH entry and switch to long mode, panic handler, the scenario call.
#![allow(unsafe_code)]

use core::fmt::Write;

use crate::console::{Com1, exit};

/// The failure this build injects (`SMCD_TARGETS_INJECT`).
const INJECT: smcd_scenario::Inject = smcd_scenario::inject!();
/// Name printed in front of every line.
const IMAGE: &str = "smcd x86_64-none";

// The PVH note (XEN_ELFNOTE_PHYS32_ENTRY = 18) makes QEMU enter `pvh_start`
// in 32-bit protected mode with paging off. Build PML4 -> PDPT -> PD with
// 512 x 2 MiB pages (1 GiB identity map), enable PAE, EFER.LME, paging, load
// a 64-bit GDT, jump to long mode, zero .bss and call `kmain`.
core::arch::global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4, 4, 18
    .asciz "Xen"
    .balign 4
    .long pvh_start

    .section .text.boot, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    movl $pml4, %edi
    movl $(3 * 4096 / 4), %ecx
    xorl %eax, %eax
    rep stosl
    movl $pdpt, %eax
    orl $3, %eax
    movl %eax, pml4
    movl $pd, %eax
    orl $3, %eax
    movl %eax, pdpt
    xorl %ecx, %ecx
1:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, pd(, %ecx, 8)
    incl %ecx
    cmpl $512, %ecx
    jne 1b
    movl $pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $(1 << 5), %eax
    movl %eax, %cr4
    movl $0xC0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    lgdt gdt_ptr
    ljmpl $0x08, $long_mode

    .code64
long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    leaq _stack_top(%rip), %rsp
    leaq _sbss(%rip), %rdi
    leaq _ebss(%rip), %rcx
    subq %rdi, %rcx
    xorl %eax, %eax
    rep stosb
    call kmain
2:
    hlt
    jmp 2b

    .section .rodata.gdt, "a"
    .balign 8
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
gdt_ptr:
    .word gdt_ptr - gdt - 1
    .long gdt

    .section .pagetables, "aw", @nobits
    .balign 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
pd:
    .skip 4096
"#,
    options(att_syntax)
);

/// One 64-bit IDT gate descriptor.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    lo: u64,
    hi: u64,
}

/// The operand of `lidt`.
#[repr(C, packed)]
struct IdtPtr {
    limit: u16,
    base: u64,
}

/// An interrupt gate to `handler` in the 64-bit code segment (selector 0x08).
fn gate(handler: extern "C" fn() -> !) -> Gate {
    let h = handler as usize as u64;
    Gate {
        lo: (h & 0xffff) | (0x08 << 16) | (0x8e << 40) | (((h >> 16) & 0xffff) << 48),
        hi: h >> 32,
    }
}

/// Handler of every CPU exception: report and exit (it never returns, so
/// the interrupt frame on the stack is simply abandoned).
extern "C" fn exception_handler() -> ! {
    let _ = writeln!(Com1, "{IMAGE}: FAIL CPU exception");
    exit(false)
}

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    // The table lives in this frame, which never returns.
    let idt = [gate(exception_handler); 32];
    let ptr = IdtPtr {
        limit: (core::mem::size_of_val(&idt) - 1) as u16,
        base: idt.as_ptr() as u64,
    };
    // SAFETY: `ptr` describes `idt`, which outlives the program (see above).
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack)) };
    if INJECT == smcd_scenario::Inject::Fault {
        // SAFETY: deliberately undefined instruction; the IDT exits QEMU.
        unsafe { core::arch::asm!("ud2") };
    }
    exit(smcd_scenario::run_and_report(IMAGE, INJECT, &mut Com1))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Com1, "{IMAGE}: FAIL {info}");
    exit(false)
}
