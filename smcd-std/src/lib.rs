//! # smcd-std — SMC-D between two Linux processes
//!
//! Each process that uses smcd is an SMC-D device of the host
//! ([`device::StdDevice`]): DMBs are sealed memfds mapped shared, handed to a
//! peer process over the device's Unix socket when it names their token.
#![deny(unsafe_code)]

pub mod device;
pub mod naming;
