//! In-process SMC-D echo over the loopback device, copy mode vs nocopy
//! mode, side by side with TCP over 127.0.0.1 and a Unix-domain socket.
//!
//! Each transport runs the same two-thread echo ([`examples::echo`]): an
//! echo server and a client. The client sends a deterministic pseudo-random
//! stream and, on the same thread, reads the echo back; the server checksums
//! what it receives and the client checksums the echo, and both must match
//! the checksum of the stream sent.
//!
//! SMC-D ([`examples::smc`]): both threads share one `LoopbackDevice` (DMB
//! memory from the heap), run the CLC handshake over an in-memory pipe
//! standing in for TCP, then move the payload through the DMBs. They wait by
//! spinning briefly, then parking; the device's doorbell unparks the owner
//! of the DMB it wrote ([`examples::park`]). The sockets
//! ([`examples::socket`]) are non-blocking and wait the same way, blocking
//! in `poll(2)` instead of parking.
//!
//! Run: `cargo run --release -p examples --example inproc_echo [MIB [ROUNDS]]`
//! (default 1024 MiB = 1 GiB each way, 3 rounds of all four transports;
//! the summary takes each transport's median round). GB/s are 10⁹ bytes per
//! second of one direction.
//!
//! Copy mode writes the peer's ring through the device's `move_data` and
//! reads with `recv` into a buffer; nocopy mode writes the attached peer DMB
//! directly and checksums in place (`recv_with`). smcd's copy mode has no
//! intermediate send buffer (each byte is copied once on the way in, in
//! both modes); Linux's copy mode copies twice.

use std::time::Duration;

use examples::echo::{BoxError, Job};
use examples::park::ParkDoorbell;
use examples::payload::{POOL_BYTES, Payload};
use examples::smc::{self, Setup};
use examples::socket::{self, tcp_pair, uds_pair};
use examples::wait::Waiting;
use rand::SeedableRng;
use rand::rngs::StdRng;
use smcd_core::blocking::BackoffPolicy;
use smcd_core::clc::{ClcConfig, SmcdInfo};
use smcd_core::conn::SendMode;
use smcd_core::ops::SmcdOps;
use smcd_lo::{HeapMemory, LoopbackDevice};

/// The loopback device with heap DMBs, ringing parked owners.
type Loopback = LoopbackDevice<HeapMemory, StdRng, ParkDoorbell>;

/// A fresh loopback device with a random GID.
fn loopback() -> Loopback {
    Loopback::new(HeapMemory, StdRng::from_os_rng(), ParkDoorbell::new())
}

/// Default payload per direction, in MiB.
const DEFAULT_MIB: u64 = 1024;
/// Default rounds of all transports.
const DEFAULT_ROUNDS: u64 = 3;
/// DMB size of each side (the largest SMC-D size).
const DMB_BYTES: usize = 1 << 20;
/// Most bytes handed to one `send` call.
const SEND_CHUNK_BYTES: usize = 1 << 20;
/// Receive buffer of either side (fits the L2 cache with room to spare;
/// 64 KiB … 1 MiB measured, 256 KiB was best or on par for every transport).
const RECV_BUF_BYTES: usize = 256 << 10;
/// Seed of the payload stream.
const PAYLOAD_SEED: u64 = 0x5343_442d_4543_484f;
/// How every transport waits: the driver's default back-off (16 spin
/// rounds, then pauses from 1 µs doubling up to 1 ms), where pauses up to
/// 50 µs spin (yielding) and longer ones park or block in `poll(2)` — about
/// 63 µs of spinning before the first park. On this 2-vCPU VM limits of
/// 20 … 400 µs measured alike; parking at once was slower.
const WAITING: Waiting = Waiting {
    policy: BackoffPolicy::DEFAULT,
    spin_limit: Duration::from_micros(50),
};

/// The transports, in the order they run and print.
const TRANSPORTS: [&str; 4] = ["SMC-D copy", "SMC-D nocopy", "TCP 127.0.0.1", "UDS"];

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mib = number(args.next(), "MIB", DEFAULT_MIB)?;
    let rounds = number(args.next(), "ROUNDS", DEFAULT_ROUNDS)?.max(1);
    let bytes = mib << 20;
    let payload = Payload::new(PAYLOAD_SEED, POOL_BYTES);
    let job = Job::new(&payload, bytes, SEND_CHUNK_BYTES, RECV_BUF_BYTES);
    let config = ClcConfig::empty()
        .with_ueid("SMCD-EXAMPLE")?
        .with_hostname("inproc-echo")
        .with_dmb_size(DMB_BYTES);
    println!(
        "smcd inproc_echo: {bytes} bytes ({mib} MiB) each way per transport and round, \
         {rounds} round(s); 2 threads (echo server, client); checksum {:#018x} \
         verified on both receiving sides",
        job.expected
    );

    let mut times: [Vec<Duration>; 4] = Default::default();
    for round in 1..=rounds {
        let copy_dev = loopback();
        copy_dev.set_nocopy(false);
        let nocopy_dev = loopback();
        let describe = round == 1;
        let runs = [
            run_smc(&copy_dev, copy_dev.doorbell(), &config, &job, describe)?,
            run_smc(&nocopy_dev, nocopy_dev.doorbell(), &config, &job, describe)?,
            socket::echo("TCP", &job, tcp_pair()?, WAITING)?,
            socket::echo("UDS", &job, uds_pair()?, WAITING)?,
        ];
        let line: Vec<String> = TRANSPORTS
            .iter()
            .zip(&runs)
            .map(|(name, t)| format!("{name} {:.2}", gbps(bytes, *t)))
            .collect();
        println!("round {round}: {} GB/s", line.join(", "));
        for (all, t) in times.iter_mut().zip(runs) {
            all.push(t);
        }
    }

    let [copy, nocopy, tcp, uds] = times.map(|mut t| {
        t.sort();
        t[t.len() / 2]
    });
    println!("\nmedian of {rounds} round(s): GB/s each way, and throughput ratios in this run");
    println!(
        "  {:<14} {:>6}  {:>6}  {:>6}",
        "transport", "GB/s", "vs TCP", "vs UDS"
    );
    for (name, t) in TRANSPORTS.iter().zip([copy, nocopy, tcp, uds]) {
        println!(
            "  {name:<14} {:>6.2}  {:>6.2}  {:>6.2}",
            gbps(bytes, t),
            ratio(tcp, t),
            ratio(uds, t)
        );
    }
    println!("  nocopy / copy: {:.2}", ratio(copy, nocopy));
    Ok(())
}

/// The SMC-D echo on `dev`; prints the transport when asked to.
fn run_smc<D: SmcdOps + Sync>(
    dev: &D,
    doorbell: &ParkDoorbell,
    config: &ClcConfig,
    job: &Job<'_>,
    describe: bool,
) -> Result<Duration, BoxError> {
    let setup = Setup {
        dev,
        doorbell,
        config,
        waiting: WAITING,
    };
    let (elapsed, info) = smc::echo(&setup, job)?;
    if describe {
        println!("{}", smcd_line(&info));
    }
    Ok(elapsed)
}

fn number(arg: Option<String>, name: &str, default: u64) -> Result<u64, BoxError> {
    match arg {
        Some(a) => a.parse().map_err(|e| format!("{name} {a:?}: {e}").into()),
        None => Ok(default),
    }
}

fn gbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

/// Throughput of the run that took `t` relative to the one that took `base`.
fn ratio(base: Duration, t: Duration) -> f64 {
    base.as_secs_f64() / t.as_secs_f64()
}

fn smcd_line(e: &SmcdInfo) -> String {
    let mode = match e.mode {
        SendMode::Copy => "copy (move_data)",
        SendMode::NoCopy => "nocopy (peer DMB attached)",
    };
    format!(
        "SMC-D v{}.{} over loopback device CHID {:#06x} (peer GID {:032x}), DMB {} KiB own / {} KiB peer, \
         mode {mode}, EID {:?}",
        e.version,
        e.release,
        e.chid.0,
        e.peer_gid.as_u128(),
        e.own_dmb_size >> 10,
        e.peer_dmb_size >> 10,
        String::from_utf8_lossy(e.eid.trimmed()),
    )
}
