//! [`DeviceError`]: why a [`StdDevice`](super::StdDevice) call failed.

use std::fmt;
use std::io;

use smcd_core::ops::{Error, ErrorKind};

/// A device error: the generic class the protocol acts on, what failed, and
/// the operating-system error behind it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    kind: ErrorKind,
    what: &'static str,
    os: Option<io::ErrorKind>,
}

impl DeviceError {
    pub(crate) const fn new(kind: ErrorKind, what: &'static str) -> Self {
        Self {
            kind,
            what,
            os: None,
        }
    }

    pub(crate) fn io(kind: ErrorKind, what: &'static str, e: &io::Error) -> Self {
        Self {
            kind,
            what,
            os: Some(e.kind()),
        }
    }

    /// What failed.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The operating-system error behind it, if any.
    pub fn os_error(&self) -> Option<io::ErrorKind> {
        self.os
    }
}

impl Error for DeviceError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.what)?;
        if let Some(os) = self.os {
            write!(f, " ({os})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeviceError {}
