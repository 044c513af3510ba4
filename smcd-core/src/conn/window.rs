//! When to send a consumer-cursor (window) update after the application
//! reads (`docs/protocol/cdc.md` §7, Linux v6.10+ `smc_rx.c` / `smc_tx.c`).

use crate::cursor::{Cursor, diff, diff_large};

/// Linux's `SOCK_MIN_SNDBUF / 2` = 2048 + `SKB_DATA_ALIGN(sizeof(struct sk_buff))`,
/// the floor of the update limit.
///
/// unverified: 2304 holds for the usual x86-64, arm64 and s390x builds
/// (a 256-byte `sk_buff`); builds with a larger `sk_buff` use a larger floor.
/// We take 2304: the floor only matters for the 16 KiB DMB, and a smaller
/// floor means updates are sent slightly *earlier*, never later, than by such
/// a Linux build — the conservative side for the peer's window.
pub const SOCK_MIN_SNDBUF_HALF_BYTES: u32 = 2304;

/// The update limit of a receive ring (`rmbe_update_limit`):
/// `max(ring / 10, 2304)`.
///
/// For rings below 4608 bytes (reachable only with the tiny rings of the
/// loom models; real DMBs are ≥ 16 KiB) the floor is capped at `ring / 2` so
/// that a full ring still triggers an update.
pub const fn update_limit(own_ring: u32) -> u32 {
    let floor = if SOCK_MIN_SNDBUF_HALF_BYTES < own_ring / 2 {
        SOCK_MIN_SNDBUF_HALF_BYTES
    } else {
        own_ring / 2
    };
    let tenth = own_ring / 10;
    if tenth > floor { tenth } else { floor }
}

/// The receiver-side state the decision needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct WindowView {
    /// Our ring size.
    pub(super) own_ring: u32,
    /// How far our application has consumed our ring.
    pub(super) cons: Cursor,
    /// `cons` carried by the last header we wrote successfully.
    pub(super) rx_confirmed: Cursor,
    /// The peer's latest producer cursor.
    pub(super) rx_prod: Cursor,
    /// The peer asked for our consumer cursor (`cons_curs_upd_req`).
    pub(super) update_requested: bool,
    /// The peer said it is blocked (`write_blocked`).
    pub(super) peer_write_blocked: bool,
}

/// Whether to write a consumer-cursor update now (`docs/protocol/cdc.md` §7 steps 2–5;
/// no urgent-data *force*, as urgent data is delivered inline).
pub(super) fn should_update(v: &WindowView) -> bool {
    if v.update_requested {
        return true;
    }
    let to_confirm = diff(v.own_ring, v.rx_confirmed, v.cons);
    if to_confirm <= update_limit(v.own_ring) {
        return false;
    }
    let sender_free = v
        .own_ring
        .saturating_sub(diff_large(v.own_ring, v.rx_confirmed, v.rx_prod));
    sender_free <= v.own_ring / 2 || v.peer_write_blocked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmb::{CDC_HEADER_LEN_BYTES, DMB_MIN_SIZE_BYTES};

    const RING: u32 = (DMB_MIN_SIZE_BYTES - CDC_HEADER_LEN_BYTES) as u32;

    #[test]
    fn limits_per_dmb_size() {
        assert_eq!(update_limit(16 * 1024 - 32), 2304);
        assert_eq!(update_limit(32 * 1024 - 32), 3273);
        assert_eq!(update_limit(64 * 1024 - 32), 6550);
        assert_eq!(update_limit(1024 * 1024 - 32), 104_854);
        // Tiny (loom) rings keep the limit below the ring.
        assert_eq!(update_limit(8), 4);
        assert_eq!(update_limit(4), 2);
        assert_eq!(update_limit(4607), 2303);
    }

    fn v(cons: u32, rx_prod: u32) -> WindowView {
        WindowView {
            own_ring: RING,
            cons: Cursor::new(0, cons),
            rx_confirmed: Cursor::ZERO,
            rx_prod: Cursor::new(0, rx_prod),
            update_requested: false,
            peer_write_blocked: false,
        }
    }

    #[test]
    fn example_7_below_limit_no_update() {
        assert!(!should_update(&v(2000, 16000)));
    }

    #[test]
    fn example_8_sender_half_full_update() {
        assert!(should_update(&v(2400, 16000)));
    }

    #[test]
    fn example_9_sender_mostly_free_no_update() {
        assert!(!should_update(&v(2400, 3000)));
    }

    #[test]
    fn example_10_write_blocked_update() {
        let mut w = v(2400, 3000);
        w.peer_write_blocked = true;
        assert!(should_update(&w));
        // But not below the limit.
        let mut w = v(2000, 3000);
        w.peer_write_blocked = true;
        assert!(!should_update(&w));
    }

    #[test]
    fn request_always_updates() {
        let mut w = v(0, 0);
        w.update_requested = true;
        assert!(should_update(&w));
    }

    #[test]
    fn half_ring_boundary() {
        // sender_free = RING − 8176 = 8176 = RING/2: update (≤).
        assert!(should_update(&v(2400, 8176)));
        assert!(!should_update(&v(2400, 8175)));
    }
}
