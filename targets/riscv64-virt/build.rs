//! Links the image at QEMU virt's RAM base with `riscv64-virt.ld` (bare-metal builds only).

#[path = "../link.rs"]
mod link;

fn main() {
    link::link_image(
        |t| t == "riscv64gc-unknown-none-elf",
        "riscv64-virt.ld",
        &["-Triscv64-virt.ld"],
    );
}
