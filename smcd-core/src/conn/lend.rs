//! Lending ring memory to caller closures (zero-copy `recv_with` /
//! `send_with`): the only `unsafe` of the data path, kept in this one place.
#![allow(unsafe_code)]

use crate::mem::{DmbMem, MemError};

/// Run `f` on `len` bytes of **our own** DMB at `offset`.
///
/// The caller passes only a range the peer has produced and we have not yet
/// consumed.
pub(super) fn readable<R>(
    mem: &DmbMem,
    offset: usize,
    len: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, MemError> {
    // SAFETY: the range holds bytes the peer produced and we have not
    // consumed: a conforming peer writes only into space we gave back with a
    // consumer cursor (`docs/protocol/cdc.md` §5), and we publish no consumer cursor
    // past this range before `f` returns (the caller holds `&mut Connection`).
    // No other code in this address space writes our DMB. A hostile peer in
    // another address space may still change the bytes; `f` sees them as
    // plain untrusted data and nothing is derived from them here.
    unsafe { mem.with_slice(offset, len, f) }
}

/// Run `f` on `len` bytes of the **peer's** attached DMB at `offset`.
///
/// The caller passes only free space of the peer's ring: bytes the peer has
/// consumed (its consumer cursor, validated) and we have not produced again.
pub(super) fn writable<R>(
    mem: &DmbMem,
    offset: usize,
    len: usize,
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, MemError> {
    // SAFETY: the range is free space of the peer's ring: the peer reads only
    // between its consumer cursor and our producer cursor, which excludes it,
    // and never writes its own ring (only its sender — we — does). We hold
    // `&mut Connection` while `f` runs, so nobody else in this address space
    // reads or writes the range meanwhile.
    unsafe { mem.with_slice_mut(offset, len, f) }
}
