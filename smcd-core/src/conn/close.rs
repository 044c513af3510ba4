//! The close / shutdown / abort state machine of `docs/protocol/close.md`, as pure
//! transition functions.
//!
//! [`Connection`](super::Connection) feeds its events through these
//! functions and performs the returned [`CloseAction`]; keeping them pure
//! lets every row of the spec's tables be tested on its own.

use super::ANY_CLOSE;
use crate::wire::cdc::ConnStateFlags;

/// Connection states (`docs/protocol/close.md`). The Linux-internal numbers are
/// available through [`CloseState::linux_value`] for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CloseState {
    /// Established.
    Active,
    /// Not yet connected.
    Init,
    /// Done.
    Closed,
    /// Listening.
    Listen,
    /// We closed or shut down writing; waiting for the peer.
    PeerCloseWait1,
    /// We shut down writing and the peer is done writing; waiting for its close.
    PeerCloseWait2,
    /// The peer closed or shut down writing; waiting for our application.
    AppCloseWait1,
    /// As [`AppCloseWait1`](Self::AppCloseWait1), and we shut down writing.
    AppCloseWait2,
    /// The peer closed while we had only shut down writing; waiting for our
    /// application to close.
    AppFinCloseWait,
    /// We closed after the peer's shutdown-write; waiting for its close.
    PeerFinCloseWait,
    /// Local abort in progress (transient: a local abort ends in `Closed`).
    PeerAbortWait,
    /// The peer aborted; waiting for our application to close.
    ProcessAbort,
}

impl CloseState {
    /// The number Linux uses for this state (`SMC_ACTIVE` = 1, …), for logs.
    pub const fn linux_value(self) -> u8 {
        match self {
            CloseState::Active => 1,
            CloseState::Init => 2,
            CloseState::Closed => 7,
            CloseState::Listen => 10,
            CloseState::PeerCloseWait1 => 20,
            CloseState::PeerCloseWait2 => 21,
            CloseState::AppCloseWait1 => 22,
            CloseState::AppCloseWait2 => 23,
            CloseState::AppFinCloseWait => 24,
            CloseState::PeerFinCloseWait => 25,
            CloseState::PeerAbortWait => 26,
            CloseState::ProcessAbort => 27,
        }
    }
}

/// A CDC header the state machine asks to write, with its sticky flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CloseAction {
    /// Set `peer_done_writing`.
    SendDoneWriting,
    /// "close_final": `peer_conn_abort` if received bytes are unread, else
    /// `peer_conn_closed`.
    SendClose,
    /// Set `peer_conn_abort`.
    SendAbort,
}

/// What the state machine needs to know besides the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CloseFacts {
    /// We sent `peer_done_writing`.
    pub sent_done_writing: bool,
    /// We sent `peer_conn_closed` or `peer_conn_abort` ("sent any close").
    pub sent_close: bool,
    /// The peer sent `peer_conn_closed` or `peer_conn_abort` ("rxed any close").
    pub rxed_close: bool,
    /// The application has closed the connection.
    pub app_closed: bool,
}

impl CloseFacts {
    /// The facts of our own sticky flags and the peer's.
    pub fn new(local: ConnStateFlags, peer: ConnStateFlags, app_closed: bool) -> Self {
        Self {
            sent_done_writing: local.contains(ConnStateFlags::PEER_DONE_WRITING),
            sent_close: local.intersects(ANY_CLOSE),
            rxed_close: peer.intersects(ANY_CLOSE),
            app_closed,
        }
    }

    /// "We sent only done-writing" (no close yet).
    fn sent_only_done_writing(self) -> bool {
        self.sent_done_writing && !self.sent_close
    }
}

/// A state transition with an optional header to write first.
pub type Step = (Option<CloseAction>, CloseState);

/// Application close / SHUT_RDWR (`docs/protocol/close.md` §1).
///
/// Flushing is the caller's concern: this data path keeps no unsent data.
pub fn on_close(state: CloseState, facts: CloseFacts) -> Step {
    use CloseState as S;
    match state {
        S::Init | S::Listen | S::PeerAbortWait | S::Closed => (None, S::Closed),
        S::Active => (Some(CloseAction::SendClose), S::PeerCloseWait1),
        S::AppCloseWait1 | S::AppCloseWait2 => (
            Some(CloseAction::SendClose),
            if facts.rxed_close {
                S::Closed
            } else {
                S::PeerFinCloseWait
            },
        ),
        S::PeerCloseWait1 | S::PeerCloseWait2 => (
            facts
                .sent_only_done_writing()
                .then_some(CloseAction::SendClose),
            state,
        ),
        S::AppFinCloseWait => (
            facts
                .sent_only_done_writing()
                .then_some(CloseAction::SendClose),
            S::Closed,
        ),
        S::PeerFinCloseWait => (None, state),
        S::ProcessAbort => (Some(CloseAction::SendAbort), S::Closed),
    }
}

/// shutdown(SHUT_WR) (`docs/protocol/close.md` §2).
pub fn on_shutdown_write(state: CloseState) -> Step {
    match state {
        CloseState::Active => (
            Some(CloseAction::SendDoneWriting),
            CloseState::PeerCloseWait1,
        ),
        CloseState::AppCloseWait1 => (
            Some(CloseAction::SendDoneWriting),
            CloseState::AppCloseWait2,
        ),
        other => (None, other),
    }
}

/// A CDC header with any of done_writing / closed / abort arrived
/// (`docs/protocol/close.md` §3). `facts.rxed_close` must already include `peer`.
pub fn on_peer_close(state: CloseState, facts: CloseFacts, peer: ConnStateFlags) -> CloseState {
    use CloseState as S;
    if peer.contains(ConnStateFlags::PEER_CONN_ABORT) {
        return match state {
            S::Init | S::Active | S::AppCloseWait1 | S::AppFinCloseWait => S::ProcessAbort,
            S::PeerCloseWait1 | S::PeerCloseWait2 => {
                if facts.sent_only_done_writing() {
                    S::ProcessAbort
                } else {
                    S::Closed
                }
            }
            S::AppCloseWait2 | S::PeerFinCloseWait | S::PeerAbortWait => S::Closed,
            S::ProcessAbort | S::Closed | S::Listen => state,
        };
    }
    match state {
        S::Init | S::Active => S::AppCloseWait1,
        S::PeerCloseWait1 | S::PeerCloseWait2 => {
            let state =
                if state == S::PeerCloseWait1 && peer.contains(ConnStateFlags::PEER_DONE_WRITING) {
                    S::PeerCloseWait2
                } else {
                    state
                };
            if !facts.rxed_close {
                state
            } else if facts.app_closed && facts.sent_close {
                S::Closed
            } else {
                S::AppFinCloseWait
            }
        }
        S::PeerFinCloseWait if facts.rxed_close => S::Closed,
        other => other,
    }
}

/// Local abort, e.g. the device went away (`docs/protocol/close.md` §4).
///
/// Linux passes through [`CloseState::PeerAbortWait`] on its way to
/// `Closed`; here the transition completes at once.
pub fn on_local_abort(state: CloseState) -> CloseState {
    use CloseState as S;
    match state {
        S::Init | S::Listen | S::PeerAbortWait | S::Closed => state,
        S::Active
        | S::AppCloseWait1
        | S::AppCloseWait2
        | S::PeerCloseWait1
        | S::PeerCloseWait2
        | S::PeerFinCloseWait
        | S::ProcessAbort
        | S::AppFinCloseWait => S::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::CloseAction::*;
    use super::CloseState::*;
    use super::*;

    const ALL: [CloseState; 12] = [
        Active,
        Init,
        Closed,
        Listen,
        PeerCloseWait1,
        PeerCloseWait2,
        AppCloseWait1,
        AppCloseWait2,
        AppFinCloseWait,
        PeerFinCloseWait,
        PeerAbortWait,
        ProcessAbort,
    ];

    fn facts(sent_dw: bool, sent_close: bool, rxed_close: bool, app_closed: bool) -> CloseFacts {
        CloseFacts {
            sent_done_writing: sent_dw,
            sent_close,
            rxed_close,
            app_closed,
        }
    }

    const NONE: CloseFacts = CloseFacts {
        sent_done_writing: false,
        sent_close: false,
        rxed_close: false,
        app_closed: false,
    };
    const DW: ConnStateFlags = ConnStateFlags::PEER_DONE_WRITING;
    const CL: ConnStateFlags = ConnStateFlags::PEER_CONN_CLOSED;
    const AB: ConnStateFlags = ConnStateFlags::PEER_CONN_ABORT;

    #[test]
    fn linux_values() {
        let v: [u8; 12] = ALL.map(CloseState::linux_value);
        assert_eq!(v, [1, 2, 7, 10, 20, 21, 22, 23, 24, 25, 26, 27]);
    }

    #[test]
    fn facts_from_flags() {
        assert_eq!(
            CloseFacts::new(DW, CL | DW, true),
            facts(true, false, true, true)
        );
        assert_eq!(
            CloseFacts::new(AB, DW, false),
            facts(false, true, false, false)
        );
        assert!(CloseFacts::new(CL, AB, false).rxed_close);
    }

    // §1 active close, one test per row.
    #[test]
    fn close_init_listen_abortwait_closed_go_closed_silently() {
        for s in [Init, Listen, PeerAbortWait, Closed] {
            assert_eq!(on_close(s, NONE), (None, Closed), "{s:?}");
        }
    }

    #[test]
    fn close_active_sends_close() {
        assert_eq!(on_close(Active, NONE), (Some(SendClose), PeerCloseWait1));
    }

    #[test]
    fn close_appclosewait_sends_close() {
        for s in [AppCloseWait1, AppCloseWait2] {
            assert_eq!(
                on_close(s, facts(false, false, true, true)),
                (Some(SendClose), Closed)
            );
            assert_eq!(
                on_close(s, facts(true, false, false, true)),
                (Some(SendClose), PeerFinCloseWait)
            );
        }
    }

    #[test]
    fn close_peerclosewait_sends_close_only_after_done_writing() {
        for s in [PeerCloseWait1, PeerCloseWait2] {
            assert_eq!(
                on_close(s, facts(true, false, false, true)),
                (Some(SendClose), s)
            );
            assert_eq!(on_close(s, facts(true, true, false, true)), (None, s));
            assert_eq!(on_close(s, facts(false, true, false, true)), (None, s));
        }
    }

    #[test]
    fn close_appfinclosewait() {
        assert_eq!(
            on_close(AppFinCloseWait, facts(true, false, true, true)),
            (Some(SendClose), Closed)
        );
        assert_eq!(
            on_close(AppFinCloseWait, facts(true, true, true, true)),
            (None, Closed)
        );
    }

    #[test]
    fn close_peerfinclosewait_unchanged() {
        assert_eq!(
            on_close(PeerFinCloseWait, facts(false, true, false, true)),
            (None, PeerFinCloseWait)
        );
    }

    #[test]
    fn close_processabort_sends_abort() {
        assert_eq!(on_close(ProcessAbort, NONE), (Some(SendAbort), Closed));
    }

    // §2 shutdown(SHUT_WR).
    #[test]
    fn shutdown_write_rows() {
        assert_eq!(
            on_shutdown_write(Active),
            (Some(SendDoneWriting), PeerCloseWait1)
        );
        assert_eq!(
            on_shutdown_write(AppCloseWait1),
            (Some(SendDoneWriting), AppCloseWait2)
        );
        for s in ALL {
            if s != Active && s != AppCloseWait1 {
                assert_eq!(on_shutdown_write(s), (None, s), "{s:?}");
            }
        }
    }

    // §3a peer abort.
    #[test]
    fn peer_abort_to_processabort() {
        for s in [Init, Active, AppCloseWait1, AppFinCloseWait] {
            assert_eq!(on_peer_close(s, NONE, AB), ProcessAbort, "{s:?}");
        }
    }

    #[test]
    fn peer_abort_in_peerclosewait() {
        for s in [PeerCloseWait1, PeerCloseWait2] {
            assert_eq!(
                on_peer_close(s, facts(true, false, true, false), AB),
                ProcessAbort
            );
            assert_eq!(on_peer_close(s, facts(false, true, true, true), AB), Closed);
            assert_eq!(on_peer_close(s, facts(true, true, true, true), AB), Closed);
        }
    }

    #[test]
    fn peer_abort_to_closed() {
        for s in [AppCloseWait2, PeerFinCloseWait, PeerAbortWait] {
            assert_eq!(on_peer_close(s, NONE, AB), Closed, "{s:?}");
        }
    }

    #[test]
    fn peer_abort_unchanged() {
        for s in [ProcessAbort, Closed] {
            assert_eq!(on_peer_close(s, NONE, AB | CL), s);
        }
    }

    // §3b peer closed / done writing.
    #[test]
    fn peer_close_from_active() {
        for s in [Init, Active] {
            assert_eq!(on_peer_close(s, NONE, DW), AppCloseWait1);
            assert_eq!(
                on_peer_close(s, facts(false, false, true, false), CL),
                AppCloseWait1
            );
        }
    }

    #[test]
    fn peer_done_writing_in_peerclosewait1() {
        // Only done_writing: PCW1 → PCW2, and PCW2 stays.
        assert_eq!(
            on_peer_close(PeerCloseWait1, facts(true, false, false, false), DW),
            PeerCloseWait2
        );
        assert_eq!(
            on_peer_close(PeerCloseWait2, facts(true, false, false, false), DW),
            PeerCloseWait2
        );
    }

    #[test]
    fn peer_close_in_peerclosewait() {
        for s in [PeerCloseWait1, PeerCloseWait2] {
            // Application closed and we sent a close: done.
            assert_eq!(on_peer_close(s, facts(false, true, true, true), CL), Closed);
            assert_eq!(
                on_peer_close(s, facts(true, true, true, true), CL | DW),
                Closed
            );
            // Application still open (we only shut down writing).
            assert_eq!(
                on_peer_close(s, facts(true, false, true, false), CL),
                AppFinCloseWait
            );
            assert_eq!(
                on_peer_close(s, facts(true, false, true, false), CL | DW),
                AppFinCloseWait
            );
            // Application closed, but only our done-writing went out: we
            // still owe the peer our close.
            assert_eq!(
                on_peer_close(s, facts(true, false, true, true), CL),
                AppFinCloseWait
            );
        }
    }

    #[test]
    fn peer_close_in_peerfinclosewait() {
        assert_eq!(
            on_peer_close(PeerFinCloseWait, facts(false, true, true, true), CL),
            Closed
        );
        assert_eq!(
            on_peer_close(PeerFinCloseWait, facts(false, true, false, true), DW),
            PeerFinCloseWait
        );
    }

    #[test]
    fn peer_close_unchanged() {
        for s in [
            AppCloseWait1,
            AppCloseWait2,
            AppFinCloseWait,
            PeerAbortWait,
            ProcessAbort,
            Closed,
        ] {
            assert_eq!(
                on_peer_close(s, facts(false, false, true, false), CL | DW),
                s
            );
        }
    }

    // §4 local abort.
    #[test]
    fn local_abort_rows() {
        for s in [
            Active,
            AppCloseWait1,
            AppCloseWait2,
            PeerCloseWait1,
            PeerCloseWait2,
            PeerFinCloseWait,
            ProcessAbort,
            AppFinCloseWait,
        ] {
            assert_eq!(on_local_abort(s), Closed, "{s:?}");
        }
        for s in [Init, PeerAbortWait, Closed] {
            assert_eq!(on_local_abort(s), s);
        }
    }
}
