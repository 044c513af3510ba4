//! `smcd bench --apps` arguments (the benchmark itself is not run here: it
//! takes a minute and needs the Debian tools; `scripts/sections/shim.sh`
//! runs `--apps --quick`).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smcd");

#[test]
fn apps_rejects_the_options_of_the_other_mode() {
    for extra in [
        &["--sweep"][..],
        &["--pin"],
        &["--only", "latency"],
        &["--transports", "tcp"],
        &["--plot", "/dev/null"],
    ] {
        let out = Command::new(BIN)
            .args(["bench", "--apps"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    }
}

#[test]
fn help_names_apps() {
    let out = Command::new(BIN)
        .args(["bench", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--apps"));
}
