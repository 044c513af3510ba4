//! Building the Accept/Confirm this engine sends (`docs/protocol/clc.md` §4).

use super::config::ClcConfig;
use super::devices::ClcDevice;
use super::lgr::LinkGroup;
use crate::dmb::{Chid, DmbToken, Gid};
use crate::wire::clc::{AcceptKind, AcceptRepr, Eid, Eyecatcher, Fce, Hostname, OS_TYPE_LINUX};

/// Feature bits this engine supports and sends (`feature_mask`): bit 0,
/// emulated ISM devices with 128-bit GIDs.
pub const FEATURE_MASK: u16 = 0x0001;

/// A GID as sent and understood on the wire for a device of `chid`: the low
/// half (`gid_ext`) only exists for emulated devices (`docs/protocol/clc.md` §4).
pub(crate) fn wire_gid(gid: Gid, chid: Chid) -> Gid {
    if chid.is_emulated() {
        gid
    } else {
        Gid::new(gid.gid, 0)
    }
}

/// The first-contact extension we send for a negotiated `release`.
pub(crate) fn fce(config: &ClcConfig, release: u8, features: u16) -> Fce {
    Fce {
        v2_direct: false,
        os_type: OS_TYPE_LINUX,
        release,
        hostname: *config.hostname(),
        max_conns: 0,
        max_links: 0,
        feature_mask: if release >= 1 { features } else { 0 },
        vendor_exp_options: 0,
    }
}

/// The peer's hostname from its first-contact extension; a name that is
/// not ASCII is dropped.
pub(crate) fn peer_hostname(fce: Option<Fce>) -> Option<Hostname> {
    fce.map(|f| f.hostname).filter(Hostname::is_ascii)
}

/// What one side says about itself in its Accept or Confirm.
pub(crate) struct OwnSide<'d> {
    pub(crate) kind: AcceptKind,
    pub(crate) version: u8,
    pub(crate) device: &'d dyn ClcDevice,
    pub(crate) token: DmbToken,
    pub(crate) dmbe_size: u8,
    pub(crate) lgr: LinkGroup,
    pub(crate) eid: Eid,
    /// The first-contact extension, present iff this side created the group.
    pub(crate) fce: Option<Fce>,
}

impl OwnSide<'_> {
    /// The SMC-D v2 Accept/Confirm.
    pub(crate) fn repr(&self) -> AcceptRepr {
        let chid = self.device.channel();
        let mut repr = AcceptRepr {
            kind: self.kind,
            eyecatcher: Eyecatcher::Smcd,
            length: 0,
            version: self.version,
            first_contact: self.fce.is_some(),
            gid: wire_gid(self.device.gid(), chid),
            token: self.token,
            dmbe_idx: 0,
            dmbe_size: self.dmbe_size,
            linkid: self.lgr.id().0,
            chid,
            eid: self.eid,
            fce: self.fce,
            trailer: Eyecatcher::Smcd,
        };
        // `version` is at least 2 here: the v2 part plus the FCE, if any.
        repr.length = u16::try_from(repr.min_len()).unwrap_or(u16::MAX);
        repr
    }
}
