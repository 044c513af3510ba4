//! Whether an accepted connection really starts with CLC, told from its
//! first bytes without taking them: checked before a listener speaks CLC on
//! a connection that a process outside the device's policy announced —
//! perhaps a forger naming a plain client's port (`rendezvous.rs`).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::RecvFlags;

/// The eyecatchers a client's first CLC message starts with: "SMCR" in
/// EBCDIC (Proposal, and Decline, the only messages a client sends first),
/// and "SMCD" for good measure.
const EYECATCHERS: [[u8; 4]; 2] = [[0xe2, 0xd4, 0xc3, 0xd9], [0xe2, 0xd4, 0xc3, 0xc4]];

/// How long to wait between looks while fewer than 4 bytes have come.
const PARTIAL_PAUSE: Duration = Duration::from_millis(1);

/// Whether the first bytes of `tcp` are a CLC eyecatcher, waiting for them
/// up to `wait`. Bytes that are not, the end of the stream, or nothing
/// within `wait`: `false`. Nothing is consumed.
pub(crate) fn starts_with_clc(tcp: &TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut head = [0u8; 4];
    loop {
        let partial = match rustix::net::recv(tcp, &mut head, RecvFlags::PEEK | RecvFlags::DONTWAIT)
        {
            Ok((0, _)) => return false,
            Ok((n, _)) => {
                let got = head.get(..n).unwrap_or_default();
                if !EYECATCHERS.iter().any(|e| e.starts_with(got)) {
                    return false;
                }
                if n == head.len() {
                    return true;
                }
                true
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => false,
            Err(_) => return false,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if partial {
            // Readable already: look again shortly.
            std::thread::sleep(left.min(PARTIAL_PAUSE));
            continue;
        }
        let ts = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(tcp, PollFlags::IN)];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (c, l.accept().unwrap().0)
    }

    #[test]
    fn tells_clc_from_other_first_bytes_and_takes_none() {
        let (mut c, s) = pair();
        assert!(
            !starts_with_clc(&s, Duration::from_millis(5)),
            "nothing yet"
        );
        c.write_all(&[0xe2, 0xd4]).unwrap();
        c.write_all(&[0xc3, 0xd9, 1]).unwrap();
        assert!(starts_with_clc(&s, Duration::from_secs(5)));
        let mut all = [0u8; 5];
        std::io::Read::read_exact(&mut &s, &mut all).unwrap();
        assert_eq!(all, [0xe2, 0xd4, 0xc3, 0xd9, 1], "the bytes stay");
        let (mut c, s) = pair();
        c.write_all(b"GET / HTTP/1.0\r\n").unwrap();
        assert!(!starts_with_clc(&s, Duration::from_secs(5)));
    }
}
