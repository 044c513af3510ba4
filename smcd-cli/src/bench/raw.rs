//! The reference transport of `smcd bench`: a raw shared-memory spin ring
//! between two processes, "the limit" the other transports are compared to.
//!
//! One file under `/dev/shm` (or the temporary directory where there is no
//! `/dev/shm`), created by [`RawListener::bind`] with a unique name that is
//! the address handed to the client, holds a control page and two
//! single-producer single-consumer byte rings of [`RING_BYTES`] each, one per
//! direction:
//!
//! ```text
//! offset 0       control page (4096 B), every line 128-byte aligned:
//!   line 0         magic (written last by bind) | connected flag (client)
//!   line 1, 2      ring 0 producer: head, shut | ring 0 consumer: tail, gone
//!   line 3, 4      ring 1 producer: head, shut | ring 1 consumer: tail, gone
//! offset 4096    ring 0: listener -> client
//! offset 4096+1M ring 1: client -> listener
//! ```
//!
//! `head` and `tail` are 64-bit byte positions that only ever grow (they
//! never wrap in practice); the ring offset is the position modulo the ring
//! size. The producer copies into the free part `[head, tail + size)` and then
//! publishes the new `head` with a Release store; the consumer reads `head`
//! with Acquire, reads the published part `[tail, head)` and then gives it
//! back with a Release store of `tail`, which the producer reads with Acquire
//! before it overwrites those bytes. `shut` (set after the last `head`) is
//! end of stream for the reader; `gone` tells a writer nobody reads any more.
//!
//! Each side caches the peer's cursor and reads the peer's line again only
//! when the cached value says the ring is too full (writer) or empty
//! (reader), so the two sides touch each other's cache lines as rarely as
//! possible. There is no system call on the data path: waiting is spinning
//! ([`std::hint::spin_loop`]), with the clock looked at every few thousand
//! spins, a yield of the thread once a wait has lasted about a millisecond
//! (so an oversubscribed machine still makes progress) and an error
//! ([`io::ErrorKind::TimedOut`]) when the peer changed nothing for
//! [`WAIT_LIMIT`], so a dead peer never hangs a bench.
//!
//! `Write::write` is one copy into the ring; [`RawConn::read_with`] hands out
//! the published bytes in place (one copy end to end, "copy1");
//! `Read::read` copies them out again (two copies, "copy2").
//!
//! # Trust
//!
//! Cursors and flags are atomics, and the byte copies only touch the part of
//! a ring that the protocol gives to one side at that moment, so two
//! well-behaved peers never race. A peer that broke the protocol (writing
//! into the published part, or into a ring it does not produce) would race
//! with our copies; that is acceptable here only because this is a reference
//! benchmark between two cooperating processes of our own. Cursor values
//! read from the peer are still checked, so a broken peer cannot make us
//! copy outside the mapping.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::mm::{MapFlags, ProtFlags};

/// Bytes of each direction's ring (a power of two).
const RING_BYTES: usize = 1 << 20;
/// Bytes of the control page in front of the rings.
const CONTROL_BYTES: usize = 4096;
/// Length of the shared file: control page and two rings.
const FILE_BYTES: usize = CONTROL_BYTES + 2 * RING_BYTES;
/// Written into the control page by `bind` once it is laid out.
const MAGIC: u64 = u64::from_le_bytes(*b"smcdraw1");
/// How long a wait may see no change from the peer before it fails.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Spins between two looks at the clock (a power of two).
const SPINS_PER_CHECK: u32 = 1 << 12;
/// Spins after which a wait yields its thread at every clock check
/// (around a millisecond of spinning).
const SPINS_BEFORE_YIELD: u32 = 1 << 16;

/// One 128-byte line of the control page (two adjacent 64-byte cache lines,
/// so neither the line nor the prefetcher's pair is shared between writers).
#[repr(C, align(128))]
#[derive(Debug)]
struct Line {
    /// A cursor (or the magic, in the first line).
    word: AtomicU64,
    /// A flag belonging to the same writer (0 or 1).
    flag: AtomicU64,
}

/// The control lines of one direction.
#[repr(C)]
#[derive(Debug)]
struct Direction {
    /// Written by the producer: `word` = head, `flag` = shut.
    producer: Line,
    /// Written by the consumer: `word` = tail, `flag` = gone.
    consumer: Line,
}

/// The control page: the hello line and one [`Direction`] per ring.
#[repr(C)]
#[derive(Debug)]
struct Control {
    /// `word` = [`MAGIC`] (listener), `flag` = connected (client).
    hello: Line,
    /// Ring 0 (listener to client) and ring 1 (client to listener).
    dirs: [Direction; 2],
}

const _: () = assert!(size_of::<Control>() <= CONTROL_BYTES);
const _: () = assert!(RING_BYTES.is_power_of_two());

/// A shared mapping of the whole file, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; all
// access goes through the atomics of `Control` and through copies of ring
// parts that the ring protocol gives to one side (module docs).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Map `file` (of [`FILE_BYTES`]) shared, read-write, pages populated.
    fn new(file: &File) -> io::Result<Self> {
        // SAFETY: a new shared mapping of a file of `FILE_BYTES` bytes at an
        // address the kernel picks; nothing in this process refers to that
        // range yet, and it stays mapped until `Drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                FILE_BYTES,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::POPULATE,
                file,
                0,
            )
        }?;
        let base = NonNull::new(ptr.cast::<u8>()).ok_or(io::ErrorKind::OutOfMemory)?;
        Ok(Self { base })
    }

    /// The control page.
    fn control(&self) -> &Control {
        // SAFETY: the mapping starts page-aligned with the control page,
        // which is larger than `Control` (checked above), and lives as long
        // as `&self`. `Control` is made of atomics only, valid for every bit
        // pattern (a fresh file is zeroed), and is only ever accessed
        // atomically, by us and by the peer.
        unsafe { &*self.base.as_ptr().cast::<Control>() }
    }

    /// Start of ring `index` (0 or 1).
    fn ring(&self, index: usize) -> *mut u8 {
        self.base
            .as_ptr()
            .wrapping_add(CONTROL_BYTES + index * RING_BYTES)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base..base + FILE_BYTES` was mapped by `new`; every
        // `RawConn` and `RawListener` using it holds the `Arc` around this
        // mapping, so no access is left.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), FILE_BYTES) };
    }
}

/// The listening side: owns the shared file and unlinks it on drop.
/// It serves one connection.
#[derive(Debug)]
pub(crate) struct RawListener {
    path: PathBuf,
    map: Arc<Mapping>,
    accepted: AtomicBool,
}

/// A unique file name for a new listener.
fn unique_path(attempt: u32) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "smcd-raw-{}-{seq}-{attempt}-{nanos:09}",
        std::process::id()
    ))
}

impl RawListener {
    /// Create the shared file and lay it out; the string is the address for
    /// [`connect`] (the file's path).
    ///
    /// # Errors
    ///
    /// Creating, sizing or mapping the file failed.
    pub(crate) fn bind() -> io::Result<(RawListener, String)> {
        let mut attempt = 0;
        let (path, file) = loop {
            let path = unique_path(attempt);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        let mapped = file
            .set_len(FILE_BYTES as u64)
            .and_then(|()| Mapping::new(&file));
        let map = match mapped {
            Ok(map) => map,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        map.control().hello.word.store(MAGIC, Ordering::Release);
        let addr = path.to_string_lossy().into_owned();
        let listener = RawListener {
            path,
            map: Arc::new(map),
            accepted: AtomicBool::new(false),
        };
        Ok((listener, addr))
    }

    /// Wait until the client has connected (polling every 100 µs, up to
    /// [`WAIT_LIMIT`]).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] if no client came; an error if this
    /// listener already accepted its connection.
    pub(crate) fn accept(&self) -> io::Result<RawConn> {
        if self.accepted.swap(true, Ordering::AcqRel) {
            return Err(io::Error::other(
                "raw ring: this listener already accepted its connection",
            ));
        }
        let hello = &self.map.control().hello;
        let start = Instant::now();
        while hello.flag.load(Ordering::Acquire) == 0 {
            if start.elapsed() >= WAIT_LIMIT {
                self.accepted.store(false, Ordering::Release);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("raw ring: no client within {WAIT_LIMIT:?}"),
                ));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(RawConn::new(Arc::clone(&self.map), Side::Listener))
    }
}

impl Drop for RawListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Connect to the listener whose [`RawListener::bind`] returned `addr`.
///
/// # Errors
///
/// The file cannot be opened or mapped, is not a raw ring, or already has a
/// client ([`io::ErrorKind::AddrInUse`]).
pub(crate) fn connect(addr: &str) -> io::Result<RawConn> {
    let file = OpenOptions::new().read(true).write(true).open(addr)?;
    if file.metadata()?.len() != FILE_BYTES as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raw ring: {addr} is not {FILE_BYTES} bytes long"),
        ));
    }
    let map = Mapping::new(&file)?;
    let hello = &map.control().hello;
    if hello.word.load(Ordering::Acquire) != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raw ring: {addr} is not a raw ring"),
        ));
    }
    if hello
        .flag
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("raw ring: {addr} already has a client"),
        ));
    }
    Ok(RawConn::new(Arc::new(map), Side::Client))
}

/// Which end of the file a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Sends on ring 0, receives on ring 1.
    Listener,
    /// Sends on ring 1, receives on ring 0.
    Client,
}

/// One end of a raw ring connection: a byte stream each way.
///
/// Blocking calls spin; see the module docs for how long.
#[derive(Debug)]
pub(crate) struct RawConn {
    map: Arc<Mapping>,
    /// Ring this end produces.
    tx: usize,
    /// Ring this end consumes.
    rx: usize,
    /// Our producer position on `tx` (what we published).
    head: u64,
    /// The peer's consumer position on `tx`, as last read.
    peer_tail: u64,
    /// Our consumer position on `rx` (what we gave back).
    tail: u64,
    /// The peer's producer position on `rx`, as last read.
    peer_head: u64,
    /// `shutdown_write` was called.
    shut: bool,
    /// How long a wait may see no change.
    limit: Duration,
}

/// A spinning wait with the bounded escape of the module docs.
struct Spin {
    spins: u32,
    deadline: Option<Instant>,
    limit: Duration,
}

impl Spin {
    fn new(limit: Duration) -> Self {
        Self {
            spins: 0,
            deadline: None,
            limit,
        }
    }

    /// One round of waiting; an error once the limit has passed.
    #[inline]
    fn pause(&mut self, what: &str) -> io::Result<()> {
        self.spins = self.spins.wrapping_add(1);
        if self.spins % SPINS_PER_CHECK != 0 {
            std::hint::spin_loop();
            return Ok(());
        }
        let now = Instant::now();
        let deadline = *self.deadline.get_or_insert(now + self.limit);
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "raw ring: {what}: peer changed nothing for {:?}",
                    self.limit
                ),
            ));
        }
        if self.spins >= SPINS_BEFORE_YIELD {
            std::thread::yield_now();
        }
        Ok(())
    }
}

/// A cursor value from the peer that no well-behaved peer writes.
fn bad_cursor(what: &str, value: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("raw ring: peer's {what} {value} is out of range"),
    )
}

impl RawConn {
    fn new(map: Arc<Mapping>, side: Side) -> Self {
        let (tx, rx) = match side {
            Side::Listener => (0, 1),
            Side::Client => (1, 0),
        };
        Self {
            map,
            tx,
            rx,
            head: 0,
            peer_tail: 0,
            tail: 0,
            peer_head: 0,
            shut: false,
            limit: WAIT_LIMIT,
        }
    }

    /// Free bytes of the send ring, at least `want` (≤ ring size) if the
    /// cached tail says so, otherwise whatever a fresh look finds, waiting
    /// while that is none.
    #[inline]
    fn wait_free(&mut self, want: usize) -> io::Result<usize> {
        let free = RING_BYTES - (self.head - self.peer_tail) as usize;
        if free >= want {
            return Ok(free);
        }
        let consumer = &self.map.control().dirs[self.tx].consumer;
        let mut spin = Spin::new(self.limit);
        loop {
            let tail = consumer.word.load(Ordering::Acquire);
            if tail < self.peer_tail || tail > self.head {
                return Err(bad_cursor("tail", tail));
            }
            self.peer_tail = tail;
            let free = RING_BYTES - (self.head - tail) as usize;
            if consumer.flag.load(Ordering::Acquire) != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "raw ring: the peer no longer reads",
                ));
            }
            if free > 0 {
                return Ok(free);
            }
            spin.pause("waiting for room")?;
        }
    }

    /// Published bytes of the receive ring: the cached count if it is at
    /// least `want`, otherwise a fresh look, waiting while there is none.
    /// 0 means end of stream.
    #[inline]
    fn wait_data(&mut self, want: usize) -> io::Result<usize> {
        let avail = (self.peer_head - self.tail) as usize;
        if avail >= want {
            return Ok(avail);
        }
        let producer = &self.map.control().dirs[self.rx].producer;
        let mut spin = Spin::new(self.limit);
        loop {
            let head = producer.word.load(Ordering::Acquire);
            if head < self.peer_head || head - self.tail > RING_BYTES as u64 {
                return Err(bad_cursor("head", head));
            }
            self.peer_head = head;
            if head > self.tail {
                return Ok((head - self.tail) as usize);
            }
            if producer.flag.load(Ordering::Acquire) != 0 {
                // `shut` is stored after the last head: look once more.
                let head = producer.word.load(Ordering::Acquire);
                if head == self.tail {
                    return Ok(0);
                }
                continue;
            }
            spin.pause("waiting for data")?;
        }
    }

    /// Give `n` read bytes back to the producer.
    #[inline]
    fn consume(&mut self, n: usize) {
        if n > 0 {
            self.tail += n as u64;
            let consumer = &self.map.control().dirs[self.rx].consumer;
            consumer.word.store(self.tail, Ordering::Release);
        }
    }

    /// Read in place: wait for data, hand the contiguous published part to
    /// `f`, and consume the number of bytes it returns.
    ///
    /// Returns that number: `Ok(0)` at end of stream (then `f` is not
    /// called) or when `f` consumed nothing.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `f` returns more than it was given
    /// (nothing is consumed); a wait that timed out; a peer cursor out of
    /// range.
    pub(crate) fn read_with(&mut self, f: impl FnOnce(&[u8]) -> usize) -> io::Result<usize> {
        let avail = self.wait_data(1)?;
        if avail == 0 {
            return Ok(0);
        }
        let at = (self.tail as usize) & (RING_BYTES - 1);
        let len = avail.min(RING_BYTES - at);
        // SAFETY: `at + len ≤ RING_BYTES`, inside ring `rx` of the mapping,
        // which `self.map` keeps alive for the borrow. These bytes lie in
        // `[tail, head)`, published by the peer (Acquire load of head in
        // `wait_data`), and the peer writes them again only after we store a
        // tail beyond them, which happens after `f` returned.
        let n = f(unsafe { std::slice::from_raw_parts(self.map.ring(self.rx).add(at), len) });
        if n > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("raw ring: read_with consumed {n} of {len} bytes"),
            ));
        }
        self.consume(n);
        Ok(n)
    }

    /// End the stream of this direction: after the bytes written so far the
    /// peer's reads return `Ok(0)`; later writes fail.
    ///
    /// # Errors
    ///
    /// Never fails (the signature matches the other transports).
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.shut {
            self.shut = true;
            let producer = &self.map.control().dirs[self.tx].producer;
            producer.flag.store(1, Ordering::Release);
        }
        Ok(())
    }

    /// Shorten the wait limit (tests of the escape).
    #[cfg(test)]
    fn set_wait_limit(&mut self, limit: Duration) {
        self.limit = limit;
    }
}

impl Write for RawConn {
    /// Copy as much of `buf` as fits into the send ring, waiting while it is
    /// full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.shut {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "raw ring: write after shutdown_write",
            ));
        }
        let free = self.wait_free(buf.len().min(RING_BYTES))?;
        let n = free.min(buf.len());
        let at = (self.head as usize) & (RING_BYTES - 1);
        let first = n.min(RING_BYTES - at);
        let ring = self.map.ring(self.tx);
        // SAFETY: `at + first ≤ RING_BYTES` and `n - first ≤ at` (as
        // `n ≤ RING_BYTES`), so both copies stay inside ring `tx`, and read
        // `n ≤ buf.len()` bytes of `buf`. They cover `[head, head + n)`, at
        // most the free part `[head, tail + RING_BYTES)`: the peer has given
        // those bytes back (Acquire load of tail) and reads them only after
        // our Release store of the new head below. `buf` is our own memory,
        // so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), ring.add(at), first);
            std::ptr::copy_nonoverlapping(buf.as_ptr().add(first), ring, n - first);
        }
        self.head += n as u64;
        let producer = &self.map.control().dirs[self.tx].producer;
        producer.word.store(self.head, Ordering::Release);
        Ok(n)
    }

    /// Nothing to flush: written bytes are published at once.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for RawConn {
    /// Copy out as many published bytes as fit into `buf`, waiting while
    /// there are none; `Ok(0)` at end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let avail = self.wait_data(buf.len().min(RING_BYTES))?;
        let n = avail.min(buf.len());
        let at = (self.tail as usize) & (RING_BYTES - 1);
        let first = n.min(RING_BYTES - at);
        let ring = self.map.ring(self.rx);
        // SAFETY: as in `write`, both source ranges lie inside ring `rx`
        // and the destination inside `buf` (`n ≤ buf.len()`). They cover
        // `[tail, tail + n)` within the published part `[tail, head)`,
        // which the peer does not write until we store a tail beyond it.
        unsafe {
            std::ptr::copy_nonoverlapping(ring.add(at), buf.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(ring, buf.as_mut_ptr().add(first), n - first);
        }
        self.consume(n);
        Ok(n)
    }
}

impl Drop for RawConn {
    /// End our stream (the peer reads end of stream) and tell the peer's
    /// writer that nobody reads any more.
    fn drop(&mut self) {
        let _ = self.shutdown_write();
        let consumer = &self.map.control().dirs[self.rx].consumer;
        consumer.flag.store(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// Both ends over one mapping of a fresh listener's file.
    fn pair() -> (RawListener, RawConn, RawConn) {
        let (listener, _) = RawListener::bind().unwrap();
        listener
            .map
            .control()
            .hello
            .flag
            .store(1, Ordering::Release);
        let client = RawConn::new(Arc::clone(&listener.map), Side::Client);
        let server = listener.accept().unwrap();
        (listener, server, client)
    }

    /// The byte at stream position `pos` of the test pattern.
    fn pattern(pos: u64) -> u8 {
        (pos ^ (pos >> 8) ^ (pos >> 19)).wrapping_mul(31) as u8
    }

    /// Small deterministic generator for chunk sizes.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn raw_stream_10mb_byte_exact() {
        const TOTAL: u64 = 10_000_000;
        let (_l, mut server, mut client) = pair();
        let writer = thread::spawn(move || {
            let mut state = 0x9E37_79B9_7F4A_7C15;
            let mut chunk = vec![0u8; 200_000];
            let mut pos = 0u64;
            while pos < TOTAL {
                let len = ((next(&mut state) % 200_000) + 1).min(TOTAL - pos) as usize;
                for (i, b) in chunk[..len].iter_mut().enumerate() {
                    *b = pattern(pos + i as u64);
                }
                client.write_all(&chunk[..len]).unwrap();
                pos += len as u64;
            }
            client.shutdown_write().unwrap();
            client
        });
        let mut state = 12345u64;
        let mut buf = vec![0u8; 100_000];
        let mut pos = 0u64;
        loop {
            let n = if next(&mut state) % 2 == 0 {
                let want = (next(&mut state) % 100_000 + 1) as usize;
                let n = server.read(&mut buf[..want]).unwrap();
                for (i, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, pattern(pos + i as u64), "at {}", pos + i as u64);
                }
                n
            } else {
                let take = (next(&mut state) % 100_000 + 1) as usize;
                server
                    .read_with(|data| {
                        let n = data.len().min(take);
                        for (i, &b) in data[..n].iter().enumerate() {
                            assert_eq!(b, pattern(pos + i as u64), "at {}", pos + i as u64);
                        }
                        n
                    })
                    .unwrap()
            };
            if n == 0 {
                break;
            }
            pos += n as u64;
        }
        assert_eq!(pos, TOTAL);
        assert_eq!(server.read(&mut buf).unwrap(), 0);
        drop(writer.join().unwrap());
    }

    #[test]
    fn raw_wrap_around() {
        let (_l, mut server, mut client) = pair();
        let fill = vec![7u8; RING_BYTES - 10];
        client.write_all(&fill).unwrap();
        let mut sink = vec![0u8; RING_BYTES];
        assert_eq!(server.read(&mut sink).unwrap(), RING_BYTES - 10);
        // 100 bytes across the end of the ring: in place, the first 10 come
        // alone (contiguous part), then the other 90.
        let msg: Vec<u8> = (0..100u8).collect();
        assert_eq!(client.write(&msg).unwrap(), 100);
        let mut got = Vec::new();
        let n = server
            .read_with(|d| {
                got.extend_from_slice(d);
                d.len()
            })
            .unwrap();
        assert_eq!(n, 10);
        let n = server
            .read_with(|d| {
                got.extend_from_slice(d);
                d.len()
            })
            .unwrap();
        assert_eq!(n, 90);
        assert_eq!(got, msg);
        // Copying out takes both parts of a wrapped range in one call.
        let step = RING_BYTES - 120; // to 30 bytes before the end again
        client.write_all(&sink[..step]).unwrap();
        server.read_exact(&mut sink[..step]).unwrap();
        assert_eq!(client.head % RING_BYTES as u64, RING_BYTES as u64 - 30);
        assert_eq!(client.write(&msg).unwrap(), 100);
        let mut out = [0u8; 200];
        assert_eq!(server.read(&mut out).unwrap(), 100);
        assert_eq!(&out[..100], &msg[..]);
        // The ring fills to the byte; a full ring takes nothing more until
        // it is read.
        let big = vec![1u8; RING_BYTES + 5];
        assert_eq!(client.write(&big).unwrap(), RING_BYTES);
        client.set_wait_limit(Duration::from_millis(50));
        let err = client.write(&big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(server.read(&mut sink).unwrap(), RING_BYTES);
        assert_eq!(client.write(&msg).unwrap(), 100);
    }

    #[test]
    fn raw_eof_after_shutdown_write() {
        let (_l, mut server, mut client) = pair();
        client.write_all(b"hello").unwrap();
        client.shutdown_write().unwrap();
        assert_eq!(
            client.write(b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(server.read(&mut buf).unwrap(), 0);
        assert_eq!(server.read_with(|_| unreachable!()).unwrap(), 0);
        // The other direction is still open.
        server.write_all(b"back").unwrap();
        client.read_exact(&mut buf[..4]).unwrap();
        assert_eq!(&buf[..4], b"back");
        // Dropping an end is end of stream for its peer.
        drop(server);
        assert_eq!(client.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn raw_dropped_reader_is_a_broken_pipe() {
        let (_l, server, mut client) = pair();
        drop(server);
        // The cached tail still says the ring is empty: the first write
        // fills it without looking at the peer, the next one finds it gone.
        let big = vec![3u8; RING_BYTES];
        assert_eq!(client.write(&big).unwrap(), RING_BYTES);
        let err = client.write(&big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn raw_read_with_partial_consumption() {
        let (_l, mut server, mut client) = pair();
        let msg: Vec<u8> = (0..100u8).collect();
        client.write_all(&msg).unwrap();
        let n = server
            .read_with(|d| {
                assert_eq!(d, &msg[..]);
                10
            })
            .unwrap();
        assert_eq!(n, 10);
        let err = server.read_with(|d| d.len() + 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(server.read_with(|_| 0).unwrap(), 0);
        let n = server
            .read_with(|d| {
                assert_eq!(d, &msg[10..]);
                d.len()
            })
            .unwrap();
        assert_eq!(n, 90);
        server.set_wait_limit(Duration::from_millis(50));
        let err = server.read_with(|d| d.len()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn raw_bind_connect_accept_through_the_file() {
        let (listener, addr) = RawListener::bind().unwrap();
        assert!(Path::new(&addr).exists());
        let peer = thread::spawn({
            let addr = addr.clone();
            move || {
                let mut conn = connect(&addr).unwrap();
                let mut buf = [0u8; 5];
                conn.read_exact(&mut buf).unwrap();
                conn.write_all(&buf).unwrap();
                conn.shutdown_write().unwrap();
                assert_eq!(conn.read(&mut buf).unwrap(), 0);
            }
        });
        let mut conn = listener.accept().unwrap();
        assert!(listener.accept().is_err());
        conn.write_all(b"12345").unwrap();
        let mut echo = Vec::new();
        conn.read_to_end(&mut echo).unwrap();
        assert_eq!(echo, b"12345");
        assert_eq!(connect(&addr).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        conn.shutdown_write().unwrap();
        peer.join().unwrap();
        drop(listener);
        assert!(!Path::new(&addr).exists());
        assert!(connect(&addr).is_err());
        // Not a raw ring.
        let bogus = std::env::temp_dir().join(format!("smcd-raw-bogus-{}", std::process::id()));
        std::fs::write(&bogus, b"nope").unwrap();
        let err = connect(bogus.to_str().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        std::fs::remove_file(&bogus).unwrap();
    }

    /// Throughput (64000 B writes; read in place and copied out) and 14 B
    /// ping-pong round trips between two threads:
    /// `cargo test --release -p smcd-cli raw_measure -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, run by hand in release"]
    fn raw_measure() {
        const CHUNK: usize = 64_000;
        const TOTAL: u64 = 8_000_000_000;
        /// XOR of the bytes as u64 words: reads every byte, cheaply.
        fn fold(data: &[u8]) -> u64 {
            let mut words = data.chunks_exact(8);
            let x = words
                .by_ref()
                .fold(0, |x, w| x ^ u64::from_ne_bytes(w.try_into().unwrap()));
            words.remainder().iter().fold(x, |x, &b| x ^ u64::from(b))
        }
        // How the reader takes the bytes: in place touching one byte per
        // call, in place reading every byte, copied out.
        // The reader's fold alone, over one chunk in its own cache.
        let chunk = vec![0xA5u8; CHUNK];
        let start = Instant::now();
        let mut x = 0;
        for _ in 0..100_000 {
            x ^= fold(std::hint::black_box(&chunk));
        }
        std::hint::black_box(x);
        println!(
            "fold alone (one thread, {CHUNK} B in cache): {:.2} GB/s",
            100_000.0 * CHUNK as f64 / start.elapsed().as_secs_f64() / 1e9
        );
        const MODES: [&str; 3] = [
            "copy1 (read_with, 1 byte touched)",
            "copy1 (read_with, every byte read)",
            "copy2 (read)",
        ];
        for (mode, name) in MODES.iter().enumerate() {
            for _round in 0..3 {
                let (_l, mut server, mut client) = pair();
                let writer = thread::spawn(move || {
                    let chunk = vec![0x5Au8; CHUNK];
                    let mut sent = 0u64;
                    while sent < TOTAL {
                        client.write_all(&chunk).unwrap();
                        sent += CHUNK as u64;
                    }
                    client.shutdown_write().unwrap();
                    client
                });
                let start = Instant::now();
                let mut got = 0u64;
                let mut buf = vec![0u8; CHUNK];
                let mut sum = 0u64;
                loop {
                    let n = match mode {
                        0 => server
                            .read_with(|d| {
                                sum = sum.wrapping_add(u64::from(d[0]));
                                d.len()
                            })
                            .unwrap(),
                        1 => server
                            .read_with(|d| {
                                sum ^= fold(d);
                                d.len()
                            })
                            .unwrap(),
                        _ => {
                            let n = server.read(&mut buf).unwrap();
                            sum = sum.wrapping_add(u64::from(buf[0]));
                            n
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    got += n as u64;
                }
                let secs = start.elapsed().as_secs_f64();
                drop(writer.join().unwrap());
                assert_eq!(got, TOTAL);
                std::hint::black_box(sum);
                println!(
                    "raw ring {name}: {:.2} GB/s ({CHUNK} B writes)",
                    got as f64 / secs / 1e9,
                );
            }
        }
        const TRIPS: usize = 1_000_000;
        for _round in 0..3 {
            let (_l, mut server, mut client) = pair();
            let echo = thread::spawn(move || {
                let mut msg = [0u8; 14];
                for _ in 0..TRIPS {
                    client.read_exact(&mut msg).unwrap();
                    client.write_all(&msg).unwrap();
                }
                client
            });
            let mut msg = [1u8; 14];
            let mut rtts = Vec::with_capacity(TRIPS);
            let start = Instant::now();
            for _ in 0..TRIPS {
                let t = Instant::now();
                server.write_all(&msg).unwrap();
                server.read_exact(&mut msg).unwrap();
                rtts.push(t.elapsed());
            }
            let total = start.elapsed();
            drop(echo.join().unwrap());
            rtts.sort_unstable();
            println!(
                "raw ring 14 B ping-pong: RTT median {:.3} us, p99 {:.3} us, mean {:.3} us ({:.2} M round trips/s)",
                rtts[TRIPS / 2].as_secs_f64() * 1e6,
                rtts[TRIPS * 99 / 100].as_secs_f64() * 1e6,
                total.as_secs_f64() * 1e6 / TRIPS as f64,
                TRIPS as f64 / total.as_secs_f64() / 1e6,
            );
        }
    }
}
