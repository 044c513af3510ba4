//! Decline / fallback reason codes (`peer_diagnosis`, `docs/protocol/clc.md` §7).

use core::fmt;

macro_rules! decline_reasons {
    ($( $variant:ident = $code:literal, $name:literal, $local:literal, $text:literal; )*) => {
        /// A Decline / fallback reason code (`peer_diagnosis`, u32).
        ///
        /// The first byte is the category. Open enum: any `u32` converts, and
        /// codes outside the table of `docs/protocol/clc.md` §7 become
        /// [`Unknown`](Self::Unknown) (Linux accepts and counts any value).
        /// [`From<u32>`] never yields `Unknown` for a code the table names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum DeclineReason {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($code), "): ", $text, ".")]
                $variant,
            )*
            /// Any code not in the table.
            Unknown(u32),
        }

        impl From<u32> for DeclineReason {
            fn from(code: u32) -> Self {
                match code {
                    $( $code => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<DeclineReason> for u32 {
            fn from(reason: DeclineReason) -> Self {
                match reason {
                    $( DeclineReason::$variant => $code, )*
                    DeclineReason::Unknown(code) => code,
                }
            }
        }

        impl DeclineReason {
            /// Every named code, in table order.
            pub const ALL: &'static [DeclineReason] = &[$( Self::$variant, )*];

            /// The Linux name (`SMC_CLC_DECL_<name>`, e.g. `"NOUEID"`), or
            /// `None` for an unknown code.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($name), )*
                    Self::Unknown(_) => None,
                }
            }

            /// One-line human description.
            pub const fn description(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Unknown(_) => "unknown reason code",
                }
            }

            /// Whether this code is used locally as a fallback reason but never
            /// sent in a Decline by Linux (or only on special paths), or is an
            /// obsolete 2017 code that must not be emitted.
            pub const fn is_local(self) -> bool {
                match self {
                    $( Self::$variant => $local, )*
                    Self::Unknown(_) => false,
                }
            }
        }
    };
}

decline_reasons! {
    Mem = 0x0101_0000, "MEM", false, "insufficient memory";
    TimeoutCl = 0x0201_0000, "TIMEOUT_CL", false, "timeout waiting for SMC-R confirm link";
    TimeoutAl = 0x0202_0000, "TIMEOUT_AL", false, "timeout waiting for SMC-R add link";
    CnfErr = 0x0300_0000, "CNFERR", false, "configuration error";
    PeerNoSmc = 0x0301_0000, "PEERNOSMC", true, "peer did not indicate SMC";
    Ipsec = 0x0302_0000, "IPSEC", false, "IPsec policy on the socket";
    NoSmcDev = 0x0303_0000, "NOSMCDEV", false, "no SMC device (R or D)";
    NoSmcdDev = 0x0303_0001, "NOSMCDDEV", false, "no SMC-D device";
    NoSmcrDev = 0x0303_0002, "NOSMCRDEV", false, "no SMC-R device";
    NoIsm2Supp = 0x0303_0003, "NOISM2SUPP", false, "no ISMv2-capable device";
    NoV2Ext = 0x0303_0004, "NOV2EXT", false, "peer sent no v2 extension";
    NoV2dExt = 0x0303_0005, "NOV2DEXT", false, "peer sent no usable SMC-Dv2 extension";
    NoSeid = 0x0303_0006, "NOSEID", false, "peer sent no SEID";
    NoSmcd2Dev = 0x0303_0007, "NOSMCD2DEV", false, "no matching SMC-Dv2 device";
    NoUeid = 0x0303_0008, "NOUEID", false, "peer sent neither UEID nor SEID";
    ReleaseErr = 0x0303_0009, "RELEASEERR", false, "release negotiation failed";
    MaxConnErr = 0x0303_000a, "MAXCONNERR", false, "SMC-R max_conns negotiation failed";
    MaxLinkErr = 0x0303_000b, "MAXLINKERR", false, "SMC-R max_links negotiation failed";
    ModeUnsupp = 0x0304_0000, "MODEUNSUPP", false, "accepted SMC type was not offered";
    RmbeEc = 0x0305_0000, "RMBE_EC", false, "peer has eyecatcher in RMBE (SMC-R)";
    OptUnsupp = 0x0306_0000, "OPTUNSUPP", true, "TCP fastopen requested";
    DiffPrefix = 0x0307_0000, "DIFFPREFIX", false, "IP prefix / subnet mismatch";
    GetVlanErr = 0x0308_0000, "GETVLANERR", false, "cannot determine VLAN of egress device";
    IsmVlanErr = 0x0309_0000, "ISMVLANERR", false, "cannot register VLAN on ISM device";
    NoActLink = 0x030a_0000, "NOACTLINK", false, "no active SMC-R link";
    NoSrvLink = 0x030b_0000, "NOSRVLINK", false, "SMC-R server link not found";
    VersMismat = 0x030c_0000, "VERSMISMAT", false, "SMC version mismatch";
    MaxDmb = 0x030d_0000, "MAX_DMB", false, "SMC-D DMB limit reached";
    NoRoute = 0x030e_0000, "NOROUTE", false, "SMC-Rv2 no route";
    NoIndirect = 0x030f_0000, "NOINDIRECT", false, "SMC-Rv2 indirect mismatch";
    SyncErr = 0x0400_0000, "SYNCERR", false, "link-group synchronization error";
    PeerDecl = 0x0500_0000, "PEERDECL", true, "peer declined";
    IntErr = 0x0999_0000, "INTERR", false, "internal error";
    ErrRtok = 0x0999_0001, "ERR_RTOK", false, "rtoken handling failed (SMC-R)";
    ErrRdyLnk = 0x0999_0002, "ERR_RDYLNK", false, "ready link failed (SMC-R)";
    ErrRegBuf = 0x0999_0003, "ERR_REGBUF", false, "buffer registration failed (SMC-R)";
    ObsoleteTimeout = 0x0200_0000, "TIMEOUT", true, "timeout (obsolete 2017 code)";
    ObsoleteReply = 0x0600_0000, "REPLY", true, "reply error (obsolete 2017 code)";
    ObsoleteSend = 0x0700_0000, "SEND", true, "send error (obsolete 2017 code)";
    ObsoleteTcl = 0x0204_0000, "TCL", true, "timeout waiting for CLC (obsolete 2017 code)";
    ObsoleteIntErr = 0x9999_0000, "INTERR_OLD", true, "internal error (obsolete 2017 code)";
}

impl DeclineReason {
    /// The numeric code.
    pub fn code(self) -> u32 {
        self.into()
    }
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        match self.name() {
            Some(name) => write!(f, "{name} ({code:#010x}: {})", self.description()),
            None => write!(f, "{code:#010x} (unknown reason code)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_and_is_unique() {
        for (i, r) in DeclineReason::ALL.iter().enumerate() {
            assert_eq!(DeclineReason::from(r.code()), *r);
            for other in &DeclineReason::ALL[i + 1..] {
                assert_ne!(r.code(), other.code());
                assert_ne!(r.name(), other.name());
            }
        }
        assert_eq!(DeclineReason::ALL.len(), 41);
    }

    #[test]
    fn names_codes_and_display() {
        assert_eq!(DeclineReason::from(0x0303_0008), DeclineReason::NoUeid);
        assert_eq!(DeclineReason::NoUeid.name(), Some("NOUEID"));
        assert_eq!(u32::from(DeclineReason::MaxDmb), 0x030d_0000);
        assert_eq!(
            std::format!("{}", DeclineReason::NoV2dExt),
            "NOV2DEXT (0x03030005: peer sent no usable SMC-Dv2 extension)"
        );
        let unknown = DeclineReason::from(0x1234_5678);
        assert_eq!(unknown, DeclineReason::Unknown(0x1234_5678));
        assert_eq!(u32::from(unknown), 0x1234_5678);
        assert_eq!(
            std::format!("{unknown}"),
            "0x12345678 (unknown reason code)"
        );
    }

    #[test]
    fn local_codes() {
        assert!(DeclineReason::PeerNoSmc.is_local());
        assert!(DeclineReason::OptUnsupp.is_local());
        assert!(DeclineReason::PeerDecl.is_local());
        assert!(DeclineReason::ObsoleteTcl.is_local());
        assert!(!DeclineReason::NoUeid.is_local());
        assert!(!DeclineReason::Unknown(7).is_local());
    }
}
