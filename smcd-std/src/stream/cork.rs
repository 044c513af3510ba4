//! The cork of a stream (`TCP_CORK`): over SMC-D the doorbell rings of its
//! sends are held ([`crate::device::StdDevice::hold_rings`]) while the bytes
//! and headers are published as always; over TCP the socket's own option.

use std::io;

use super::{Mode, Smc, SmcStream, lock};

/// The cork wanted for a stream and whether the device holds its rings.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Cork {
    wanted: bool,
    held: bool,
}

impl SmcStream {
    /// Cork (`on`) or uncork the stream, like `TCP_CORK`. Over SMC-D sends
    /// still reach the peer's DMB at once (a peer that spins sees them) but
    /// its doorbell is rung only on the uncork — once, however many sends
    /// there were — or when this process next waits through smcd, closes
    /// or shuts the stream down, so a corked stream never stalls its peer.
    /// Over TCP (and during the handshake) it sets the socket's `TCP_CORK`.
    ///
    /// # Errors
    ///
    /// As `setsockopt(TCP_CORK)` on the TCP socket.
    pub fn set_cork(&self, on: bool) -> io::Result<()> {
        let Mode::Smc(m) = &self.inner.mode else {
            return rustix::net::sockopt::set_tcp_cork(&self.inner.tcp, on).map_err(Into::into);
        };
        let mut s = lock(m);
        s.cork.wanted = on;
        apply(&mut s);
        if s.ep.connection().is_none() {
            rustix::net::sockopt::set_tcp_cork(&self.inner.tcp, on)?;
        }
        Ok(())
    }
}

/// Bring the device's hold in step with the wanted cork, once the SMC-D
/// connection exists (a cork set during the handshake applies then).
pub(super) fn apply(s: &mut Smc) {
    if s.cork.wanted == s.cork.held {
        return;
    }
    let Some(token) =
        s.ep.connection()
            .map(smcd_core::conn::Connection::peer_token)
    else {
        return;
    };
    if s.ep
        .host()
        .device()
        .hold_rings(token, s.cork.wanted)
        .is_ok()
    {
        s.cork.held = s.cork.wanted;
    }
}

/// Uncork before the stream's last header (shutdown, close): it rings.
pub(super) fn release(s: &mut Smc) {
    s.cork.wanted = false;
    apply(s);
}
