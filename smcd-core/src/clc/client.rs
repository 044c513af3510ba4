//! The client role: Proposal → Accept → Confirm (`docs/protocol/handshake.md` §2).

use heapless::Vec;

use super::claim;
use super::config::ClcConfig;
use super::context::ClcContext;
use super::devices::Devices;
use super::lgr::{LgrInfo, LgrKey};
use super::messages::{FEATURE_MASK, OwnSide, fce, peer_hostname, wire_gid};
use super::outcome::{Outcome, ProtocolError, Role, SmcdInfo};
use super::session::{Received, Session};
use crate::dmb::{Chid, Gid};
use crate::ops::PeerDmbId;
use crate::wire::clc::{
    AcceptKind, AcceptRepr, ClcMessage, ClcType, DeclineReason, MAX_GIDCHID_ENTRIES, ProposalRepr,
    SMC_RELEASE_MAX, SmcType, SmcdV2Ext, V2Ext,
};

/// Header version of the Proposals this engine sends (Linux ≥ 5.10).
const PROPOSAL_VERSION: u8 = 2;

/// A local device listed in our Proposal.
#[derive(Debug, Clone, Copy)]
struct Offered {
    index: usize,
    gid: Gid,
    chid: Chid,
}

/// Step 5: the SMC-Dv2 devices to offer, in priority order: v2-capable,
/// no CHID twice, an emulated device only if two entries are left, at most 8
/// entries in all.
fn offer(devices: Devices<'_>) -> Vec<Offered, MAX_GIDCHID_ENTRIES> {
    let mut offered: Vec<Offered, MAX_GIDCHID_ENTRIES> = Vec::new();
    let mut entries = 0;
    for (index, dev) in devices.by_priority() {
        let chid = dev.channel();
        let needed = if chid.is_emulated() { 2 } else { 1 };
        if !dev.v2_capable()
            || offered.iter().any(|o| o.chid == chid)
            || entries + needed > MAX_GIDCHID_ENTRIES
        {
            continue;
        }
        let gid = wire_gid(dev.gid(), chid);
        if offered.push(Offered { index, gid, chid }).is_ok() {
            entries += needed;
        }
    }
    offered
}

/// The SMC-D v2 Proposal for `offered` (`docs/protocol/clc.md` §3): `typev1` N,
/// `typev2` D, the local UEIDs and SEID.
fn proposal(config: &ClcConfig, offered: &[Offered]) -> ProposalRepr {
    let mut smcd_v2_ext = SmcdV2Ext {
        system_eid: config.seid().copied().unwrap_or_default(),
        gidchid: Vec::new(),
    };
    for o in offered {
        // `offer` keeps the entry count within the list's capacity.
        let _ = smcd_v2_ext.push_device(o.gid, o.chid);
    }
    let v2_ext = V2Ext {
        release: SMC_RELEASE_MAX,
        seid: config.seid().is_some(),
        smcd_v2_ext_offset: 0,
        roce: [0; 16],
        max_conns: 0,
        max_links: 0,
        feature_mask: FEATURE_MASK,
        user_eids: config.ueids().iter().copied().collect(),
    };
    let mut p = ProposalRepr {
        typev2: SmcType::D,
        v2_ext: Some(v2_ext),
        smcd_v2_ext: Some(smcd_v2_ext),
        ..ProposalRepr::empty(PROPOSAL_VERSION)
    };
    p.set_canonical_offsets();
    p
}

/// Client half of a [`Handshake`](super::Handshake).
#[derive(Debug)]
pub(crate) struct ClientState {
    offered: Vec<Offered, MAX_GIDCHID_ENTRIES>,
    /// Version of the Declines we send before an Accept arrived: v2 if any
    /// device is v2-capable, else v1 (`docs/protocol/clc.md` §5).
    decline_version: u8,
}

impl ClientState {
    /// Send the first message: the Proposal, or Decline NOSMCDEV when there
    /// is nothing to offer (step 7).
    pub(crate) fn start(s: &mut Session<impl ClcContext>, now_ms: u64) -> Self {
        let devices = s.ctx.devices();
        let client = Self {
            offered: offer(devices),
            decline_version: if devices.any_v2() { 2 } else { 1 },
        };
        if client.offered.is_empty() {
            s.decline(DeclineReason::NoSmcDev, client.decline_version, false);
        } else {
            let p = proposal(s.ctx.config(), &client.offered);
            match s.send(|buf| p.emit(buf)) {
                Ok(()) => s.wait(now_ms),
                Err(e) => s.fail(e.into()),
            }
        }
        client
    }

    /// A message arrived in answer to the Proposal.
    pub(crate) fn handle(&mut self, s: &mut Session<impl ClcContext>, received: Received) {
        match received {
            Received::Rejected { version, error } => {
                // Once an Accept arrived, Declines carry its version.
                s.rejected(error, version.unwrap_or(self.decline_version));
            }
            Received::Message(ClcMessage::Decline(d)) => s.declined(d.peer_diagnosis),
            Received::Message(ClcMessage::AcceptConfirm(a)) if a.kind == AcceptKind::Accept => {
                self.accept(s, &a);
            }
            Received::Message(other) => s.unexpected(&other, ClcType::Accept),
        }
    }

    /// Steps 10–17 for a received Accept.
    fn accept(&self, s: &mut Session<impl ClcContext>, a: &AcceptRepr) {
        let version = a.version;
        // Step 10: we offer SMC-D v2 only (typev1 N, typev2 D).
        if version < 2 {
            return s.decline(DeclineReason::ModeUnsupp, version, false);
        }
        // Step 12: the device the server chose.
        let Some(o) = self.offered.iter().find(|o| o.chid == a.chid) else {
            return s.fail(ProtocolError::ChidNotOffered(a.chid).into());
        };
        s.claim.device = o.index;
        match setup(s, a) {
            Ok((e, confirm)) => match s.send(|buf| confirm.emit(buf)) {
                Ok(()) => s.finish(Outcome::Established(e)),
                Err(err) => s.fail(err.into()),
            },
            Err((reason, out_of_sync)) => s.decline(reason, version, out_of_sync),
        }
    }
}

/// Steps 11 and 13–15 on the device of `s.claim`: link group, DMB, peer
/// binding (nocopy: mapping), and the Confirm to send. Resources go to the
/// claim as they are taken, so a failure gives them back. Errors are the
/// Decline to send and its `out_of_sync` flag.
fn setup(
    s: &mut Session<impl ClcContext>,
    a: &AcceptRepr,
) -> Result<(SmcdInfo, AcceptRepr), (DeclineReason, bool)> {
    let dev = s
        .ctx
        .devices()
        .get(s.claim.device)
        .ok_or((DeclineReason::IntErr, false))?;
    let lgrs = s.ctx.link_groups();
    let config = s.ctx.config();
    let peer_gid = wire_gid(a.gid, a.chid);
    let key = LgrKey::of(dev, peer_gid);
    // Steps 11 and 13: first contact ⇒ always a new group with the release
    // and features of the FCE; else join the existing group or SYNCERR.
    let (lgr, info) = match a.fce {
        Some(f) if a.first_contact => {
            let info = LgrInfo::negotiated(f.release, f.feature_mask);
            let lgr = lgrs
                .create(key, info, true)
                .ok_or((claim::LGR_TABLE_FULL, false))?;
            (lgr, info)
        }
        _ => lgrs
            .join(key)
            .map(|(lgr, info, _)| (lgr, info))
            .ok_or((DeclineReason::SyncErr, true))?,
    };
    s.claim.lgr = Some(lgr);
    // Step 14: our DMB.
    let (dmb, dmbe_size) = claim::register_dmb(dev, config.dmb_size()).map_err(|r| (r, false))?;
    let (token, own_dmb_size) = (dmb.token(), dmb.len());
    s.claim.dmb = Some(dmb);
    // Step 15: bind (nocopy: map) the peer's DMB.
    let mode = s
        .claim
        .attach(
            dev,
            PeerDmbId {
                gid: peer_gid,
                token: a.token,
                len: a.dmbe_size_bytes(),
            },
        )
        .map_err(|r| (r, false))?;
    let e = SmcdInfo {
        role: Role::Client,
        device: s.claim.device,
        version: a.version,
        peer_gid,
        chid: a.chid,
        own_dmb_size,
        peer_dmb_size: a.dmbe_size_bytes(),
        mode,
        eid: a.eid,
        first_contact: a.first_contact,
        link_id: lgr.id(),
        release: info.release,
        features: info.features,
        peer_hostname: peer_hostname(a.fce),
    };
    let confirm = OwnSide {
        kind: AcceptKind::Confirm,
        version: a.version,
        device: dev,
        token,
        dmbe_size,
        lgr,
        eid: a.eid,
        fce: e.first_contact.then(|| fce(config, e.release, e.features)),
    }
    .repr();
    Ok((e, confirm))
}
