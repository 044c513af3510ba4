//! Command-line syntax of `smcd`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench::peer::Role;
use crate::bench::{Transport, Wait, Workload};
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
    /// Measure message rate, latency, throughput, connection rate and
    /// fan-in over TCP, Unix sockets, SMC-D (copy, nocopy) and a raw
    /// shared-memory ring, each endpoint in its own process, and print the
    /// figures with their ratio to TCP.
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// One endpoint process of a `smcd bench` run (started by `smcd bench`).
    #[command(hide = true)]
    BenchPeer(PeerArgs),
    /// List the live smcd connections of every process on this host (API
    /// programs and programs under `smcd run`), like smc-tools' smcss.
    #[command(after_help = SS_HELP)]
    Ss(SsArgs),
    /// Sum the counters of every live smcd process on this host.
    #[command(after_help = STATS_HELP)]
    Stats(StatsArgs),
}

/// `smcd ss`
#[derive(Debug, Args)]
pub(crate) struct SsArgs {
    /// Also list connections that are plain TCP (fallbacks, plain peers);
    /// without it they are only counted.
    #[arg(long, short = 'a')]
    pub(crate) all: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

const SS_HELP: &str = "\
Columns:
  PID, COMMAND  the process (its /proc comm) that holds the connection
  LOCAL, PEER   the TCP connection's addresses
  TRANSPORT     smc-d-copy / smc-d-nocopy (bytes in shared memory), tcp
                (with --all; REASON says why), pending (CLC handshake
                running), failed, busy (a call held it for the whole query)
  STATE         SMC-D: the close state (active, peer-close-wait-1, ...,
                app-close-wait-1, ..., closed); handshaking; established
                (tcp)
  SENT, RECV    application bytes over SMC-D so far (tcp: -, see ss -ti)
  REASON        tcp only: the decline code (0x...) or no-smcd-listener,
                disabled, plain-client

Processes are found by their device sockets (@smcd/dev/... in
/proc/net/unix, or SMCD_RENDEZVOUS_DIR). Only processes of your uid answer
(all of them for root). A process appears once it made its first SMC
connection or listener; one whose connections are all plain TCP to
non-smcd peers may not have a device and is not seen.

Exit status: 0 (also when nothing is found); 1 when stdout fails.";

/// `smcd stats`
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Print one JSON object (the keys of `smcd run --stats`) instead of
    /// the table.
    #[arg(long)]
    pub(crate) json: bool,
}

const STATS_HELP: &str = "\
Rows (JSON keys as in smcd run --stats):
  connections       connections by transport since each live process started
                    (smc-d-copy, smc-d-nocopy, tcp)
  fallbacks         of those, TCP after a Decline, by Linux reason code
  handshakes        SMC-D handshakes by role (client/server) and CLC version
  bytes_sent/_received  application bytes of all their streams
  buffer_full_waits writes that waited for room in the peer's buffer
  dmbs_in_use       DMBs (receive buffers) registered now
  live_connections  connections open now, by transport (as smcd ss lists)
  processes         processes that answered; skipped: device sockets that
                    did not (gone, stopped, another user, older smcd)

Counters of processes that exited are gone (smcd run --stats keeps those).";

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

/// `smcd bench`
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Instead: the seed's table with the seed's tools (sockperf, iperf3,
    /// nginx + wrk, redis-benchmark), TCP against both sides under
    /// `smcd run`; installs missing Debian packages when run as root.
    #[arg(long, conflicts_with_all = ["only", "transports", "sweep", "pin", "plot"])]
    pub(crate) apps: bool,
    /// About 0.3 s per run (the whole default plan in well under 30 s).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Run only these workloads (repeat the option or give a comma list).
    #[arg(long, value_name = "WORKLOAD", value_enum, value_delimiter = ',')]
    pub(crate) only: Vec<Workload>,
    /// The transports to run, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_enum,
        value_delimiter = ',',
        default_value = "tcp,uds,smc-d-copy,smc-d-nocopy,raw"
    )]
    pub(crate) transports: Vec<Transport>,
    /// Also run throughput and latency for message sizes 64 B … 1 MiB.
    #[arg(long)]
    pub(crate) sweep: bool,
    /// Pin the server process to CPU 0 and the client process to CPU 1.
    #[arg(long)]
    pub(crate) pin: bool,
    /// How a blocked SMC-D call waits.
    #[arg(long, value_name = "POLICY", value_enum, default_value = "adaptive")]
    pub(crate) wait: Wait,
    /// Size of each SMC-D receive buffer (DMB), 16K … 1M.
    #[arg(long, value_name = "N", default_value = "1M", value_parser = parse_dmb_size)]
    pub(crate) dmb_size: usize,
    /// Seconds measured per run [default: 2, with --quick 0.3].
    #[arg(long, value_name = "SECS", value_parser = parse_run_secs, conflicts_with = "quick")]
    pub(crate) duration: Option<f64>,
    /// Also draw the results into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `smcd bench-peer` (hidden; its arguments are written by `smcd bench`)
#[derive(Debug, Args)]
pub(crate) struct PeerArgs {
    #[arg(value_enum)]
    pub(crate) role: Role,
    #[arg(long, value_enum)]
    pub(crate) workload: Workload,
    #[arg(long, value_enum)]
    pub(crate) transport: Transport,
    /// Message or write size in bytes.
    #[arg(long, value_parser = parse_size)]
    pub(crate) size: usize,
    #[arg(long, value_parser = parse_dmb_size)]
    pub(crate) dmb_size: usize,
    #[arg(long, value_enum)]
    pub(crate) wait: Wait,
    /// Pin this process to this CPU.
    #[arg(long)]
    pub(crate) cpu: Option<usize>,
    /// Client: the server's address.
    #[arg(long)]
    pub(crate) addr: Option<String>,
    /// Client: seconds measured.
    #[arg(long, default_value = "1")]
    pub(crate) duration: f64,
    /// Client: seconds of warm-up before (ping-pong and connect).
    #[arg(long, default_value = "0")]
    pub(crate) warmup: f64,
    /// Server over uds: the directory of the socket.
    #[arg(long)]
    pub(crate) uds_dir: Option<PathBuf>,
}

/// Seconds per bench run: (0, 600].
fn parse_run_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 600.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 600]")),
    }
}

/// A message size: 1 byte … 16 MiB.
fn parse_size(s: &str) -> Result<usize, String> {
    match parse_bytes(s)? {
        n @ 1..=0x100_0000 => usize::try_from(n).map_err(|_| "too large".into()),
        n => Err(format!("{n} is not a message size in 1 … 16M")),
    }
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

const BENCH_HELP: &str = "\
Each run is two processes of this executable, a server and a client (a
hidden subcommand), one run after the other; this process only starts them,
collects the client's figures and prints them. Servers listen on 127.0.0.1.

Workloads (--only):
  msg-rate    100 B request, 100 B response, one at a time: round trips/s
  latency     14 B ping-pong, every round trip timed: median, p99, p99.9 (us)
  throughput  64000 B writes for the duration, then EOF; the receiver counts
              the bytes and sends the count back: MB/s (1e6 B/s) received
  connect     connect, one 100 B round trip, close: connections/s
  fan-in      64 connections (a thread each) streaming 64000 B writes to one
              server (a thread per connection): MB/s of all together
  --sweep     also throughput and latency at 64 B, 256, 1K, 4K, 16K, 64K,
              256K and 1 MiB (rows sweep-throughput, sweep-latency)
msg-rate, latency and connect run a warm-up (a tenth of the duration, at
most 0.2 s) before the measurement.

Transports (--transports):
  tcp           127.0.0.1, TCP_NODELAY on both ends, blocking sockets
  uds           Unix-domain stream socket in a private temporary directory
  smc-d-copy    smcd-std SMC-D, copy mode (the sender copies through the
                device); the receiver read()s into a 64 KiB buffer
  smc-d-nocopy  smcd-std SMC-D, nocopy mode (the sender writes the peer's
                buffer in place); the throughput receiver reads in place
  raw           a raw shared-memory ring that always spins: the reference of
                what shared memory allows (msg-rate, latency, throughput)
A run over smc-d-* whose connection falls back to TCP is an error. The
throughput receivers of tcp, uds and smc-d-copy read() into a 64 KiB buffer;
those of smc-d-nocopy and raw read the bytes in place, loading one byte of
every 64-byte cache line.

Options:
  --wait spin|park|adaptive  how a blocked SMC-D call waits: spin forever,
      park on the doorbell at once, or smcd-std's default (spin up to 50 us,
      adapting, then park); tcp and uds block in the kernel, raw spins
  --dmb-size N   SMC-D receive buffer size, 16K ... 1M (default 1M)
  --pin          server process on CPU 0, client process on CPU 1
  --duration S   seconds measured per run (default 2: the default plan of 23
                 runs takes well under a minute); --quick: 0.3 s
  --plot F.svg   bar chart of the ratios to TCP (and the sweep curves)
  --json         {\"host\": {...}, \"results\": [{\"workload\", \"transport\",
                 \"size\", \"unit\", \"value\", \"p99\", \"p999\", \"ratio_to_tcp\",
                 \"cpu_s\", ...}], \"skipped\": [...]} instead of the table

Output: the host (CPU, online cores, kernel, load), the settings, then one
row per run: value (round trips/s, median us, MB/s, connections/s, MB/s),
p99 and p99.9 (latency), x tcp (value over TCP's in this run; for latency
below 1 is better) and the CPU seconds of both processes. A progress bar is
drawn on stderr when it is a terminal.

Examples:
  smcd bench
  smcd bench --quick --json
  smcd bench --only latency,msg-rate --transports tcp,smc-d-nocopy --wait spin --pin
  smcd bench --sweep --plot bench.svg

Exit status: 0 when every run succeeded; 1 when a run failed (a peer
process failed, hung for more than 30 s, or an SMC-D connection fell back to
TCP); 2 on bad arguments.";
