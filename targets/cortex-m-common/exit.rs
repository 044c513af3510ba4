//! Exiting QEMU through semihosting, the same for every Cortex-M image
//! (each `rt.rs` includes this file with `#[path]`).

use cortex_m_semihosting::debug;

/// Exit QEMU: status 0 if `passed`, else 1.
pub(crate) fn exit(passed: bool) -> ! {
    debug::exit(if passed {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}
