//! The attacks, by name, and what the victim must make of each.

use smcd_core::conn::{CursorRole, Violation};

/// One way of writing hostile values into the victim's DMB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attack {
    /// Producer count at or beyond the ring size.
    ProdBeyondRing,
    /// Consumer count far beyond the ring size.
    ConsBeyondRing,
    /// Producer wrap one lower than before.
    WrapBackwards,
    /// Producer two wraps ahead (more than a ring of new data).
    ProdAhead,
    /// Consumer cursor beyond everything the victim has sent.
    ConsBeyondSent,
    /// Consumer cursor covering bytes the peer never read, but within what
    /// the victim sent: valid-looking, undetectable.
    ConsPlausible,
    /// Every flag bit toggling at full speed, cursors unchanged.
    FlagStorm,
    /// The doorbell rung without pause, nothing written: the victim's
    /// calls must still end at their timeouts.
    BellStorm,
    /// Data after the peer's own `shutdown(Write)`.
    AfterShutdown,
    /// Data and headers after the peer closed its stream.
    AfterClose,
    /// Headers written two bytes at a time in a random order.
    Torn,
    /// Random bytes at random places of the header and ring.
    Random,
    /// Resizing and resealing the memfd it was given (refused: EPERM),
    /// then punching a hole over all of it (allowed: the pages read as
    /// zeros, nothing faults).
    Resize,
}

/// What the victim's side must end in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// This violation, as the typed reason.
    Violation(fn(&Violation) -> bool),
    /// Some typed end: a violation, or the peer's abort/close flag.
    Ends,
    /// No error: the values are possible, so the connection carries on.
    Survives,
    /// Either a violation or nothing (values may happen to be valid).
    Either,
}

impl Attack {
    pub(crate) const ALL: [Attack; 13] = [
        Attack::ProdBeyondRing,
        Attack::ConsBeyondRing,
        Attack::WrapBackwards,
        Attack::ProdAhead,
        Attack::ConsBeyondSent,
        Attack::ConsPlausible,
        Attack::FlagStorm,
        Attack::BellStorm,
        Attack::AfterShutdown,
        Attack::AfterClose,
        Attack::Torn,
        Attack::Random,
        Attack::Resize,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Attack::ProdBeyondRing => "prod-beyond-ring",
            Attack::ConsBeyondRing => "cons-beyond-ring",
            Attack::WrapBackwards => "wrap-backwards",
            Attack::ProdAhead => "prod-ahead",
            Attack::ConsBeyondSent => "cons-beyond-sent",
            Attack::ConsPlausible => "cons-plausible",
            Attack::FlagStorm => "flag-storm",
            Attack::BellStorm => "bell-storm",
            Attack::AfterShutdown => "after-shutdown",
            Attack::AfterClose => "after-close",
            Attack::Torn => "torn",
            Attack::Random => "random",
            Attack::Resize => "resize",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Attack> {
        Attack::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether it draws on the seed (repeated under `SMCD_HOSTILE_ITERS`).
    pub(crate) fn randomised(self) -> bool {
        matches!(self, Attack::Torn | Attack::Random | Attack::FlagStorm)
    }

    pub(crate) fn expect(self) -> Expect {
        use CursorRole::{Consumer, Producer};
        match self {
            Attack::ProdBeyondRing => Expect::Violation(|v| {
                matches!(
                    v,
                    Violation::OutOfRange {
                        cursor: Producer,
                        ..
                    }
                )
            }),
            Attack::ConsBeyondRing => Expect::Violation(|v| {
                matches!(
                    v,
                    Violation::OutOfRange {
                        cursor: Consumer,
                        ..
                    }
                )
            }),
            Attack::WrapBackwards => {
                Expect::Violation(|v| matches!(v, Violation::WrapBackwards { cursor: Producer }))
            }
            Attack::ProdAhead => Expect::Violation(|v| {
                matches!(
                    v,
                    Violation::Overrun {
                        cursor: Producer,
                        ..
                    }
                )
            }),
            Attack::ConsBeyondSent => Expect::Violation(|v| {
                matches!(
                    v,
                    Violation::Overrun {
                        cursor: Consumer,
                        ..
                    }
                )
            }),
            Attack::AfterShutdown => {
                Expect::Violation(|v| matches!(v, Violation::DataAfterShutdown { .. }))
            }
            Attack::ConsPlausible | Attack::BellStorm => Expect::Survives,
            Attack::FlagStorm | Attack::Random | Attack::AfterClose | Attack::Resize => {
                Expect::Ends
            }
            Attack::Torn => Expect::Either,
        }
    }

    /// Of the victim's 1000 legitimate bytes, how many the peer reads
    /// before it attacks.
    pub(crate) fn peer_reads(self) -> usize {
        match self {
            Attack::ConsPlausible => 500,
            _ => LEGIT_TO_PEER,
        }
    }
}

/// Bytes the peer sends legitimately before attacking (more than a ring, so
/// its producer cursor has wrapped once).
pub(crate) const LEGIT_TO_VICTIM: usize = 20_000;

/// Bytes the victim sends legitimately before the attack.
pub(crate) const LEGIT_TO_PEER: usize = 1000;

/// Bytes the victim sends at most while under attack (so a consumer cursor
/// 8000 ahead is always beyond them).
pub(crate) const SEND_UNDER_ATTACK: usize = 4000;
