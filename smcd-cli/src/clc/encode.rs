//! `smcd clc encode <JSON | ->`.

use std::io::Write;

use serde_json::Value;
use smcd_core::wire::clc::ClcMessage;

use super::{build, tree};
use crate::{Failure, input};

/// Runs the command: prints the message as one line of lowercase hex.
///
/// # Errors
///
/// [`Failure::BadInput`] naming the key when the JSON does not describe a
/// message.
pub(crate) fn run(arg: &str) -> Result<(), Failure> {
    let text = input::text(arg)?;
    let bytes = encode(&text).map_err(Failure::BadInput)?;
    let mut out = tree::hex(&bytes);
    out.push('\n');
    std::io::stdout().lock().write_all(out.as_bytes())?;
    if let Err(problem) = ClcMessage::parse(&bytes) {
        crate::report(&format!(
            "warning: the encoded message is malformed; a Linux peer would reject it: {problem}"
        ));
    }
    Ok(())
}

/// The bytes of the message that JSON `text` describes.
///
/// # Errors
///
/// One line naming the problem and, where there is one, the key.
pub(crate) fn encode(text: &str) -> Result<Vec<u8>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("input is not valid JSON: {e}"))?;
    let message = build::message(&value)?;
    let mut buf = vec![0u8; message.buffer_len()];
    let len = message
        .emit(&mut buf)
        .map_err(|e| format!("cannot encode the message: {e}"))?;
    buf.truncate(len);
    Ok(buf)
}
