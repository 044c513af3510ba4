//! [`FaultInjector`]: wraps any [`SmcdOps`] device and makes it misbehave on
//! request, for tests of the layers above (in the spirit of smoltcp's
//! `phy::FaultInjector`).

use core::fmt;

use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::ops::{Dmb, Error, ErrorKind, ErrorType, PeerDmb, PeerDmbId, SmcdOps};
use smcd_core::sync::SpinLock;

/// A device operation, as reported to the hook and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op {
    /// `query_remote_gid`.
    QueryRemoteGid,
    /// `register_dmb`.
    RegisterDmb,
    /// `unregister_dmb`.
    UnregisterDmb,
    /// `move_data`.
    MoveData,
    /// `signal_dmb`.
    SignalDmb,
    /// `attach_dmb`.
    AttachDmb,
    /// `detach_dmb`.
    DetachDmb,
}

/// Calls seen by a [`FaultInjector`] (a snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CallCounts {
    /// `query_remote_gid` calls.
    pub query_remote_gid: u32,
    /// `register_dmb` calls (injected failures included).
    pub register_dmb: u32,
    /// `unregister_dmb` calls.
    pub unregister_dmb: u32,
    /// `move_data` calls (injected failures included).
    pub move_data: u32,
    /// `signal_dmb` calls.
    pub signal_dmb: u32,
    /// `attach_dmb` calls.
    pub attach_dmb: u32,
    /// `detach_dmb` calls.
    pub detach_dmb: u32,
    /// Signals dropped (header writes without doorbell, swallowed `signal_dmb`).
    pub dropped_signals: u32,
    /// Calls failed by injection.
    pub injected_failures: u32,
}

impl CallCounts {
    fn count(&mut self, op: Op) {
        let c = match op {
            Op::QueryRemoteGid => &mut self.query_remote_gid,
            Op::RegisterDmb => &mut self.register_dmb,
            Op::UnregisterDmb => &mut self.unregister_dmb,
            Op::MoveData => &mut self.move_data,
            Op::SignalDmb => &mut self.signal_dmb,
            Op::AttachDmb => &mut self.attach_dmb,
            Op::DetachDmb => &mut self.detach_dmb,
        };
        *c = c.wrapping_add(1);
    }
}

/// An error of a [`FaultInjector`]: the wrapped device's, or an injected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FaultError<E> {
    /// The wrapped device failed.
    Device(E),
    /// The injector failed the call with this kind.
    Injected(ErrorKind),
}

impl<E: fmt::Display> fmt::Display for FaultError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultError::Device(e) => e.fmt(f),
            FaultError::Injected(k) => write!(f, "injected fault: {k}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for FaultError<E> {}

impl<E: Error> Error for FaultError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            FaultError::Device(e) => e.kind(),
            FaultError::Injected(k) => *k,
        }
    }
}

/// A fault that applies to the next `left` calls of one operation.
#[derive(Debug, Clone, Copy)]
struct Pending {
    kind: ErrorKind,
    left: u32,
}

/// Take one use of `pending`; the kind to fail with, if any.
fn take(pending: &mut Option<Pending>) -> Option<ErrorKind> {
    let p = pending.as_mut()?;
    let kind = p.kind;
    p.left -= 1;
    if p.left == 0 {
        *pending = None;
    }
    Some(kind)
}

fn pending(kind: ErrorKind, n: u32) -> Option<Pending> {
    (n > 0).then_some(Pending { kind, left: n })
}

#[derive(Debug, Default)]
struct Plan {
    drop_signals: u32,
    fail_register: Option<Pending>,
    fail_move_data: Option<Pending>,
    counts: CallCounts,
}

/// A hook that does nothing.
fn no_hook(_: Op) {}

/// Wraps a device and injects faults into it:
///
/// * drop signals: a header write goes through without its doorbell
///   (forwarded with `signal = false`, which the loopback device treats as
///   "publish the header, do not ring"), a `signal_dmb` is swallowed;
/// * fail `register_dmb` with a chosen [`ErrorKind`] ([`ErrorKind::NoSpace`]
///   drives the CLC engine into the DMB-limit Decline);
/// * fail `move_data` with a chosen kind;
/// * count every call ([`calls`](Self::calls)), and run a hook before each
///   forwarded call (a "delay": no_std has no clock, so the test decides what
///   waiting means — yield, sleep, flip a flag).
///
/// ```
/// use rand::{SeedableRng, rngs::SmallRng};
/// use smcd_core::ops::{Error, ErrorKind, SmcdOps};
/// use smcd_lo::{FaultInjector, LoopbackDevice, NoDoorbell, StaticArena};
///
/// let region: &'static mut [u8] = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
/// let lo: LoopbackDevice<StaticArena, _, _, 8> =
///     LoopbackDevice::new(StaticArena::new(region), SmallRng::seed_from_u64(7), NoDoorbell);
/// let dev = FaultInjector::new(lo);
/// dev.fail_register(ErrorKind::NoSpace, 1);
/// assert_eq!(dev.register_dmb(16 * 1024).unwrap_err().kind(), ErrorKind::NoSpace);
/// let dmb = dev.register_dmb(16 * 1024).unwrap(); // the fault was used up
/// dev.unregister_dmb(dmb).unwrap();
/// assert_eq!(dev.calls().register_dmb, 2);
/// ```
#[derive(Debug)]
pub struct FaultInjector<D, H = fn(Op)> {
    inner: D,
    plan: SpinLock<Plan>,
    hook: H,
}

impl<D: SmcdOps> FaultInjector<D> {
    /// Wrap `inner`, injecting nothing until told to.
    pub fn new(inner: D) -> Self {
        Self::with_hook(inner, no_hook)
    }
}

impl<D: SmcdOps, H: Fn(Op)> FaultInjector<D, H> {
    /// Wrap `inner` and call `hook` before every call is forwarded to it.
    pub fn with_hook(inner: D, hook: H) -> Self {
        Self {
            inner,
            plan: SpinLock::new(Plan::default()),
            hook,
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Drop the doorbell of the next `n` signals (0 = stop dropping).
    pub fn drop_signals(&self, n: u32) {
        self.plan.with(|p| p.drop_signals = n);
    }

    /// Fail the next `n` `register_dmb` calls with `kind` (0 = stop).
    pub fn fail_register(&self, kind: ErrorKind, n: u32) {
        self.plan.with(|p| p.fail_register = pending(kind, n));
    }

    /// Fail the next `n` `move_data` calls with `kind` (0 = stop).
    pub fn fail_move_data(&self, kind: ErrorKind, n: u32) {
        self.plan.with(|p| p.fail_move_data = pending(kind, n));
    }

    /// The calls seen so far.
    pub fn calls(&self) -> CallCounts {
        self.plan.with(|p| p.counts)
    }

    /// Count `op` and ask `fault` whether to fail it; if not, run the hook
    /// (the caller then forwards the call).
    fn enter(
        &self,
        op: Op,
        fault: impl FnOnce(&mut Plan) -> Option<ErrorKind>,
    ) -> Result<(), FaultError<D::Error>> {
        let injected = self.plan.with(|plan| {
            plan.counts.count(op);
            let injected = fault(plan);
            if injected.is_some() {
                plan.counts.injected_failures = plan.counts.injected_failures.wrapping_add(1);
            }
            injected
        });
        match injected {
            Some(kind) => Err(FaultError::Injected(kind)),
            None => {
                (self.hook)(op);
                Ok(())
            }
        }
    }

    /// Use up one dropped signal, if any are pending.
    fn take_drop_signal(&self) -> bool {
        self.plan.with(|plan| {
            if plan.drop_signals == 0 {
                return false;
            }
            plan.drop_signals -= 1;
            plan.counts.dropped_signals = plan.counts.dropped_signals.wrapping_add(1);
            true
        })
    }

    fn forward<T>(
        &self,
        op: Op,
        call: impl FnOnce(&D) -> Result<T, D::Error>,
    ) -> Result<T, FaultError<D::Error>> {
        self.enter(op, |_| None)?;
        call(&self.inner).map_err(FaultError::Device)
    }
}

impl<D: SmcdOps, H> ErrorType for FaultInjector<D, H> {
    type Error = FaultError<D::Error>;
}

impl<D: SmcdOps, H: Fn(Op)> SmcdOps for FaultInjector<D, H> {
    fn local_gid(&self) -> Gid {
        self.inner.local_gid()
    }

    fn chid(&self) -> Chid {
        self.inner.chid()
    }

    fn supports_v2(&self) -> bool {
        self.inner.supports_v2()
    }

    fn query_remote_gid(&self, gid: Gid) -> Result<(), Self::Error> {
        self.forward(Op::QueryRemoteGid, |d| d.query_remote_gid(gid))
    }

    fn register_dmb(&self, size: usize) -> Result<Dmb, Self::Error> {
        self.enter(Op::RegisterDmb, |p| take(&mut p.fail_register))?;
        self.inner.register_dmb(size).map_err(FaultError::Device)
    }

    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), Self::Error> {
        self.forward(Op::UnregisterDmb, |d| d.unregister_dmb(dmb))
    }

    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), Self::Error> {
        self.enter(Op::MoveData, |p| take(&mut p.fail_move_data))?;
        let signal = signal && !self.take_drop_signal();
        self.inner
            .move_data(token, offset, data, signal)
            .map_err(FaultError::Device)
    }

    fn signal_dmb(&self, token: DmbToken) -> Result<(), Self::Error> {
        self.enter(Op::SignalDmb, |_| None)?;
        if self.take_drop_signal() {
            return Ok(());
        }
        self.inner.signal_dmb(token).map_err(FaultError::Device)
    }

    fn supports_nocopy(&self) -> bool {
        self.inner.supports_nocopy()
    }

    fn attach_dmb(&self, own: &Dmb, peer: PeerDmbId, map: bool) -> Result<PeerDmb, Self::Error> {
        self.forward(Op::AttachDmb, |d| d.attach_dmb(own, peer, map))
    }

    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), Self::Error> {
        self.forward(Op::DetachDmb, |d| d.detach_dmb(peer))
    }
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;
    use std::boxed::Box;
    use std::format;
    use std::vec;
    use std::vec::Vec;

    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use smcd_core::sync::Ordering;

    use smcd_core::dmb::DmbError;
    use smcd_core::mem::DmbMem;

    use super::*;
    use crate::{CountingDoorbell, LoError, LoopbackDevice, StaticArena};

    type Lo = LoopbackDevice<StaticArena, SmallRng, CountingDoorbell, 4>;

    const SIZE: usize = smcd_core::dmb::DMB_MIN_SIZE_BYTES;

    fn lo() -> Lo {
        let region = Box::leak(vec![0u8; 4 * SIZE].into_boxed_slice());
        LoopbackDevice::new(
            StaticArena::new(region),
            SmallRng::seed_from_u64(5),
            CountingDoorbell::new(),
        )
    }

    fn id<D: SmcdOps>(dev: &D, token: DmbToken, len: usize) -> PeerDmbId {
        PeerDmbId {
            gid: dev.local_gid(),
            token,
            len,
        }
    }

    fn header(prod: u64) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[8..16].copy_from_slice(&prod.to_ne_bytes());
        h
    }

    #[test]
    fn dropped_signals_still_write_the_header() {
        let dev = FaultInjector::new(lo());
        let d = dev.register_dmb(SIZE).unwrap();
        dev.drop_signals(2);
        dev.move_data(d.token(), 0, &header(7), true).unwrap();
        assert_eq!(d.mem().load_u64(8, Ordering::Acquire).unwrap(), 7);
        dev.signal_dmb(d.token()).unwrap();
        assert_eq!(dev.inner().doorbell().count(), 0);
        // Data writes do not use up dropped signals; the third signal rings.
        dev.move_data(d.token(), 32, b"data", false).unwrap();
        dev.move_data(d.token(), 0, &header(8), true).unwrap();
        assert_eq!(dev.inner().doorbell().count(), 1);
        assert_eq!(d.mem().load_u64(8, Ordering::Acquire).unwrap(), 8);
        let c = dev.calls();
        assert_eq!((c.move_data, c.signal_dmb, c.dropped_signals), (3, 1, 2));
        dev.unregister_dmb(d).unwrap();
        assert_eq!(dev.inner().stats().dmbs_in_use, 0);
    }

    #[test]
    fn register_failures_are_injected_then_used_up() {
        let dev = FaultInjector::new(lo());
        dev.fail_register(ErrorKind::NoSpace, 2);
        for _ in 0..2 {
            let err = dev.register_dmb(SIZE).unwrap_err();
            assert_eq!(err, FaultError::Injected(ErrorKind::NoSpace));
            assert_eq!(err.kind(), ErrorKind::NoSpace);
        }
        let d = dev.register_dmb(SIZE).unwrap();
        dev.fail_register(ErrorKind::NoMemory, 1);
        dev.fail_register(ErrorKind::NoMemory, 0);
        let e = dev.register_dmb(SIZE).unwrap();
        let c = dev.calls();
        assert_eq!((c.register_dmb, c.injected_failures), (4, 2));
        assert_eq!(dev.inner().stats().dmbs_in_use, 2);
        // Injected failures never reach the device.
        assert_eq!(dev.inner().stats().register_failures, 0);
        dev.unregister_dmb(d).unwrap();
        dev.unregister_dmb(e).unwrap();
        assert_eq!(dev.inner().stats().dmbs_in_use, 0);
    }

    #[test]
    fn move_data_failures_write_nothing() {
        let dev = FaultInjector::new(lo());
        let d = dev.register_dmb(SIZE).unwrap();
        dev.fail_move_data(ErrorKind::PeerGone, 1);
        let err = dev.move_data(d.token(), 32, b"lost", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerGone);
        let mut got = [0u8; 4];
        d.mem().read(32, &mut got).unwrap();
        assert_eq!(got, [0; 4]);
        dev.move_data(d.token(), 32, b"kept", false).unwrap();
        d.mem().read(32, &mut got).unwrap();
        assert_eq!(&got, b"kept");
        assert_eq!(dev.inner().stats().bytes_moved, 4);
        dev.unregister_dmb(d).unwrap();
    }

    #[test]
    fn device_errors_pass_through() {
        let dev = FaultInjector::new(lo());
        let own = dev.register_dmb(SIZE).unwrap();
        let err = dev
            .attach_dmb(&own, id(&dev, DmbToken(1), SIZE), false)
            .unwrap_err();
        assert_eq!(
            err,
            FaultError::Device(LoError::Table(DmbToken(1), DmbError::NotFound))
        );
        assert_eq!(err.kind(), ErrorKind::InvalidToken);
        // A mapping of a DMB that does not exist.
        let buf = Box::leak(vec![0u8; SIZE].into_boxed_slice());
        let skip = buf.as_ptr().align_offset(8);
        let ring = DmbMem::from_static(&mut buf[skip..skip + SIZE - 32]).unwrap();
        let bogus = PeerDmb::new(own.token(), DmbToken(1), SIZE, Some(ring)).unwrap();
        let err = dev.detach_dmb(bogus).unwrap_err();
        assert_eq!(
            err,
            FaultError::Device(LoError::Table(DmbToken(1), DmbError::NotFound))
        );
        assert_eq!(err.kind(), ErrorKind::InvalidToken);
        dev.unregister_dmb(own).unwrap();
        assert_eq!(
            dev.query_remote_gid(Gid::new(0, 0)).unwrap_err().kind(),
            ErrorKind::Unreachable
        );
        assert!(dev.query_remote_gid(dev.local_gid()).is_ok());
        assert_eq!(
            (dev.chid(), dev.supports_v2(), dev.supports_nocopy()),
            (Chid::LOOPBACK, true, true)
        );
        assert_eq!(
            format!("{}", FaultError::<LoError>::Injected(ErrorKind::NoSpace)),
            "injected fault: device DMB limit reached"
        );
    }

    #[test]
    fn hook_runs_before_every_forwarded_call() {
        let seen = RefCell::new(Vec::new());
        let dev = FaultInjector::with_hook(lo(), |op| seen.borrow_mut().push(op));
        let d = dev.register_dmb(SIZE).unwrap();
        let own = dev.inner().register_dmb(SIZE).unwrap(); // not seen
        let peer = dev
            .attach_dmb(&own, id(&dev, d.token(), SIZE), true)
            .unwrap();
        assert!(peer.ring().is_some());
        dev.fail_move_data(ErrorKind::Other, 1);
        assert!(dev.move_data(d.token(), 32, b"x", false).is_err());
        dev.move_data(d.token(), 32, b"x", false).unwrap();
        dev.signal_dmb(d.token()).unwrap();
        dev.detach_dmb(peer).unwrap();
        dev.unregister_dmb(d).unwrap();
        dev.inner().unregister_dmb(own).unwrap();
        // The injected failure is counted but never reaches the hook.
        assert_eq!(
            *seen.borrow(),
            [
                Op::RegisterDmb,
                Op::AttachDmb,
                Op::MoveData,
                Op::SignalDmb,
                Op::DetachDmb,
                Op::UnregisterDmb
            ]
        );
        let c = dev.calls();
        assert_eq!(
            (c.move_data, c.attach_dmb, c.detach_dmb, c.unregister_dmb),
            (2, 1, 1, 1)
        );
        let s = dev.inner().stats();
        assert_eq!((s.dmbs_in_use, s.attachments), (0, 0));
    }
}
