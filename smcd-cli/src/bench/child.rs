//! The peer processes of a run as seen from `smcd bench`: spawned with
//! piped stdio, their stdout lines and stderr collected by threads, every
//! wait bounded, and killed and reaped by the guard's `Drop` whatever
//! happens.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Error;

/// Bytes of a child's stderr kept for an error message (the last ones).
const STDERR_KEEP_BYTES: usize = 4096;
/// Longest pause between two looks at a child that should be exiting.
const EXIT_POLL_MAX: Duration = Duration::from_millis(20);

/// One running peer process.
#[derive(Debug)]
pub(crate) struct Peer {
    /// What it is, for messages: `server of latency over tcp`.
    name: String,
    child: Child,
    /// Closed to let a server go.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// The thread collecting stderr (it ends when the child is gone).
    stderr_reader: Option<JoinHandle<()>>,
    reaped: bool,
}

impl Peer {
    /// Start `exe ARGS`.
    pub(crate) fn spawn(exe: &OsString, args: &[String], name: String) -> Result<Self, Error> {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Io(format!("cannot start the {name}"), e))?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let no_thread = |e| Error::Io("no thread for a child's pipe".into(), e);
        if let Some(out) = child.stdout.take() {
            thread::Builder::new()
                .spawn(move || {
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                })
                .map_err(no_thread)?;
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_reader = None;
        if let Some(err) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            let reader = keep_tail(err, sink, STDERR_KEEP_BYTES).map_err(no_thread)?;
            stderr_reader = Some(reader);
        }
        Ok(Self {
            name,
            child,
            stdin,
            lines,
            stderr,
            stderr_reader,
            reaped: false,
        })
    }

    /// The next stdout line, waiting at most `limit`.
    pub(crate) fn line(&mut self, limit: Duration) -> Result<String, Error> {
        match self.lines.recv_timeout(limit) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(self.failed(&format!("printed nothing for {:.1} s", limit.as_secs_f64())))
            }
            Err(RecvTimeoutError::Disconnected) => {
                // It closed stdout: it exited or is about to; say how.
                let status = self.reap(Duration::from_secs(5));
                Err(self.failed(&format!("ended without its line ({status})")))
            }
        }
    }

    /// Let a server go: close its stdin.
    pub(crate) fn release(&mut self) {
        self.stdin = None;
    }

    /// Wait at most `limit` for the exit (then kill it); an exit status
    /// other than 0 is an error.
    pub(crate) fn finish(&mut self, limit: Duration) -> Result<(), Error> {
        let status = self.reap(limit);
        if status == "exit status: 0" {
            Ok(())
        } else {
            Err(self.failed(&status))
        }
    }

    /// Wait for the exit, at most `limit` (then kill); how it ended.
    fn reap(&mut self, limit: Duration) -> String {
        let end = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
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

    fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    /// An error naming this peer, `what` happened, and its last stderr
    /// (called once it was reaped: its stderr is then complete).
    fn failed(&mut self, what: &str) -> Error {
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .trim()
            .to_owned();
        Error::Peer {
            name: self.name.clone(),
            what: what.to_owned(),
            stderr,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Clock ticks of CPU time (user and system) of every child this process
/// has reaped so far, from `/proc/self/stat` (`cutime`, `cstime`); `None`
/// if it cannot be read.
pub(crate) fn reaped_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name in parentheses, from field 3 on.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // cutime and cstime are fields 16 and 17 of proc_pid_stat(5).
    ticks(13)?.checked_add(ticks(14)?)
}

/// Clock ticks per second of `/proc` times (the kernel's `USER_HZ`, 100
/// on every architecture Linux exports it for).
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// Read `pipe` to its end on a thread of its own, keeping the last `keep`
/// bytes or so of it (lossy UTF-8) in `sink`.
pub(crate) fn keep_tail(
    mut pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    keep: usize,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut s = sink
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.push_str(&String::from_utf8_lossy(&buf[..n]));
            if s.len() > keep * 2 {
                let mut cut = s.len() - keep;
                while !s.is_char_boundary(cut) {
                    cut += 1;
                }
                s.drain(..cut);
            }
        }
    })
}
