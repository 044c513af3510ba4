//! The `smcd` command.

fn main() {
    println!("smcd {}", env!("CARGO_PKG_VERSION"));
}
