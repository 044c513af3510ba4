//! The echo pattern every transport runs, over one [`Link`] per side: a
//! server that checksums and echoes back what it receives until EOF, and a
//! client that sends a payload stream while reading the echo back, on one
//! thread, checksumming it.

use std::error::Error;
use std::time::{Duration, Instant};

use crate::checksum::Checksum;
use crate::payload::Payload;

/// Errors of the examples.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// One end of a byte stream, used without blocking, plus a way to wait.
pub trait Link {
    /// Send bytes from the front of `data`; returns how many (0: no room now).
    ///
    /// # Errors
    ///
    /// The transport failed.
    fn send(&mut self, data: &[u8]) -> Result<usize, BoxError>;

    /// Receive what is there (at most `buf.len()` bytes when `keep`) and
    /// fold it into `sum`. With `keep` the bytes end up in `buf`; without,
    /// `buf` is scratch space the link may or may not use. Returns `None`
    /// when nothing arrived yet, `Some(0)` at EOF.
    ///
    /// # Errors
    ///
    /// The transport failed.
    fn recv(
        &mut self,
        buf: &mut [u8],
        sum: &mut Checksum,
        keep: bool,
    ) -> Result<Option<usize>, BoxError>;

    /// Called after every attempt: unless the caller made progress, wait a
    /// little for the peer (the transport's back-off).
    ///
    /// # Errors
    ///
    /// The transport failed.
    fn wait(&mut self, progressed: bool) -> Result<(), BoxError>;
}

/// Send all of `data`, waiting for room.
///
/// # Errors
///
/// The link's.
pub fn send_all(link: &mut impl Link, mut data: &[u8]) -> Result<(), BoxError> {
    while !data.is_empty() {
        let n = link.send(data)?;
        data = data.get(n..).ok_or("link sent more than it was given")?;
        link.wait(n > 0)?;
    }
    Ok(())
}

/// The echo server: receive into `buf`, checksum, send it back, until EOF.
/// Returns the bytes received and their checksum.
///
/// # Errors
///
/// The link's.
pub fn serve(link: &mut impl Link, buf: &mut [u8]) -> Result<(u64, u64), BoxError> {
    let (mut received, mut sum) = (0u64, Checksum::new());
    loop {
        match link.recv(buf, &mut sum, true)? {
            None => link.wait(false)?,
            Some(0) => return Ok((received, sum.value())),
            Some(n) => {
                received += n as u64;
                send_all(link, buf.get(..n).ok_or("link overran the buffer")?)?;
            }
        }
    }
}

/// What the client measured.
#[derive(Debug, Clone, Copy)]
pub struct Echoed {
    /// From the first byte sent to the last byte echoed.
    pub elapsed: Duration,
    /// Checksum of the echo.
    pub sum: u64,
}

/// The echo client: send the first `bytes` bytes of `payload` in pieces of
/// at most `chunk` bytes and, on the same thread, read the echo back and
/// checksum it.
///
/// # Errors
///
/// The link's, or an EOF before the whole echo came back.
pub fn client(
    link: &mut impl Link,
    payload: &Payload,
    bytes: u64,
    chunk: usize,
    buf: &mut [u8],
) -> Result<Echoed, BoxError> {
    let (mut sent, mut echoed, mut sum) = (0u64, 0u64, Checksum::new());
    let start = Instant::now();
    while echoed < bytes {
        let mut progressed = false;
        if sent < bytes {
            let n = link.send(payload.at(sent, clamp(bytes - sent, chunk)))?;
            sent += n as u64;
            progressed = n > 0;
        }
        match link.recv(buf, &mut sum, false)? {
            None => {}
            Some(0) => return Err(format!("EOF after {echoed} echoed bytes").into()),
            Some(n) => {
                echoed += n as u64;
                progressed = true;
            }
        }
        link.wait(progressed)?;
    }
    Ok(Echoed {
        elapsed: start.elapsed(),
        sum: sum.value(),
    })
}

/// One echo run's parameters: what the client sends, in which pieces, into
/// which buffers, and what both sides must receive.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The stream the client sends.
    pub payload: &'a Payload,
    /// Bytes each way.
    pub bytes: u64,
    /// [`stream_checksum`] of those bytes.
    pub expected: u64,
    /// Most bytes handed to one send.
    pub send_chunk: usize,
    /// Receive buffer of either side.
    pub recv_buf: usize,
}

impl<'a> Job<'a> {
    /// `bytes` of `payload` each way (computes the expected checksum).
    pub fn new(payload: &'a Payload, bytes: u64, send_chunk: usize, recv_buf: usize) -> Self {
        Self {
            payload,
            bytes,
            expected: stream_checksum(payload, bytes),
            send_chunk,
            recv_buf,
        }
    }

    /// The client side on `link`.
    ///
    /// # Errors
    ///
    /// As [`client`].
    pub fn client(&self, link: &mut impl Link) -> Result<Echoed, BoxError> {
        let mut buf = vec![0u8; self.recv_buf];
        client(link, self.payload, self.bytes, self.send_chunk, &mut buf)
    }

    /// The server side on `link`; returns bytes received and their checksum.
    ///
    /// # Errors
    ///
    /// As [`serve`].
    pub fn serve(&self, link: &mut impl Link) -> Result<(u64, u64), BoxError> {
        serve(link, &mut vec![0u8; self.recv_buf])
    }

    /// Check what both receiving sides got; the client's time on success.
    ///
    /// # Errors
    ///
    /// Either side failed, or a byte count or checksum is wrong.
    pub fn verify(
        &self,
        transport: &str,
        served: Result<(u64, u64), BoxError>,
        echoed: Result<Echoed, BoxError>,
    ) -> Result<Duration, BoxError> {
        let (received, sum) = served?;
        let echoed = echoed?;
        let (bytes, expected) = (self.bytes, self.expected);
        if received != bytes || sum != expected {
            return Err(format!(
                "{transport}: server received {received} bytes with checksum {sum:#018x}, \
                 expected {bytes} with {expected:#018x}"
            )
            .into());
        }
        if echoed.sum != expected {
            return Err(format!(
                "{transport}: echo checksum {:#018x}, expected {expected:#018x}",
                echoed.sum
            )
            .into());
        }
        Ok(echoed.elapsed)
    }
}

/// `left`, at most `max`.
pub fn clamp(left: u64, max: usize) -> usize {
    usize::try_from(left).map_or(max, |l| l.min(max))
}

/// The checksum of the first `bytes` bytes of the payload stream.
pub fn stream_checksum(payload: &Payload, bytes: u64) -> u64 {
    payload.checksum(bytes)
}
