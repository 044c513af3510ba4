//! The raw shared-memory spin ring, the reference transport of `smcd bench`
//! — a placeholder with the interface of the real ring: every call reports
//! `Unsupported`, and the bench skips the raw rows with a note until the
//! ring itself replaces this file.

use std::io;

/// What every call of the placeholder reports.
fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the raw shared-memory ring is not built into this smcd",
    )
}

/// The server side of a raw ring, waiting for its one client.
#[derive(Debug)]
pub(crate) struct RawListener {
    never: std::convert::Infallible,
}

impl RawListener {
    /// A new ring and the address a client process connects with.
    pub(crate) fn bind() -> io::Result<(RawListener, String)> {
        Err(unsupported())
    }

    /// Wait until the client connected.
    pub(crate) fn accept(&self) -> io::Result<RawConn> {
        match self.never {}
    }
}

/// Connect to the ring a server announced as `addr`.
pub(crate) fn connect(addr: &str) -> io::Result<RawConn> {
    let _ = addr;
    Err(unsupported())
}

/// One end of a raw ring connection.
#[derive(Debug)]
pub(crate) struct RawConn {
    never: std::convert::Infallible,
}

impl RawConn {
    /// Zero-copy read: `f` sees the received bytes in place and returns
    /// how many it consumed; `Ok(0)` at EOF.
    pub(crate) fn read_with(&mut self, f: impl FnOnce(&[u8]) -> usize) -> io::Result<usize> {
        let _ = f;
        match self.never {}
    }

    /// Shut down the write side: the peer's reads then return `Ok(0)`.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        match self.never {}
    }
}

impl io::Read for RawConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        match self.never {}
    }
}

impl io::Write for RawConn {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let _ = data;
        match self.never {}
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.never {}
    }
}
