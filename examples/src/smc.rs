//! [`SmcLink`]: the echo [`Link`] over an SMC-D endpoint driven by the
//! blocking driver, and [`echo`]: a whole two-thread echo through a
//! loopback device, waking parked threads with a [`ParkDoorbell`].
//!
//! Copy mode uses the plain `send` / `recv` (bytes copied into the caller's
//! buffer, then checksummed). Nocopy mode receives with
//! [`Connection::recv_with`]: the checksum reads the bytes in place in the
//! DMB, and only a server that must echo them copies them out (in the same
//! pass). Sends use the plain `send` in both modes: the bytes come from the
//! caller's buffer either way, and nocopy's `send` already writes them
//! straight into the attached peer DMB.

use std::thread;
use std::time::Duration;

use smcd_core::blocking::{Blocking, Pause};
use smcd_core::clc::{ClcConfig, SmcdInfo};
use smcd_core::conn::{ConnError, Connection, SendMode};
use smcd_core::endpoint::{ByteStream, EndpointError, Host, HostRef, Pipe, PipeEnd, Transport};
use smcd_core::ops::SmcdOps;

use crate::checksum::Checksum;
use crate::echo::{BoxError, Job, Link};
use crate::park::{ParkDoorbell, ParkPause};
use crate::wait::Waiting;

/// Capacity of the in-memory "TCP" pipe (it carries only CLC messages).
const PIPE_BYTES: usize = 1024;

/// Link groups of the host both sides share.
const LINK_GROUPS: usize = 4;

/// The host both sides of an echo share: the setup's configuration, its
/// device (borrowed) and one link-group table.
pub type EchoHost<'a, D> = Host<&'a D, LINK_GROUPS>;

/// An SMC-D connection (the endpoint must have taken SMC-D) as a [`Link`].
#[derive(Debug)]
pub struct SmcLink<H: HostRef, S: ByteStream, P: Pause> {
    driver: Blocking<H, S, P>,
    nocopy: bool,
}

impl<H: HostRef, S: ByteStream, P: Pause> SmcLink<H, S, P> {
    /// Wrap an established driver.
    ///
    /// # Errors
    ///
    /// The endpoint did not take SMC-D.
    pub fn new(driver: Blocking<H, S, P>) -> Result<Self, BoxError> {
        let Transport::SmcD(e) = driver.transport() else {
            return Err(format!("not SMC-D: {:?}", driver.transport()).into());
        };
        Ok(Self {
            driver,
            nocopy: matches!(e.mode, SendMode::NoCopy),
        })
    }

    fn connection(&mut self) -> Result<(&mut Connection, &H::Device), BoxError> {
        self.driver
            .endpoint_mut()
            .connection_mut()
            .ok_or_else(|| "the SMC-D connection is gone".into())
    }
}

/// `Ok(None)` for "nothing there yet".
fn would_block<T>(r: Result<T, EndpointError>) -> Result<Option<T>, BoxError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(EndpointError::WouldBlock) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl<H: HostRef, S: ByteStream, P: Pause> Link for SmcLink<H, S, P> {
    fn send(&mut self, data: &[u8]) -> Result<usize, BoxError> {
        Ok(would_block(self.driver.endpoint_mut().send(data))?.unwrap_or(0))
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        sum: &mut Checksum,
        keep: bool,
    ) -> Result<Option<usize>, BoxError> {
        if !self.nocopy {
            let n = would_block(self.driver.endpoint_mut().recv(buf))?;
            if let Some(n) = n {
                sum.update(buf.get(..n).ok_or("recv overran the buffer")?);
            }
            return Ok(n);
        }
        if keep && buf.is_empty() {
            // `recv_with` would take nothing, which reads as EOF.
            return Err("recv into an empty buffer".into());
        }
        let (conn, dev) = self.connection()?;
        let got = conn.recv_with(dev, |bytes| {
            if keep {
                sum.update_copy(bytes, buf)
            } else {
                sum.update(bytes);
                bytes.len()
            }
        });
        match got {
            Ok(n) => Ok(Some(n)),
            Err(ConnError::WouldBlock) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn wait(&mut self, progressed: bool) -> Result<(), BoxError> {
        Ok(self.driver.wait(progressed)?)
    }
}

/// What both sides of an SMC-D echo share.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a, D> {
    /// The device (a loopback device; [`smcd_lo::LoopbackDevice::set_nocopy`]
    /// picks copy or nocopy mode).
    pub dev: &'a D,
    /// The doorbell the device rings.
    pub doorbell: &'a ParkDoorbell,
    /// CLC configuration of both sides (with a common UEID for SMC-D v2).
    pub config: &'a ClcConfig,
    /// How both sides wait.
    pub waiting: Waiting,
}

/// Run `job` over SMC-D on `setup.dev`: the CLC handshake over an in-memory
/// pipe, then the echo server on a new thread and the client on this one,
/// each parking on its own bell, which the doorbell rings for its DMB. Both
/// sides are endpoints of one [`EchoHost`] on the device. Returns the
/// client's time and what its handshake settled on.
///
/// # Errors
///
/// A side did not get SMC-D or failed, the client's close was not answered,
/// or [`Job::verify`] did not pass.
pub fn echo<D: SmcdOps + Sync>(
    setup: &Setup<'_, D>,
    job: &Job<'_>,
) -> Result<(Duration, SmcdInfo), BoxError> {
    let host: EchoHost<'_, D> = Host::with_config(setup.config.clone(), setup.dev);
    let pipe = Pipe::<PIPE_BYTES>::new();
    let (client_end, server_end) = pipe.ends();
    thread::scope(|s| {
        let server = s.spawn(|| side(setup, &host, server_end, true, |l| job.serve(l)));
        let echoed = side(setup, &host, client_end, false, |l| job.client(l));
        let served = server.join().map_err(|_| "server thread panicked")?;
        let info = echoed.as_ref().map(|(_, i)| *i).ok();
        let elapsed = job.verify("SMC-D", served.map(|(s, _)| s), echoed.map(|(e, _)| e))?;
        Ok((elapsed, info.ok_or("no handshake result")?))
    })
}

/// The link of one side of [`echo`].
type EchoLink<'h, 'd, 'p, D> = SmcLink<&'h EchoHost<'d, D>, PipeEnd<'p, PIPE_BYTES>, ParkPause>;

/// One side: handshake on `end` (as the server or the client), register
/// the own DMB's bell, run `f` on the link, close.
fn side<'h, 'd, 'p, D: SmcdOps + Sync, R>(
    setup: &Setup<'_, D>,
    host: &'h EchoHost<'d, D>,
    end: PipeEnd<'p, PIPE_BYTES>,
    server: bool,
    f: impl FnOnce(&mut EchoLink<'h, 'd, 'p, D>) -> Result<R, BoxError>,
) -> Result<(R, SmcdInfo), BoxError> {
    let pause = ParkPause::parking(setup.waiting.spin_limit);
    let bell = pause.bell();
    let mut driver = if server {
        Blocking::accept(host, end, pause)?
    } else {
        Blocking::connect(host, end, pause)?
    };
    driver.set_backoff(setup.waiting.policy);
    let mut link = SmcLink::new(driver)?;
    let Transport::SmcD(info) = link.driver.transport() else {
        return Err("not SMC-D".into());
    };
    let own = link
        .driver
        .endpoint()
        .connection()
        .ok_or("the SMC-D connection is gone")?
        .own_token();
    // Rings before this are not lost: the driver polls before it pauses.
    setup.doorbell.register(own, bell);
    let result = f(&mut link);
    let closed = link.driver.close();
    setup.doorbell.unregister(own);
    let result = result?;
    if !closed? && !server {
        return Err("the server did not close in time".into());
    }
    Ok((result, info))
}
