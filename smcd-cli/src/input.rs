//! The text a command works on: its argument, or stdin for `-`.

use std::io::Read;

use crate::Failure;

/// Largest input text accepted, in bytes. A CLC message is at most 65535
/// bytes; even as commented hex it stays far below this.
pub(crate) const MAX_INPUT_BYTES: usize = 4 << 20;

/// Returns `arg`, or all of stdin when `arg` is `-`.
///
/// # Errors
///
/// [`Failure::BadInput`] for empty, over-long or non-UTF-8 input;
/// [`Failure::Io`] when stdin cannot be read.
pub(crate) fn text(arg: &str) -> Result<String, Failure> {
    let text = if arg == "-" {
        read_limited(std::io::stdin().lock())?
    } else {
        arg.to_owned()
    };
    if text.len() > MAX_INPUT_BYTES {
        return Err(Failure::BadInput(format!(
            "input is larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    if text.trim().is_empty() {
        let source = if arg == "-" { "stdin" } else { "the argument" };
        return Err(Failure::BadInput(format!(
            "empty input: {source} holds no text"
        )));
    }
    Ok(text)
}

/// Reads at most one byte more than [`MAX_INPUT_BYTES`] from `reader`.
fn read_limited(reader: impl Read) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_INPUT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader.take(limit).read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|err| {
        Failure::BadInput(format!(
            "input is not UTF-8 text (invalid byte at offset {})",
            err.utf8_error().valid_up_to()
        ))
    })
}
