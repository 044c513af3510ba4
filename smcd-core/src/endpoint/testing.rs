//! Scenario helpers for endpoint pairs (feature `test-util`): a [`Fixture`]
//! holding one host's pieces, and functions that drive two endpoints with a
//! fake clock, move data, and close both.
//!
//! For tests only: they use `std` and panic on misuse (a panic is a test
//! failure).
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::vec::Vec;

use super::{ByteStream, Endpoint, EndpointError, Host, HostRef, Pipe, PipeEnd};
use crate::clc::ClcConfig;
use crate::ops::SmcdOps;

/// Capacity of a fixture's pipe.
pub const PIPE_BYTES: usize = 1024;

/// Link groups of a fixture's host.
pub const FIXTURE_GROUPS: usize = 4;

/// The host of a [`Fixture`]: its configuration and link groups on a
/// borrowed device.
pub type FixtureHost<'a, D> = Host<&'a D, FIXTURE_GROUPS>;

/// An endpoint on a fixture's pipe.
pub type PipeEndpoint<'a, D> = Endpoint<&'a FixtureHost<'a, D>, PipeEnd<'a, PIPE_BYTES>>;

/// One host in a test: a device, its configuration and link groups, and a
/// pipe for one connection.
///
/// ```
/// use smcd_core::clc::ClcConfig;
/// use smcd_core::clc::testing::FakeDevice;
/// use smcd_core::dmb::Gid;
/// use smcd_core::endpoint::testing::{Fixture, drive};
///
/// let lo = FakeDevice::loopback(Gid::new(1, 2));
/// let fx = Fixture::new(&lo, ClcConfig::empty()); // no UEID: fallback
/// let (mut client, mut server) = fx.pair();
/// drive(&mut client, &mut server, 0);
/// assert!(!client.transport().is_smcd());
/// ```
pub struct Fixture<'d, D> {
    /// The host: configuration, link groups, the device.
    pub host: FixtureHost<'d, D>,
    /// The "TCP connection" of [`pair`](Self::pair).
    pub pipe: Pipe<PIPE_BYTES>,
}

impl<'d, D: SmcdOps + Sync> Fixture<'d, D> {
    /// A host on `dev` with `config`.
    pub fn new(dev: &'d D, config: ClcConfig) -> Self {
        Self {
            host: Host::with_config(config, dev),
            pipe: Pipe::new(),
        }
    }

    /// A second host on the same device with the same configuration but
    /// link groups of its own.
    pub fn second_host(&self) -> FixtureHost<'d, D> {
        Host::with_config(self.host.config().clone(), *self.host.device())
    }

    /// The device.
    pub fn dev(&self) -> &'d D {
        self.host.device()
    }

    /// A client and a server endpoint on [`pipe`](Self::pipe), started at 0.
    pub fn pair(&self) -> (PipeEndpoint<'_, D>, PipeEndpoint<'_, D>) {
        pair_on(&self.host, &self.host, &self.pipe)
    }
}

/// A client on `client` and a server on `server` over `pipe`, started at 0.
pub fn pair_on<'a, H: HostRef, const N: usize>(
    client: H,
    server: H,
    pipe: &'a Pipe<N>,
) -> (Endpoint<H, PipeEnd<'a, N>>, Endpoint<H, PipeEnd<'a, N>>) {
    let (a, b) = pipe.ends();
    (
        Endpoint::client(client, a, 0),
        Endpoint::server(server, b, 0),
    )
}

impl<D> core::fmt::Debug for Fixture<'_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fixture")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Rounds after which a pair that still makes progress counts as looping.
const MAX_ROUNDS: usize = 1_000_000;

/// Poll both endpoints at `now_ms` until neither makes progress.
///
/// Returns the last error each side reported, if any (a failed side keeps
/// reporting nothing after its failure).
pub fn drive<A: HostRef, B: HostRef, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<A, S>,
    b: &mut Endpoint<B, T>,
    now_ms: u64,
) -> (Option<EndpointError>, Option<EndpointError>) {
    let (mut ea, mut eb) = (None, None);
    for _ in 0..MAX_ROUNDS {
        let pa = a.poll(now_ms).unwrap_or_else(|e| {
            ea = Some(e);
            false
        });
        let pb = b.poll(now_ms).unwrap_or_else(|e| {
            eb = Some(e);
            false
        });
        if !pa && !pb {
            return (ea, eb);
        }
    }
    panic!("endpoints still busy after {MAX_ROUNDS} rounds");
}

/// Send `data` from `a` and receive it at `b`, interleaved, `chunk` bytes at
/// most per call, until `b` has every byte. Returns what `b` received.
pub fn transfer<A: HostRef, B: HostRef, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<A, S>,
    b: &mut Endpoint<B, T>,
    data: &[u8],
    chunk: usize,
) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::with_capacity(data.len());
    let mut buf = std::vec![0u8; chunk];
    let mut idle = 0;
    while got.len() < data.len() {
        let mut progress = false;
        if sent < data.len() {
            let end = (sent + chunk).min(data.len());
            match a.send(&data[sent..end]) {
                Ok(n) => {
                    sent += n;
                    progress = true;
                }
                Err(EndpointError::WouldBlock) => {}
                Err(e) => panic!("send failed after {sent} bytes: {e}"),
            }
        }
        progress |= a.poll(0).unwrap_or_else(|e| panic!("sender poll: {e}"));
        progress |= b.poll(0).unwrap_or_else(|e| panic!("receiver poll: {e}"));
        match b.recv(&mut buf) {
            Ok(0) => panic!("EOF after {} of {} bytes", got.len(), data.len()),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                progress = true;
            }
            Err(EndpointError::WouldBlock) => {}
            Err(e) => panic!("recv failed after {} bytes: {e}", got.len()),
        }
        idle = if progress { 0 } else { idle + 1 };
        assert!(idle < 100, "transfer stalled at {} bytes", got.len());
    }
    got
}

/// `a` closes first, then `b` after seeing the close; both are driven until
/// closed, and both have given back their resources.
pub fn close_both<A: HostRef, B: HostRef, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<A, S>,
    b: &mut Endpoint<B, T>,
) {
    a.close()
        .unwrap_or_else(|e| panic!("first close failed: {e}"));
    drive(a, b, 0);
    b.close()
        .unwrap_or_else(|e| panic!("second close failed: {e}"));
    drive(a, b, 0);
    assert!(
        a.is_closed(),
        "first closer not closed: {:?}",
        a.connection()
    );
    assert!(
        b.is_closed(),
        "second closer not closed: {:?}",
        b.connection()
    );
}
