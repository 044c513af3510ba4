//! Links a fixed-address (non-PIE) image at 1 MiB with `x86_64-pvh.ld`
//! (bare-metal builds only).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rerun-if-changed=x86_64-pvh.ld");
    if std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-none") {
        println!("cargo:rustc-link-search={dir}");
        println!("cargo:rustc-link-arg-bins=-Tx86_64-pvh.ld");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
