//! In-process SMC-D echo over the loopback device, copy mode vs nocopy mode.
//!
//! Two threads share one `LoopbackDevice` (DMB memory from the heap): an echo
//! server and a client. They run the CLC handshake over an in-memory pipe
//! standing in for TCP, then move the payload through the DMBs. The client
//! sends a deterministic pseudo-random stream and, at the same time, reads
//! the echo back; the server checksums what it receives and the client
//! checksums the echo, and both must match the checksum of the stream sent.
//!
//! Run: `cargo run --release -p examples --example inproc_echo [MIB]`
//! (default 1024 MiB = 1 GiB each way, i.e. 2 GiB through the device per
//! mode). GB/s are 10⁹ bytes per second of one direction.
//!
//! Both modes run the same application code (`send`/`recv`). Copy mode
//! writes the peer's ring through the device's `move_data`; nocopy mode
//! writes it directly through the attached peer DMB. smcd's copy mode has no
//! intermediate send buffer (each byte is copied once in both modes), so the
//! two are expected to be close; Linux's copy mode copies twice.

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use examples::checksum::Checksum;
use examples::delay::StdDelay;
use examples::payload::{POOL_BYTES, Payload};
use rand::SeedableRng;
use rand::rngs::StdRng;
use smcd_core::blocking::Blocking;
use smcd_core::clc::{ClcConfig, ClcDevice, Devices, Established, LinkGroups};
use smcd_core::conn::SendMode;
use smcd_core::endpoint::{EndpointError, Host, Pipe, PipeEnd, Transport};
use smcd_core::ops::SmcdOps;
use smcd_lo::copy_only::CopyOnly;
use smcd_lo::{HeapMemory, LoopbackDevice, NoDoorbell};

type BoxError = Box<dyn Error + Send + Sync>;

/// The loopback device with heap DMBs (default DMB limit).
type Loopback = LoopbackDevice<HeapMemory, StdRng>;

/// A fresh loopback device with a random GID.
fn loopback() -> Loopback {
    Loopback::new(HeapMemory, StdRng::from_os_rng(), NoDoorbell)
}

/// Default payload per direction, in MiB.
const DEFAULT_MIB: u64 = 1024;
/// DMB size of each side (the largest SMC-D size).
const DMB_BYTES: usize = 1 << 20;
/// Most bytes handed to one `send` call.
const SEND_CHUNK_BYTES: usize = 1 << 20;
/// Receive buffer of either side.
const RECV_BUF_BYTES: usize = 256 << 10;
/// Seed of the payload stream.
const PAYLOAD_SEED: u64 = 0x5343_442d_4543_484f;
/// Capacity of the in-memory "TCP" pipe (carries only CLC messages here).
const PIPE_BYTES: usize = 1024;

/// One measured run.
struct Run {
    mode: &'static str,
    transport: String,
    elapsed: Duration,
}

fn main() -> Result<(), BoxError> {
    let mib = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse::<u64>()
            .map_err(|e| format!("MIB {arg:?}: {e}"))?,
        None => DEFAULT_MIB,
    };
    let bytes = mib << 20;
    let payload = Payload::new(PAYLOAD_SEED, POOL_BYTES);
    let expected = stream_checksum(&payload, bytes);
    println!(
        "smcd inproc_echo: {bytes} bytes ({mib} MiB) each way, {} bytes through the device per mode; \
         2 threads (echo server, client), checksum {expected:#018x}",
        2 * bytes
    );

    let copy = run("copy", &CopyOnly(loopback()), &payload, bytes, expected)?;
    let nocopy = run("nocopy", &loopback(), &payload, bytes, expected)?;

    for r in [&copy, &nocopy] {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{:<6}  {}\n        {bytes} bytes each way in {secs:.3} s = {:.2} GB/s each way ({:.2} GB/s total), \
             checksums verified on both receiving sides",
            r.mode,
            r.transport,
            gbps(bytes, r.elapsed),
            gbps(2 * bytes, r.elapsed),
        );
    }
    println!(
        "nocopy / copy throughput ratio: {:.2}",
        copy.elapsed.as_secs_f64() / nocopy.elapsed.as_secs_f64()
    );
    Ok(())
}

fn gbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

/// The checksum of the first `bytes` bytes of the payload stream.
fn stream_checksum(payload: &Payload, bytes: u64) -> u64 {
    let mut sum = Checksum::new();
    let mut at = 0;
    while at < bytes {
        let piece = payload.at(at, clamp(bytes - at, SEND_CHUNK_BYTES));
        sum.update(piece);
        at += piece.len() as u64;
    }
    sum.value()
}

fn clamp(left: u64, max: usize) -> usize {
    usize::try_from(left).map_or(max, |l| l.min(max))
}

/// One echo run on `dev`: a server thread and the client on this thread.
fn run<D: SmcdOps + Sync>(
    mode: &'static str,
    dev: &D,
    payload: &Payload,
    bytes: u64,
    expected: u64,
) -> Result<Run, BoxError> {
    let config = ClcConfig::new()
        .with_ueid("SMCD-EXAMPLE")?
        .with_hostname("inproc-echo")
        .with_dmb_size(DMB_BYTES);
    let groups = LinkGroups::<4>::new();
    let pipe = Pipe::<PIPE_BYTES>::new();
    let (client_end, server_end) = pipe.ends();
    thread::scope(|s| {
        let server = s.spawn(|| serve(dev, &config, &groups, server_end));
        let client = client(dev, &config, &groups, client_end, payload, bytes);
        let served = server.join().map_err(|_| "server thread panicked")?;
        let (received, sum) = served?;
        let (transport, elapsed, echo_sum) = client?;
        if received != bytes || sum != expected {
            return Err(format!(
                "{mode}: server received {received} bytes with checksum {sum:#018x}, \
                 expected {bytes} with {expected:#018x}"
            )
            .into());
        }
        if echo_sum != expected {
            return Err(format!(
                "{mode}: echo checksum {echo_sum:#018x}, expected {expected:#018x}"
            )
            .into());
        }
        Ok(Run {
            mode,
            transport,
            elapsed,
        })
    })
}

/// Host context for one side; built in the thread that uses it (the device
/// list holds `&dyn ClcDevice`, which is not `Send`).
fn with_host<D: SmcdOps, R>(
    dev: &D,
    config: &ClcConfig,
    groups: &LinkGroups<4>,
    f: impl FnOnce(Host<'_, D>) -> R,
) -> R {
    let list: [&dyn ClcDevice; 1] = [dev];
    f(Host::new(config, Devices::new(&list), groups, dev))
}

/// Echo everything back until EOF; returns bytes received and their checksum.
fn serve<D: SmcdOps>(
    dev: &D,
    config: &ClcConfig,
    groups: &LinkGroups<4>,
    end: PipeEnd<'_, PIPE_BYTES>,
) -> Result<(u64, u64), BoxError> {
    with_host(dev, config, groups, |host| {
        let mut server = Blocking::accept(host, end, StdDelay)?;
        describe(&server.transport())?;
        let mut buf = vec![0u8; RECV_BUF_BYTES];
        let (mut received, mut sum) = (0u64, Checksum::new());
        loop {
            let n = server.recv(&mut buf)?;
            if n == 0 {
                break;
            }
            sum.update(&buf[..n]);
            received += n as u64;
            server.send_all(&buf[..n])?;
        }
        server.close()?;
        Ok((received, sum.value()))
    })
}

/// Send the payload and read the echo at the same time; returns the
/// transport, the time from the first byte sent to the last byte echoed, and
/// the echo's checksum.
fn client<D: SmcdOps>(
    dev: &D,
    config: &ClcConfig,
    groups: &LinkGroups<4>,
    end: PipeEnd<'_, PIPE_BYTES>,
    payload: &Payload,
    bytes: u64,
) -> Result<(String, Duration, u64), BoxError> {
    with_host(dev, config, groups, |host| {
        let mut client = Blocking::connect(host, end, StdDelay)?;
        let transport = describe(&client.transport())?;
        let mut buf = vec![0u8; RECV_BUF_BYTES];
        let (mut sent, mut echoed, mut sum) = (0u64, 0u64, Checksum::new());
        let start = Instant::now();
        while echoed < bytes {
            let mut progressed = false;
            let ep = client.endpoint_mut();
            if sent < bytes {
                match ep.send(payload.at(sent, clamp(bytes - sent, SEND_CHUNK_BYTES))) {
                    Ok(n) => {
                        sent += n as u64;
                        progressed = true;
                    }
                    Err(EndpointError::WouldBlock) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match ep.recv(&mut buf) {
                Ok(0) => return Err(format!("EOF after {echoed} echoed bytes").into()),
                Ok(n) => {
                    sum.update(&buf[..n]);
                    echoed += n as u64;
                    progressed = true;
                }
                Err(EndpointError::WouldBlock) => {}
                Err(e) => return Err(e.into()),
            }
            client.wait(progressed)?;
        }
        let elapsed = start.elapsed();
        if !client.close()? {
            return Err("the server did not close in time".into());
        }
        Ok((transport, elapsed, sum.value()))
    })
}

/// A one-line description of an SMC-D transport; anything else is an error
/// (this example is about SMC-D).
fn describe(t: &Transport) -> Result<String, BoxError> {
    let Transport::SmcD(e) = t else {
        return Err(format!("not SMC-D: {t:?}").into());
    };
    Ok(smcd_line(e))
}

fn smcd_line(e: &Established) -> String {
    let mode = match e.mode {
        SendMode::Copy => "copy (move_data)",
        SendMode::NoCopy(_) => "nocopy (peer DMB attached)",
    };
    format!(
        "SMC-D v{}.{} over loopback device CHID {:#06x} (peer GID {:032x}), DMB {} KiB own / {} KiB peer, \
         mode {mode}, EID {:?}",
        e.version,
        e.release,
        e.chid.0,
        e.peer_gid.as_u128(),
        e.dmb.mem.len() >> 10,
        e.peer_dmb_size >> 10,
        String::from_utf8_lossy(e.eid.trimmed()),
    )
}
