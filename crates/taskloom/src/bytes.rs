//! The JSON form of byte strings (names, command lines, environments, paths).
//!
//! A byte string that is valid UTF-8 is a JSON string. One that is not is an
//! object `{"base64": "..."}` holding its exact bytes (standard alphabet,
//! padded). So every output is valid JSON, and the bytes round-trip:
//! `"name": "sleep"`, `"name": {"base64": "/3g="}` for the bytes `ff 78`.

use base64::Engine;
use serde::Serializer;

/// Serialises bytes as described in the module docs.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => s.serialize_str(text),
        Err(_) => {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry(
                "base64",
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            )?;
            m.end()
        }
    }
}

/// A list of byte strings, each as [`serialize`] writes it.
pub fn serialize_list<S: Serializer>(items: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(items.len()))?;
    for item in items {
        seq.serialize_element(&Bytes(item))?;
    }
    seq.end()
}

/// Wraps bytes for serialisation.
#[derive(Debug)]
pub struct Bytes<'a>(pub &'a [u8]);

impl serde::Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// Decodes the JSON form back to bytes (for consumers and tests).
pub fn from_json(v: &serde_json::Value) -> Option<Vec<u8>> {
    match v {
        serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
        serde_json::Value::Object(m) => base64::engine::general_purpose::STANDARD
            .decode(m.get("base64")?.as_str()?)
            .ok(),
        _ => None,
    }
}
