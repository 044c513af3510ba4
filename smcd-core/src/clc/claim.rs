//! Device and link-group resources a handshake holds until it hands them
//! over in [`Established`](super::Established), and gives back otherwise.

use super::devices::{ClcDevice, Devices};
use super::lgr::{LinkGroup, LinkGroupTable};
use super::outcome::Established;
use crate::conn::SendMode;
use crate::dmb::{DMB_MAX_SIZE_BYTES, DMB_MIN_SIZE_BYTES, DmbToken};
use crate::ops::{Dmb, ErrorKind};
use crate::wire::clc::{DeclineReason, bufsize};

/// Decline reason for a failed `register_dmb`: the DMB limit is MAX_DMB,
/// anything else MEM (`spec/handshake.md` §2 step 14, §3 step 8).
fn register_failure(kind: ErrorKind) -> DeclineReason {
    match kind {
        ErrorKind::NoSpace => DeclineReason::MaxDmb,
        _ => DeclineReason::Mem,
    }
}

/// Decline reason for a failed nocopy `attach_dmb`. Unverified in the spec
/// (seen only in the posted patch series): "out of memory", i.e. MEM, on
/// both sides (`spec/loopback.md` §4).
pub(crate) const ATTACH_FAILURE: DeclineReason = DeclineReason::Mem;

/// Decline reason when the link-group table has no free or idle slot; Linux
/// fails the group's allocation, which it reports as MEM.
pub(crate) const LGR_TABLE_FULL: DeclineReason = DeclineReason::Mem;

/// Decline reason for a peer DMB we must not write into: our own token sent
/// back to us, or a size outside 16 KiB … 1 MiB. A conforming peer never
/// does either (Linux has no check of its own; smcd refuses before any byte
/// moves, so the handshake falls back instead of failing after it).
pub(crate) const PEER_DMB_INVALID: DeclineReason = DeclineReason::IntErr;

/// Register our DMB of `size` bytes (a size class) on `dev`; on "no memory"
/// retry with the next smaller class down to 16 KiB (`spec/clc.md` §9).
///
/// Returns the DMB and its compressed size.
pub(crate) fn register_dmb(dev: &dyn ClcDevice, size: usize) -> Result<(Dmb, u8), DeclineReason> {
    let mut class = bufsize::encode_smcd(size);
    loop {
        match dev.register(bufsize::decode(class)) {
            Ok(dmb) => return Ok((dmb, class)),
            Err(ErrorKind::NoMemory) if bufsize::decode(class) > DMB_MIN_SIZE_BYTES => {
                class = class.saturating_sub(1);
            }
            Err(kind) => return Err(register_failure(kind)),
        }
    }
}

/// What a handshake currently holds on one device.
#[derive(Debug, Default)]
pub(crate) struct Claim {
    /// Index of the device in the caller's list.
    pub(crate) device: usize,
    /// Our registered DMB.
    pub(crate) dmb: Option<Dmb>,
    /// The peer's DMB attached for nocopy.
    pub(crate) attached: Option<Dmb>,
    /// One reference on the link group.
    pub(crate) lgr: Option<LinkGroup>,
}

impl Claim {
    /// The resources an unclaimed outcome carries.
    pub(crate) fn of(e: &Established) -> Self {
        Self {
            device: e.device,
            dmb: Some(e.dmb),
            attached: match e.mode {
                SendMode::NoCopy(dmb) => Some(dmb),
                SendMode::Copy => None,
            },
            lgr: Some(e.link_group),
        }
    }

    /// Give everything back: detach, unregister, drop the group reference.
    ///
    /// Device errors are ignored: the handshake is over and nothing else can
    /// be done about a device that refuses to take back its own DMB.
    pub(crate) fn release(&mut self, devices: Devices<'_>, lgrs: &dyn LinkGroupTable) {
        if let Some(dev) = devices.get(self.device) {
            if let Some(dmb) = self.attached.take() {
                let _ = dev.detach(dmb.token);
            }
            if let Some(dmb) = self.dmb.take() {
                let _ = dev.unregister(dmb.token);
            }
        }
        if let Some(lgr) = self.lgr.take() {
            lgrs.release(lgr);
        }
    }

    /// Check the peer's DMB (`peer_token`, `peer_size` bytes) and attach it
    /// if `dev` supports nocopy (client step 15, server step 13), keeping it
    /// in the claim. A token equal to our own DMB's, or a size outside
    /// 16 KiB … 1 MiB, is refused with [`PEER_DMB_INVALID`].
    pub(crate) fn attach(
        &mut self,
        dev: &dyn ClcDevice,
        peer_token: DmbToken,
        peer_size: usize,
    ) -> Result<SendMode, DeclineReason> {
        let own = self.dmb.map(|d| d.token);
        if own == Some(peer_token)
            || !(DMB_MIN_SIZE_BYTES..=DMB_MAX_SIZE_BYTES).contains(&peer_size)
        {
            return Err(PEER_DMB_INVALID);
        }
        if !dev.nocopy() {
            return Ok(SendMode::Copy);
        }
        let peer = dev.attach(peer_token).map_err(|_| ATTACH_FAILURE)?;
        self.attached = Some(peer);
        Ok(SendMode::NoCopy(peer))
    }

    /// Forget everything without giving it back (ownership moved on).
    pub(crate) fn disown(&mut self) {
        *self = Self::default();
    }
}
