//! Where each field of the fixed-size parts of a CLC message sits: for tools
//! that show a message byte by byte (`smcd clc decode` lists every field with
//! its offset).
//!
//! Each [`WirePart`] lists one part's fields in wire order, reserved bytes
//! included, with offsets from the start of the part; the parts cover a
//! message as `docs/protocol/clc.md` §3–5 draw it. Where a part that follows a
//! variable one starts, and whether it is there at all, the parsed Repr
//! tells. The tables are built from the layout structs the parser and the
//! emitter use, so they cannot drift from them.
//!
//! ```
//! use smcd_core::wire::clc::fields;
//!
//! // An Accept's v2 part follows its 32-byte common part; its EID is at 34.
//! assert_eq!(fields::ACCEPT.size(), 32);
//! assert_eq!(fields::ACCEPT.size() + fields::ACCEPT_V2.offset("eid").unwrap(), 34);
//! assert_eq!(fields::HEADER.offset("length"), Some(5));
//! assert_eq!(fields::HEADER.offset("no such field"), None);
//! ```

use core::mem::{offset_of, size_of};

use super::accept::{AcceptLayout, AcceptV2Layout};
use super::decline::{DeclineLayout, DeclineV2Layout};
use super::fce::{FceLayout, FceV2xLayout};
use super::header::ClcHeader;
use super::proposal::{
    GidChidLayout, IpPrefixLayout, Ipv6PrefixLayout, ProposalHead, SmcdArea, SmcdV2ExtLayout,
    V2ExtLayout,
};

/// One field of a [`WirePart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WireField {
    /// The field's name: that of the Linux struct member (`net/smc/smc_clc.h`);
    /// bit fields sharing a byte keep one name (`version_typev2_typev1`).
    pub name: &'static str,
    /// Byte offset from the start of the part.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// A fixed-size part of a CLC message: its fields, back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WirePart {
    fields: &'static [WireField],
    size: usize,
}

impl WirePart {
    /// The fields in wire order; each starts where the one before ends.
    pub const fn fields(&self) -> &'static [WireField] {
        self.fields
    }

    /// Size of the part in bytes.
    pub const fn size(&self) -> usize {
        self.size
    }

    /// Offset of the field called `name` from the start of the part.
    pub const fn offset(&self, name: &str) -> Option<usize> {
        let mut rest = self.fields;
        while let [field, tail @ ..] = rest {
            if same_str(field.name, name) {
                return Some(field.offset);
            }
            rest = tail;
        }
        None
    }

    /// Whether the fields start at 0, follow each other without a gap and
    /// end at `size` (so that none is missing from the table).
    const fn is_complete(&self) -> bool {
        let mut end = 0;
        let mut rest = self.fields;
        while let [field, tail @ ..] = rest {
            if field.offset != end {
                return false;
            }
            end += field.len;
            rest = tail;
        }
        end == self.size
    }
}

/// `a == b` in a `const fn`.
const fn same_str(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a, b) {
            ([], []) => return true,
            ([x, a_tail @ ..], [y, b_tail @ ..]) if *x == *y => {
                a = a_tail;
                b = b_tail;
            }
            _ => return false,
        }
    }
}

/// Size of the field `field` picks out of an `S`.
const fn field_len<S, F>(_field: fn(&S) -> &F) -> usize {
    size_of::<F>()
}

/// Defines a [`WirePart`] constant from a layout struct and all of its
/// fields in order (`field as "name"` where the wire name is no Rust
/// identifier), and checks at compile time that no field is left out.
macro_rules! part {
    ($(#[$doc:meta])* $part:ident = $layout:ty { $($field:ident $(as $name:literal)?),+ $(,)? }) => {
        $(#[$doc])*
        pub const $part: WirePart = WirePart {
            fields: &[$(WireField {
                name: part!(@name $field $($name)?),
                offset: offset_of!($layout, $field),
                len: field_len(|layout: &$layout| &layout.$field),
            }),+],
            size: size_of::<$layout>(),
        };
        const _: () = assert!($part.is_complete());
    };
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $name:literal) => { $name };
}

part! {
    /// The 8-byte header every message starts with, `struct smc_clc_msg_hdr`.
    HEADER = ClcHeader { eyecatcher, r#type as "type", length, version_typev2_typev1 }
}

part! {
    /// The first 40 bytes of a Proposal, at byte 0 (`header` is [`HEADER`]).
    PROPOSAL_HEAD = ProposalHead { header, id_for_peer, gid, mac, iparea_offset }
}

part! {
    /// A Proposal's SMC-D area, right after [`PROPOSAL_HEAD`] (a v1 Proposal
    /// may have only the first `iparea_offset` bytes of it).
    PROPOSAL_SMCD_AREA = SmcdArea {
        ism_gid, ism_chid, v2_ext_offset, vendor_oui, vendor_exp_options, reserved,
    }
}

part! {
    /// The head of a Proposal's IP prefix area; `ipv6_prefixes_cnt`
    /// [`IPV6_PREFIX`] entries follow it.
    IP_PREFIX = IpPrefixLayout { outgoing_subnet, prefix_len, reserved, ipv6_prefixes_cnt }
}

part! {
    /// One IPv6 prefix of the IP prefix area.
    IPV6_PREFIX = Ipv6PrefixLayout { prefix, prefix_len }
}

part! {
    /// The head of a Proposal's v2 extension; `eid_cnt` 32-byte UEIDs follow.
    V2_EXT = V2ExtLayout {
        eid_cnt, ism_gid_cnt, reserved, release_seid, reserved2, smcd_v2_ext_offset, roce,
        max_conns, max_links, feature_mask, reserved3,
    }
}

part! {
    /// The head of a Proposal's SMC-Dv2 extension; `ism_gid_cnt`
    /// [`GID_CHID`] entries follow.
    SMCD_V2_EXT = SmcdV2ExtLayout { system_eid, reserved }
}

part! {
    /// One GID/CHID entry of the SMC-Dv2 extension.
    GID_CHID = GidChidLayout { gid, chid }
}

part! {
    /// The first 32 bytes of an SMC-D Accept/Confirm, at byte 0.
    ACCEPT = AcceptLayout { header, gid, token, dmbe_idx, dmbe_size, reserved, linkid }
}

part! {
    /// The v2 part of an SMC-D Accept/Confirm, right after [`ACCEPT`]; a
    /// first-contact extension ([`FCE`]) may follow it.
    ACCEPT_V2 = AcceptV2Layout { chid, eid, gid_ext }
}

part! {
    /// The release-0 first-contact extension of a v2 Accept/Confirm.
    FCE = FceLayout { v2_direct, os_type_release, reserved, hostname }
}

part! {
    /// The release ≥ 1 tail of the first-contact extension, right after [`FCE`].
    FCE_V2X = FceV2xLayout { max_conns, max_links, feature_mask, vendor_exp_options, reserved }
}

part! {
    /// A Decline without its trailer, at byte 0.
    DECLINE = DeclineLayout { header, id_for_peer, peer_diagnosis, os_type, reserved }
}

part! {
    /// The v2 addition of a Decline, right after [`DECLINE`].
    DECLINE_V2 = DeclineV2Layout { peer_diagnosis_v2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_have_the_sizes_of_spec_clc() {
        let sizes = [
            (HEADER, 8),
            (PROPOSAL_HEAD, 40),
            (PROPOSAL_SMCD_AREA, 40),
            (IP_PREFIX, 8),
            (IPV6_PREFIX, 17),
            (V2_EXT, 40),
            (SMCD_V2_EXT, 48),
            (GID_CHID, 10),
            (ACCEPT, 32),
            (ACCEPT_V2, 42),
            (FCE, 36),
            (FCE_V2X, 16),
            (DECLINE, 24),
            (DECLINE_V2, 16),
        ];
        for (part, size) in sizes {
            assert_eq!(part.size(), size, "{part:?}");
            assert!(part.is_complete(), "{part:?}");
        }
    }

    #[test]
    fn fields_are_found_by_name() {
        assert_eq!(
            HEADER.fields(),
            [
                WireField {
                    name: "eyecatcher",
                    offset: 0,
                    len: 4
                },
                WireField {
                    name: "type",
                    offset: 4,
                    len: 1
                },
                WireField {
                    name: "length",
                    offset: 5,
                    len: 2
                },
                WireField {
                    name: "version_typev2_typev1",
                    offset: 7,
                    len: 1
                },
            ]
        );
        assert_eq!(PROPOSAL_SMCD_AREA.offset("v2_ext_offset"), Some(10));
        assert_eq!(V2_EXT.offset("feature_mask"), Some(26));
        assert_eq!(DECLINE.offset("peer_diagnosis"), Some(16));
        assert_eq!(FCE_V2X.offset("vendor_exp_options"), Some(4));
        // Prefixes and extensions of a name are other names.
        assert_eq!(V2_EXT.offset("reserved"), Some(2));
        assert_eq!(V2_EXT.offset("reserved3"), Some(28));
        assert_eq!(V2_EXT.offset("reserve"), None);
        assert_eq!(V2_EXT.offset(""), None);
        assert_eq!(HEADER.offset("r#type"), None);
    }

    #[test]
    fn an_incomplete_table_is_noticed() {
        const A: WireField = WireField {
            name: "a",
            offset: 0,
            len: 2,
        };
        let part = |fields, size| WirePart { fields, size };
        assert!(part(&[A, WireField { offset: 2, ..A }], 4).is_complete());
        // A gap between two fields, a part longer than its fields, a table
        // not starting at 0.
        assert!(!part(&[A, WireField { offset: 3, ..A }], 5).is_complete());
        assert!(!part(&[A], 3).is_complete());
        assert!(!part(&[WireField { offset: 1, ..A }], 3).is_complete());
    }
}
