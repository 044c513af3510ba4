//! Errors of an [`Endpoint`](super::Endpoint): why it has no usable
//! connection ([`Failure`]) and what a call reports ([`EndpointError`]).

use core::fmt;

use super::stream::StreamErrorKind;
use crate::clc::HandshakeError;
use crate::conn::ConnError;

/// Why an endpoint ended without a connection (SMC-D or TCP). The stream is
/// shut down; the application should close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// The handshake failed without fallback: protocol error or timeout
    /// (`docs/protocol/handshake.md` §6).
    Handshake(HandshakeError),
    /// The stream ended (EOF) before the handshake did (Linux: ECONNRESET).
    StreamClosed,
    /// The stream broke during the handshake.
    Stream(StreamErrorKind),
    /// The handshake reported SMC-D but handed over no resources (a bug).
    NoResources,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "{e}"),
            Self::StreamClosed => f.write_str("stream closed during the CLC handshake"),
            Self::Stream(k) => write!(f, "stream failed during the CLC handshake: {k}"),
            Self::NoResources => f.write_str("handshake established SMC-D without its DMBs"),
        }
    }
}

impl core::error::Error for Failure {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Handshake(e) => Some(e),
            Self::Stream(k) => Some(k),
            Self::StreamClosed | Self::NoResources => None,
        }
    }
}

/// What an [`Endpoint`](super::Endpoint) call reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EndpointError {
    /// Nothing can be sent or received now (also while handshaking).
    WouldBlock,
    /// The application already closed the endpoint.
    Closed,
    /// The endpoint has no connection (see [`Failure`]).
    Failed(Failure),
    /// The SMC-D connection reported an error.
    Conn(ConnError),
    /// The stream reported an error.
    Stream(StreamErrorKind),
}

impl EndpointError {
    /// A connection error, with "would block" and "closed" mapped onto the
    /// endpoint's own variants.
    pub(crate) fn conn(e: ConnError) -> Self {
        match e {
            ConnError::WouldBlock => Self::WouldBlock,
            ConnError::Closed => Self::Closed,
            other => Self::Conn(other),
        }
    }

    /// A stream error, with "would block" mapped onto the endpoint's own variant.
    pub(crate) fn stream(kind: StreamErrorKind) -> Self {
        match kind {
            StreamErrorKind::WouldBlock => Self::WouldBlock,
            other => Self::Stream(other),
        }
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WouldBlock => f.write_str("operation would block"),
            Self::Closed => f.write_str("endpoint closed by the application"),
            Self::Failed(e) => write!(f, "no connection: {e}"),
            Self::Conn(e) => write!(f, "SMC-D connection: {e}"),
            Self::Stream(k) => write!(f, "stream: {k}"),
        }
    }
}

impl core::error::Error for EndpointError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Failed(e) => Some(e),
            Self::Conn(e) => Some(e),
            Self::Stream(k) => Some(k),
            Self::WouldBlock | Self::Closed => None,
        }
    }
}

impl From<Failure> for EndpointError {
    fn from(f: Failure) -> Self {
        Self::Failed(f)
    }
}
