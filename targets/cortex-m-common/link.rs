//! The link setup of every Cortex-M image's build script (each `build.rs`
//! includes this file with `#[path]`).

/// Puts the package root (with `memory.x`) on the link path and links the
/// binaries with each of `scripts` (bare-metal builds only).
pub(crate) fn link_with(scripts: &[&str]) {
    println!("cargo:rerun-if-changed=memory.x");
    if std::env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv")) {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-search={dir}");
        for script in scripts {
            println!("cargo:rustc-link-arg-bins=-T{script}");
        }
    }
}
