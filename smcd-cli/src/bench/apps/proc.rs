//! The programs of `smcd bench --apps`: started in a process group of their
//! own with their output collected, waited for within bounds, stopped by
//! SIGTERM to the program (not to `smcd run`, which then writes its
//! `--stats`), and killed with their whole group and reaped by the guard's
//! `Drop` whatever happens. Also: waiting for a port to listen, and the
//! Debian packages the tools come from.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::super::Error;

/// Longest pause between two looks at a process that should be exiting.
const EXIT_POLL_MAX: Duration = Duration::from_millis(20);
/// How long a port may take to listen.
const LISTEN_LIMIT: Duration = Duration::from_secs(10);
/// Bytes of a program's output kept (the last ones).
const OUTPUT_KEEP_BYTES: usize = 64 * 1024;

/// One running program (possibly `smcd run -- program`).
#[derive(Debug)]
pub(super) struct Proc {
    name: String,
    child: Child,
    /// Whether the program is `smcd run`'s child rather than ours.
    wrapped: bool,
    out: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    reaped: bool,
}

impl Proc {
    /// Start `argv` in `dir` with `env` added.
    pub(super) fn spawn(
        name: String,
        argv: &[OsString],
        wrapped: bool,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self, Error> {
        let (prog, rest) = argv
            .split_first()
            .ok_or_else(|| Error::Output(format!("{name}: no program")))?;
        let mut cmd = Command::new(prog);
        cmd.args(rest)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Io(format!("cannot start {name}"), e))?;
        let out = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let sink = Arc::clone(&out);
            let reader = crate::bench::child::keep_tail(pipe, sink, OUTPUT_KEEP_BYTES)
                .map_err(|e| Error::Io("no thread for a program's output".into(), e))?;
            readers.push(reader);
        }
        Ok(Self {
            name,
            child,
            wrapped,
            out,
            readers,
            reaped: false,
        })
    }

    /// Wait at most `limit` for the exit (then kill the group) and return
    /// the output; an exit status other than 0 is an error.
    pub(super) fn finish(&mut self, limit: Duration) -> Result<String, Error> {
        let status = self.reap(limit);
        let out = self.output();
        if status == "exit status: 0" {
            Ok(out)
        } else {
            Err(Error::Peer {
                name: self.name.clone(),
                what: status,
                stderr: tail(&out),
            })
        }
    }

    /// Wait at most `limit` for the exit without reaping it: whether it
    /// exited.
    pub(super) fn wait_exit(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        while Instant::now() < end {
            if self.exited() {
                return true;
            }
            thread::sleep(pause);
            pause = (pause * 2).min(EXIT_POLL_MAX);
        }
        self.exited()
    }

    /// Stop a server: `sig` to the program, at most `limit` for it (and
    /// `smcd run`) to exit, then the whole group is killed.
    pub(super) fn stop(&mut self, sig: Signal, limit: Duration) {
        if let Some(pid) = self.program_pid() {
            let _ = rustix::process::kill_process(pid, sig);
        }
        let _ = self.reap(limit);
    }

    /// Whether the process exited already.
    pub(super) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// What it printed so far (complete once it was reaped).
    pub(super) fn output(&mut self) -> String {
        if self.reaped {
            for r in self.readers.drain(..) {
                let _ = r.join();
            }
        }
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The program's pid: ours, or the child of `smcd run`.
    fn program_pid(&self) -> Option<Pid> {
        let own = self.child.id();
        let pid = if self.wrapped {
            let list = std::fs::read_to_string(format!("/proc/{own}/task/{own}/children")).ok()?;
            list.split_whitespace().next()?.parse::<i32>().ok()?
        } else {
            i32::try_from(own).ok()?
        };
        Pid::from_raw(pid)
    }

    fn reap(&mut self, limit: Duration) -> String {
        let end = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    // Workers that outlived their master go with the group.
                    self.kill_group();
                    return status.to_string();
                }
                Ok(None) if Instant::now() < end => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(EXIT_POLL_MAX);
                }
                Ok(None) => {
                    self.kill();
                    return format!("still running after {:.1} s, killed", limit.as_secs_f64());
                }
                Err(e) => {
                    self.kill();
                    return format!("cannot wait for it ({e}), killed");
                }
            }
        }
    }

    fn kill_group(&self) {
        if let Some(pgid) = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
    }

    fn kill(&mut self) {
        self.kill_group();
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last lines of `out`, for an error message (progress lines that end
/// in `\r` count as lines).
fn tail(out: &str) -> String {
    let lines: Vec<&str> = out
        .split(['\r', '\n'])
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (bound and released: a run starts its
/// server on it at once).
pub(super) fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Io("no free port on 127.0.0.1".into(), e))
}

/// Wait until something listens on 127.0.0.1:`port` (`/proc/net/tcp`:
/// connecting would use up a one-shot server such as `iperf3 -1`), or
/// `server` exited.
pub(super) fn wait_listening(port: u16, server: &mut Proc) -> Result<(), Error> {
    let want = format!("0100007F:{port:04X}");
    let end = Instant::now() + LISTEN_LIMIT;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let listening = table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A")
        });
        if listening {
            return Ok(());
        }
        if server.exited() || Instant::now() >= end {
            let status = server.reap(Duration::ZERO);
            return Err(Error::Peer {
                name: server.name.clone(),
                what: format!("does not listen on port {port} ({status})"),
                stderr: tail(&server.output()),
            });
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `prog` is on `PATH` or in `/usr/sbin` (nginx).
pub(super) fn find(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// The program each tool is and the Debian package it comes in.
pub(super) const PROGRAMS: [(&str, &str); 6] = [
    ("sockperf", "sockperf"),
    ("iperf3", "iperf3"),
    ("nginx", "nginx"),
    ("wrk", "wrk"),
    ("redis-server", "redis-server"),
    ("redis-benchmark", "redis-tools"),
];

/// Install the packages of the missing programs (`apt-get update` once,
/// then `apt-get install -y`), as root only; otherwise say what is missing.
pub(super) fn ensure_programs() -> Result<(), Error> {
    let mut missing: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(prog, _)| find(prog).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if !rustix::process::geteuid().is_root() {
        return Err(Error::BadArgs(format!(
            "--apps needs the Debian packages {}: install them (apt-get install -y {}), \
             or run smcd bench --apps as root, which installs them",
            missing.join(", "),
            missing.join(" ")
        )));
    }
    crate::report(&format!(
        "smcd bench --apps: installing {}",
        missing.join(" ")
    ));
    let apt = |args: &[&str]| -> Result<(), Error> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| Error::Io("cannot run apt-get".into(), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Output(format!(
                "apt-get {} failed ({status})",
                args.join(" ")
            )))
        }
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)?;
    match PROGRAMS.iter().find(|(prog, _)| find(prog).is_none()) {
        Some((prog, pkg)) => Err(Error::Output(format!(
            "{prog} is still missing after installing {pkg}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tails_keep_the_last_lines() {
        let out = "a\rb\r   \rc\n\nd\n";
        assert_eq!(super::tail(out), "a\nb\nc\nd");
        let many: String = (0..30).map(|i| format!("{i}\r")).collect();
        assert_eq!(super::tail(&many).lines().next(), Some("20"));
    }
}
