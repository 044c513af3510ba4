//! Links the image into QEMU virt's RAM with `aarch64-virt.ld` (bare-metal builds only).

#[path = "../link.rs"]
mod link;

fn main() {
    link::link_image(
        |t| t == "aarch64-unknown-none",
        "aarch64-virt.ld",
        &["-Taarch64-virt.ld"],
    );
}
