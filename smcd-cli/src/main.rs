//! The `smcd` command: tools around SMC-D.
//!
//! `smcd clc decode` and `smcd clc encode` translate CLC handshake messages
//! between bytes (as hex) and the JSON schema of the protocol's field names.
//! `smcd echo-server`, `smcd echo-client` and `smcd chk` run SMC-D between
//! processes of this host through `smcd-std`; `smcd bench` measures them
//! against TCP, Unix sockets and a raw shared-memory ring.
//!
//! Exit status of `smcd clc`: 0 on success, 2 on input that is not valid (bad
//! hex, a malformed CLC message, bad JSON), 1 on an I/O failure. The other
//! commands document theirs in their help and in `docs/cli.md`.

mod args;
mod bench;
mod clc;
mod hex;
mod input;
mod net;
mod run;
mod ss;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{ClcCommand, Cli, Command};

/// Exit status for input the command rejects.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status for failures outside the input (I/O).
const EXIT_FAILURE: u8 = 1;

/// A failure of one command, printed as one line on stderr.
#[derive(Debug)]
enum Failure {
    /// The input is not acceptable: exit status 2.
    BadInput(String),
    /// Reading input or writing output failed: exit status 1.
    Io(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Clc { command } => match command {
            ClcCommand::Decode { json, input } => clc::decode::run(&input, json),
            ClcCommand::Encode { input } => clc::encode::run(&input),
        },
        Command::EchoServer(args) => return net::echo_server::run(&args),
        Command::EchoClient(args) => return net::echo_client::run(&args),
        Command::Chk(args) => return net::chk::run(&args),
        Command::Run(args) => return run::run(&args),
        Command::Bench(args) => return bench::run(&args),
        Command::BenchPeer(args) => return bench::peer::run(&args),
        Command::Ss(args) => ss::ss(&args),
        Command::Stats(args) => ss::stats(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (e.g. `smcd ... | head`) is not worth a message.
        Err(Failure::Io(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Io(err)) => {
            report(&format!("error: {err}"));
            ExitCode::from(EXIT_FAILURE)
        }
        Err(Failure::BadInput(line)) => {
            report(&format!("error: {line}"));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Writes one line to stderr, ignoring a closed stderr.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
