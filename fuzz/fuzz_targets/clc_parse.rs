//! Every CLC parser on arbitrary bytes: no panic, and whatever parses emits
//! into a message that parses back to the same Repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smcd_core::wire::clc::{
    AcceptRepr, ClcHeaderRepr, ClcMessage, DeclineRepr, ProposalRepr, server_precheck,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = ClcHeaderRepr::peek(data) {
        let _ = header.receive_len();
    }
    let _ = ProposalRepr::parse(data);
    let _ = AcceptRepr::parse(data);
    let _ = DeclineRepr::parse(data);
    let msg = match ClcMessage::parse(data) {
        Ok(msg) => msg,
        Err(err) => {
            // Rendering an error must not panic either.
            let _ = (
                err.to_string(),
                err.rule(),
                err.offset(),
                err.decline_reason(),
            );
            return;
        }
    };
    let mut out = vec![0u8; msg.buffer_len()];
    let n = msg.emit(&mut out).expect("a parsed message re-emits");
    assert_eq!(n, out.len());
    assert_eq!(ClcMessage::parse(&out).as_ref(), Ok(&msg));
    if let ClcMessage::Proposal(p) = &msg {
        for local_ismv2 in [false, true] {
            if let Ok(pre) = server_precheck(p, local_ismv2)
                && let Some(offer) = pre.smcd_v2
            {
                assert!(offer.devices().count() <= 9);
            }
        }
    }
});
