//! Puts the package root (with `memory.x`) on the link path and links with cortex-m-rt's `link.x`
//! (bare-metal builds only).

#[path = "../cortex-m-common/link.rs"]
mod link;

fn main() {
    link::link_with(&["link.x"]);
}
