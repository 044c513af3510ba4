//! Device and link-group resources a handshake holds until it hands them
//! over in [`Established`](super::Established), and gives back otherwise.

use super::context::ClcContext;
use super::devices::{ClcDevice, Devices};
use super::lgr::{LinkGroup, LinkGroupTable};
use super::outcome::{Established, SmcdInfo};
use crate::conn::SendMode;
use crate::dmb::{DMB_MAX_SIZE_BYTES, DMB_MIN_SIZE_BYTES};
use crate::ops::{Dmb, ErrorKind, PeerDmb, PeerDmbId};
use crate::wire::clc::{DeclineReason, bufsize};

/// Decline reason for a failed `register_dmb`: the DMB limit is MAX_DMB,
/// anything else MEM (`docs/protocol/handshake.md` §2 step 14, §3 step 8).
fn register_failure(kind: ErrorKind) -> DeclineReason {
    match kind {
        ErrorKind::NoSpace => DeclineReason::MaxDmb,
        _ => DeclineReason::Mem,
    }
}

/// Decline reason for a failed nocopy `attach_dmb`. Unverified in the spec
/// (seen only in the posted patch series): "out of memory", i.e. MEM, on
/// both sides (`docs/protocol/loopback.md` §4).
pub(crate) const ATTACH_FAILURE: DeclineReason = DeclineReason::Mem;

/// Decline reason when the link-group table has no free or idle slot; Linux
/// fails the group's allocation, which it reports as MEM.
pub(crate) const LGR_TABLE_FULL: DeclineReason = DeclineReason::Mem;

/// Decline reason for a peer DMB we must not write into: one of our own
/// DMBs sent back to us (this connection's or another one's), a DMB another
/// connection already sends into, or a size outside 16 KiB … 1 MiB. A
/// conforming peer never does any of these (Linux has no check of its own;
/// smcd refuses before any byte moves, so the handshake falls back instead
/// of failing after it).
pub(crate) const PEER_DMB_INVALID: DeclineReason = DeclineReason::IntErr;

/// Register our DMB of `size` bytes (a size class) on `dev`; on "no memory"
/// retry with the next smaller class down to 16 KiB (`docs/protocol/clc.md` §9).
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

/// What a handshake currently holds on one device: taken step by step, and
/// given back on every path except [`Established`], which moves it out.
#[derive(Debug, Default)]
pub(crate) struct Claim {
    /// Index of the device in the context's list.
    pub(crate) device: usize,
    /// Our registered DMB.
    pub(crate) dmb: Option<Dmb>,
    /// The peer's DMB, bound (and for nocopy mapped) to ours.
    pub(crate) peer: Option<PeerDmb>,
    /// One reference on the link group.
    pub(crate) lgr: Option<LinkGroup>,
}

impl Claim {
    /// Give everything back: detach and unregister through the device (the
    /// one release path, [`give_back`](crate::ops::give_back)), drop the
    /// group reference.
    ///
    /// Device errors are ignored: the handshake is over and nothing else can
    /// be done about a device that refuses to take back its own DMB.
    pub(crate) fn release(&mut self, devices: Devices<'_>, lgrs: &dyn LinkGroupTable) {
        let (own, peer) = (self.dmb.take(), self.peer.take());
        if let Some(dev) = devices.get(self.device) {
            let _ = dev.give_back(own, peer);
        }
        if let Some(lgr) = self.lgr.take() {
            lgrs.release(lgr);
        }
    }

    /// Bind the peer's DMB `peer` to ours and map
    /// it if `dev` supports nocopy (client step 15, server step 13), keeping
    /// it in the claim. A size outside 16 KiB … 1 MiB, and any DMB the
    /// device refuses to pair with ours (our own, another connection's: the
    /// device answers [`ErrorKind::InvalidToken`]), is refused with
    /// [`PEER_DMB_INVALID`]; any other failure with [`ATTACH_FAILURE`].
    pub(crate) fn attach(
        &mut self,
        dev: &dyn ClcDevice,
        peer: PeerDmbId,
    ) -> Result<SendMode, DeclineReason> {
        let own = self.dmb.as_ref().ok_or(DeclineReason::IntErr)?;
        if !(DMB_MIN_SIZE_BYTES..=DMB_MAX_SIZE_BYTES).contains(&peer.len) {
            return Err(PEER_DMB_INVALID);
        }
        let nocopy = dev.nocopy();
        let peer = dev.attach(own, peer, nocopy).map_err(|kind| match kind {
            ErrorKind::InvalidToken | ErrorKind::OutOfBounds => PEER_DMB_INVALID,
            _ => ATTACH_FAILURE,
        })?;
        let mode = if peer.ring().is_some() {
            SendMode::NoCopy
        } else {
            SendMode::Copy
        };
        self.peer = Some(peer);
        Ok(mode)
    }

    /// Move the resources out into [`Established`] with `info`, once all of
    /// them are held; the claim is empty afterwards.
    pub(crate) fn take(&mut self, info: SmcdInfo) -> Option<Established> {
        if self.dmb.is_none() || self.peer.is_none() || self.lgr.is_none() {
            return None;
        }
        Some(Established {
            info,
            own: self.dmb.take()?,
            peer: self.peer.take()?,
            link_group: self.lgr.take()?,
        })
    }
}

/// Give back the resources of an established connection that ended (our
/// DMB, the peer binding, the link-group reference) through the same path
/// as a handshake's [`Claim`].
pub(crate) fn release_parts(
    ctx: &impl ClcContext,
    device: usize,
    own: Dmb,
    peer: PeerDmb,
    lgr: LinkGroup,
) {
    Claim {
        device,
        dmb: Some(own),
        peer: Some(peer),
        lgr: Some(lgr),
    }
    .release(ctx.devices(), ctx.link_groups());
}
