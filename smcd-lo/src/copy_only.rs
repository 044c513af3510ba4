//! [`CopyOnly`]: a device seen without nocopy support, so that handshakes
//! leave the peer's DMB unattached and connections send through
//! `move_data` (copy mode) even on a device that could do nocopy.

use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::ops::{Dmb, Error as _, ErrorKind, ErrorType, SmcdOps};

/// `D` with [`SmcdOps::supports_nocopy`] = false and errors reduced to their
/// kind; everything else delegated.
///
/// ```
/// use rand::SeedableRng;
/// use smcd_core::ops::SmcdOps;
/// use smcd_lo::copy_only::CopyOnly;
/// use smcd_lo::{LoopbackDevice, NoDoorbell, StaticArena};
///
/// let region = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
/// let lo: LoopbackDevice<StaticArena, rand::rngs::StdRng> =
///     LoopbackDevice::new(StaticArena::new(region), rand::rngs::StdRng::seed_from_u64(1), NoDoorbell);
/// assert!(lo.supports_nocopy());
/// let copy = CopyOnly(lo);
/// assert!(!copy.supports_nocopy());
/// let dmb = copy.register_dmb(16 * 1024)?;
/// assert!(copy.attach_dmb(dmb.token).is_err());
/// copy.unregister_dmb(dmb.token)?;
/// # Ok::<(), smcd_core::ops::ErrorKind>(())
/// ```
#[derive(Debug)]
pub struct CopyOnly<D>(pub D);

impl<D: SmcdOps> ErrorType for CopyOnly<D> {
    type Error = ErrorKind;
}

impl<D: SmcdOps> SmcdOps for CopyOnly<D> {
    fn local_gid(&self) -> Gid {
        self.0.local_gid()
    }
    fn chid(&self) -> Chid {
        self.0.chid()
    }
    fn supports_v2(&self) -> bool {
        self.0.supports_v2()
    }
    fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
        self.0.query_remote_gid(gid).map_err(|e| e.kind())
    }
    fn register_dmb(&self, size: usize) -> Result<Dmb, ErrorKind> {
        self.0.register_dmb(size).map_err(|e| e.kind())
    }
    fn unregister_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.0.unregister_dmb(token).map_err(|e| e.kind())
    }
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), ErrorKind> {
        self.0
            .move_data(token, offset, data, signal)
            .map_err(|e| e.kind())
    }
    fn signal_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.0.signal_dmb(token).map_err(|e| e.kind())
    }
    fn supports_nocopy(&self) -> bool {
        false
    }
    fn attach_dmb(&self, _token: DmbToken) -> Result<Dmb, ErrorKind> {
        Err(ErrorKind::Unsupported)
    }
    fn detach_dmb(&self, _token: DmbToken) -> Result<(), ErrorKind> {
        Err(ErrorKind::Unsupported)
    }
}
