//! The 32-byte SMC-D CDC header at offset 0 of every DMB (`spec/cdc.md` §2).
