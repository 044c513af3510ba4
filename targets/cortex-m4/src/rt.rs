//! Runtime: entry, HardFault and panic handlers, defmt logger, the scenario call.
#![allow(unsafe_code)]

use cortex_m_rt::{ExceptionFrame, entry, exception};
use defmt_semihosting as _;

#[path = "../../cortex-m-common/exit.rs"]
mod exit;
use exit::exit;

#[entry]
fn main() -> ! {
    if cfg!(feature = "baseline") {
        defmt::println!("smcd cortex-m4: baseline runtime only");
        exit(true)
    }
    run()
}

#[cfg(not(feature = "baseline"))]
fn run() -> ! {
    use smcd_scenario::{Failure, Inject, run, take_arena};
    const INJECT: Inject = smcd_scenario::inject!();
    if INJECT == Inject::Fault {
        cortex_m::asm::udf();
    }
    match take_arena()
        .ok_or(Failure::ArenaTaken)
        .and_then(|arena| run(arena, INJECT))
    {
        Ok(summary) => {
            defmt::println!("smcd cortex-m4: PASS {}", summary);
            exit(true)
        }
        Err(failure) => {
            defmt::error!("smcd cortex-m4: FAIL {}", failure);
            exit(false)
        }
    }
}

#[cfg(feature = "baseline")]
fn run() -> ! {
    exit(true)
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    defmt::error!("smcd cortex-m4: FAIL HardFault at pc={=u32:#x}", ef.pc());
    exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("smcd cortex-m4: FAIL {}", defmt::Display2Format(info));
    exit(false)
}
