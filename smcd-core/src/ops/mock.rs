//! [`MockSmcd`]: an [`SmcdOps`] test double in embedded-hal-mock's
//! expectation style (feature `test-util`).
//!
//! A mock is built from the list of calls the code under test must make, in
//! order, each with its result. Every call is checked against the next
//! expectation (a mismatch panics, failing the test), and
//! [`done`](MockSmcd::done) fails the test if expectations remain. Dropping a
//! mock without calling `done` fails the test too.
//!
//! The identity getters (`local_gid`, `chid`, `supports_v2`,
//! `supports_nocopy`) are configuration, not expectations: set them with the
//! `with_*` builders.
//!
//! DMB memory is real: a successful `register_dmb` or `attach_dmb` hands out
//! a zeroed buffer the mock owns (one per token, freed when the mock is
//! dropped), a successful `move_data` writes into the mock's buffer of that
//! token if it has one (a header write with `signal` as the CDC publication
//! of [`crate::wire::cdc::publish`]), and [`MockSmcd::dmb`] gives the test a
//! view of any of them.
//!
//! ```
//! use smcd_core::dmb::DmbToken;
//! use smcd_core::ops::mock::{MockSmcd, Transaction};
//! use smcd_core::ops::{ErrorKind, SmcdOps};
//!
//! let t = DmbToken(0x77);
//! let dev = MockSmcd::new(&[
//!     Transaction::register_dmb(16384).returns(t),
//!     Transaction::move_data(t, 32, b"hi", false),
//!     Transaction::register_dmb(16384).fails(ErrorKind::NoSpace),
//!     Transaction::unregister_dmb(t),
//! ]);
//!
//! let dmb = dev.register_dmb(16384).unwrap();
//! assert_eq!((dmb.token, dmb.mem.len()), (t, 16384));
//! dev.move_data(t, 32, b"hi", false).unwrap();
//! let mut got = [0; 2];
//! dev.dmb(t).unwrap().read(32, &mut got).unwrap();
//! assert_eq!(&got, b"hi");
//! assert_eq!(dev.register_dmb(16384).unwrap_err(), ErrorKind::NoSpace);
//! dev.unregister_dmb(t).unwrap();
//! dev.done();
//! ```
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "a mock fails the test by panicking"
)]

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::vec::Vec;

use super::{Dmb, ErrorKind, ErrorType, SmcdOps};
use crate::dmb::{Chid, DmbToken, Gid};
use crate::mem::{DmbMem, OwnedDmb};
use crate::wire::cdc::{self, CdcHeader};

/// One expected call and its argument values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    QueryRemoteGid(Gid),
    RegisterDmb(usize),
    UnregisterDmb(DmbToken),
    MoveData {
        token: DmbToken,
        offset: usize,
        data: Vec<u8>,
        signal: bool,
    },
    SignalDmb(DmbToken),
    AttachDmb(DmbToken),
    DetachDmb(DmbToken),
}

/// One expected call with its result, for [`MockSmcd::new`].
///
/// Calls succeed unless [`fails`](Self::fails) says otherwise;
/// `register_dmb` names its result with [`RegisterDmb::returns`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transaction {
    call: Call,
    result: Result<(), ErrorKind>,
    /// Token handed out by `register_dmb`; DMB size of `attach_dmb`.
    token: Option<DmbToken>,
    len: usize,
}

impl Transaction {
    fn ok(call: Call) -> Self {
        Self {
            call,
            result: Ok(()),
            token: None,
            len: 0,
        }
    }

    /// `query_remote_gid(gid)`.
    pub fn query_remote_gid(gid: Gid) -> Self {
        Self::ok(Call::QueryRemoteGid(gid))
    }

    /// `register_dmb(size)`; finish with [`RegisterDmb::returns`] or
    /// [`RegisterDmb::fails`].
    pub fn register_dmb(size: usize) -> RegisterDmb {
        RegisterDmb { size }
    }

    /// `unregister_dmb(token)`.
    pub fn unregister_dmb(token: DmbToken) -> Self {
        Self::ok(Call::UnregisterDmb(token))
    }

    /// `move_data(token, offset, data, signal)` with exactly these bytes.
    pub fn move_data(token: DmbToken, offset: usize, data: &[u8], signal: bool) -> Self {
        Self::ok(Call::MoveData {
            token,
            offset,
            data: data.to_vec(),
            signal,
        })
    }

    /// `signal_dmb(token)`.
    pub fn signal_dmb(token: DmbToken) -> Self {
        Self::ok(Call::SignalDmb(token))
    }

    /// `attach_dmb(token)` of a DMB of `len` bytes (the mock's buffer of the
    /// token if it has one, which must have that length; else a new one).
    pub fn attach_dmb(token: DmbToken, len: usize) -> Self {
        Self {
            len,
            ..Self::ok(Call::AttachDmb(token))
        }
    }

    /// `detach_dmb(token)`.
    pub fn detach_dmb(token: DmbToken) -> Self {
        Self::ok(Call::DetachDmb(token))
    }

    /// The call fails with `kind` (and has no effect).
    pub fn fails(self, kind: ErrorKind) -> Self {
        Self {
            result: Err(kind),
            ..self
        }
    }
}

/// An expected `register_dmb(size)` whose result is still to be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RegisterDmb {
    size: usize,
}

impl RegisterDmb {
    /// The call succeeds with a zeroed DMB of `size` bytes under `token`.
    pub fn returns(self, token: DmbToken) -> Transaction {
        Transaction {
            token: Some(token),
            len: self.size,
            ..Transaction::ok(Call::RegisterDmb(self.size))
        }
    }

    /// The call fails with `kind`.
    pub fn fails(self, kind: ErrorKind) -> Transaction {
        Transaction::ok(Call::RegisterDmb(self.size)).fails(kind)
    }
}

#[derive(Debug)]
struct State {
    expected: VecDeque<Transaction>,
    calls: usize,
    buffers: Vec<(DmbToken, OwnedDmb)>,
    done: bool,
}

impl State {
    fn buffer(&self, token: DmbToken) -> Option<DmbMem> {
        self.buffers
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, b)| b.mem())
    }

    /// The mock's buffer of `token`, created with `len` bytes if missing.
    fn buffer_or_new(&mut self, token: DmbToken, len: usize) -> DmbMem {
        if let Some(mem) = self.buffer(token) {
            assert_eq!(
                mem.len(),
                len,
                "MockSmcd: DMB {token} has {} bytes, the expectation says {len}",
                mem.len()
            );
            return mem;
        }
        let buf = OwnedDmb::new(len);
        let mem = buf.mem();
        self.buffers.push((token, buf));
        mem
    }
}

/// An [`SmcdOps`] device that checks every call against a list of
/// expectations (see the [module docs](self)).
#[derive(Debug)]
pub struct MockSmcd {
    state: Mutex<State>,
    gid: Gid,
    chid: Chid,
    v2: bool,
    nocopy: bool,
}

impl MockSmcd {
    /// A mock expecting `expected`, in order. Identity: GID 1:2, CHID
    /// 0xFFFF, v2, no nocopy.
    #[must_use]
    pub fn new(expected: &[Transaction]) -> Self {
        Self {
            state: Mutex::new(State {
                expected: expected.iter().cloned().collect(),
                calls: 0,
                buffers: Vec::new(),
                done: false,
            }),
            gid: Gid::new(1, 2),
            chid: Chid::LOOPBACK,
            v2: true,
            nocopy: false,
        }
    }

    /// Report `gid` from `local_gid`.
    #[must_use]
    pub fn with_gid(mut self, gid: Gid) -> Self {
        self.gid = gid;
        self
    }

    /// Report `chid` from `chid`.
    #[must_use]
    pub fn with_chid(mut self, chid: Chid) -> Self {
        self.chid = chid;
        self
    }

    /// Report `v2` from `supports_v2`.
    #[must_use]
    pub fn with_v2(mut self, v2: bool) -> Self {
        self.v2 = v2;
        self
    }

    /// Report `nocopy` from `supports_nocopy`.
    #[must_use]
    pub fn with_nocopy(mut self, nocopy: bool) -> Self {
        self.nocopy = nocopy;
        self
    }

    /// A view of the mock's buffer of `token` (created by a successful
    /// `register_dmb` or `attach_dmb`), valid while the mock lives.
    pub fn dmb(&self, token: DmbToken) -> Option<DmbMem> {
        self.lock().buffer(token)
    }

    /// Fail the test if expected calls were not made.
    ///
    /// # Panics
    ///
    /// If any expectation remains.
    pub fn done(&self) {
        let mut st = self.lock();
        st.done = true;
        assert!(
            st.expected.is_empty(),
            "MockSmcd: {} expected call(s) not made after {} call(s): {:?}",
            st.expected.len(),
            st.calls,
            st.expected
        );
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test poisons the lock; the state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Check `call` against the next expectation; on success run `effect`.
    fn expect<R>(
        &self,
        call: Call,
        effect: impl FnOnce(&mut State, &Transaction) -> R,
    ) -> Result<R, ErrorKind> {
        let mut st = self.lock();
        st.calls += 1;
        let n = st.calls;
        let Some(exp) = st.expected.pop_front() else {
            panic!("MockSmcd: call {n} {call:?} was not expected (no expectations left)");
        };
        assert_eq!(
            exp.call, call,
            "MockSmcd: call {n}: expected the left call, got the right one"
        );
        exp.result?;
        Ok(effect(&mut st, &exp))
    }
}

impl Drop for MockSmcd {
    fn drop(&mut self) {
        if !std::thread::panicking() && !self.lock().done {
            panic!("MockSmcd dropped without calling done()");
        }
    }
}

impl ErrorType for MockSmcd {
    type Error = ErrorKind;
}

impl SmcdOps for MockSmcd {
    fn local_gid(&self) -> Gid {
        self.gid
    }

    fn chid(&self) -> Chid {
        self.chid
    }

    fn supports_v2(&self) -> bool {
        self.v2
    }

    fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
        self.expect(Call::QueryRemoteGid(gid), |_, _| ())
    }

    fn register_dmb(&self, size: usize) -> Result<Dmb, ErrorKind> {
        self.expect(Call::RegisterDmb(size), |st, exp| {
            let token = exp
                .token
                .expect("a successful register_dmb names its token");
            Dmb {
                token,
                mem: st.buffer_or_new(token, exp.len),
            }
        })
    }

    fn unregister_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.expect(Call::UnregisterDmb(token), |_, _| ())
    }

    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), ErrorKind> {
        let call = Call::MoveData {
            token,
            offset,
            data: data.to_vec(),
            signal,
        };
        self.expect(call, |st, _| {
            let Some(mem) = st.buffer(token) else { return };
            let written = if signal && data.len() == CdcHeader::BUFFER_LEN {
                cdc::publish(&mem, offset, data).is_ok()
            } else {
                mem.write(offset, data).is_ok()
            };
            assert!(
                written,
                "MockSmcd: move_data of {} bytes at {offset} does not fit DMB {token}",
                data.len()
            );
        })
    }

    fn signal_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.expect(Call::SignalDmb(token), |_, _| ())
    }

    fn supports_nocopy(&self) -> bool {
        self.nocopy
    }

    fn attach_dmb(&self, token: DmbToken) -> Result<Dmb, ErrorKind> {
        self.expect(Call::AttachDmb(token), |st, exp| Dmb {
            token,
            mem: st.buffer_or_new(token, exp.len),
        })
    }

    fn detach_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.expect(Call::DetachDmb(token), |_, _| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::DMB_ALIGN_BYTES;
    use crate::sync::Ordering;

    const T: DmbToken = DmbToken(0xAB);

    #[test]
    fn calls_in_order_pass() {
        let dev = MockSmcd::new(&[
            Transaction::query_remote_gid(Gid::new(1, 2)),
            Transaction::query_remote_gid(Gid::new(3, 4)).fails(ErrorKind::Unreachable),
            Transaction::register_dmb(64).returns(T),
            Transaction::signal_dmb(T),
            Transaction::attach_dmb(T, 64),
            Transaction::detach_dmb(T).fails(ErrorKind::InvalidToken),
            Transaction::unregister_dmb(T),
        ])
        .with_nocopy(true)
        .with_chid(Chid(0xFF01));
        assert!(dev.supports_nocopy() && dev.supports_v2());
        assert_eq!(dev.chid(), Chid(0xFF01));
        dev.query_remote_gid(Gid::new(1, 2)).unwrap();
        assert_eq!(
            dev.query_remote_gid(Gid::new(3, 4)),
            Err(ErrorKind::Unreachable)
        );
        let own = dev.register_dmb(64).unwrap();
        assert_eq!(own.mem.as_ptr() as usize % DMB_ALIGN_BYTES, 0);
        dev.signal_dmb(T).unwrap();
        // Attaching the token registered through the mock maps the same buffer.
        assert_eq!(dev.attach_dmb(T).unwrap().mem.as_ptr(), own.mem.as_ptr());
        assert_eq!(dev.detach_dmb(T), Err(ErrorKind::InvalidToken));
        dev.unregister_dmb(T).unwrap();
        dev.done();
    }

    #[test]
    fn header_write_publishes_the_cursor_words() {
        let mut header = [0u8; 32];
        header[0] = 0xFE;
        header[8..16].copy_from_slice(&0x0102_0304_0506_0708u64.to_ne_bytes());
        let dev = MockSmcd::new(&[
            Transaction::attach_dmb(T, 64),
            Transaction::move_data(T, 0, &header, true),
        ]);
        let peer = dev.attach_dmb(T).unwrap();
        dev.move_data(T, 0, &header, true).unwrap();
        assert_eq!(
            peer.mem.load_u64(8, Ordering::Acquire).unwrap(),
            0x0102_0304_0506_0708
        );
        dev.done();
    }

    #[test]
    #[should_panic(expected = "call 1: expected the left call")]
    fn wrong_argument_fails() {
        let dev = MockSmcd::new(&[Transaction::unregister_dmb(T)]);
        let _ = dev.unregister_dmb(DmbToken(1));
    }

    #[test]
    #[should_panic(expected = "was not expected")]
    fn unexpected_call_fails() {
        let dev = MockSmcd::new(&[]);
        let _ = dev.signal_dmb(T);
    }

    #[test]
    #[should_panic(expected = "1 expected call(s) not made")]
    fn done_fails_with_expectations_left() {
        let dev = MockSmcd::new(&[Transaction::signal_dmb(T)]);
        dev.done();
    }

    #[test]
    #[should_panic(expected = "without calling done()")]
    fn drop_without_done_fails() {
        drop(MockSmcd::new(&[]));
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn move_data_outside_the_buffer_fails() {
        let dev = MockSmcd::new(&[
            Transaction::register_dmb(64).returns(T),
            Transaction::move_data(T, 60, &[0; 8], false),
        ]);
        dev.register_dmb(64).unwrap();
        let _ = dev.move_data(T, 60, &[0; 8], false);
    }
}
