//! `smcd run` without the shim at hand: a clear error and exit status 2.
//! (The shim itself is tested under real processes in smcd-preload's
//! tests and in `scripts/test shim`.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smcd");

#[test]
fn a_missing_shim_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["run", "--", "true"])
        .env("SMCD_PRELOAD_LIB", "/nonexistent/libsmcd_preload.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SMCD_PRELOAD_LIB"), "{err}");
}

#[test]
fn cmd_is_required() {
    let out = Command::new(BIN).args(["run"]).output().unwrap();
    assert!(!out.status.success());
}
