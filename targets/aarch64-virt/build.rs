//! Links the image into QEMU virt's RAM with `aarch64-virt.ld` (bare-metal builds only).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rerun-if-changed=aarch64-virt.ld");
    if std::env::var("TARGET").is_ok_and(|t| t == "aarch64-unknown-none") {
        println!("cargo:rustc-link-search={dir}");
        println!("cargo:rustc-link-arg-bins=-Taarch64-virt.ld");
    }
}
