//! Access from another user: a process running as `nobody` (the test runs
//! as root and starts it with `setpriv`; without root the tests print why
//! and pass) gets no DMB of an `smcd echo-server` even with a stolen (GID,
//! token), and an smcd client of another user gets a TCP fallback. And DMB
//! tokens — the capability to a DMB — never appear in tracing output (TRACE
//! level), `smcd run --stats`, `smcd stats --json` or `smcd ss --json`.

#[path = "support/raw.rs"]
#[allow(dead_code)] // shared with hostile_clc.rs, which uses all of it
mod raw;
#[path = "support/server.rs"]
mod server;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use smcd_core::dmb::{DmbToken, Gid};
use smcd_core::ops::{PeerDmbId, SmcdOps};
use smcd_core::wire::clc::bufsize;
use smcd_std::device::{PeerPolicy, StdDevice};
use smcd_std::naming::Place;
use smcd_std::{SmcListener, SmcStream, Transport};

use raw::Relay;
use server::{BIN, as_nobody, clean, dmbs_of, echo_server, healthy, root, wait_dmbs};

/// The Proposal and Confirm of a real smcd connection to `addr` (through a
/// relay).
fn proposal_and_confirm(addr: SocketAddr) -> (Vec<u8>, Vec<u8>) {
    let relay = Relay::start(addr);
    let victim = SmcStream::connect(relay.addr).expect("connect through the relay");
    assert!(matches!(victim.transport().unwrap(), Transport::SmcD(_)));
    let (up, _) = relay.wait_messages(2, 0, Duration::from_secs(10));
    drop(victim);
    relay.join();
    (up[0].clone(), up[1].clone())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Replace every 8-byte big-endian `from` in `msg` by `to`.
fn patch_word(msg: &mut [u8], from: u64, to: u64) {
    let (from, to) = (from.to_be_bytes(), to.to_be_bytes());
    for i in 0..msg.len().saturating_sub(7) {
        if msg[i..i + 8] == from {
            msg[i..i + 8].copy_from_slice(&to);
        }
    }
}

/// Not a test: a raw CLC client of another user with a device of its own
/// (which would lend its memory to anyone): it proposes with its own GID,
/// never fetches the server's DMB, and confirms with its own DMB's token.
#[test]
#[ignore = "helper, run as another user by another_users_raw_handshake_gets_no_smc_d"]
fn raw_handshake_helper() {
    let var = |k: &str| std::env::var(k).unwrap();
    let server: SocketAddr = var("RAW_SERVER").parse().unwrap();
    let (mut proposal, template) = (unhex(&var("RAW_PROPOSAL")), unhex(&var("RAW_CONFIRM")));
    let word = |m: &[u8], at: usize| u64::from_be_bytes(m[at..at + 8].try_into().unwrap());
    let dev = StdDevice::start(Place::Abstract, PeerPolicy::AnyUser).unwrap();
    let me = dev.local_gid();
    patch_word(&mut proposal, word(&template, 8), me.gid);
    patch_word(&mut proposal, word(&template, 66), me.gid_ext);
    let own = dev
        .register_dmb(bufsize::decode(template[25] >> 4))
        .unwrap();
    let mut confirm = template.clone();
    confirm[8..16].copy_from_slice(&me.gid.to_be_bytes());
    confirm[66..74].copy_from_slice(&me.gid_ext.to_be_bytes());
    let s = raw::announced(server);
    (&s).write_all(&proposal).unwrap();
    let accept = raw::read_message(&s, Duration::from_secs(10));
    assert_eq!(raw::kind(&accept), raw::ACCEPT);
    (&s).write_all(&raw::confirm_for(
        &accept,
        &confirm,
        own.token().0.to_be_bytes(),
    ))
    .unwrap();
    let (end, _) = raw::ending(&s, Duration::from_secs(3));
    let verdict = match end {
        raw::Ending::Declined(m) => format!("declined {:#010x}", raw::diagnosis(m.last().unwrap())),
        raw::Ending::Closed => "closed".into(),
        raw::Ending::StillOpen => "open".into(),
    };
    println!(
        "raw handshake: {verdict}, our DMB fetched {} times",
        dev.fetches_granted()
    );
    dev.unregister_dmb(own).unwrap();
}

#[test]
fn another_users_raw_handshake_gets_no_smc_d() {
    if !root() {
        return;
    }
    let (server, addr) = echo_server();
    let pid = server.0.id();
    let start = dmbs_of(pid);
    let (proposal, confirm) = proposal_and_confirm(addr);
    let exe = std::env::current_exe().unwrap();
    let out = as_nobody(exe.to_str().unwrap())
        .args([
            "--exact",
            "raw_handshake_helper",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env("RAW_SERVER", addr.to_string())
        .env("RAW_PROPOSAL", hex(&proposal))
        .env("RAW_CONFIRM", hex(&confirm))
        .stderr(Stdio::inherit())
        .output()
        .expect("the helper runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    println!(
        "{}",
        text.lines()
            .find(|l| l.starts_with("raw handshake"))
            .unwrap_or_default()
    );
    // The server declined rather than map memory of a user its policy
    // does not admit (and never fetched it).
    assert!(
        text.contains("raw handshake: declined") && text.contains("fetched 0 times"),
        "{text}"
    );
    assert_eq!(wait_dmbs(pid, start, Duration::from_secs(10)), start);
}

/// The helper [`fetch_dmb_helper`] as `nobody` (or as this user): what it
/// printed.
fn fetch(nobody: bool, accept: &[u8]) -> String {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let mut cmd = if nobody {
        as_nobody(exe)
    } else {
        clean(Command::new(exe))
    };
    let word = |at: usize| u64::from_be_bytes(accept[at..at + 8].try_into().unwrap());
    let len = bufsize::decode(accept[25] >> 4);
    let out = cmd
        .args([
            "--exact",
            "fetch_dmb_helper",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env("STOLEN_GID", format!("{}:{}", word(8), word(66)))
        .env("STOLEN_TOKEN", word(16).to_string())
        .env("STOLEN_LEN", len.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("the fetcher runs");
    assert!(out.status.success(), "the fetcher ran");
    String::from_utf8(out.stdout).unwrap()
}

/// Not a test: a process that asks the device named by `STOLEN_GID` for the
/// DMB `STOLEN_TOKEN` over its device socket, as any smcd peer would (its
/// own policy lets it take memory from anyone).
#[test]
#[ignore = "helper, run as another user by another_user_gets_no_dmb_even_with_a_stolen_token"]
fn fetch_dmb_helper() {
    let var = |k: &str| std::env::var(k).unwrap();
    let (g, e) = var("STOLEN_GID")
        .split_once(':')
        .map(|(g, e)| (g.parse().unwrap(), e.parse().unwrap()))
        .unwrap();
    let peer = PeerDmbId {
        gid: Gid::new(g, e),
        token: DmbToken(var("STOLEN_TOKEN").parse().unwrap()),
        len: var("STOLEN_LEN").parse().unwrap(),
    };
    let dev = StdDevice::start(Place::Abstract, PeerPolicy::AnyUser).unwrap();
    let own = dev.register_dmb(16 * 1024).unwrap();
    match dev.attach_dmb(&own, peer, false) {
        Ok(p) => {
            println!("fetch: granted");
            dev.detach_dmb(p).unwrap();
        }
        Err(e) => println!("fetch: refused: {e}"),
    }
    dev.unregister_dmb(own).unwrap();
}

#[test]
fn another_user_gets_no_dmb_even_with_a_stolen_token() {
    if !root() {
        return;
    }
    let (server, addr) = echo_server();
    let pid = server.0.id();
    let start = dmbs_of(pid);
    // An smcd client of another user: TCP fallback, every byte checked.
    // (First: the half-open handshake below makes `accept` pause its waits
    // for a second, and then it would not wait for this client's Proposal.)
    let out = as_nobody(BIN)
        .args(["echo-client", &addr.to_string(), "--bytes", "256K"])
        .stdin(Stdio::null())
        .output()
        .expect("echo-client runs");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("transport: tcp"),
        "another user's client: {text}"
    );
    println!(
        "another user's client: {}",
        text.lines().next().unwrap_or_default()
    );
    // The stolen capability: the server's DMB of a handshake that waits
    // for its Confirm (no peer fetched it yet), with the server's GID.
    let (proposal, _) = proposal_and_confirm(addr);
    let mut pending = raw::announced(addr);
    pending.write_all(&proposal).unwrap();
    let accept = raw::read_message(&pending, Duration::from_secs(10));
    assert_eq!(raw::kind(&accept), raw::ACCEPT);
    let refused = fetch(true, &accept);
    assert!(
        refused.contains("fetch: refused") && refused.contains("refuses our credentials"),
        "another user's fetch: {refused:?}"
    );
    // The same request from a process of the server's user gets the memory:
    // the token was live, only the credentials stopped the other user.
    println!("another user's fetch: {}", refused.trim());
    let granted = fetch(false, &accept);
    assert!(
        granted.contains("fetch: granted"),
        "same user's fetch: {granted:?}"
    );
    drop(pending);
    // This user's clients still get SMC-D.
    assert!(matches!(healthy(addr, 1), Transport::SmcD(_)));
    assert_eq!(wait_dmbs(pid, start, Duration::from_secs(10)), start);
}

/// Every tracing event and span of this process, as text.
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.0.lock().unwrap();
        let _ = write!(text, "\nspan {}", span.metadata().name());
        span.record(&mut Fields(&mut text));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.0.lock().unwrap();
        let m = event.metadata();
        let _ = write!(text, "\n{} {}", m.level(), m.target());
        event.record(&mut Fields(&mut text));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The text of all tracing output of this process from now on.
fn capture_tracing() -> Arc<Mutex<String>> {
    static TEXT: OnceLock<Arc<Mutex<String>>> = OnceLock::new();
    Arc::clone(TEXT.get_or_init(|| {
        let text = Arc::new(Mutex::new(String::new()));
        tracing::subscriber::set_global_default(Capture(Arc::clone(&text)))
            .expect("the only subscriber");
        text
    }))
}

/// Each way a token could be printed: decimal, hex of either case, padded
/// or not (all compared in lower case).
fn spellings(token: [u8; 8]) -> Vec<String> {
    let t = u64::from_be_bytes(token);
    vec![t.to_string(), format!("{t:x}"), format!("{t:016x}")]
}

/// Run `smcd ARGS` and return its stdout.
fn smcd(args: &[&str]) -> String {
    let out: Output = clean(Command::new(BIN))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("smcd runs");
    assert!(
        out.status.success(),
        "smcd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `smcd run` finds its preload shim.
fn shim_at_hand() -> bool {
    let beside = std::path::Path::new(BIN).with_file_name("libsmcd_preload.so");
    std::env::var_os("SMCD_PRELOAD_LIB").is_some_and(|p| std::path::Path::new(&p).is_file())
        || beside.is_file()
}

/// A directory for `smcd run --stats`, removed when this goes.
struct StatsDir(std::path::PathBuf);

impl StatsDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("smcd-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self) -> String {
        self.0.join("stats.json").to_str().unwrap().to_owned()
    }
}

impl Drop for StatsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Echo every connection `listener` accepts, each on its own thread.
fn serve(listener: SmcListener) {
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

#[test]
fn tokens_never_appear_in_logs_stats_or_ss() {
    let trace = capture_tracing();
    // The server in this process (its tracing is captured); one client in
    // another process under `smcd run --stats`, one in this process kept
    // open while `smcd ss` and `smcd stats` look.
    let listener = SmcListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    serve(listener);
    let remote = Relay::start(addr);
    let client = ["echo-client", &remote.addr.to_string(), "--bytes", "256K"].map(String::from);
    // `smcd run --stats` needs the preload shim (built by `cargo build -p
    // smcd-preload`, not by `cargo test`): without it the client runs alone.
    let stats_dir = StatsDir::new();
    let run = match shim_at_hand() {
        true => {
            let file = stats_dir.file();
            let mut args = vec![
                "run".to_owned(),
                "--stats".into(),
                file,
                "--".into(),
                BIN.into(),
            ];
            args.extend(client);
            smcd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        }
        false => {
            println!("smcd run --stats not checked: the preload shim is not built");
            smcd(&client.iter().map(String::as_str).collect::<Vec<_>>())
        }
    };
    assert!(run.to_lowercase().contains("transport: smc-d"), "{run}");
    let local = Relay::start(addr);
    let live = SmcStream::connect(local.addr).unwrap();
    assert!(matches!(live.transport().unwrap(), Transport::SmcD(_)));
    let ss = smcd(&["ss", "--json"]);
    let stats = smcd(&["stats", "--json"]);
    let run_stats = match shim_at_hand() {
        true => {
            let text = std::fs::read_to_string(stats_dir.file()).expect("smcd run wrote its stats");
            assert!(text.contains("connections"), "{text}");
            text
        }
        false => String::new(),
    };
    drop(stats_dir);
    let mut tokens = Vec::new();
    for relay in [&remote, &local] {
        let (up, down) = relay.wait_messages(2, 1, Duration::from_secs(10));
        assert_eq!((up.len(), down.len()), (2, 1), "Proposal, Confirm / Accept");
        tokens.push(raw::token(&down[0]));
        tokens.push(raw::token(&up[1]));
    }
    drop(live);
    let trace = trace.lock().unwrap().to_lowercase();
    println!(
        "looked at {} lines of trace, {} bytes of ss, {} of stats, {} of run --stats for {} tokens",
        trace.lines().count(),
        ss.len(),
        stats.len(),
        run_stats.len(),
        tokens.len()
    );
    // The texts looked at are the real ones: each names what it reports.
    assert!(trace.contains("smc-d"), "no handshake in the trace:{trace}");
    assert!(
        ss.contains(&addr.port().to_string()),
        "ss lists the live connection: {ss}"
    );
    assert!(stats.contains("dmbs_in_use"), "{stats}");
    for (what, text) in [
        ("trace", &trace),
        ("smcd ss", &ss),
        ("smcd stats", &stats),
        ("smcd run --stats", &run_stats),
    ] {
        let text = text.to_lowercase();
        for t in &tokens {
            for s in spellings(*t) {
                assert!(!text.contains(&s), "{what} shows the token {s}");
            }
        }
    }
    remote.join();
    local.join();
}
