//! Puts `memory.x` on the link path and links with cortex-m-rt's `link.x` and
//! defmt's `defmt.x` (bare-metal builds only).

fn main() {
    println!("cargo:rerun-if-changed=memory.x");
    if !std::env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv")) {
        return;
    }
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    if let Err(e) = std::fs::copy("memory.x", format!("{out}/memory.x")) {
        panic!("copying memory.x to {out}: {e}");
    }
    println!("cargo:rustc-link-search={out}");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
