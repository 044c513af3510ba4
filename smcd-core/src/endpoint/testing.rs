//! Scenario helpers for endpoint pairs (feature `test-util`): drive two
//! endpoints with a fake clock, move data both ways, close both.
//!
//! For tests only: they use `std` and panic on misuse (a panic is a test
//! failure).
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::vec::Vec;

use super::{ByteStream, Endpoint, EndpointError};
use crate::ops::SmcdOps;

/// Rounds after which a pair that still makes progress counts as looping.
const MAX_ROUNDS: usize = 1_000_000;

/// Poll both endpoints at `now_ms` until neither makes progress.
///
/// Returns the last error each side reported, if any (a failed side keeps
/// reporting nothing after its failure).
pub fn drive<D: SmcdOps, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<'_, D, S>,
    b: &mut Endpoint<'_, D, T>,
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
pub fn transfer<D: SmcdOps, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<'_, D, S>,
    b: &mut Endpoint<'_, D, T>,
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
pub fn close_both<D: SmcdOps, S: ByteStream, T: ByteStream>(
    a: &mut Endpoint<'_, D, S>,
    b: &mut Endpoint<'_, D, T>,
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
