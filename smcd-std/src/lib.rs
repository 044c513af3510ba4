//! # smcd-std — SMC-D between two Linux processes
//!
//! To be built: `SmcListener` / `SmcStream` shaped like `std::net`, with CLC on
//! the real TCP connection and DMBs in shared memory, falling back to TCP
//! whenever SMC-D cannot work.
