//! Feature `tokio`: [`SmcStream`] and [`SmcListener`] for a tokio runtime.
//!
//! The types mirror `tokio::net::{TcpStream, TcpListener}`: an async
//! [`SmcListener::bind`] and [`accept`](SmcListener::accept), an async
//! [`SmcStream::connect`], [`AsyncRead`](::tokio::io::AsyncRead) and
//! [`AsyncWrite`](::tokio::io::AsyncWrite) (`poll_shutdown` shuts the write
//! side down), and [`into_split`](SmcStream::into_split) into halves that
//! two tasks can own.
//!
//! Every call runs the std stream in non-blocking mode and waits on its
//! readiness fd in the runtime's reactor ([`AsyncFd`](::tokio::io::unix::AsyncFd)):
//! no thread per stream, and no call blocks a runtime thread — connecting
//! (TCP connect, rendezvous, CLC handshake) included. The runtime needs
//! its IO driver (`enable_io`, or `enable_all`).
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use smcd_std::tokio::{SmcListener, SmcStream};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let listener = SmcListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     let (mut s, _) = listener.accept().await?;
//!     let (mut r, mut w) = s.split();
//!     tokio::io::copy(&mut r, &mut w).await?;
//!     Ok::<_, std::io::Error>(())
//! });
//! let mut client = SmcStream::connect(addr).await?;
//! println!("{}", client.transport().await?);
//! client.write_all(b"hello").await?;
//! let mut echo = [0u8; 5];
//! client.read_exact(&mut echo).await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`SmcListener::accept`] hands over streams whose CLC handshake is done,
//! and runs the handshakes of several clients at once, so a slow client
//! holds up nobody else. A connect or handshake to a peer that stops
//! answering waits as long as the TCP connection lives: bound it with
//! `tokio::time::timeout` where that matters.

mod connect;
mod listener;
mod register;
mod split;
mod stream;

pub use listener::SmcListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::SmcStream;
