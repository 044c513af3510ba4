//! Puts the package root (with `memory.x`) on the link path and links with cortex-m-rt's `link.x`
//! (bare-metal builds only).

#[path = "../link.rs"]
mod link;

fn main() {
    link::link_image(|t| t.starts_with("thumbv"), "memory.x", &["-Tlink.x"]);
}
