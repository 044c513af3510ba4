//! Links the image at QEMU virt's RAM base with `riscv64-virt.ld` (bare-metal builds only).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rerun-if-changed=riscv64-virt.ld");
    if std::env::var("TARGET").is_ok_and(|t| t == "riscv64gc-unknown-none-elf") {
        println!("cargo:rustc-link-search={dir}");
        println!("cargo:rustc-link-arg-bins=-Triscv64-virt.ld");
    }
}
