//! `smcd echo-server`: echo every byte of every connection until EOF.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixListener;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use smcd_std::SmcListener;

use super::{Addr, BUF_BYTES, Conn, EXIT_ERROR};
use crate::args::EchoServerArgs;
use crate::report;

/// Pause after a failed `accept` (e.g. out of descriptors) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// A listening socket of either kind.
enum Listener {
    Smc(SmcListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Conn> {
        match self {
            Self::Smc(l) => l.accept().map(|(s, _)| Conn::Smc(s)),
            Self::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
        }
    }
}

/// Runs the server until the process is killed; returns only when it could
/// not listen.
pub(crate) fn run(args: &EchoServerArgs) -> ExitCode {
    let listener = match &args.listen {
        Addr::Tcp(a) => args.smc.config().bind(a.as_str()).map(Listener::Smc),
        Addr::Unix(p) => UnixListener::bind(p).map(Listener::Unix),
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            report(&format!("error: cannot listen on {:?}: {e}", args.listen));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let local = match &listener {
        Listener::Smc(l) => l
            .local_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string()),
        Listener::Unix(_) => match &args.listen {
            Addr::Unix(p) => format!("unix:{}", p.display()),
            Addr::Tcp(a) => a.clone(),
        },
    };
    // The actual address (port 0 picks one) on stdout, for scripts.
    if writeln!(io::stdout(), "listening on {local}").is_err() {
        return ExitCode::from(EXIT_ERROR);
    }
    loop {
        match listener.accept() {
            Ok(conn) => {
                let started = thread::Builder::new()
                    .name("echo".into())
                    .spawn(move || serve(conn));
                if let Err(e) = started {
                    report(&format!("error: no thread for a connection: {e}"));
                }
            }
            Err(e) => {
                report(&format!("error: accept: {e}"));
                thread::sleep(ACCEPT_RETRY);
            }
        }
    }
}

/// Echo one connection until EOF, then close it; one line on stderr when
/// the transport is known and one when the connection ends.
fn serve(mut conn: Conn) {
    let peer = conn.peer();
    match conn.transport() {
        Ok(t) => report(&format!("peer {peer} transport {t}")),
        Err(e) => {
            report(&format!("peer {peer} handshake failed: {e}"));
            return;
        }
    }
    let mut buf = vec![0u8; BUF_BYTES];
    let mut echoed: u64 = 0;
    let end = loop {
        match conn.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = conn.write_all(&buf[..n]) {
                    break Err(e);
                }
                echoed += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    match end {
        Ok(()) => {
            // Every byte is written; the peer reads EOF after them.
            let _ = conn.shutdown(Shutdown::Write);
            report(&format!("peer {peer} closed: {echoed} bytes echoed"));
        }
        Err(e) => report(&format!("peer {peer} error after {echoed} bytes: {e}")),
    }
}
