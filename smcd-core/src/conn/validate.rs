//! Validation of a CDC header snapshot read from peer-written memory, before
//! any of it is used (`docs/protocol/cdc.md` §6; the security model in `docs/design-notes.md`).

use super::ANY_SHUTDOWN;
use super::error::{CursorRole, Violation};
use crate::cursor::{Cursor, Movement, forward_distance};
use crate::wire::cdc::{CdcHeader, ConnStateFlags, ProducerFlags};

/// What the receiver knows when a new header arrives.
#[derive(Debug, Clone, Copy)]
pub(super) struct RxView {
    /// Our ring size (the peer produces into it).
    pub(super) own_ring: u32,
    /// The peer's ring size (we produce into it).
    pub(super) peer_ring: u32,
    /// The peer's producer cursor from the last accepted header.
    pub(super) rx_prod: Cursor,
    /// The peer's consumer cursor from the last accepted header.
    pub(super) rx_cons: Cursor,
    /// Bytes produced by the peer that we have not consumed.
    pub(super) bytes_to_rcv: u32,
    /// Bytes we produced that the peer has not consumed.
    pub(super) in_flight: u32,
    /// The peer's connection-state flags from the last accepted header
    /// (once they end its sending, its producer cursor must stay).
    pub(super) peer_flags: ConnStateFlags,
}

/// How far a valid header moves the peer's cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Accepted {
    /// New bytes in our ring.
    pub(super) prod_moved: u32,
    /// Bytes of ours the peer consumed since the last header.
    pub(super) cons_moved: u32,
}

/// Check `hdr` against `view`: both counts inside their rings, no impossible
/// or cleared flags, the producer forward by at most our free space and not
/// at all once an earlier header ended the peer's sending, the consumer
/// forward by at most what we have in flight.
pub(super) fn check(view: &RxView, hdr: &CdcHeader) -> Result<Accepted, Violation> {
    let prod = in_ring(hdr.prod, view.own_ring, CursorRole::Producer)?;
    let cons = in_ring(hdr.cons, view.peer_ring, CursorRole::Consumer)?;
    check_flags(hdr.prod_flags, hdr.conn_state_flags, view.peer_flags)?;
    let free = view.own_ring.saturating_sub(view.bytes_to_rcv);
    let prod_moved = moved(
        view.own_ring,
        view.rx_prod,
        prod,
        free,
        CursorRole::Producer,
    )?;
    // Only the flags of an earlier header count: a peer may end its sending
    // in the header that carries its last bytes.
    if prod_moved > 0 && view.peer_flags.intersects(ANY_SHUTDOWN) {
        return Err(Violation::DataAfterShutdown {
            moved: prod_moved,
            conn_state_flags: view.peer_flags.bits(),
        });
    }
    Ok(Accepted {
        prod_moved,
        cons_moved: moved(
            view.peer_ring,
            view.rx_cons,
            cons,
            view.in_flight,
            CursorRole::Consumer,
        )?,
    })
}

fn in_ring(c: Cursor, ring: u32, cursor: CursorRole) -> Result<Cursor, Violation> {
    c.validate(ring).map_err(|e| Violation::OutOfRange {
        cursor,
        count: e.count,
        ring,
    })
}

fn moved(
    ring: u32,
    old: Cursor,
    new: Cursor,
    limit: u32,
    cursor: CursorRole,
) -> Result<u32, Violation> {
    match forward_distance(ring, old, new) {
        Movement::Forward(n) if n <= limit => Ok(n),
        Movement::Forward(n) => Err(Violation::Overrun {
            cursor,
            moved: n,
            limit,
        }),
        Movement::TooFar => Err(Violation::Overrun {
            cursor,
            moved: u32::MAX,
            limit,
        }),
        Movement::CountBackwards => Err(Violation::CountBackwards { cursor }),
        Movement::WrapBackwards => Err(Violation::WrapBackwards { cursor }),
    }
}

fn check_flags(
    prod_flags: ProducerFlags,
    conn_flags: ConnStateFlags,
    before: ConnStateFlags,
) -> Result<(), Violation> {
    let urgent_without_pending = prod_flags.contains(ProducerFlags::URG_DATA_PRESENT)
        && !prod_flags.contains(ProducerFlags::URG_DATA_PENDING);
    if prod_flags.contains(ProducerFlags::FAILOVER_VALIDATION) || urgent_without_pending {
        return Err(Violation::ImpossibleFlags {
            prod_flags: prod_flags.bits(),
            conn_state_flags: conn_flags.bits(),
        });
    }
    if !conn_flags.contains(before & ConnStateFlags::all()) {
        return Err(Violation::StickyFlagCleared {
            before: before.bits(),
            now: conn_flags.bits(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmb::{CDC_HEADER_LEN_BYTES, DMB_MIN_SIZE_BYTES};

    const RING: u32 = (DMB_MIN_SIZE_BYTES - CDC_HEADER_LEN_BYTES) as u32;

    fn view() -> RxView {
        RxView {
            own_ring: RING,
            peer_ring: RING,
            rx_prod: Cursor::new(3, 100),
            rx_cons: Cursor::new(7, 16000),
            bytes_to_rcv: 352,
            in_flight: 1000,
            peer_flags: ConnStateFlags::empty(),
        }
    }

    fn hdr(prod: Cursor, cons: Cursor) -> CdcHeader {
        CdcHeader {
            prod,
            cons,
            ..CdcHeader::default()
        }
    }

    fn ok_hdr() -> CdcHeader {
        hdr(Cursor::new(3, 100), Cursor::new(7, 16000))
    }

    #[test]
    fn unchanged_header_is_accepted() {
        assert_eq!(
            check(&view(), &ok_hdr()),
            Ok(Accepted {
                prod_moved: 0,
                cons_moved: 0
            })
        );
    }

    #[test]
    fn moves_up_to_the_limits_are_accepted() {
        // Producer may fill all free space (RING − 352), across a wrap.
        let prod = Cursor::new(3, 100).add(RING, RING - 352);
        // Consumer may take back everything in flight (1000), across a wrap.
        let cons = Cursor::new(7, 16000).add(RING, 1000);
        assert_eq!(cons, Cursor::new(8, 648));
        assert_eq!(
            check(&view(), &hdr(prod, cons)),
            Ok(Accepted {
                prod_moved: RING - 352,
                cons_moved: 1000
            })
        );
    }

    #[test]
    fn cursor_beyond_ring_is_rejected() {
        let e = check(&view(), &hdr(Cursor::new(3, RING), Cursor::new(7, 16000)));
        assert_eq!(
            e,
            Err(Violation::OutOfRange {
                cursor: CursorRole::Producer,
                count: RING,
                ring: RING
            })
        );
        let e = check(&view(), &hdr(Cursor::new(3, 100), Cursor::new(7, u32::MAX)));
        assert_eq!(
            e,
            Err(Violation::OutOfRange {
                cursor: CursorRole::Consumer,
                count: u32::MAX,
                ring: RING
            })
        );
    }

    #[test]
    fn wrap_going_backwards_is_rejected() {
        let e = check(&view(), &hdr(Cursor::new(2, 100), Cursor::new(7, 16000)));
        assert_eq!(
            e,
            Err(Violation::WrapBackwards {
                cursor: CursorRole::Producer
            })
        );
        let e = check(&view(), &hdr(Cursor::new(3, 100), Cursor::new(6, 16001)));
        assert_eq!(
            e,
            Err(Violation::WrapBackwards {
                cursor: CursorRole::Consumer
            })
        );
    }

    #[test]
    fn count_going_backwards_is_rejected() {
        let e = check(&view(), &hdr(Cursor::new(3, 99), Cursor::new(7, 16000)));
        assert_eq!(
            e,
            Err(Violation::CountBackwards {
                cursor: CursorRole::Producer
            })
        );
    }

    #[test]
    fn producer_moving_more_than_free_space_is_rejected() {
        let prod = Cursor::new(3, 100).add(RING, RING - 351);
        assert_eq!(
            check(&view(), &hdr(prod, Cursor::new(7, 16000))),
            Err(Violation::Overrun {
                cursor: CursorRole::Producer,
                moved: RING - 351,
                limit: RING - 352
            })
        );
        // More than a whole ring ahead.
        assert_eq!(
            check(&view(), &hdr(Cursor::new(5, 0), Cursor::new(7, 16000))),
            Err(Violation::Overrun {
                cursor: CursorRole::Producer,
                moved: u32::MAX,
                limit: RING - 352
            })
        );
    }

    #[test]
    fn consumer_beyond_our_producer_is_rejected() {
        let cons = Cursor::new(7, 16000).add(RING, 1001);
        assert_eq!(
            check(&view(), &hdr(Cursor::new(3, 100), cons)),
            Err(Violation::Overrun {
                cursor: CursorRole::Consumer,
                moved: 1001,
                limit: 1000
            })
        );
    }

    #[test]
    fn impossible_flags_are_rejected() {
        for bits in [0x08, 0x20, 0xA8] {
            let mut h = ok_hdr();
            h.prod_flags = ProducerFlags::from_bits_retain(bits);
            assert_eq!(
                check(&view(), &h),
                Err(Violation::ImpossibleFlags {
                    prod_flags: bits,
                    conn_state_flags: 0
                })
            );
        }
        let mut h = ok_hdr();
        h.prod_flags = ProducerFlags::URG_DATA_PRESENT | ProducerFlags::URG_DATA_PENDING;
        assert!(check(&view(), &h).is_ok());
    }

    #[test]
    fn producer_must_stay_after_the_peer_ended_its_sending() {
        let prod = Cursor::new(3, 101);
        for flags in [
            ConnStateFlags::PEER_DONE_WRITING,
            ConnStateFlags::PEER_CONN_CLOSED,
            ConnStateFlags::PEER_CONN_ABORT,
        ] {
            let mut v = view();
            v.peer_flags = flags;
            let mut h = hdr(prod, Cursor::new(7, 16000));
            h.conn_state_flags = flags;
            assert_eq!(
                check(&v, &h),
                Err(Violation::DataAfterShutdown {
                    moved: 1,
                    conn_state_flags: flags.bits()
                })
            );
            // The consumer may still move (the peer reads on), the producer
            // may stay.
            let mut h = hdr(Cursor::new(3, 100), Cursor::new(7, 16000).add(RING, 10));
            h.conn_state_flags = flags;
            assert_eq!(
                check(&v, &h),
                Ok(Accepted {
                    prod_moved: 0,
                    cons_moved: 10
                })
            );
        }
        // The flag arriving with the last bytes is fine.
        let mut h = hdr(prod, Cursor::new(7, 16000));
        h.conn_state_flags = ConnStateFlags::PEER_DONE_WRITING;
        assert_eq!(
            check(&view(), &h),
            Ok(Accepted {
                prod_moved: 1,
                cons_moved: 0
            })
        );
        // Reserved bits end nothing.
        let mut v = view();
        v.peer_flags = ConnStateFlags::from_bits_retain(0x01);
        assert!(check(&v, &hdr(prod, Cursor::new(7, 16000))).is_ok());
    }

    #[test]
    fn sticky_flags_must_stay() {
        let mut v = view();
        v.peer_flags = ConnStateFlags::PEER_DONE_WRITING;
        let mut h = ok_hdr();
        h.conn_state_flags = ConnStateFlags::PEER_CONN_CLOSED;
        assert_eq!(
            check(&v, &h),
            Err(Violation::StickyFlagCleared {
                before: 0x80,
                now: 0x40
            })
        );
        h.conn_state_flags = ConnStateFlags::PEER_CONN_CLOSED | ConnStateFlags::PEER_DONE_WRITING;
        assert!(check(&v, &h).is_ok());
        // Unknown (reserved) bits are not sticky.
        v.peer_flags = ConnStateFlags::from_bits_retain(0x01);
        h.conn_state_flags = ConnStateFlags::empty();
        assert!(check(&v, &h).is_ok());
    }
}
