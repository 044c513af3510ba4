//! The server's first semantic check of a well-formed Proposal
//! (`docs/protocol/handshake.md` §3 steps 4–4e, Linux `smc_listen_v2_check`).

use super::eid::Eid;
use super::proposal::{ProposalRepr, SmcdV2Ext, V2Ext};
use super::reason::DeclineReason;
use crate::dmb::{Chid, Gid};

/// Highest release this implementation speaks (v2.1). The negotiated
/// release is `min(Proposal release, SMC_RELEASE_MAX)`.
pub const SMC_RELEASE_MAX: u8 = 1;

/// What a Proposal leaves to try after [`server_precheck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerPrecheck<'a> {
    /// SMC-D v2 is offered and usable: match devices (step 6) and EIDs
    /// (step 7) against it.
    pub smcd_v2: Option<SmcdV2Offer<'a>>,
    /// SMC-D v1 is offered (`typev1` ∈ {D, B}): the native device of the
    /// SMC-D area, for step 9. A host whose only device is v2 loopback has no
    /// v1 device; the engine then ends in NOSMCDDEV (step 10).
    pub smcd_v1: Option<(Gid, Chid)>,
    /// SMC-R (v1, or v2 with at least one UEID) is still offered. smcd has no
    /// SMC-R device; Linux would go on looking for one.
    pub smcr: bool,
}

/// A usable SMC-D v2 offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SmcdV2Offer<'a> {
    /// Negotiated release: `min(v2_ext.release, SMC_RELEASE_MAX)` (step 5).
    pub release: u8,
    /// The Proposal's v2 extension (UEIDs, `seid` flag, `feature_mask`).
    pub v2_ext: &'a V2Ext,
    /// The Proposal's SMC-Dv2 extension (SEID, GID/CHID entries).
    pub smcd_v2_ext: &'a SmcdV2Ext,
    /// The native device of the SMC-D area, if `ism_chid` ≠ 0.
    pub native: Option<(Gid, Chid)>,
}

impl<'a> SmcdV2Offer<'a> {
    /// Candidate devices in the order a Linux server tries them (step 6):
    /// the native SMC-D area device first (if `ism_chid` ≠ 0), then the
    /// GID/CHID list with emulated pairs combined into 128-bit GIDs.
    pub fn devices(&self) -> impl Iterator<Item = (Gid, Chid)> + 'a {
        self.native.into_iter().chain(self.smcd_v2_ext.devices())
    }

    /// The UEIDs offered, in order (step 7b).
    pub fn user_eids(&self) -> &'a [Eid] {
        &self.v2_ext.user_eids
    }

    /// The SEID, if the peer flagged it valid (step 7a).
    pub fn system_eid(&self) -> Option<&'a Eid> {
        self.v2_ext.seid.then_some(&self.smcd_v2_ext.system_eid)
    }
}

/// Decides, as a Linux server does right after a Proposal parsed, whether
/// anything usable is left (`docs/protocol/handshake.md` §3 steps 4–4e).
///
/// `local_ismv2` says whether the host has a v2-capable ISM device (for a
/// host with the loopback device: `true`). Checks, in Linux order, each
/// one dropping an offer and recording its code as the "last rc":
///
/// 1. SMC-D v1 is offered if `typev1` ∈ {D, B}, SMC-R v1 if ∈ {R, B}; v2
///    types only count with header `version` > 1. No v2 type at all: rc
///    PEERNOSMC.
/// 2. No locatable v2 extension ([`ProposalRepr::usable_v2_ext`]): all v2
///    dropped, rc NOV2EXT.
/// 3. SMC-D v2: host not ISMv2-capable → NOISM2SUPP; else SMC-Dv2
///    extension unusable (`smcd_v2_ext_offset` 0 or >
///    [`SMCD_V2_EXT_OFFSET_MAX`](super::SMCD_V2_EXT_OFFSET_MAX)) → NOV2DEXT;
///    else `eid_cnt` = 0 and `seid` = 0 → NOUEID.
/// 4. SMC-R v2 with `eid_cnt` = 0 → NOUEID.
///
/// # Errors
///
/// The Decline code to send (as a v2 Decline if the Proposal's version > 1,
/// else v1) when nothing at all is left. The code is PEERNOSMC when the
/// Proposal offered nothing (Linux sends that code in this case).
///
/// # Example
///
/// ```
/// use smcd_core::wire::clc::{server_precheck, DeclineReason, ProposalRepr};
///
/// # fn get(p: &ProposalRepr) {}
/// # let text = include_str!("../../../tests/vectors/declined-proposal-no-eid.hex");
/// # let buf: Vec<u8> = text.lines().map(|l| l.split('#').next().unwrap())
/// #     .flat_map(str::split_whitespace).map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
/// let proposal = ProposalRepr::parse(&buf)?;
/// assert_eq!(server_precheck(&proposal, true), Err(DeclineReason::NoUeid));
/// # Ok::<(), smcd_core::wire::clc::WireError>(())
/// ```
pub fn server_precheck(
    proposal: &ProposalRepr,
    local_ismv2: bool,
) -> Result<ServerPrecheck<'_>, DeclineReason> {
    let v2_header = proposal.version > 1;
    let smcd_v1 = proposal
        .typev1
        .has_d()
        .then(|| (Gid::new(proposal.ism_gid, 0), proposal.ism_chid));
    let smcr_v1 = proposal.typev1.has_r();
    let want_smcd_v2 = v2_header && proposal.typev2.has_d();
    let mut want_smcr_v2 = v2_header && proposal.typev2.has_r();
    let mut rc = DeclineReason::PeerNoSmc;
    let mut smcd_v2 = None;

    if want_smcd_v2 || want_smcr_v2 {
        match proposal.usable_v2_ext() {
            None => {
                want_smcr_v2 = false;
                rc = DeclineReason::NoV2Ext;
            }
            Some(v2_ext) => {
                let no_eid = v2_ext.user_eids.is_empty();
                if want_smcd_v2 {
                    match proposal.usable_smcd_v2_ext() {
                        _ if !local_ismv2 => rc = DeclineReason::NoIsm2Supp,
                        None => rc = DeclineReason::NoV2dExt,
                        Some(_) if no_eid && !v2_ext.seid => rc = DeclineReason::NoUeid,
                        Some(smcd_v2_ext) => {
                            smcd_v2 = Some(SmcdV2Offer {
                                release: v2_ext.release.min(SMC_RELEASE_MAX),
                                v2_ext,
                                smcd_v2_ext,
                                native: proposal.native_device(),
                            });
                        }
                    }
                }
                if want_smcr_v2 && no_eid {
                    want_smcr_v2 = false;
                    rc = DeclineReason::NoUeid;
                }
            }
        }
    }

    if smcd_v2.is_none() && smcd_v1.is_none() && !smcr_v1 && !want_smcr_v2 {
        return Err(rc);
    }
    Ok(ServerPrecheck {
        smcd_v2,
        smcd_v1,
        smcr: smcr_v1 || want_smcr_v2,
    })
}
