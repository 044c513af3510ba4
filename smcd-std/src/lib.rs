//! # smcd-std — SMC-D between two Linux processes
//!
//! [`SmcStream`] and [`SmcListener`] are shaped like `std::net`'s TCP types.
//! When both ends are smcd processes on this host, the bytes move through
//! shared memory (SMC-D, negotiated with the Linux CLC handshake on the TCP
//! connection); otherwise — a plain TCP peer, another host, a Decline — the
//! same TCP connection carries them, and [`SmcStream::transport`] says why.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use smcd_std::{SmcListener, SmcStream};
//!
//! let listener = SmcListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut s, _) = listener.accept()?;
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf)?;
//!     s.write_all(&buf)
//! });
//! let mut client = SmcStream::connect(addr)?;
//! assert!(client.transport()?.is_smcd());
//! client.write_all(b"hello")?;
//! let mut echo = [0u8; 5];
//! client.read_exact(&mut echo)?;
//! assert_eq!(&echo, b"hello");
//! server.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Each process is an SMC-D device of the host ([`device::StdDevice`]):
//! DMBs are sealed memfds mapped shared, handed to a peer process over the
//! device's Unix socket when it names their token. Configuration:
//! [`SmcConfig`] and the `SMCD_*` environment variables ([`config`]).
//!
//! # Non-blocking use
//!
//! In non-blocking mode ([`SmcStream::set_nonblocking`]) calls that would
//! wait report `WouldBlock`, and the stream's readiness fd
//! ([`AsFd`](std::os::fd::AsFd)) tells when to retry: for an SMC stream it
//! is an epoll set that becomes *readable* whenever a read **or a write**
//! may have something new, and never reports writable — after it wakes
//! you, retry both. Two optional features build on it.
//!
//! ## Feature `mio`
//!
//! `impl mio::event::Source` for [`SmcStream`] and [`SmcListener`]:
//! register them with a `mio::Poll` like any socket. The stream and the
//! listener must be in non-blocking mode. An SMC stream's registration
//! always includes `Interest::READABLE` and its events are always
//! "readable": on every event of its token, retry the reads *and* the
//! writes until `WouldBlock` (mio is edge-triggered). A non-blocking
//! listener's `accept` returns at once; the stream's first read or write
//! finishes its handshake.
//!
//! ```no_run
//! # #[cfg(feature = "mio")]
//! # fn main() -> std::io::Result<()> {
//! use std::io::{ErrorKind, Read};
//! use mio::{Events, Interest, Poll, Token};
//!
//! let mut s = smcd_std::SmcStream::connect("127.0.0.1:7000")?;
//! s.set_nonblocking(true)?;
//! let mut poll = Poll::new()?;
//! poll.registry().register(&mut s, Token(0), Interest::READABLE)?;
//! let (mut events, mut buf) = (Events::with_capacity(8), [0u8; 4096]);
//! loop {
//!     match s.read(&mut buf) {
//!         Ok(0) => break,
//!         Ok(n) => println!("{n} bytes"),
//!         Err(e) if e.kind() == ErrorKind::WouldBlock => poll.poll(&mut events, None)?,
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "mio"))]
//! # fn main() {}
//! ```
//!
//! ## Feature `tokio`
//!
//! The module `tokio` (with the feature on): async `SmcStream` and
//! `SmcListener` with `AsyncRead`/`AsyncWrite`, async `bind`, `accept` and
//! `connect`, and `into_split()` — on the runtime's reactor, with no
//! thread per stream and no call that blocks a runtime thread.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> std::io::Result<()> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let mut s = smcd_std::tokio::SmcStream::connect("127.0.0.1:7000").await?;
//! println!("{}", s.transport().await?);
//! s.write_all(b"ping").await?;
//! let mut pong = [0u8; 4];
//! s.read_exact(&mut pong).await?;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]

pub mod adopt;
mod clc_start;
pub mod config;
mod connect;
pub mod device;
mod error;
mod fdfloor;
mod linger;
mod listener;
#[cfg(feature = "mio")]
mod mio;
pub mod naming;
pub mod query;
mod quiet_thread;
mod rendezvous;
mod stats;
mod stream;
mod tcp;
#[cfg(feature = "tokio")]
pub mod tokio;
mod transport;
mod wait;

pub use config::SmcConfig;
pub use error::SmcError;
pub use listener::SmcListener;
pub use stats::{Handshakes, Stats, stats};
pub use stream::SmcStream;
pub use transport::{TcpReason, Transport};
