//! A decoded message as a tree of fields with byte offsets, rendered either as
//! the JSON object of `docs/protocol/clc.md` §10 or as human-readable lines.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// One field of a decoded message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Byte offset of the field from the start of the message.
    pub(crate) offset: usize,
    /// The JSON key (empty for list elements).
    pub(crate) key: &'static str,
    /// The value.
    pub(crate) value: FieldValue,
    /// What the value means, for the human output (e.g. a reason-code name).
    pub(crate) note: Option<String>,
}

/// The value of a [`Field`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    /// An integer: a JSON number.
    Int(u64),
    /// A flag: a JSON boolean.
    Bool(bool),
    /// A byte blob: a lowercase hex string.
    Bytes(Vec<u8>),
    /// Text with its padding stripped (EIDs, hostname).
    Text(String),
    /// A nested object.
    Object(Vec<Field>),
    /// A list; its elements are fields with an empty key.
    List(Vec<Field>),
}

impl Field {
    /// A field without a note.
    pub(crate) fn new(offset: usize, key: &'static str, value: FieldValue) -> Self {
        Self {
            offset,
            key,
            value,
            note: None,
        }
    }

    /// An integer field.
    pub(crate) fn int(offset: usize, key: &'static str, value: impl Into<u64>) -> Self {
        Self::new(offset, key, FieldValue::Int(value.into()))
    }

    /// A flag field.
    pub(crate) fn bool(offset: usize, key: &'static str, value: bool) -> Self {
        Self::new(offset, key, FieldValue::Bool(value))
    }

    /// A byte-blob field.
    pub(crate) fn bytes(offset: usize, key: &'static str, value: &[u8]) -> Self {
        Self::new(offset, key, FieldValue::Bytes(value.to_vec()))
    }

    /// A text field.
    pub(crate) fn text(offset: usize, key: &'static str, value: String) -> Self {
        Self::new(offset, key, FieldValue::Text(value))
    }

    /// A nested object.
    pub(crate) fn object(offset: usize, key: &'static str, fields: Vec<Field>) -> Self {
        Self::new(offset, key, FieldValue::Object(fields))
    }

    /// A list of elements (fields with an empty key).
    pub(crate) fn list(offset: usize, key: &'static str, elements: Vec<Field>) -> Self {
        Self::new(offset, key, FieldValue::List(elements))
    }

    /// Adds what the value means to the human output.
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// Lowercase hex of `bytes`, no separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The JSON object of `fields`.
pub(crate) fn to_json(fields: &[Field]) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| (f.key.to_owned(), value_to_json(&f.value)))
        .collect()
}

fn value_to_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Int(n) => Value::from(*n),
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::Bytes(b) => Value::String(hex(b)),
        FieldValue::Text(t) => Value::String(t.clone()),
        FieldValue::Object(fields) => Value::Object(to_json(fields)),
        FieldValue::List(elements) => {
            Value::Array(elements.iter().map(|e| value_to_json(&e.value)).collect())
        }
    }
}

/// One line per leaf field: hex offset, dotted path, value, meaning.
pub(crate) fn to_lines(fields: &[Field]) -> Vec<String> {
    let mut rows = Vec::new();
    collect_rows(fields, "", &mut rows);
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    rows.into_iter()
        .map(|(offset, path, value, note)| {
            let mut line = format!("{offset:#06x}  {path:<width$}  {value}");
            if let Some(note) = note {
                let _ = write!(line, "  ({note})");
            }
            line
        })
        .collect()
}

type Row = (usize, String, String, Option<String>);

fn collect_rows(fields: &[Field], prefix: &str, rows: &mut Vec<Row>) {
    for (index, field) in fields.iter().enumerate() {
        let path = if field.key.is_empty() {
            format!("{prefix}[{index}]")
        } else if prefix.is_empty() {
            field.key.to_owned()
        } else {
            format!("{prefix}.{}", field.key)
        };
        let value = match &field.value {
            FieldValue::Object(children) | FieldValue::List(children) => {
                if children.is_empty() {
                    rows.push((
                        field.offset,
                        path.clone(),
                        "(none)".to_owned(),
                        field.note.clone(),
                    ));
                }
                collect_rows(children, &path, rows);
                continue;
            }
            FieldValue::Int(n) => n.to_string(),
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::Bytes(b) => hex(b),
            FieldValue::Text(t) => format!("{t:?}"),
        };
        rows.push((field.offset, path, value, field.note.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Field> {
        vec![
            Field::object(
                0,
                "header",
                vec![Field::bytes(0, "eyecatcher", &[0xe2, 0xd4]).note("SMCR")],
            ),
            Field::int(16, "peer_diagnosis", 0x0303_0008u32).note("NOUEID"),
            Field::list(
                24,
                "gidchid",
                vec![Field::new(
                    24,
                    "",
                    FieldValue::Object(vec![
                        Field::int(24, "gid", u64::MAX),
                        Field::bool(32, "flag", true),
                    ]),
                )],
            ),
            Field::list(40, "user_eids", vec![Field::text(40, "", "A B".into())]),
        ]
    }

    #[test]
    fn json_nests_objects_and_lists() {
        let json = Value::Object(to_json(&sample()));
        assert_eq!(
            json,
            serde_json::json!({
                "header": {"eyecatcher": "e2d4"},
                "peer_diagnosis": 0x0303_0008u32,
                "gidchid": [{"gid": u64::MAX, "flag": true}],
                "user_eids": ["A B"],
            })
        );
    }

    #[test]
    fn lines_carry_offsets_paths_and_notes() {
        let lines = to_lines(&sample());
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "0x0000  header.eyecatcher  e2d4  (SMCR)");
        assert!(
            lines[1].starts_with("0x0010  peer_diagnosis "),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with("50528264  (NOUEID)"), "{}", lines[1]);
        assert!(
            lines[2].starts_with("0x0018  gidchid[0].gid "),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("0x0020  gidchid[0].flag "),
            "{}",
            lines[3]
        );
        assert!(lines[4].ends_with("\"A B\""), "{}", lines[4]);
    }

    #[test]
    fn empty_list_is_shown() {
        let lines = to_lines(&[Field::list(8, "ipv6_prefixes", Vec::new())]);
        assert_eq!(lines, ["0x0008  ipv6_prefixes  (none)"]);
    }
}
