//! Runnable examples of smcd; see `examples/`.
