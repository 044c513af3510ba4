//! [`SocketLink`]: the echo [`Link`] over a kernel socket (TCP over
//! 127.0.0.1, a Unix-domain stream), for comparison with SMC-D in the same
//! run.
//!
//! The socket is non-blocking and waits the way the SMC-D links do: the
//! blocking driver's [`Backoff`] with a [`SpinThenBlock`] pause — spinning
//! (and retrying the calls) through short pauses, blocking in `poll(2)` on
//! the socket through long ones — so both sides of a comparison get the
//! same waiting policy.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use smcd_core::blocking::Backoff;

use crate::checksum::Checksum;
use crate::echo::{BoxError, Job, Link};
use crate::wait::{SpinThenBlock, Waiting, Wake};

/// Waits in `poll(2)` for the socket to become readable (and writable, when
/// a send found no room).
#[derive(Debug)]
pub struct PollWake {
    fd: OwnedFd,
    want_write: bool,
}

impl Wake for PollWake {
    /// Readiness is only learnt by asking the kernel: spinning is blind, the
    /// caller retries its calls between pauses.
    fn take(&mut self) -> bool {
        false
    }

    fn block(&mut self, timeout: Duration) -> bool {
        let mut flags = PollFlags::IN;
        if self.want_write {
            flags |= PollFlags::OUT;
        }
        let timeout = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(&self.fd, flags)];
        // An error (EINTR) only ends this pause early.
        poll(&mut fds, Some(&timeout)).map_or(true, |n| n > 0)
    }
}

/// A non-blocking socket with the shared waiting policy.
#[derive(Debug)]
pub struct SocketLink<S> {
    stream: S,
    backoff: Backoff,
    pause: SpinThenBlock<PollWake>,
}

impl<S: Read + Write + AsFd> SocketLink<S> {
    /// Wrap `stream` (set it non-blocking first), waiting as `waiting` says.
    ///
    /// # Errors
    ///
    /// Duplicating the socket's descriptor for `poll(2)` failed.
    pub fn new(stream: S, waiting: Waiting) -> Result<Self, BoxError> {
        let fd = stream.as_fd().try_clone_to_owned()?;
        Ok(Self {
            stream,
            backoff: Backoff::with_policy(waiting.policy),
            pause: SpinThenBlock::new(
                PollWake {
                    fd,
                    want_write: false,
                },
                waiting.spin_limit,
            ),
        })
    }

    /// The socket.
    pub fn stream(&self) -> &S {
        &self.stream
    }
}

impl<S: Read + Write + AsFd> Link for SocketLink<S> {
    fn send(&mut self, data: &[u8]) -> Result<usize, BoxError> {
        let n = match self.stream.write(data) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e.into()),
        };
        self.pause.wake_mut().want_write = n == 0 && !data.is_empty();
        Ok(n)
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        sum: &mut Checksum,
        _keep: bool,
    ) -> Result<Option<usize>, BoxError> {
        match self.stream.read(buf) {
            Ok(n) => {
                sum.update(buf.get(..n).ok_or("read overran the buffer")?);
                Ok(Some(n))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn wait(&mut self, progressed: bool) -> Result<(), BoxError> {
        if progressed {
            self.backoff.reset();
        } else {
            self.backoff.snooze(&mut self.pause);
        }
        Ok(())
    }
}

/// A connected, non-blocking TCP pair over 127.0.0.1: (client, server).
///
/// # Errors
///
/// Binding, connecting or accepting failed.
pub fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    for s in [&client, &server] {
        s.set_nonblocking(true)?;
    }
    Ok((client, server))
}

/// A connected, non-blocking Unix-domain stream pair: (client, server).
///
/// # Errors
///
/// `socketpair(2)` failed.
pub fn uds_pair() -> io::Result<(UnixStream, UnixStream)> {
    let (client, server) = UnixStream::pair()?;
    for s in [&client, &server] {
        s.set_nonblocking(true)?;
    }
    Ok((client, server))
}

/// A socket whose write side can be shut down (the client's EOF).
pub trait ShutWrite {
    /// `shutdown(SHUT_WR)`.
    ///
    /// # Errors
    ///
    /// The system call failed.
    fn shut_write(&self) -> io::Result<()>;
}

impl ShutWrite for TcpStream {
    fn shut_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl ShutWrite for UnixStream {
    fn shut_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Run `job` over a connected socket pair: the server on a new thread, the
/// client on this one, which then shuts down its sending. Each thread owns
/// its socket, so a side that fails closes it and the other sees EOF
/// instead of waiting forever. Returns the client's time.
///
/// # Errors
///
/// Either side failed, or [`Job::verify`] did not pass.
pub fn echo<S>(
    transport: &str,
    job: &Job<'_>,
    (client, server): (S, S),
    waiting: Waiting,
) -> Result<Duration, BoxError>
where
    S: Read + Write + AsFd + ShutWrite + Send,
{
    thread::scope(|s| {
        let server = s.spawn(|| job.serve(&mut SocketLink::new(server, waiting)?));
        let mut link = SocketLink::new(client, waiting)?;
        let echoed = job.client(&mut link);
        let shut = link.stream().shut_write();
        let served = server.join().map_err(|_| "server thread panicked")?;
        shut?;
        job.verify(transport, served, echoed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;
    use smcd_core::blocking::BackoffPolicy;

    const WAITING: Waiting = Waiting {
        policy: BackoffPolicy::DEFAULT,
        spin_limit: Duration::from_micros(20),
    };

    #[test]
    fn echo_over_tcp_and_unix_sockets_checks_both_sides() {
        let payload = Payload::new(3, 100_003);
        let job = Job::new(&payload, 3_000_017, 40_000, 30_000);
        assert!(echo("TCP", &job, tcp_pair().unwrap(), WAITING).is_ok());
        assert!(echo("UDS", &job, uds_pair().unwrap(), WAITING).is_ok());
        // A job expecting another stream fails verification.
        let wrong = Job {
            expected: job.expected ^ 1,
            ..job
        };
        let e = echo("UDS", &wrong, uds_pair().unwrap(), WAITING).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    #[test]
    fn a_blocked_sender_waits_for_writability_too() {
        let (a, _b) = uds_pair().unwrap();
        let mut l = SocketLink::new(a, WAITING).unwrap();
        let big = vec![0u8; 1 << 20];
        while l.send(&big).unwrap() > 0 {}
        assert!(l.pause.wake().want_write);
        l.send(&[]).unwrap();
        assert!(!l.pause.wake().want_write);
    }
}
