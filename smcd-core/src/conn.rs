//! One established SMC-D connection over two DMBs.
//!
//! To be built: `send`/`recv`, zero-copy `send_with`/`recv_with`, window
//! updates and the close state machine of `spec/close.md`.
