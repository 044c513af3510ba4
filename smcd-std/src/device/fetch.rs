//! The device socket protocol: how a peer obtains one of our DMBs.
//!
//! A peer that learnt one of our DMB tokens from the CLC handshake connects
//! to our device socket and sends a [`Request`] naming the token and its
//! length. We answer with a [`Status`]; on success the DMB's memfd and its
//! doorbell eventfd ride along with `SCM_RIGHTS`. The token is the
//! capability (it only travels in our Accept or Confirm, over the TCP
//! connection); the socket's peer credentials must pass the uid policy too.
//!
//! The asker may *offer* its own DMB of the same connection in the same
//! message (an [`Offer`]: its token and length, the memfd and eventfd
//! attached), when the answering process passes the asker's uid policy.
//! The answerer keeps the offer only if it grants the request, and uses it
//! when the asker's Confirm names that token: the second fetch, the other
//! way round, is saved (a Unix-socket connection and a wake-up of the
//! asker's device thread per connection).

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use smcd_core::dmb::{DmbToken, Gid};

use crate::query::Query;

const MAGIC: [u8; 4] = *b"SMCF";
const VERSION: u8 = 1;

/// Bytes of a request on the wire.
pub(crate) const REQUEST_BYTES: usize = 40;

/// Where a request says what it asks for: 0 a DMB (a [`Request`]; devices
/// that predate the other kinds ignore this byte and take any request for
/// one), 1 and 2 a report ([`Query`], answered by `report`).
const KIND_AT: usize = 5;
const KIND_DMB: u8 = 0;
const KIND_CONNECTIONS: u8 = 1;
const KIND_TOTALS: u8 = 2;

/// What a process asks a device for.
#[derive(Debug)]
pub(crate) enum Asked {
    /// One of our DMBs, and maybe the asker's own DMB offered along.
    Dmb(Request, Option<Offer>),
    /// A report of this process.
    Report(Query),
}

/// The request for a report (no token, no length, no GID).
pub(crate) fn query_bytes(what: Query) -> [u8; REQUEST_BYTES] {
    let mut b = [0u8; REQUEST_BYTES];
    b[..4].copy_from_slice(&MAGIC);
    b[4] = VERSION;
    b[KIND_AT] = match what {
        Query::Connections => KIND_CONNECTIONS,
        Query::Totals => KIND_TOTALS,
    };
    b
}

/// Bytes of the offer behind a request that carries one.
const OFFER_BYTES: usize = 16;

/// Where a request keeps its flags (byte 5 says what it asks for).
const FLAGS_AT: usize = 6;

/// Flag of a request: an offer follows.
const FLAG_OFFER: u8 = 1;

/// "Here is my DMB `token` of `len` bytes, for the same connection" (its
/// memfd and eventfd attached to the request).
#[derive(Debug)]
pub(crate) struct Offer {
    pub(crate) token: DmbToken,
    pub(crate) len: u64,
    pub(crate) memfd: OwnedFd,
    pub(crate) bell: OwnedFd,
}

/// Our own DMB to offer with a request, as borrowed fds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnOffer<'a> {
    pub(crate) token: DmbToken,
    pub(crate) len: u64,
    pub(crate) memfd: BorrowedFd<'a>,
    pub(crate) bell: BorrowedFd<'a>,
}

/// "Give me DMB `token` of `len` bytes"; `from` is the asking device (for
/// diagnostics only: nothing is trusted from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) token: DmbToken,
    pub(crate) len: u64,
    pub(crate) from: Gid,
}

impl Request {
    pub(crate) fn to_bytes(self) -> [u8; REQUEST_BYTES] {
        let mut b = [0u8; REQUEST_BYTES];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[8..16].copy_from_slice(&self.token.0.to_le_bytes());
        b[16..24].copy_from_slice(&self.len.to_le_bytes());
        b[24..32].copy_from_slice(&self.from.gid_ext.to_le_bytes());
        b[32..40].copy_from_slice(&self.from.gid.to_le_bytes());
        b
    }

    /// `None` for anything but a well-formed request of this version.
    pub(crate) fn parse(b: &[u8; REQUEST_BYTES]) -> Option<Self> {
        if b[..4] != MAGIC || b[4] != VERSION {
            return None;
        }
        let word = |at: usize| {
            b.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        Some(Self {
            token: DmbToken(word(8)?),
            len: word(16)?,
            from: Gid::new(word(32)?, word(24)?),
        })
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Status {
    /// The memfd and eventfd follow.
    Granted = 0,
    /// No such DMB, or it was already handed out, or its length differs.
    Unknown = 1,
    /// The asking process fails the credential policy.
    Denied = 2,
    /// Not a request of this protocol.
    Malformed = 3,
    /// A report request met an application thread answering DMB requests
    /// while it spins: ask again (the device thread will answer).
    Busy = 4,
}

impl Status {
    /// A sentence for the device error.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Unknown => "the peer's device does not hand out this DMB",
            Self::Denied => "the peer's device refuses our credentials",
            Self::Malformed => "the peer's device answered outside the protocol",
            Self::Busy => "the device is busy: ask again",
        }
    }

    pub(crate) fn from_u32(v: u32) -> Self {
        match v {
            0 => Self::Granted,
            1 => Self::Unknown,
            2 => Self::Denied,
            4 => Self::Busy,
            _ => Self::Malformed,
        }
    }
}

/// Send `status`, with `fds` attached when granted.
pub(crate) fn answer(sock: &UnixStream, status: Status, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let bytes = (status as u32).to_le_bytes();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(&bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// How long [`ask`] spins for the answer before it sleeps.
const ANSWER_SPIN: Duration = Duration::from_micros(200);

/// Ask over `sock` for the DMB of `req`: its memfd and eventfd, or the status
/// that refused them; `offer` rides along (see the module docs).
pub(crate) fn ask(
    mut sock: UnixStream,
    req: Request,
    offer: Option<OwnOffer<'_>>,
) -> io::Result<Result<(OwnedFd, OwnedFd), Status>> {
    match offer {
        None => sock.write_all(&req.to_bytes())?,
        Some(o) => send_with_offer(&sock, req, o)?,
    }
    let mut status = [0u8; 4];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    // The answer takes the peer's device thread a few microseconds: wait
    // for it spinning first, since sleeping costs a wake-up on top.
    let spin_until = Instant::now() + ANSWER_SPIN;
    let got = loop {
        let flags = match Instant::now() < spin_until {
            true => RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
            false => RecvFlags::CMSG_CLOEXEC,
        };
        match rustix::net::recvmsg(
            sock.as_fd(),
            &mut [IoSliceMut::new(&mut status)],
            &mut control,
            flags,
        ) {
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => std::hint::spin_loop(),
            r => break r?,
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received.map(crate::fdfloor::lift));
        }
    }
    if got.bytes != status.len() {
        return Ok(Err(Status::Malformed));
    }
    match (Status::from_u32(u32::from_le_bytes(status)), fds.len()) {
        (Status::Granted, 2) => {
            let mut it = fds.into_iter();
            match (it.next(), it.next()) {
                (Some(memfd), Some(bell)) => Ok(Ok((memfd, bell))),
                _ => Ok(Err(Status::Malformed)),
            }
        }
        (Status::Granted, _) => Ok(Err(Status::Malformed)),
        (other, _) => Ok(Err(other)),
    }
}

/// Send `req` with `offer` behind it, its fds attached, in one message.
fn send_with_offer(sock: &UnixStream, req: Request, offer: OwnOffer<'_>) -> io::Result<()> {
    let mut b = [0u8; REQUEST_BYTES + OFFER_BYTES];
    b[..REQUEST_BYTES].copy_from_slice(&req.to_bytes());
    b[FLAGS_AT] |= FLAG_OFFER;
    b[REQUEST_BYTES..REQUEST_BYTES + 8].copy_from_slice(&offer.token.0.to_le_bytes());
    b[REQUEST_BYTES + 8..].copy_from_slice(&offer.len.to_le_bytes());
    let fds = [offer.memfd, offer.bell];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let sent = rustix::net::sendmsg(sock, &[IoSlice::new(&b)], &mut control, SendFlags::NOSIGNAL)?;
    if sent != b.len() {
        return Err(io::ErrorKind::WriteZero.into());
    }
    Ok(())
}

/// Read one request from `sock`, and the offer behind it if there is one
/// (`None` if it is not a request).
pub(crate) fn read_request(sock: &UnixStream) -> io::Result<Option<Asked>> {
    let mut b = [0u8; REQUEST_BYTES + OFFER_BYTES];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock.as_fd(),
        &mut [IoSliceMut::new(&mut b[..REQUEST_BYTES])],
        &mut control,
        RecvFlags::CMSG_CLOEXEC | RecvFlags::WAITALL,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received);
        }
    }
    let Some(head) = b
        .first_chunk::<REQUEST_BYTES>()
        .filter(|_| got.bytes == REQUEST_BYTES)
    else {
        return Ok(None);
    };
    match head[KIND_AT] {
        KIND_DMB => {}
        KIND_CONNECTIONS => return Ok(Some(Asked::Report(Query::Connections))),
        KIND_TOTALS => return Ok(Some(Asked::Report(Query::Totals))),
        _ => return Ok(None),
    }
    let Some(req) = Request::parse(head) else {
        return Ok(None);
    };
    if head[FLAGS_AT] & FLAG_OFFER == 0 {
        return Ok(Some(Asked::Dmb(req, None)));
    }
    let mut tail = [0u8; OFFER_BYTES];
    (&mut &*sock).read_exact(&mut tail)?;
    let word = |at: usize| {
        tail.get(at..at + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let mut it = fds.into_iter();
    let offer = match (word(0), word(8), it.next(), it.next(), it.next()) {
        (Some(token), Some(len), Some(memfd), Some(bell), None) if token != 0 => Some(Offer {
            token: DmbToken(token),
            len,
            memfd,
            bell,
        }),
        // A malformed offer is ignored; the request still stands.
        _ => None,
    };
    Ok(Some(Asked::Dmb(req, offer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_reject_garbage() {
        let r = Request {
            token: DmbToken(0x1122_3344_5566_7788),
            len: 65536,
            from: Gid::new(1, 2),
        };
        assert_eq!(Request::parse(&r.to_bytes()), Some(r));
        let mut bad = r.to_bytes();
        bad[0] = b'X';
        assert_eq!(Request::parse(&bad), None);
        let mut v2 = r.to_bytes();
        v2[4] = 2;
        assert_eq!(Request::parse(&v2), None);
    }

    #[test]
    fn fds_travel_with_a_grant() {
        let (a, b) = UnixStream::pair().unwrap();
        let e1 = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let e2 = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let req = Request {
            token: DmbToken(9),
            len: 16384,
            from: Gid::new(3, 4),
        };
        let asker = std::thread::spawn(move || ask(a, req, None).unwrap());
        let Some(Asked::Dmb(got, offer)) = read_request(&b).unwrap() else {
            panic!("not a DMB request");
        };
        assert_eq!(got, req);
        assert!(offer.is_none());
        answer(&b, Status::Granted, &[e1.as_fd(), e2.as_fd()]).unwrap();
        assert!(asker.join().unwrap().is_ok());

        let (a, b) = UnixStream::pair().unwrap();
        let asker = std::thread::spawn(move || ask(a, req, None).unwrap());
        read_request(&b).unwrap();
        answer(&b, Status::Denied, &[]).unwrap();
        assert_eq!(asker.join().unwrap().unwrap_err(), Status::Denied);
    }

    #[test]
    fn an_offer_rides_along_with_its_fds() {
        let (a, b) = UnixStream::pair().unwrap();
        let memfd = rustix::fs::memfd_create(c"t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let bell = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let granted = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let req = Request {
            token: DmbToken(7),
            len: 16384,
            from: Gid::new(5, 6),
        };
        let asker = std::thread::spawn(move || {
            let offer = OwnOffer {
                token: DmbToken(8),
                len: 32768,
                memfd: memfd.as_fd(),
                bell: bell.as_fd(),
            };
            ask(a, req, Some(offer)).unwrap()
        });
        let Some(Asked::Dmb(got, offer)) = read_request(&b).unwrap() else {
            panic!("not a DMB request");
        };
        assert_eq!(got, req);
        let offer = offer.expect("an offer");
        assert_eq!((offer.token, offer.len), (DmbToken(8), 32768));
        // The offered memfd is the asker's: it can be sized like one.
        rustix::fs::ftruncate(&offer.memfd, 4096).unwrap();
        answer(&b, Status::Granted, &[granted.as_fd(), offer.bell.as_fd()]).unwrap();
        assert!(asker.join().unwrap().is_ok());
    }

    #[test]
    fn a_request_with_a_malformed_offer_still_stands() {
        let (a, b) = UnixStream::pair().unwrap();
        let req = Request {
            token: DmbToken(7),
            len: 16384,
            from: Gid::new(5, 6),
        };
        // The offer flag, but no fds and a zero token.
        let mut bytes = [0u8; REQUEST_BYTES + OFFER_BYTES];
        bytes[..REQUEST_BYTES].copy_from_slice(&req.to_bytes());
        bytes[FLAGS_AT] |= FLAG_OFFER;
        (&a).write_all(&bytes).unwrap();
        let Some(Asked::Dmb(got, offer)) = read_request(&b).unwrap() else {
            panic!("not a DMB request");
        };
        assert_eq!(got, req);
        assert!(offer.is_none());
    }

    #[test]
    fn report_requests_are_told_apart() {
        for q in [Query::Connections, Query::Totals] {
            let (a, b) = UnixStream::pair().unwrap();
            (&a).write_all(&query_bytes(q)).unwrap();
            assert!(matches!(read_request(&b).unwrap(), Some(Asked::Report(got)) if got == q));
        }
        let (a, b) = UnixStream::pair().unwrap();
        let mut odd = query_bytes(Query::Totals);
        odd[KIND_AT] = 9;
        (&a).write_all(&odd).unwrap();
        assert!(read_request(&b).unwrap().is_none());
        // A DMB request is kind 0, as devices before the kinds wrote it.
        let req = Request {
            token: DmbToken(7),
            len: 16384,
            from: Gid::new(5, 6),
        };
        assert_eq!(req.to_bytes()[KIND_AT], KIND_DMB);
    }
}
