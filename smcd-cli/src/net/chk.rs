//! `smcd chk`: does a connection to ADDR use SMC-D, and if not, why.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use super::{Addr, Conn, EXIT_ERROR};
use crate::args::ChkArgs;
use crate::report;

/// Exit status when the connection carries plain TCP.
const EXIT_TCP: u8 = 1;

pub(crate) fn run(args: &ChkArgs) -> ExitCode {
    let addr = Addr::Tcp(args.addr.clone());
    let timeout = Duration::from_secs_f64(args.timeout);
    let conn = match Conn::connect(&args.smc.config(), &addr, timeout) {
        Ok(c) => c,
        Err(e) => {
            report(&format!("error: {}: connect: {e}", args.addr));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let t = match conn.transport() {
        Ok(t) => t,
        Err(e) => {
            report(&format!("error: {}: handshake: {e}", args.addr));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    if writeln!(io::stdout(), "transport: {t}").is_err() {
        return ExitCode::from(EXIT_ERROR);
    }
    if conn.is_smcd() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_TCP)
    }
}
