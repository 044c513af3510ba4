//! The process device, driven by two endpoints over an in-memory pipe: two
//! devices in one test process stand for two processes (DMBs travel over
//! the device socket), one device for two endpoints of one process.

use smcd_core::conn::SendMode;
use smcd_core::endpoint::testing::{close_both, transfer};
use smcd_core::endpoint::{Host, Pipe, Transport, pair};
use smcd_core::ops::{Error as _, ErrorKind, PeerDmbId, SmcdOps};
use smcd_std::device::{MAX_PENDING_DMBS, PeerPolicy, StdDevice};
use smcd_std::naming::Place;

fn device() -> StdDevice {
    StdDevice::start(Place::Abstract, PeerPolicy::SameUser).expect("device socket")
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn round_trip(client: &Host<StdDevice>, server: &Host<StdDevice>, mode: SendMode) {
    let pipe = Pipe::<4096>::new();
    let (mut c, mut s) = pair(client, server, &pipe, 0).expect("handshake");
    let Transport::SmcD(info) = c.transport() else {
        panic!("client fell back: {:?}", c.transport());
    };
    assert_eq!(info.mode, mode);
    let out = data(300_000);
    assert_eq!(transfer(&mut c, &mut s, &out, 7000), out);
    assert_eq!(transfer(&mut s, &mut c, &out, 5000), out);
    close_both(&mut c, &mut s);
}

#[test]
fn two_devices_exchange_dmbs_over_their_sockets() {
    let (a, b) = (device(), device());
    for nocopy in [false, true] {
        let ha = Host::new(a.with_nocopy(nocopy));
        let hb = Host::new(b.with_nocopy(nocopy));
        let mode = if nocopy {
            SendMode::NoCopy
        } else {
            SendMode::Copy
        };
        let before = a.fetches_granted() + b.fetches_granted();
        round_trip(&ha, &hb, mode);
        for dev in [&a, &b] {
            assert_eq!((dev.dmbs_in_use(), dev.peers_bound()), (0, 0));
            assert_eq!(dev.dmbs_pending(), 0, "paired DMBs are not pending");
        }
        // One fetch per connection: the client's DMB came with it.
        assert_eq!(a.fetches_granted() + b.fetches_granted(), before + 1);
    }
}

#[test]
fn one_device_pairs_two_endpoints_of_a_process() {
    let a = device();
    for nocopy in [false, true] {
        let host = Host::new(a.with_nocopy(nocopy));
        let mode = if nocopy {
            SendMode::NoCopy
        } else {
            SendMode::Copy
        };
        round_trip(&host, &host, mode);
        assert_eq!((a.dmbs_in_use(), a.peers_bound()), (0, 0));
    }
}

#[test]
fn dmbs_of_running_handshakes_are_limited() {
    let dev = device();
    let held: Vec<_> = (0..MAX_PENDING_DMBS)
        .map(|_| dev.register_dmb(16 * 1024).expect("below the limit"))
        .collect();
    assert_eq!(dev.dmbs_pending(), MAX_PENDING_DMBS);
    let refused = dev.register_dmb(16 * 1024).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NoSpace, "declined MAX_DMB");
    let mut held = held.into_iter();
    dev.unregister_dmb(held.next().unwrap()).unwrap();
    let again = dev.register_dmb(16 * 1024).expect("a slot came free");
    for d in held.chain([again]) {
        dev.unregister_dmb(d).unwrap();
    }
    assert_eq!((dev.dmbs_pending(), dev.dmbs_in_use()), (0, 0));
}

/// A client that fetched our DMB (offering its own along) and died before
/// its Confirm: when our side gives its DMB back, the offer — the dead
/// peer's memfd and eventfd — goes too. (It used to stay until another
/// offer came in at least 10 s later; the crash suite found it as two fds
/// left over after a client was killed mid-handshake.)
#[test]
fn an_offer_never_confirmed_goes_with_the_dmb_it_came_for() {
    let (server, client) = (device(), device());
    let ours = server.register_dmb(16 * 1024).expect("server DMB");
    let theirs = client.register_dmb(16 * 1024).expect("client DMB");
    let id = PeerDmbId {
        gid: server.local_gid(),
        token: ours.token(),
        len: ours.len(),
    };
    let bound = client.attach_dmb(&theirs, id, false).expect("fetch");
    assert_eq!(server.offers_held(), 1, "the fetch carried an offer");
    // The server's handshake fails (the client died): its DMB goes back.
    server.unregister_dmb(ours).expect("unregister");
    assert_eq!(server.offers_held(), 0, "the offer outlived its DMB");
    client.detach_dmb(bound).expect("detach");
    client.unregister_dmb(theirs).expect("unregister");
    assert_eq!((client.dmbs_in_use(), client.peers_bound()), (0, 0));
}
