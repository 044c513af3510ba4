//! # smcd-lo — the loopback device
//!
//! An SMC-D "ISM device" for two endpoints in one address space (the Linux
//! loopback-ism idea): it registers DMBs under random tokens, moves data into
//! a peer's DMB and, in nocopy mode, lets a sender write straight into the
//! peer's DMB. To be built: `LoopbackDevice` implementing
//! `smcd_core::ops::SmcdOps`, memory providers and doorbells.
#![no_std]
