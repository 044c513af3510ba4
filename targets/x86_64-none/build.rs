//! Links a fixed-address (non-PIE) image at 1 MiB with `x86_64-pvh.ld`
//! (bare-metal builds only).

#[path = "../link.rs"]
mod link;

fn main() {
    link::link_image(
        |t| t == "x86_64-unknown-none",
        "x86_64-pvh.ld",
        &["-Tx86_64-pvh.ld", "--no-pie"],
    );
}
