//! [`NocopySwitch`]: a device whose nocopy support can be switched off, so
//! that handshakes leave the peer's DMB unattached and connections send
//! through `move_data` (copy mode) even on a device that could do nocopy.
//!
//! One type serves both modes, so code generic over the device is
//! instantiated once (what the bare-metal images measure).

use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::ops::{Dmb, Error as _, ErrorKind, ErrorType, SmcdOps};

/// `dev` with [`SmcdOps::supports_nocopy`] only if `nocopy` is set, and
/// errors reduced to their kind; everything else delegated.
///
/// ```
/// use rand::SeedableRng;
/// use smcd_core::ops::SmcdOps;
/// use smcd_lo::nocopy_switch::NocopySwitch;
/// use smcd_lo::{LoopbackDevice, NoDoorbell, StaticArena};
///
/// let region = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
/// let lo: LoopbackDevice<StaticArena, rand::rngs::StdRng> =
///     LoopbackDevice::new(StaticArena::new(region), rand::rngs::StdRng::seed_from_u64(1), NoDoorbell);
/// assert!(lo.supports_nocopy());
/// let copy = NocopySwitch::copy_only(&lo);
/// assert!(!copy.supports_nocopy());
/// let dmb = copy.register_dmb(16 * 1024)?;
/// assert!(copy.attach_dmb(dmb.token).is_err());
/// let mut switch = NocopySwitch::new(&lo, true);
/// switch.attach_dmb(dmb.token)?;
/// switch.nocopy = false; // an attachment made before is still given back
/// switch.detach_dmb(dmb.token)?;
/// copy.unregister_dmb(dmb.token)?;
/// assert_eq!(lo.stats().dmbs_in_use, 0);
/// assert!(NocopySwitch::new(&lo, true).supports_nocopy());
/// # Ok::<(), smcd_core::ops::ErrorKind>(())
/// ```
#[derive(Debug)]
pub struct NocopySwitch<'a, D> {
    /// The device.
    pub dev: &'a D,
    /// Whether nocopy is offered (when the device supports it).
    pub nocopy: bool,
}

impl<'a, D> NocopySwitch<'a, D> {
    /// `dev`, offering nocopy only if `nocopy` is set.
    pub fn new(dev: &'a D, nocopy: bool) -> Self {
        Self { dev, nocopy }
    }

    /// `dev` seen without nocopy support (copy mode only).
    pub fn copy_only(dev: &'a D) -> Self {
        Self::new(dev, false)
    }
}

impl<D: SmcdOps> ErrorType for NocopySwitch<'_, D> {
    type Error = ErrorKind;
}

impl<D: SmcdOps> SmcdOps for NocopySwitch<'_, D> {
    fn local_gid(&self) -> Gid {
        self.dev.local_gid()
    }
    fn chid(&self) -> Chid {
        self.dev.chid()
    }
    fn supports_v2(&self) -> bool {
        self.dev.supports_v2()
    }
    fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
        self.dev.query_remote_gid(gid).map_err(|e| e.kind())
    }
    fn register_dmb(&self, size: usize) -> Result<Dmb, ErrorKind> {
        self.dev.register_dmb(size).map_err(|e| e.kind())
    }
    fn unregister_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.dev.unregister_dmb(token).map_err(|e| e.kind())
    }
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), ErrorKind> {
        self.dev
            .move_data(token, offset, data, signal)
            .map_err(|e| e.kind())
    }
    fn signal_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.dev.signal_dmb(token).map_err(|e| e.kind())
    }
    fn supports_nocopy(&self) -> bool {
        self.nocopy && self.dev.supports_nocopy()
    }
    fn attach_dmb(&self, token: DmbToken) -> Result<Dmb, ErrorKind> {
        if !self.nocopy {
            return Err(ErrorKind::Unsupported);
        }
        self.dev.attach_dmb(token).map_err(|e| e.kind())
    }
    /// Always forwarded: only attaching is switched off, so that a DMB
    /// attached while `nocopy` was set can still be given back after it was
    /// cleared; without an attachment the device itself refuses.
    fn detach_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.dev.detach_dmb(token).map_err(|e| e.kind())
    }
}
