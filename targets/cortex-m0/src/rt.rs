//! Runtime: entry, HardFault and panic handlers, the scenario call.
#![allow(unsafe_code)]

use core::fmt::{self, Write};

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::hio;

#[path = "../../cortex-m-common/exit.rs"]
mod exit;
use exit::exit;

/// The failure this build injects (`SMCD_TARGETS_INJECT`).
const INJECT: smcd_scenario::Inject = smcd_scenario::inject!();
/// Name printed in front of every line.
const IMAGE: &str = "smcd cortex-m0";

/// The host's stdout through semihosting; output is dropped if it is unavailable.
struct HostOut;

impl fmt::Write for HostOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        hio::hstdout().map_err(|()| fmt::Error)?.write_str(s)
    }
}

#[entry]
fn main() -> ! {
    if INJECT == smcd_scenario::Inject::Fault {
        cortex_m::asm::udf();
    }
    exit(smcd_scenario::run_and_report(IMAGE, INJECT, &mut HostOut))
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    let _ = writeln!(HostOut, "{IMAGE}: FAIL HardFault at pc={:#x}", ef.pc());
    exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(HostOut, "{IMAGE}: FAIL {info}");
    exit(false)
}
