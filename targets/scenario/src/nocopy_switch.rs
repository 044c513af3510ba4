//! [`NocopySwitch`]: a device whose nocopy support can be switched off, so
//! that the handshake leaves the peer's DMB unattached and the connection
//! sends with `move_data` (copy mode) even on the loopback device.
//!
//! Every pair of the scenario runs through this one type, so the core's
//! generic code is instantiated once, as in an image with one device.

use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::ops::{Dmb, Error as _, ErrorKind, ErrorType, SmcdOps};

/// `dev` with [`SmcdOps::supports_nocopy`] only if `nocopy` is set, and
/// errors reduced to their kind; everything else delegated.
#[derive(Debug)]
pub(crate) struct NocopySwitch<'a, D> {
    /// The device.
    pub(crate) dev: &'a D,
    /// Whether nocopy is offered (when the device supports it).
    pub(crate) nocopy: bool,
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
    fn detach_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        if !self.nocopy {
            return Err(ErrorKind::Unsupported);
        }
        self.dev.detach_dmb(token).map_err(|e| e.kind())
    }
}
