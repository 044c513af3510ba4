//! Puts the package root (with `memory.x`) on the link path and links with
//! cortex-m-rt's `link.x` and defmt's `defmt.x` (bare-metal builds only).

fn main() {
    println!("cargo:rerun-if-changed=memory.x");
    if std::env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv")) {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-search={dir}");
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
}
