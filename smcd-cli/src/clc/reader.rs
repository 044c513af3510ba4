//! Reading the JSON schema of `docs/protocol/clc.md` §10 with errors that name the key.

use serde_json::{Map, Value};

use super::text::{self, Empty};
use crate::hex;

/// A JSON object being read; remembers which keys were used so that unknown
/// keys (typos) can be reported.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    used: Vec<&'a str>,
}

/// An element of a JSON list, with its path (`v2_ext.user_eids[1]`).
pub(crate) struct Elem<'a> {
    pub(crate) path: String,
    pub(crate) value: &'a Value,
}

/// The error for `path`: one line naming the key.
pub(crate) fn err(path: &str, problem: impl std::fmt::Display) -> String {
    if path.is_empty() {
        format!("JSON: {problem}")
    } else {
        format!("key `{path}`: {problem}")
    }
}

/// What a JSON value is, for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// An integer in `0..=max`.
pub(crate) fn uint(path: &str, value: &Value, max: u64) -> Result<u64, String> {
    match value.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(err(
            path,
            format!("expected an integer 0..={max}, found {}", describe(value)),
        )),
    }
}

/// A boolean.
pub(crate) fn boolean(path: &str, value: &Value) -> Result<bool, String> {
    value.as_bool().ok_or_else(|| {
        err(
            path,
            format!("expected true or false, found {}", describe(value)),
        )
    })
}

/// Exactly `N` bytes as a hex string.
pub(crate) fn bytes<const N: usize>(path: &str, value: &Value) -> Result<[u8; N], String> {
    let expected = || format!("expected {N} bytes as {} hex digits", 2 * N);
    let text = value
        .as_str()
        .ok_or_else(|| err(path, format!("{}, found {}", expected(), describe(value))))?;
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() != 2 * N {
        return Err(err(
            path,
            format!("{}, found {} digits", expected(), digits.len()),
        ));
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).unwrap_or("");
        // Two hex digits, nothing else: `from_str_radix` would also take a
        // sign (`"+f"`), and a `#` leaves no digit pair here.
        if hex::decode(pair, core::slice::from_mut(slot)) != Ok(1) {
            return Err(err(path, format!("{pair:?} is not a hex byte")));
        }
    }
    Ok(out)
}

/// A 32-byte padded text field.
pub(crate) fn padded_text(path: &str, value: &Value, empty: Empty) -> Result<[u8; 32], String> {
    let s = value.as_str().ok_or_else(|| {
        err(
            path,
            format!("expected a string, found {}", describe(value)),
        )
    })?;
    text::to_bytes(s, empty).map_err(|problem| err(path, problem))
}

impl<'a> Obj<'a> {
    /// `value` as an object at `path` ("" for the top level).
    pub(crate) fn new(path: String, value: &'a Value) -> Result<Self, String> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path,
                used: Vec::new(),
            }),
            other => Err(err(
                &path,
                format!("expected an object, found {}", describe(other)),
            )),
        }
    }

    /// The path of `key` in this object.
    pub(crate) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, if present.
    pub(crate) fn opt(&mut self, key: &'a str) -> Option<&'a Value> {
        let value = self.map.get(key)?;
        self.used.push(key);
        Some(value)
    }

    /// The value of `key`.
    pub(crate) fn get(&mut self, key: &'a str) -> Result<&'a Value, String> {
        let path = self.path(key);
        self.opt(key).ok_or_else(|| err(&path, "missing"))
    }

    /// An integer in `0..=max`.
    pub(crate) fn uint(&mut self, key: &'a str, max: u64) -> Result<u64, String> {
        let value = self.get(key)?;
        uint(&self.path(key), value, max)
    }

    /// A `u8` (any value).
    pub(crate) fn u8(&mut self, key: &'a str) -> Result<u8, String> {
        self.bits(key, 8)
    }

    /// A `u16` (any value).
    pub(crate) fn u16(&mut self, key: &'a str) -> Result<u16, String> {
        let n = self.uint(key, u64::from(u16::MAX))?;
        Ok(u16::try_from(n).unwrap_or(u16::MAX))
    }

    /// A `u32` (any value).
    pub(crate) fn u32(&mut self, key: &'a str) -> Result<u32, String> {
        let n = self.uint(key, u64::from(u32::MAX))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A `u64` (any value).
    pub(crate) fn u64(&mut self, key: &'a str) -> Result<u64, String> {
        self.uint(key, u64::MAX)
    }

    /// A bit field of `width` (≤ 8) bits.
    pub(crate) fn bits(&mut self, key: &'a str, width: u32) -> Result<u8, String> {
        let n = self.uint(key, (1u64 << width) - 1)?;
        Ok(u8::try_from(n).unwrap_or(u8::MAX))
    }

    /// A boolean.
    pub(crate) fn boolean(&mut self, key: &'a str) -> Result<bool, String> {
        let value = self.get(key)?;
        boolean(&self.path(key), value)
    }

    /// Exactly `N` bytes as hex.
    pub(crate) fn bytes<const N: usize>(&mut self, key: &'a str) -> Result<[u8; N], String> {
        let value = self.get(key)?;
        bytes(&self.path(key), value)
    }

    /// A 32-byte padded text field.
    pub(crate) fn text(&mut self, key: &'a str, empty: Empty) -> Result<[u8; 32], String> {
        let value = self.get(key)?;
        padded_text(&self.path(key), value, empty)
    }

    /// A nested object.
    pub(crate) fn object(&mut self, key: &'a str) -> Result<Obj<'a>, String> {
        let value = self.get(key)?;
        Obj::new(self.path(key), value)
    }

    /// A nested object, if present.
    pub(crate) fn opt_object(&mut self, key: &'a str) -> Result<Option<Obj<'a>>, String> {
        match self.opt(key) {
            None => Ok(None),
            Some(value) => Obj::new(self.path(key), value).map(Some),
        }
    }

    /// A list of at most `max` elements.
    pub(crate) fn list(&mut self, key: &'a str, max: usize) -> Result<Vec<Elem<'a>>, String> {
        let value = self.get(key)?;
        let path = self.path(key);
        let items = value
            .as_array()
            .ok_or_else(|| err(&path, format!("expected a list, found {}", describe(value))))?;
        if items.len() > max {
            return Err(err(
                &path,
                format!("{} entries, at most {max} allowed", items.len()),
            ));
        }
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Elem {
                path: format!("{path}[{i}]"),
                value,
            })
            .collect())
    }

    /// Fails on a key that was not used, other than those in `ignored`.
    pub(crate) fn finish(self, ignored: &[&str]) -> Result<(), String> {
        let unknown = self
            .map
            .keys()
            .find(|k| !self.used.contains(&k.as_str()) && !ignored.contains(&k.as_str()));
        match unknown {
            None => Ok(()),
            Some(key) => Err(err(
                &self.path(key),
                "unknown key here (not a field of this message; see `smcd clc decode --json`)",
            )),
        }
    }
}

impl<'a> Elem<'a> {
    /// The element as an object.
    pub(crate) fn object(&self) -> Result<Obj<'a>, String> {
        Obj::new(self.path.clone(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_name_the_key() {
        let value = json!({"a": {"b": 300, "c": "zz", "d": [1, 2, 3]}, "typo": 1});
        let mut root = Obj::new(String::new(), &value).unwrap();
        let mut a = root.object("a").unwrap();
        assert_eq!(
            a.u8("b").unwrap_err(),
            "key `a.b`: expected an integer 0..=255, found 300"
        );
        assert!(
            a.bytes::<1>("c")
                .unwrap_err()
                .starts_with("key `a.c`: \"zz\" is not a hex byte")
        );
        for sign in ["+f", "#f", "f#"] {
            assert!(bytes::<1>("s", &json!(sign)).is_err(), "{sign}");
        }
        assert_eq!(
            a.list("d", 2).err().unwrap(),
            "key `a.d`: 3 entries, at most 2 allowed"
        );
        assert_eq!(a.u8("missing").unwrap_err(), "key `a.missing`: missing");
        assert!(
            root.finish(&[])
                .unwrap_err()
                .starts_with("key `typo`: unknown key")
        );
    }

    #[test]
    fn reads_values() {
        let value = json!({"n": 15, "f": true, "h": "e2D4", "t": "host1", "l": [{"x": 1}]});
        let mut obj = Obj::new(String::new(), &value).unwrap();
        assert_eq!(obj.bits("n", 4), Ok(15));
        assert_eq!(obj.boolean("f"), Ok(true));
        assert_eq!(obj.bytes::<2>("h"), Ok([0xe2, 0xd4]));
        assert_eq!(obj.text("t", Empty::Blanks).unwrap()[..6], *b"host1 ");
        let list = obj.list("l", 8).unwrap();
        let mut first = list[0].object().unwrap();
        assert_eq!(first.u64("x"), Ok(1));
        assert!(first.finish(&[]).is_ok());
        assert!(obj.finish(&[]).is_ok());
        let bad = json!({"n": 16});
        let mut obj = Obj::new(String::new(), &bad).unwrap();
        assert_eq!(
            obj.bits("n", 4).unwrap_err(),
            "key `n`: expected an integer 0..=15, found 16"
        );
    }
}
