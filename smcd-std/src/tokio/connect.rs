//! Connecting without blocking the runtime: the steps of
//! `SmcConfig::connect` (announce to the listener's rendezvous before the
//! SYN, then the CLC handshake only when the announcement was taken), with
//! the TCP connect on tokio's reactor and the handshake driven by the
//! stream's readiness fd.

use std::io;
use std::net::SocketAddr;

use ::tokio::net::{TcpSocket, ToSocketAddrs, lookup_host};
use smcd_core::endpoint::Endpoint;
use smcd_core::ops::SmcdOps;

use super::stream::SmcStream;
use crate::config::SmcConfig;
use crate::rendezvous;
use crate::tcp::TcpWire;
use crate::transport::TcpReason;
use crate::wait::now_ms;

pub(super) async fn connect<A: ToSocketAddrs>(
    config: &SmcConfig,
    addr: A,
) -> io::Result<SmcStream> {
    let mut last = None;
    for a in lookup_host(addr).await? {
        match connect_one(config, a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

async fn connect_one(config: &SmcConfig, addr: SocketAddr) -> io::Result<SmcStream> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if !config.allows(addr) {
        let tcp = sock.connect(addr).await?.into_std()?;
        return SmcStream::from_std(crate::SmcStream::plain(tcp, TcpReason::Disabled));
    }
    let host = config.host()?;
    // Bound first, so that the port is known before the SYN.
    let any = match addr {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    sock.bind(any)?;
    let port = sock.local_addr()?.port();
    let dev = host.device();
    let announced = rendezvous::announce(dev.place(), addr, port, dev.local_gid());
    let tcp = sock.connect(addr).await?.into_std()?;
    if !announced {
        return SmcStream::from_std(crate::SmcStream::plain(tcp, TcpReason::NoSmcPeer));
    }
    let wire = TcpWire::new(tcp.try_clone()?)?;
    let std = crate::SmcStream::smc(tcp, Endpoint::client(host, wire, now_ms()), config);
    let stream = SmcStream::from_std(std)?;
    stream.transport().await?;
    Ok(stream)
}
