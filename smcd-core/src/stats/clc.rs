//! [`ClcStats`]: how the handshakes of one host ended — established by role
//! and CLC version, hard failures by role, fallbacks by role and reason code.
//!
//! Fixed size, no heap: fallback reasons live in a table of
//! [`FALLBACK_CODES`] distinct codes per role (the number Linux keeps);
//! codes seen after the table is full are only counted in
//! [`FallbackCounts::overflow`]. Handshakes dropped before they ended are
//! not counted.

use super::bump;
use crate::clc::{HandshakeError, Outcome, Role};

/// Distinct fallback reason codes counted per role (Linux keeps 30 too).
pub const FALLBACK_CODES: usize = 30;

/// One fallback reason code and how often it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReasonCount {
    /// The Decline's `peer_diagnosis` code (e.g. `0x0303_0008`, NOUEID).
    pub code: u32,
    /// Fallbacks with that code.
    pub count: u64,
}

/// Fallbacks by reason code, in the order the codes were first seen.
///
/// ```
/// use smcd_core::stats::{FALLBACK_CODES, FallbackCounts};
///
/// let mut f = FallbackCounts::new();
/// f.record(0x0303_0008);
/// f.record(0x0303_0008);
/// f.record(0x0301_0000);
/// assert_eq!(f.get(0x0303_0008), 2);
/// assert_eq!(f.iter().count(), 2);
/// assert_eq!(f.total(), 3);
/// for code in 0..FALLBACK_CODES as u32 + 1 {
///     f.record(0x0400_0000 + code);
/// }
/// assert_eq!(f.overflow(), 3); // 2 + 31 codes seen, 30 kept
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FallbackCounts {
    slots: [ReasonCount; FALLBACK_CODES],
    used: usize,
    overflow: u64,
}

impl Default for FallbackCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl FallbackCounts {
    /// No fallback seen.
    pub const fn new() -> Self {
        Self {
            slots: [ReasonCount { code: 0, count: 0 }; FALLBACK_CODES],
            used: 0,
            overflow: 0,
        }
    }

    /// Count one fallback with reason `code`.
    pub fn record(&mut self, code: u32) {
        let used = self.used;
        let slot = match self.slots.iter().take(used).position(|s| s.code == code) {
            Some(i) => self.slots.get_mut(i),
            None => self.slots.get_mut(used).inspect(|_| self.used = used + 1),
        };
        match slot {
            Some(s) => {
                s.code = code;
                bump(&mut s.count);
            }
            None => bump(&mut self.overflow),
        }
    }

    /// Fallbacks counted with `code` (0 if it is not in the table).
    pub fn get(&self, code: u32) -> u64 {
        self.iter().find(|s| s.code == code).map_or(0, |s| s.count)
    }

    /// The codes in the table with their counts, in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = ReasonCount> + '_ {
        self.slots.iter().take(self.used).copied()
    }

    /// Fallbacks whose code came after the table was full.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// All fallbacks, overflow included (wrapping).
    pub fn total(&self) -> u64 {
        self.iter()
            .fold(self.overflow, |sum, s| sum.wrapping_add(s.count))
    }
}

/// How the handshakes of one role ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RoleStats {
    /// SMC-D connections established with CLC version 1.
    pub established_v1: u64,
    /// SMC-D connections established with CLC version 2 (or later).
    pub established_v2: u64,
    /// Handshakes failed with a protocol error (connection closed, no fallback).
    pub protocol_errors: u64,
    /// Handshakes failed because a CLC message did not arrive in time.
    pub timeouts: u64,
    /// Handshakes failed because one of our own messages could not be
    /// encoded (a bug; expected to stay 0).
    pub emit_errors: u64,
    /// Fallbacks to TCP by reason code, whoever declined.
    pub fallbacks: FallbackCounts,
}

impl RoleStats {
    /// Nothing counted.
    pub const fn new() -> Self {
        Self {
            established_v1: 0,
            established_v2: 0,
            protocol_errors: 0,
            timeouts: 0,
            emit_errors: 0,
            fallbacks: FallbackCounts::new(),
        }
    }

    /// SMC-D connections established, any version (wrapping).
    pub fn established(&self) -> u64 {
        self.established_v1.wrapping_add(self.established_v2)
    }

    /// Handshakes that failed without fallback (wrapping).
    pub fn failures(&self) -> u64 {
        self.protocol_errors
            .wrapping_add(self.timeouts)
            .wrapping_add(self.emit_errors)
    }

    fn record(&mut self, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Established(e) if e.version <= 1 => &mut self.established_v1,
            Outcome::Established(_) => &mut self.established_v2,
            Outcome::Fallback(f) => return self.fallbacks.record(f.reason.code()),
            Outcome::Failed(HandshakeError::Protocol(_)) => &mut self.protocol_errors,
            Outcome::Failed(HandshakeError::Timeout) => &mut self.timeouts,
            Outcome::Failed(HandshakeError::Emit(_)) => &mut self.emit_errors,
        };
        bump(counter);
    }
}

/// How the handshakes of a host ended, per role.
///
/// The host's [`LinkGroups`](crate::clc::LinkGroups) table keeps one and
/// every [`Handshake`](crate::clc::Handshake) using the table records its
/// outcome there; read it with
/// [`LinkGroups::clc_stats`](crate::clc::LinkGroups::clc_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClcStats {
    /// Handshakes we ran as the client.
    pub client: RoleStats,
    /// Handshakes we ran as the server.
    pub server: RoleStats,
}

impl ClcStats {
    /// Nothing counted.
    pub const fn new() -> Self {
        Self {
            client: RoleStats::new(),
            server: RoleStats::new(),
        }
    }

    /// The counters of `role`.
    pub fn role(&self, role: Role) -> &RoleStats {
        match role {
            Role::Client => &self.client,
            Role::Server => &self.server,
        }
    }

    /// Count one handshake of `role` that ended with `outcome`.
    pub fn record(&mut self, role: Role, outcome: &Outcome) {
        match role {
            Role::Client => self.client.record(outcome),
            Role::Server => self.server.record(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clc::{DeclinedBy, Fallback, ProtocolError};
    use crate::dmb::Chid;
    use crate::wire::clc::DeclineReason;

    fn fallback(code: u32) -> Outcome {
        Outcome::Fallback(Fallback {
            reason: DeclineReason::from(code),
            declined_by: DeclinedBy::Peer,
        })
    }

    #[test]
    fn outcomes_count_under_their_role() {
        let mut s = ClcStats::new();
        s.record(Role::Client, &fallback(0x0303_0008));
        s.record(Role::Server, &fallback(0x0303_0008));
        s.record(Role::Server, &fallback(0x0303_0008));
        s.record(Role::Server, &Outcome::Failed(HandshakeError::Timeout));
        let proto = ProtocolError::ChidNotOffered(Chid(7));
        s.record(Role::Client, &Outcome::Failed(proto.into()));
        assert_eq!(s.client.fallbacks.get(0x0303_0008), 1);
        assert_eq!(s.server.fallbacks.get(0x0303_0008), 2);
        assert_eq!((s.client.protocol_errors, s.client.timeouts), (1, 0));
        assert_eq!((s.server.protocol_errors, s.server.timeouts), (0, 1));
        assert_eq!(s.role(Role::Server).failures(), 1);
        assert_eq!(s.role(Role::Client).established(), 0);
    }

    #[test]
    fn codes_beyond_the_table_count_as_overflow() {
        let mut f = FallbackCounts::new();
        for code in 0..40u32 {
            f.record(code);
        }
        f.record(5); // in the table
        f.record(35); // not in the table
        assert_eq!(f.iter().count(), FALLBACK_CODES);
        assert_eq!(f.get(5), 2);
        assert_eq!(f.get(35), 0);
        assert_eq!(f.overflow(), 11);
        assert_eq!(f.total(), 42);
        let codes: std::vec::Vec<u32> = f.iter().map(|s| s.code).collect();
        assert_eq!(codes, (0..30).collect::<std::vec::Vec<_>>());
    }

    #[test]
    fn counters_wrap_instead_of_panicking() {
        let mut f = FallbackCounts::new();
        f.record(1);
        f.slots[0].count = u64::MAX;
        f.record(1);
        assert_eq!(f.get(1), 0);
    }
}
