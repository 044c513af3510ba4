//! Command-line syntax of `smcd`.

use clap::{Args, Parser, Subcommand};

use crate::net::{Addr, parse_bytes, parse_dmb_size};

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
    /// Echo every byte of every connection back until EOF (SMC-D with smcd
    /// clients on this host, plain TCP with everyone else).
    #[command(after_help = ECHO_SERVER_HELP)]
    EchoServer(EchoServerArgs),
    /// Send a byte stream through an echo server, verify every byte of the
    /// echo and print the transport and the throughput.
    #[command(after_help = ECHO_CLIENT_HELP)]
    EchoClient(EchoClientArgs),
    /// Connect to ADDR and tell whether the connection uses SMC-D, and if
    /// not, why (like smc-tools' smc_chk).
    #[command(after_help = CHK_HELP)]
    Chk(ChkArgs),
    /// Run an unmodified, dynamically linked program with its TCP
    /// connections over SMC-D where the peer runs smcd too (the preload
    /// shim, like smc-tools' smc_run).
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
}

/// `smcd run`
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) smc: SmcArgs,
    /// When CMD and every process it started have exited, write one JSON
    /// object with the counters of all of them to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) stats: Option<std::path::PathBuf>,
    /// The program and its arguments.
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) cmd: Vec<std::ffi::OsString>,
}

const RUN_HELP: &str = "\
Examples:
  smcd run -- nginx -g 'daemon off;'
  smcd run --stats /tmp/wrk.json -- wrk http://127.0.0.1:8080/

CMD starts with libsmcd_preload.so preloaded (the one next to the smcd binary,
or SMCD_PRELOAD_LIB). Its TCP connections to and from peers that also run
smcd on this host move their bytes through shared memory; all others stay
plain TCP. Options reach the shim as SMCD_NOCOPY and SMCD_DMB_SIZE.

Exit status: CMD's (128+N when a signal N ended it); 2 when CMD could not be
started or the shim was not found.";

/// SMC-D options shared by the networking commands (on top of the `SMCD_*`
/// environment variables).
#[derive(Debug, Args)]
pub(crate) struct SmcArgs {
    /// Send in copy mode: data is copied into the peer's buffer through the
    /// device.
    #[arg(long, conflicts_with = "nocopy")]
    pub(crate) copy: bool,
    /// Send in nocopy mode: data is written once, straight into the peer's
    /// mapped buffer (the default unless SMCD_NOCOPY=0).
    #[arg(long)]
    pub(crate) nocopy: bool,
    /// Size of each receive buffer (DMB), 16K … 1M, rounded up to a size
    /// class [default: SMCD_DMB_SIZE or 64K].
    #[arg(long, value_name = "N", value_parser = parse_dmb_size)]
    pub(crate) dmb_size: Option<usize>,
}

/// `smcd echo-server`
#[derive(Debug, Args)]
pub(crate) struct EchoServerArgs {
    /// Address to listen on: HOST:PORT (port 0 picks one), or unix:PATH for
    /// a Unix-domain socket (for comparison).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Addr,
    #[command(flatten)]
    pub(crate) smc: SmcArgs,
}

/// `smcd echo-client`
#[derive(Debug, Args)]
pub(crate) struct EchoClientArgs {
    /// The echo server: HOST:PORT, or unix:PATH.
    #[arg(value_name = "ADDR")]
    pub(crate) addr: Addr,
    /// Bytes to send on each stream (suffixes K, M, G, T: powers of 1024).
    #[arg(long, value_name = "N", default_value = "256M", value_parser = parse_bytes)]
    pub(crate) bytes: u64,
    /// Streams to run at once, each its own connection.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_streams)]
    pub(crate) streams: usize,
    /// Seconds each connect (TCP connect and SMC-D handshake) may take.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub(crate) timeout: f64,
    #[command(flatten)]
    pub(crate) smc: SmcArgs,
}

/// `smcd chk`
#[derive(Debug, Args)]
pub(crate) struct ChkArgs {
    /// The server: HOST:PORT.
    #[arg(value_name = "ADDR")]
    pub(crate) addr: String,
    /// Seconds the connect (TCP connect and SMC-D handshake) may take.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    pub(crate) timeout: f64,
    #[command(flatten)]
    pub(crate) smc: SmcArgs,
}

/// A stream count, 1 … 1000.
fn parse_streams(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a stream count in 1 … 1000")),
    }
}

/// A positive number of seconds.
fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
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

const ECHO_SERVER_HELP: &str = "\
Prints \"listening on ADDR\" on stdout once it listens (the actual port when
PORT is 0), then serves every connection on its own thread until killed. On
stderr, one line per connection when its transport is known
(\"peer ADDR transport smc-d v2 nocopy ...\" or \"peer ADDR transport tcp (...)\")
and one when it ends (\"peer ADDR closed: N bytes echoed\" or
\"peer ADDR error after N bytes: ...\").

SMC-D is used with smcd clients on this host; any other client (nc, curl, a
plain socket) gets plain TCP, byte for byte. SMCD_DISABLE=1 serves plain TCP
only. The SMCD_* variables are described in docs/cli.md.

Examples:
  smcd echo-server --listen 127.0.0.1:7000
  smcd echo-server --listen 127.0.0.1:7000 --copy --dmb-size 256K

Exit status: runs until killed; 2 when it cannot listen or on bad arguments.";

const ECHO_CLIENT_HELP: &str = "\
Connects (each of --streams connections in turn) and prints the transport as
its first stdout line, right after the handshake:
  transport: smc-d v2 nocopy dmb 65536/65536 eid SMCD-LOOPBACK peer ...
  transport: tcp (reason 0x03030001: NOSMCDDEV, no SMC-D device (declined by the peer))
  transport: tcp (no smcd listener on this host for that address)
(with several streams, \"stream I transport: ...\" lines and a \"streams:\" count
follow). Then it sends --bytes of a deterministic pseudo-random pattern on each
stream while a second thread per stream reads the echo back, and prints
  echoed: N bytes each way in S s: X GB/s each way     (GB = 10^9 bytes)
  verify: ok, checksum 0x...
The echo is checksummed byte for byte against the pattern sent; its length
must equal what was sent. The default of 256M takes well under a second over
SMC-D in a release build; use --bytes 1G for a benchmark.

Examples:
  smcd echo-client 127.0.0.1:7000 --bytes 1G
  smcd echo-client 127.0.0.1:7000 --streams 100 --bytes 1M
  SMCD_DISABLE=1 smcd echo-client 127.0.0.1:7000    # plain TCP, for comparison

Exit status: 0 when every byte came back unchanged on every stream; 1 when the
echo differs (bytes or length); 2 on any other failure: connect or handshake,
an I/O error, a peer that died mid-transfer, bad arguments.";

const CHK_HELP: &str = "\
Connects to ADDR as an smcd client, completes the handshake and prints one line,
  transport: smc-d v2 nocopy dmb 65536/65536 eid SMCD-LOOPBACK peer ...
or, when the connection carries plain TCP, why:
  transport: tcp (no smcd listener on this host for that address)
  transport: tcp (reason 0x03030001: NOSMCDDEV, no SMC-D device (declined by the peer))
then closes the connection without sending data.

Example:
  smcd chk 127.0.0.1:7000 && echo SMC-D

Exit status: 0 when SMC-D is used, 1 when plain TCP is used, 2 on an error
(connect refused or timed out, handshake failed, bad arguments).";
