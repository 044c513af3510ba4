//! `smcd clc decode` and `smcd clc encode`: CLC messages as hex, JSON and
//! annotated fields.
//!
//! The JSON schema is the one of `docs/protocol/clc.md` §10: keys are the spec's field
//! names, nested objects `header`, `ip_prefix`, `v2_ext`, `smcd_v2_ext`,
//! `fce`; integers are numbers, byte blobs lowercase hex, EIDs and the
//! hostname strings without padding; `"kind"` names the message; values
//! computed from fields live under `"derived"`, and a Proposal that a Linux
//! server would decline carries `"server_verdict"`. A field that does not
//! exist on the wire for a message (e.g. `chid` in a version-1 Accept) is
//! absent from the object.

mod build;
pub(crate) mod decode;
mod describe;
pub(crate) mod encode;
mod reader;
mod text;
mod tree;
