//! Command-line syntax of `smcd`.

use clap::{Parser, Subcommand};

/// SMC-D (Shared Memory Communications - Direct) tools.
#[derive(Debug, Parser)]
#[command(name = "smcd", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// CLC handshake messages (Proposal, Accept, Confirm, Decline).
    Clc {
        #[command(subcommand)]
        command: ClcCommand,
    },
}

/// `smcd clc ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ClcCommand {
    /// Decode one CLC message from hex and print its fields.
    #[command(after_help = DECODE_HELP)]
    Decode {
        /// Print one JSON object with the protocol's field names as keys.
        #[arg(long)]
        json: bool,
        /// The message as hex (whitespace and `#` comments allowed), or `-`
        /// to read it from stdin.
        #[arg(value_name = "HEX | -")]
        input: String,
    },
    /// Encode one CLC message from JSON (the schema `decode --json` prints)
    /// and print it as hex.
    #[command(after_help = ENCODE_HELP)]
    Encode {
        /// The JSON object, or `-` to read it from stdin.
        #[arg(value_name = "JSON | -")]
        input: String,
    },
}

const DECODE_HELP: &str = "\
Examples:
  smcd clc decode 'e2d4c3d9 04 001c 18 0000000000000000 04000000 00000000 e2d4c3d9'
  smcd clc decode --json - < message.hex

Exit status: 0 when the message is well-formed (a Proposal that a Linux server
would decline still decodes, with \"server_verdict\"), 2 when it is malformed:
the error names the rule, the byte offset and what Linux does.";

const ENCODE_HELP: &str = "\
Example:
  smcd clc decode --json - < message.hex | smcd clc encode -

Keys \"derived\" and \"server_verdict\" are ignored. Exit status 2 names the
offending key when the JSON does not describe a message.";
