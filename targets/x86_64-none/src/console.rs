//! Output and exit: COM1 and QEMU's `isa-debug-exit` device.
#![allow(unsafe_code)]

use core::fmt;

/// I/O port of COM1's transmit register (no init needed under QEMU).
const COM1: u16 = 0x3f8;
/// I/O port of `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.
const DEBUG_EXIT: u16 = 0xf4;
/// Value written on pass: QEMU exits with `(0x10 << 1) | 1` = 33.
const EXIT_PASS: u32 = 0x10;
/// Value written on failure: QEMU exits with 3.
const EXIT_FAIL: u32 = 0x01;

/// COM1 as a `fmt::Write` sink.
pub(crate) struct Com1;

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: a byte to COM1's transmit port; no memory is touched.
            unsafe { core::arch::asm!("out dx, al", in("dx") COM1, in("al") b) };
        }
        Ok(())
    }
}

/// Exit QEMU: status 33 if `passed`, else 3.
pub(crate) fn exit(passed: bool) -> ! {
    let v = if passed { EXIT_PASS } else { EXIT_FAIL };
    // SAFETY: a write to the debug-exit port; QEMU terminates.
    unsafe { core::arch::asm!("out dx, eax", in("dx") DEBUG_EXIT, in("eax") v) };
    loop {
        core::hint::spin_loop();
    }
}
