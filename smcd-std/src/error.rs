//! [`SmcError`]: the protocol reason inside the `std::io::Error`s of smcd.

use std::fmt;
use std::io;

use smcd_core::clc::HandshakeError;
use smcd_core::conn::ConnError;
use smcd_core::endpoint::{EndpointError, Failure, StreamErrorKind};

/// Why an smcd stream call failed, as the inner error of an [`io::Error`]
/// (`io::Error::get_ref()` and `downcast_ref::<SmcError>()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmcError {
    /// What the endpoint reported (handshake failure, connection error,
    /// stream error).
    Endpoint(EndpointError),
    /// The connection was closed by this side earlier.
    Closed,
}

impl fmt::Display for SmcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Endpoint(EndpointError::Failed(fail)) => {
                write!(f, "SMC handshake failed: {fail}")
            }
            Self::Endpoint(EndpointError::Conn(e)) => write!(f, "SMC-D connection: {e}"),
            Self::Endpoint(e) => write!(f, "{e}"),
            Self::Closed => f.write_str("the stream was closed"),
        }
    }
}

impl std::error::Error for SmcError {}

/// The `io::ErrorKind` a TCP socket would report in the same situation.
fn kind_of(e: &EndpointError) -> io::ErrorKind {
    use io::ErrorKind as K;
    match e {
        EndpointError::WouldBlock => K::WouldBlock,
        EndpointError::Closed => K::NotConnected,
        EndpointError::Failed(Failure::Handshake(HandshakeError::Timeout)) => K::TimedOut,
        EndpointError::Failed(Failure::Handshake(_)) => K::InvalidData,
        EndpointError::Failed(Failure::StreamClosed) => K::ConnectionReset,
        EndpointError::Failed(Failure::Stream(k)) | EndpointError::Stream(k) => match k {
            StreamErrorKind::WouldBlock => K::WouldBlock,
            StreamErrorKind::WriteShutdown => K::BrokenPipe,
            StreamErrorKind::Reset => K::ConnectionReset,
            _ => K::Other,
        },
        EndpointError::Failed(_) => K::ConnectionAborted,
        EndpointError::Conn(c) => match c {
            ConnError::WouldBlock => K::WouldBlock,
            ConnError::WriteShutdown => K::BrokenPipe,
            ConnError::PeerClosed | ConnError::Reset | ConnError::Aborted => K::ConnectionReset,
            ConnError::Closed => K::NotConnected,
            ConnError::Violation(_) => K::ConnectionAborted,
            _ => K::Other,
        },
    }
}

/// The `io::Error` for an endpoint error.
pub(crate) fn io_error(e: EndpointError) -> io::Error {
    match e {
        EndpointError::WouldBlock => io::ErrorKind::WouldBlock.into(),
        e => io::Error::new(kind_of(&e), SmcError::Endpoint(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_what_tcp_would_say() {
        let e = io_error(EndpointError::Conn(ConnError::Reset));
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<SmcError>());
        assert_eq!(
            inner,
            Some(&SmcError::Endpoint(EndpointError::Conn(ConnError::Reset)))
        );
        assert_eq!(
            io_error(EndpointError::WouldBlock).kind(),
            io::ErrorKind::WouldBlock
        );
        let timeout = EndpointError::Failed(Failure::Handshake(HandshakeError::Timeout));
        assert_eq!(io_error(timeout).kind(), io::ErrorKind::TimedOut);
    }
}
