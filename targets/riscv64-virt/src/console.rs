//! Output and exit: the ns16550a UART and the SiFive test finisher of QEMU virt.
#![allow(unsafe_code)]

use core::fmt;

/// Transmit holding register of the ns16550a UART (no init needed under QEMU).
const UART_THR: *mut u8 = 0x1000_0000 as *mut u8;
/// SiFive test finisher ("sifive,test0").
const FINISHER: *mut u32 = 0x0010_0000 as *mut u32;
/// Finisher command: exit QEMU with status 0.
const FINISHER_PASS: u32 = 0x5555;
/// Finisher command: exit QEMU with status `code` (`code << 16 | FINISHER_FAIL`).
const FINISHER_FAIL: u32 = 0x3333;

/// The UART as a `fmt::Write` sink.
pub(crate) struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: MMIO register of QEMU virt's UART, always mapped; byte writes.
            unsafe { UART_THR.write_volatile(b) };
        }
        Ok(())
    }
}

/// Exit QEMU with `code` (0 = pass).
pub(crate) fn exit(code: u16) -> ! {
    let cmd = if code == 0 {
        FINISHER_PASS
    } else {
        (u32::from(code) << 16) | FINISHER_FAIL
    };
    // SAFETY: MMIO register of QEMU virt's test finisher, always mapped.
    unsafe { FINISHER.write_volatile(cmd) };
    loop {
        core::hint::spin_loop();
    }
}
