//! [`TcpWire`]: the TCP connection as the endpoint's [`ByteStream`] (the CLC
//! handshake, the fallback data, and the liveness signal while SMC-D runs).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use smcd_core::endpoint::{ByteStream, StreamErrorKind};

/// A non-blocking TCP stream that remembers whether it saw EOF.
#[derive(Debug)]
pub(crate) struct TcpWire {
    tcp: TcpStream,
    eof: bool,
}

impl TcpWire {
    /// Wrap `tcp`, switching it to non-blocking mode.
    pub(crate) fn new(tcp: TcpStream) -> io::Result<Self> {
        tcp.set_nonblocking(true)?;
        Ok(Self { tcp, eof: false })
    }

    /// Whether a read returned EOF (then the socket stays readable forever
    /// and is no use as a wake-up source).
    pub(crate) fn saw_eof(&self) -> bool {
        self.eof
    }

    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }
}

fn kind(e: &io::Error) -> StreamErrorKind {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => StreamErrorKind::WouldBlock,
        io::ErrorKind::BrokenPipe => StreamErrorKind::WriteShutdown,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => StreamErrorKind::Reset,
        _ => StreamErrorKind::Other,
    }
}

impl ByteStream for TcpWire {
    type Error = StreamErrorKind;

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamErrorKind> {
        match self.tcp.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) => Err(kind(&e)),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, StreamErrorKind> {
        match self.tcp.write(data) {
            Ok(0) if !data.is_empty() => Err(StreamErrorKind::WouldBlock),
            Ok(n) => Ok(n),
            Err(e) => Err(kind(&e)),
        }
    }

    fn shutdown(&mut self) -> Result<(), StreamErrorKind> {
        match self.tcp.shutdown(Shutdown::Write) {
            Ok(()) => Ok(()),
            // Already shut down or never connected: nothing left to do.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(kind(&e)),
        }
    }
}
