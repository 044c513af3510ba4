//! Output and exit: the PL011 UART of QEMU virt and semihosting `SYS_EXIT`.
#![allow(unsafe_code)]

use core::fmt;

/// Data register of the PL011 UART (no init needed under QEMU).
const UART_DR: *mut u8 = 0x0900_0000 as *mut u8;
/// Semihosting operation `SYS_EXIT`.
const SYS_EXIT: u64 = 0x18;
/// `ADP_Stopped_ApplicationExit`: exit with the status that follows.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// The UART as a `fmt::Write` sink.
pub(crate) struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: MMIO register of QEMU virt's UART, always mapped; byte writes.
            unsafe { UART_DR.write_volatile(b) };
        }
        Ok(())
    }
}

/// Exit QEMU with `code` (0 = pass).
pub(crate) fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    // SAFETY: the semihosting trap reads the two-word parameter block, which
    // lives on this stack frame for the duration of the call.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("w0") SYS_EXIT as u32,
            in("x1") block.as_ptr(),
            options(nostack)
        );
    }
    loop {
        core::hint::spin_loop();
    }
}
