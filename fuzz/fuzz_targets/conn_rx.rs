//! The receive path of an SMC-D connection under a hostile peer: the model
//! of `smcd-lo/tests/rx_model` (shared with the proptest `conn_rx_model`,
//! which runs in the normal `cargo test`) on the fuzzer's bytes. What it
//! checks: that module's docs.
#![no_main]

#[path = "../../smcd-lo/tests/rx_model/mod.rs"]
mod rx_model;

libfuzzer_sys::fuzz_target!(|input: &[u8]| rx_model::run(input));
