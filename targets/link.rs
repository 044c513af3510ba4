//! The link setup of every image's build script (each `build.rs` includes
//! this file with `#[path]`).

/// Reruns the build script when `script` (in the package root) changes and,
/// when building for a target that `is_image` accepts (bare metal), puts the
/// package root on the link path and passes `args` to the linker for the
/// binaries. Host builds link nothing special.
pub(crate) fn link_image(is_image: fn(&str) -> bool, script: &str, args: &[&str]) {
    println!("cargo:rerun-if-changed={script}");
    if std::env::var("TARGET").is_ok_and(|t| is_image(&t)) {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-search={dir}");
        for arg in args {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}
