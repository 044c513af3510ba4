//! [`CopyOnly`]: a device seen without nocopy support, so that the handshake
//! leaves the peer's DMB unattached and the connection sends with
//! `move_data` (copy mode) even on a device that could do nocopy.

use smcd_core::dmb::{Chid, DmbToken, Gid};
use smcd_core::ops::{Dmb, Error as _, ErrorKind, ErrorType, SmcdOps};

/// `D` with [`SmcdOps::supports_nocopy`] = false and errors reduced to their
/// kind; everything else delegated.
#[derive(Debug)]
pub(crate) struct CopyOnly<'a, D>(pub(crate) &'a D);

impl<D: SmcdOps> ErrorType for CopyOnly<'_, D> {
    type Error = ErrorKind;
}

impl<D: SmcdOps> SmcdOps for CopyOnly<'_, D> {
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
