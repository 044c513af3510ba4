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
#![deny(unsafe_code)]

pub mod config;
mod connect;
pub mod device;
mod error;
mod linger;
mod listener;
pub mod naming;
mod rendezvous;
mod stats;
mod stream;
mod tcp;
mod transport;
mod wait;

pub use config::SmcConfig;
pub use error::SmcError;
pub use listener::SmcListener;
pub use stats::{Handshakes, Stats, stats};
pub use stream::SmcStream;
pub use transport::{TcpReason, Transport};
