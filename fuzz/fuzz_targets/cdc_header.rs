//! The 32-byte SMC-D CDC header parser on arbitrary bytes: no panic, and a
//! parsed header emits into bytes that parse back to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smcd_core::wire::cdc::CdcHeader;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = CdcHeader::parse(data) else {
        assert!(data.len() < CdcHeader::BUFFER_LEN);
        return;
    };
    let mut out = [0u8; CdcHeader::BUFFER_LEN];
    header.emit(&mut out).expect("32 bytes hold a CDC header");
    assert_eq!(CdcHeader::parse(&out), Ok(header));
    assert_eq!(header.to_bytes(), out);
});
