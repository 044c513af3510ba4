//! `smcd clc decode [--json] <HEX | ->`.

use std::io::Write;

use serde_json::{Map, Value, json};
use smcd_core::wire::clc::{
    ClcHeaderRepr, ClcMessage, DeclineReason, WireError, bufsize, server_precheck,
};

use super::{build, describe, tree};
use crate::{Failure, hex, input};

/// Largest CLC message: `length` is a u16.
const CLC_MAX_LEN: usize = u16::MAX as usize;

/// A decoded message with everything the outputs show.
pub(crate) struct Decoded {
    /// The message bytes.
    pub(crate) bytes: Vec<u8>,
    /// The parsed message.
    pub(crate) message: ClcMessage,
    /// The fields with offsets.
    pub(crate) fields: Vec<tree::Field>,
    /// The Decline a Linux server would answer a Proposal with, if any.
    pub(crate) verdict: Option<DeclineReason>,
}

/// Runs the command.
///
/// # Errors
///
/// [`Failure::BadInput`] for bad hex or a malformed message.
pub(crate) fn run(arg: &str, json: bool) -> Result<(), Failure> {
    let text = input::text(arg)?;
    let bytes = bytes_of(&text).map_err(|e| Failure::BadInput(bad_hex_hint(arg, &e)))?;
    let decoded = decode(bytes).map_err(Failure::BadInput)?;
    let out = if json {
        let mut text = serde_json::to_string_pretty(&to_json(&decoded))
            .map_err(|e| Failure::BadInput(e.to_string()))?;
        text.push('\n');
        text
    } else {
        to_human(&decoded)
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    if let Some(note) = round_trip_note(&decoded) {
        crate::report(&format!("note: {note}"));
    }
    Ok(())
}

/// The bytes of hex `text`.
fn bytes_of(text: &str) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; CLC_MAX_LEN + 1];
    let len = hex::decode(text, &mut buf).map_err(|e| match e {
        hex::HexError::OutputTooSmall { .. } => {
            format!(
                "more than {CLC_MAX_LEN} bytes of hex: a CLC message is at most {CLC_MAX_LEN} bytes"
            )
        }
        other => format!("bad hex: {other}"),
    })?;
    if len == 0 {
        return Err("no hex digits in the input".to_owned());
    }
    buf.truncate(len);
    Ok(buf)
}

/// Adds a hint when the argument looks like a file name.
fn bad_hex_hint(arg: &str, problem: &str) -> String {
    if arg != "-" && std::path::Path::new(arg).is_file() {
        format!("{problem} (to decode the file {arg}, run `smcd clc decode - < {arg}`)")
    } else {
        problem.to_owned()
    }
}

/// Parses `bytes` as one CLC message.
///
/// # Errors
///
/// One line: the violated rule, the byte offset and what Linux does.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<Decoded, String> {
    let malformed = |e: WireError| format!("malformed CLC message: {e}");
    let header = ClcHeaderRepr::peek(&bytes).map_err(malformed)?;
    let message = ClcMessage::parse(&bytes).map_err(malformed)?;
    let length = usize::from(header.length);
    if bytes.len() > length {
        return Err(format!(
            "{} byte(s) after the end of the message: header length is {length}, the input holds {} bytes (decode one message at a time)",
            bytes.len() - length,
            bytes.len()
        ));
    }
    let fields = describe::fields(&header, &message);
    let verdict = match &message {
        // A host running smcd always has the v2-capable loopback device.
        ClcMessage::Proposal(p) => server_precheck(p, true).err(),
        _ => None,
    };
    Ok(Decoded {
        bytes,
        message,
        fields,
        verdict,
    })
}

/// The JSON object of `docs/protocol/clc.md` §10.
pub(crate) fn to_json(decoded: &Decoded) -> Value {
    let mut object = Map::new();
    object.insert("kind".to_owned(), describe::kind(&decoded.message).into());
    object.extend(tree::to_json(&decoded.fields));
    let derived = derived(&decoded.message);
    if !derived.is_empty() {
        object.insert("derived".to_owned(), Value::Object(derived));
    }
    if let Some(reason) = decoded.verdict {
        object.insert(
            "server_verdict".to_owned(),
            json!({
                "peer_diagnosis": reason.code(),
                "name": reason.name(),
                "description": reason.description(),
            }),
        );
    }
    Value::Object(object)
}

/// Values computed from fields (`docs/protocol/clc.md` §10 "Derived").
fn derived(message: &ClcMessage) -> Map<String, Value> {
    let mut derived = Map::new();
    match message {
        ClcMessage::AcceptConfirm(a) => {
            derived.insert(
                "dmbe_size_bytes".to_owned(),
                bufsize::decode(a.dmbe_size).into(),
            );
            if a.version >= 2 {
                derived.insert("gid128".to_owned(), a.gid.to_string().into());
            }
        }
        ClcMessage::Decline(d) => {
            if let Some(name) = d.peer_diagnosis.name() {
                derived.insert("peer_diagnosis_name".to_owned(), name.into());
            }
        }
        ClcMessage::Proposal(_) => {}
    }
    derived
}

/// The human-readable output: a title, one line per field, the verdict.
fn to_human(decoded: &Decoded) -> String {
    let message = &decoded.message;
    let (version, title) = match message {
        ClcMessage::Proposal(p) => (p.version, "Proposal (client -> server)"),
        ClcMessage::AcceptConfirm(a) => (
            a.version,
            match a.kind {
                smcd_core::wire::clc::AcceptKind::Accept => "SMC-D Accept (server -> client)",
                smcd_core::wire::clc::AcceptKind::Confirm => "SMC-D Confirm (client -> server)",
            },
        ),
        ClcMessage::Decline(d) => (d.version, "Decline (either direction)"),
    };
    let mut out = format!(
        "CLC {title}, version {version}, {} bytes: well-formed\n",
        decoded.bytes.len()
    );
    out.push_str("offset  field  value  (meaning)\n");
    for line in tree::to_lines(&decoded.fields) {
        out.push_str(&line);
        out.push('\n');
    }
    match decoded.verdict {
        Some(reason) => out.push_str(&format!(
            "server verdict: a Linux server answers this Proposal with Decline {reason} and both sides fall back to TCP\n"
        )),
        None if matches!(message, ClcMessage::Proposal(_)) => {
            out.push_str("server verdict: passes a Linux server's first checks (no Decline yet); the server goes on to match devices and EIDs\n");
        }
        None => {}
    }
    out
}

/// Why `smcd clc encode` of this message's JSON would not give back the
/// same bytes, if it would not.
fn round_trip_note(decoded: &Decoded) -> Option<String> {
    let json = to_json(decoded);
    let rebuilt = match build::message(&json) {
        Ok(message) => message,
        Err(e) => return Some(format!("`smcd clc encode` cannot re-encode this JSON: {e}")),
    };
    let mut buf = vec![0u8; rebuilt.buffer_len()];
    let same = rebuilt
        .emit(&mut buf)
        .is_ok_and(|len| buf.get(..len) == Some(decoded.bytes.as_slice()));
    if same {
        return None;
    }
    let first_diff = buf
        .iter()
        .zip(&decoded.bytes)
        .position(|(a, b)| a != b)
        .unwrap_or(buf.len().min(decoded.bytes.len()));
    Some(format!(
        "re-encoding this JSON gives different bytes from byte {first_diff} on: reserved bytes, padding and unused bits are not part of the JSON and are written as Linux writes them"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of every CLC vector (`smcd-core/tests/vectors`).
    fn vectors() -> Vec<Vec<u8>> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../smcd-core/tests/vectors");
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.ends_with(".hex") && !name.starts_with("cdc-") {
                all.push(bytes_of(&std::fs::read_to_string(&path).unwrap()).unwrap());
            }
        }
        assert!(all.len() >= 17, "{} vectors", all.len());
        all
    }

    /// Decodes `bytes` and, if that works, renders both outputs and re-encodes.
    fn exercise(bytes: Vec<u8>) -> bool {
        match decode(bytes) {
            Ok(decoded) => {
                let _ = to_human(&decoded);
                let _ = round_trip_note(&decoded);
                true
            }
            Err(line) => {
                assert!(!line.contains('\n'), "one line: {line}");
                false
            }
        }
    }

    #[test]
    fn mutated_and_truncated_vectors_never_panic() {
        let (mut ok, mut rejected) = (0, 0);
        for vector in vectors() {
            for at in 0..vector.len() {
                for value in [0x00, 0xff, vector[at].wrapping_add(1), vector[at] ^ 0x80] {
                    let mut mutated = vector.clone();
                    mutated[at] = value;
                    if exercise(mutated) {
                        ok += 1;
                    } else {
                        rejected += 1;
                    }
                }
                assert!(
                    !exercise(vector[..at].to_vec()),
                    "a truncated message is rejected"
                );
            }
        }
        // Both outcomes are exercised.
        assert!(
            ok > 1000 && rejected > 1000,
            "{ok} decoded, {rejected} rejected"
        );
    }

    #[test]
    fn canonical_vectors_re_encode_without_a_note() {
        for vector in vectors() {
            if let Ok(decoded) = decode(vector) {
                assert_eq!(round_trip_note(&decoded), None);
            }
        }
    }
}
