//! The server role: Proposal → Accept → Confirm (`docs/protocol/handshake.md` §3).

use heapless::Vec;

use super::claim;
use super::config::ClcConfig;
use super::context::ClcContext;
use super::devices::Devices;
use super::lgr::{LgrInfo, LgrKey, LinkGroup};
use super::messages::{FEATURE_MASK, OwnSide, fce, peer_hostname};
use super::outcome::{Outcome, ProtocolError, Role, SmcdInfo};
use super::session::{Received, Session};
use crate::dmb::{Chid, Gid};
use crate::ops::PeerDmbId;
use crate::wire::clc::{
    AcceptKind, AcceptRepr, ClcMessage, ClcType, DeclineReason, Eid, MAX_GIDCHID_ENTRIES,
    ProposalRepr, SmcdV2Offer, server_precheck,
};

/// Version of the Accepts this engine sends: it only sets up SMC-D v2.
const ACCEPT_VERSION: u8 = 2;

/// Devices matched in step 6: `(index, peer GID, CHID)`; the native device
/// of the SMC-D area may come on top of the 8 list entries.
type Matches = Vec<(usize, Gid, Chid), { MAX_GIDCHID_ENTRIES + 1 }>;

/// Step 6: for each proposed device in the Proposal's order, the first local
/// v2 device (in priority order, not matched yet) with that CHID that can
/// reach the proposed GID.
fn match_devices(devices: Devices<'_>, offer: &SmcdV2Offer<'_>) -> Matches {
    let mut found = Matches::new();
    for (gid, chid) in offer.devices() {
        let local = devices.by_priority().find(|(index, dev)| {
            dev.v2_capable()
                && dev.channel() == chid
                && !found.iter().any(|(i, ..)| i == index)
                && dev.reaches(gid)
        });
        if let Some((index, _)) = local {
            let _ = found.push((index, gid, chid));
        }
    }
    found
}

/// Step 7: the SEID if both sides enabled the same one, else the first
/// proposed UEID that is in the local table.
fn negotiate_eid(config: &ClcConfig, offer: &SmcdV2Offer<'_>) -> Option<Eid> {
    if let (Some(peer), Some(own)) = (offer.system_eid(), config.seid()) {
        if peer == own {
            return Some(*own);
        }
    }
    offer
        .user_eids()
        .iter()
        .find(|e| config.ueids().contains(e))
        .copied()
}

/// What the server promised in its Accept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepted {
    decline_version: u8,
    first_contact: bool,
    peer_gid: Gid,
    chid: Chid,
    eid: Eid,
    info: LgrInfo,
    own_dmb_size: usize,
    lgr: LinkGroup,
}

/// Server half of a [`Handshake`](super::Handshake).
#[derive(Debug)]
pub(crate) enum ServerState {
    /// Step 2: waiting for the Proposal.
    WaitProposal,
    /// Step 12: Accept sent, waiting for the Confirm.
    WaitConfirm(Accepted),
}

impl ServerState {
    /// The message type expected next.
    pub(crate) fn expected(&self) -> ClcType {
        match self {
            Self::WaitProposal => ClcType::Proposal,
            Self::WaitConfirm(_) => ClcType::Confirm,
        }
    }

    /// A message arrived.
    pub(crate) fn handle(
        &mut self,
        s: &mut Session<impl ClcContext>,
        now_ms: u64,
        received: Received,
    ) {
        match (&*self, received) {
            (Self::WaitProposal, Received::Rejected { version, error }) => {
                s.rejected(error, decline_version(version.unwrap_or(1)));
            }
            // Step 12: a bad Confirm drops the connection without a Decline.
            (Self::WaitConfirm(_), Received::Rejected { error, .. }) => {
                s.fail(ProtocolError::Malformed(error).into());
            }
            (Self::WaitConfirm(a), Received::Message(ClcMessage::Decline(d))) => {
                if d.out_of_sync {
                    s.ctx.link_groups().terminate(a.lgr);
                }
                s.declined(d.peer_diagnosis);
            }
            (_, Received::Message(ClcMessage::Decline(d))) => s.declined(d.peer_diagnosis),
            (Self::WaitProposal, Received::Message(ClcMessage::Proposal(p))) => {
                if let Some(accepted) = proposal(s, &p) {
                    s.wait(now_ms);
                    *self = Self::WaitConfirm(accepted);
                }
            }
            (Self::WaitConfirm(a), Received::Message(ClcMessage::AcceptConfirm(c)))
                if c.kind == AcceptKind::Confirm =>
            {
                confirm(s, a, &c);
            }
            (state, Received::Message(other)) => s.unexpected(&other, state.expected()),
        }
    }
}

/// Decline version answering a Proposal of header version `version`.
fn decline_version(version: u8) -> u8 {
    if version > 1 { 2 } else { 1 }
}

/// What every Accept of one handshake agrees on.
#[derive(Debug, Clone, Copy)]
struct Terms {
    eid: Eid,
    release: u8,
    decline_version: u8,
}

/// Steps 3–11: choose a device and send the Accept, or decline.
fn proposal(s: &mut Session<impl ClcContext>, p: &ProposalRepr) -> Option<Accepted> {
    let decline_version = decline_version(p.version);
    let pre = match server_precheck(p, s.ctx.devices().any_v2()) {
        Ok(pre) => pre,
        Err(rc) => {
            s.decline(rc, decline_version, false);
            return None;
        }
    };
    // The first reason recorded while trying; Linux declines with it.
    let mut recorded = None;
    if let Some(offer) = &pre.smcd_v2 {
        let matches = match_devices(s.ctx.devices(), offer);
        if matches.is_empty() {
            recorded = Some(DeclineReason::NoSmcd2Dev);
        } else if let Some(eid) = negotiate_eid(s.ctx.config(), offer) {
            let terms = Terms {
                eid,
                release: offer.release,
                decline_version,
            };
            // Step 8: the first device that can be set up wins.
            for &m in &matches {
                s.claim.device = m.0;
                match accept(s, m, terms) {
                    Ok(accepted) => return Some(accepted),
                    Err(reason) => {
                        s.release();
                        recorded.get_or_insert(reason);
                    }
                }
            }
        }
    }
    // Steps 9–10: this engine has no SMC-D v1 device and no SMC-R device,
    // so a v1 or SMC-R offer finds nothing either.
    let reason = recorded.unwrap_or(DeclineReason::NoSmcdDev);
    s.decline(reason, decline_version, false);
    None
}

/// Steps 8 and 11 on the device of `s.claim`: link group, DMB, Accept.
/// Resources go to the claim as they are taken.
fn accept(
    s: &mut Session<impl ClcContext>,
    (index, peer_gid, chid): (usize, Gid, Chid),
    terms: Terms,
) -> Result<Accepted, DeclineReason> {
    let dev = s.ctx.devices().get(index).ok_or(DeclineReason::IntErr)?;
    let lgrs = s.ctx.link_groups();
    let config = s.ctx.config();
    let key = LgrKey::of(dev, peer_gid);
    // A group whose first contact is not confirmed yet is joined as a first
    // contact again: the client may not know it yet (see lgr.rs).
    let (lgr, info, first_contact) = match lgrs.join(key) {
        Some((lgr, info, confirmed)) => (lgr, info, !confirmed),
        None => {
            let info = LgrInfo::negotiated(terms.release, FEATURE_MASK);
            let lgr = lgrs.create(key, info, false).ok_or(claim::LGR_TABLE_FULL)?;
            (lgr, info, true)
        }
    };
    s.claim.lgr = Some(lgr);
    let (dmb, dmbe_size) = claim::register_dmb(dev, config.dmb_size())?;
    let accept = OwnSide {
        kind: AcceptKind::Accept,
        version: ACCEPT_VERSION,
        device: dev,
        token: dmb.token(),
        dmbe_size,
        lgr,
        eid: terms.eid,
        fce: first_contact.then(|| fce(config, info.release, info.features)),
    }
    .repr();
    let own_dmb_size = dmb.len();
    s.claim.dmb = Some(dmb);
    s.send(|buf| accept.emit(buf))
        .map_err(|_| DeclineReason::IntErr)?;
    Ok(Accepted {
        decline_version: terms.decline_version,
        first_contact,
        peer_gid,
        chid,
        eid: terms.eid,
        info,
        own_dmb_size,
        lgr,
    })
}

/// Steps 12–14 for a received Confirm.
fn confirm(s: &mut Session<impl ClcContext>, a: &Accepted, c: &AcceptRepr) {
    if c.version != ACCEPT_VERSION {
        return s.fail(
            ProtocolError::VersionMismatch {
                accept: ACCEPT_VERSION,
                confirm: c.version,
            }
            .into(),
        );
    }
    // Step 12: on first contact the client must confirm our release.
    if a.first_contact && c.fce.map(|f| f.release) != Some(a.info.release) {
        return s.decline(DeclineReason::ReleaseErr, a.decline_version, false);
    }
    // Step 13: nocopy attach of the peer's DMB.
    let mode = match s.ctx.devices().get(s.claim.device) {
        Some(dev) => s.claim.attach(
            dev,
            PeerDmbId {
                gid: a.peer_gid,
                token: c.token,
                len: c.dmbe_size_bytes(),
            },
        ),
        None => Err(DeclineReason::IntErr),
    };
    let mode = match mode {
        Ok(mode) => mode,
        Err(reason) => return s.decline(reason, a.decline_version, false),
    };
    if a.first_contact {
        s.ctx.link_groups().confirm(a.lgr);
    }
    s.finish(Outcome::Established(SmcdInfo {
        role: Role::Server,
        device: s.claim.device,
        version: ACCEPT_VERSION,
        peer_gid: a.peer_gid,
        chid: a.chid,
        own_dmb_size: a.own_dmb_size,
        peer_dmb_size: c.dmbe_size_bytes(),
        mode,
        eid: a.eid,
        first_contact: a.first_contact,
        link_id: a.lgr.id(),
        release: a.info.release,
        features: a.info.features,
        peer_hostname: peer_hostname(c.fce),
    }));
}
