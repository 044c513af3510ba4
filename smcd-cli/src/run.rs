//! `smcd run [--copy|--nocopy] [--dmb-size N] [--stats FILE] -- CMD ARGS…`:
//! start CMD with the preload shim, and collect the counters of every
//! process of the run.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::args::RunArgs;
use crate::net::EXIT_ERROR;

/// The shim's file name.
const LIB: &str = "libsmcd_preload.so";

/// How long the processes CMD started may outlive it before the counters
/// are written without them.
const STRAGGLERS: Duration = Duration::from_secs(10);

/// Where the shim is: `SMCD_PRELOAD_LIB`, else next to this binary.
pub(crate) fn find_lib() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SMCD_PRELOAD_LIB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("SMCD_PRELOAD_LIB={} is not a file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("where is smcd: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let p = dir.join(LIB);
    if p.is_file() {
        return Ok(p);
    }
    Err(format!(
        "{LIB} not found next to {} (build it with `cargo build -p smcd-preload`, or set SMCD_PRELOAD_LIB)",
        exe.display()
    ))
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            crate::report(&format!("error: {e}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run_inner(args: &RunArgs) -> Result<ExitCode, String> {
    let lib = find_lib()?;
    let lib = lib.canonicalize().unwrap_or(lib);
    let mut preload = OsString::from(lib.as_os_str());
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
        preload.push(":");
        preload.push(old);
    }
    let (prog, rest) = args.cmd.split_first().ok_or("no CMD given")?;
    let mut cmd = Command::new(prog);
    cmd.args(rest).env("LD_PRELOAD", preload);
    if args.smc.copy {
        cmd.env("SMCD_NOCOPY", "0");
    }
    if args.smc.nocopy {
        cmd.env("SMCD_NOCOPY", "1");
    }
    if let Some(n) = args.smc.dmb_size {
        cmd.env("SMCD_DMB_SIZE", n.to_string());
    }
    let Some(stats) = &args.stats else {
        let status = cmd
            .status()
            .map_err(|e| format!("cannot start {}: {e}", prog.to_string_lossy()))?;
        return Ok(exit_code(status));
    };
    let dir = std::env::temp_dir().join(format!(
        "smcd-run-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Processes of the run may change user (nginx workers run as nobody):
    // every one must be able to leave its file (sticky, like /tmp).
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    cmd.env("SMCD_STATS_DIR", &dir);
    // Every process of the run inherits the write end of this pipe: EOF on
    // the read end says they all exited.
    let (hold_r, hold_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    let inherited = rustix::io::dup(&hold_w).map_err(|e| format!("dup: {e}"))?;
    let child = cmd.spawn();
    drop(inherited);
    drop(hold_w);
    let mut child = child.map_err(|e| format!("cannot start {}: {e}", prog.to_string_lossy()))?;
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    wait_for_eof(hold_r);
    let merged = merge_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let text = serde_json::to_string_pretty(&merged).unwrap_or_default() + "\n";
    std::fs::write(stats, text).map_err(|e| format!("{}: {e}", stats.display()))?;
    Ok(exit_code(status))
}

/// Wait (at most [`STRAGGLERS`]) until every holder of the pipe exited.
fn wait_for_eof(r: rustix::fd::OwnedFd) {
    let end = Instant::now() + STRAGGLERS;
    let _ = rustix::io::ioctl_fionbio(&r, true);
    let mut f = std::fs::File::from(r);
    let mut buf = [0u8; 64];
    while Instant::now() < end {
        match f.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return,
        }
    }
    crate::report("smcd run: processes of the run are still alive; their counters are left out");
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(255)),
        _ => ExitCode::from(1),
    }
}

/// The sum of every process's counters (numbers add up key by key), plus
/// `processes`: how many wrote theirs.
fn merge_dir(dir: &Path) -> Value {
    let mut total = Value::Object(Map::new());
    let mut n = 0u64;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            add(&mut total, &v);
            n += 1;
        }
    }
    for key in ["connections", "fallbacks"] {
        if let Value::Object(m) = &mut total {
            m.entry(key).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    if let Value::Object(m) = &mut total {
        m.insert("processes".into(), n.into());
    }
    total
}

/// Add `v` into `into` key by key: numbers summed, objects merged.
pub(crate) fn add(into: &mut Value, v: &Value) {
    match (into, v) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, bv) in b {
                match a.get_mut(k) {
                    Some(av) => add(av, bv),
                    None => {
                        a.insert(k.clone(), bv.clone());
                    }
                }
            }
        }
        (a @ Value::Number(_), Value::Number(b)) => {
            let sum = a
                .as_u64()
                .unwrap_or(0)
                .saturating_add(b.as_u64().unwrap_or(0));
            *a = sum.into();
        }
        _ => {}
    }
}
