//! A peer's memfd that could fault under us (unsealed, wrongly sized, not a
//! memfd) is never mapped: attaching it fails with a typed error, and a
//! handshake that meets one falls back to TCP. Our own DMBs cannot be
//! resized or unsealed by whoever holds their fd.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use rustix::io::Errno;
use smcd_core::clc::DeclinedBy;
use smcd_core::endpoint::{Host, Pipe, Transport, pair};
use smcd_core::ops::Error as _;
use smcd_core::wire::clc::DeclineReason;

use super::shm::CONTROL_BYTES;
use super::*;

const LEN: usize = DMB_MIN_SIZE_BYTES;

fn device() -> StdDevice {
    StdDevice::start(Place::Abstract, PeerPolicy::SameUser).expect("device socket")
}

/// A memfd of `size` bytes carrying exactly `seals`.
fn crafted(size: usize, seals: SealFlags) -> OwnedFd {
    let fd = rustix::fs::memfd_create(c"crafted", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .unwrap();
    rustix::fs::ftruncate(&fd, size as u64).unwrap();
    if !seals.is_empty() {
        rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    }
    fd
}

/// Hand peers `fd` instead of the real memfd of our DMB `token`.
fn swap_memfd(dev: &StdDevice, token: DmbToken, fd: OwnedFd) {
    dev.shared.lock().own.get_mut(&token.0).expect("our DMB").fd = Arc::new(fd);
}

fn id(dev: &StdDevice, dmb: &Dmb) -> PeerDmbId {
    PeerDmbId {
        gid: dev.local_gid(),
        token: dmb.token(),
        len: LEN,
    }
}

#[test]
fn a_peer_memfd_that_could_fault_is_never_mapped() {
    let (a, b) = (device(), device());
    let total = LEN + CONTROL_BYTES;
    let resize = SealFlags::SHRINK | SealFlags::GROW;
    let not_memfd =
        rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("eventfd");
    let cases = [
        (crafted(total, SealFlags::empty()), "not sealed"),
        (crafted(total, SealFlags::SHRINK), "not sealed"),
        (
            crafted(total, SealFlags::GROW | SealFlags::SEAL),
            "not sealed",
        ),
        (crafted(LEN, resize), "size differs"),
        (crafted(total + 4096, resize), "size differs"),
        // Sealed against our writes: the shared writable mapping is refused.
        (crafted(total, resize | SealFlags::WRITE), "peer memfd"),
        (
            crafted(total, resize | SealFlags::FUTURE_WRITE),
            "peer memfd",
        ),
        (not_memfd, "peer memfd"),
    ];
    for (fd, why) in cases {
        let theirs = b.register_dmb(LEN).unwrap();
        swap_memfd(&b, theirs.token(), fd);
        let own = a.register_dmb(LEN).unwrap();
        let e = a.attach_dmb(&own, id(&b, &theirs), false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidToken, "{e}");
        assert!(e.to_string().contains(why), "{why}: {e}");
        assert_eq!(a.peers_bound(), 0, "{why}: nothing bound");
        a.unregister_dmb(own).unwrap();
        b.unregister_dmb(theirs).unwrap();
    }
    assert_eq!((a.dmbs_in_use(), b.dmbs_in_use()), (0, 0));
}

#[test]
fn seals_added_by_the_peer_after_we_mapped_cannot_fault_us() {
    let (a, b) = (device(), device());
    // Sealed against resizing but not against further seals: accepted.
    let fd = crafted(LEN + CONTROL_BYTES, SealFlags::SHRINK | SealFlags::GROW);
    let theirs = b.register_dmb(LEN).unwrap();
    let peers_copy = fd.as_fd().try_clone_to_owned().unwrap();
    swap_memfd(&b, theirs.token(), fd);
    let own = a.register_dmb(LEN).unwrap();
    let bound = a.attach_dmb(&own, id(&b, &theirs), false).unwrap();
    // With our shared writable mapping in place the peer cannot seal writes
    // (EBUSY); a future-write seal leaves existing mappings writable; holes
    // read back as zeros. None of it faults our writes.
    assert_eq!(
        rustix::fs::fcntl_add_seals(&peers_copy, SealFlags::WRITE),
        Err(Errno::BUSY)
    );
    let punch = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    rustix::fs::fallocate(&peers_copy, punch, 0, (LEN + CONTROL_BYTES) as u64).unwrap();
    rustix::fs::fcntl_add_seals(&peers_copy, SealFlags::FUTURE_WRITE).unwrap();
    a.move_data(theirs.token(), CDC_HEADER_LEN_BYTES, &[7; 100], false)
        .unwrap();
    a.move_data(theirs.token(), 0, &[0; CDC_HEADER_LEN_BYTES], true)
        .unwrap();
    // The bytes are in the file: the peer reads them back.
    let mut seen = [0u8; 100];
    rustix::io::pread(&peers_copy, &mut seen, CDC_HEADER_LEN_BYTES as u64).unwrap();
    assert_eq!(seen, [7; 100]);
    a.detach_dmb(bound).unwrap();
    a.unregister_dmb(own).unwrap();
    b.unregister_dmb(theirs).unwrap();
}

#[test]
fn our_dmbs_cannot_be_resized_or_unsealed_by_their_holder() {
    let a = device();
    let dmb = a.register_dmb(LEN).unwrap();
    let fd = Arc::clone(&a.shared.lock().own[&dmb.token().0].fd);
    let size = (LEN + CONTROL_BYTES) as u64;
    for to in [0, size / 2, size - 1, size + 1, 2 * size] {
        assert_eq!(rustix::fs::ftruncate(&*fd, to), Err(Errno::PERM), "to {to}");
    }
    let grow = FallocateFlags::empty();
    assert_eq!(
        rustix::fs::fallocate(&*fd, grow, size, 4096),
        Err(Errno::PERM)
    );
    // No seal can be taken off, and none added (F_SEAL_SEAL).
    assert_eq!(
        rustix::fs::fcntl_add_seals(&*fd, SealFlags::FUTURE_WRITE),
        Err(Errno::PERM)
    );
    let seals = rustix::fs::fcntl_get_seals(&*fd).unwrap();
    assert_eq!(seals, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL);
    assert_eq!(rustix::fs::fstat(&*fd).unwrap().st_size as u64, size);
    drop(fd);
    a.unregister_dmb(dmb).unwrap();
}

/// A device whose new DMBs hand peers an unsealed memfd instead (when
/// `.1`), or a plain one.
#[derive(Debug, Clone)]
struct Unsealed(StdDevice, bool);

impl ErrorType for Unsealed {
    type Error = DeviceError;
}

impl SmcdOps for Unsealed {
    fn local_gid(&self) -> Gid {
        self.0.local_gid()
    }
    fn chid(&self) -> Chid {
        self.0.chid()
    }
    fn supports_v2(&self) -> bool {
        self.0.supports_v2()
    }
    fn query_remote_gid(&self, gid: Gid) -> Result<(), DeviceError> {
        self.0.query_remote_gid(gid)
    }
    fn register_dmb(&self, size: usize) -> Result<Dmb, DeviceError> {
        let dmb = self.0.register_dmb(size)?;
        if self.1 {
            let fd = crafted(size + CONTROL_BYTES, SealFlags::empty());
            swap_memfd(&self.0, dmb.token(), fd);
        }
        Ok(dmb)
    }
    fn unregister_dmb(&self, dmb: Dmb) -> Result<(), DeviceError> {
        self.0.unregister_dmb(dmb)
    }
    fn move_data(&self, t: DmbToken, at: usize, data: &[u8], sig: bool) -> Result<(), DeviceError> {
        self.0.move_data(t, at, data, sig)
    }
    fn signal_dmb(&self, token: DmbToken) -> Result<(), DeviceError> {
        self.0.signal_dmb(token)
    }
    fn supports_nocopy(&self) -> bool {
        self.0.supports_nocopy()
    }
    fn attach_dmb(&self, own: &Dmb, peer: PeerDmbId, map: bool) -> Result<PeerDmb, DeviceError> {
        self.0.attach_dmb(own, peer, map)
    }
    fn detach_dmb(&self, peer: PeerDmb) -> Result<(), DeviceError> {
        self.0.detach_dmb(peer)
    }
}

/// The handshake with a peer whose DMB is an unsealed memfd: we refuse to
/// map it and decline (IntErr), so our end carries the bytes over TCP,
/// whichever role we play. (As a client the crafting peer has finished CLC
/// when our Decline comes, `docs/protocol/readings.md` R4: what it makes of
/// it is its own business.) Every DMB is given back.
#[test]
fn a_handshake_offered_an_unsealed_dmb_falls_back() {
    let (good, bad) = (device(), device());
    for bad_is_client in [true, false] {
        let hg: Host<Unsealed> = Host::new(Unsealed(good.clone(), false));
        let hb: Host<Unsealed> = Host::new(Unsealed(bad.clone(), true));
        let pipe = Pipe::<4096>::new();
        let ours = if bad_is_client {
            pair(&hb, &hg, &pipe, 0)
                .expect("handshake ends")
                .1
                .transport()
        } else {
            pair(&hg, &hb, &pipe, 0)
                .expect("handshake ends")
                .0
                .transport()
        };
        let Transport::Tcp(f) = ours else {
            panic!("bad client {bad_is_client}: not a fallback: {ours:?}");
        };
        assert_eq!(f.reason, DeclineReason::IntErr, "{f:?}");
        assert_eq!(f.declined_by, DeclinedBy::Local, "{f:?}");
        for dev in [&good, &bad] {
            assert_eq!((dev.dmbs_in_use(), dev.peers_bound()), (0, 0));
        }
    }
}
