//! An order-preserving JSON value.
//!
//! Option order is part of a multiple-choice prompt (`A: …` lines are written in source order), but
//! `serde_json::Value` sorts object keys unless the workspace-wide `preserve_order` feature is on,
//! which would change the output of every other crate. Loaders therefore parse records into
//! [`OValue`], whose objects keep their keys in file order, and convert to `serde_json::Value` only
//! for the free-form `Sample::extra` map.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::fmt;

/// A JSON value whose objects keep the order their keys had in the source.
#[derive(Debug, Clone, PartialEq)]
pub enum OValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<OValue>),
    Object(Vec<(String, OValue)>),
}

impl OValue {
    /// The value of `key` in an object (first occurrence), `None` for other kinds.
    pub fn get(&self, key: &str) -> Option<&OValue> {
        match self {
            OValue::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            OValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            OValue::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, OValue::Null)
    }

    pub fn as_array(&self) -> Option<&[OValue]> {
        match self {
            OValue::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, OValue)]> {
        match self {
            OValue::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The kind of value, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            OValue::Null => "null",
            OValue::Bool(_) => "a boolean",
            OValue::Number(_) => "a number",
            OValue::String(_) => "a string",
            OValue::Array(_) => "an array",
            OValue::Object(_) => "an object",
        }
    }

    /// Scalars as text the way Python's `str()` would show them (used where a source stores ids or
    /// limits sometimes as numbers, sometimes as strings).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            OValue::String(s) => Some(s.clone()),
            OValue::Number(n) => Some(n.to_string()),
            OValue::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            _ => None,
        }
    }

    /// Converts to a `serde_json::Value` (object key order is then serde_json's).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            OValue::Null => serde_json::Value::Null,
            OValue::Bool(b) => serde_json::Value::Bool(*b),
            OValue::Number(n) => serde_json::Value::Number(n.clone()),
            OValue::String(s) => serde_json::Value::String(s.clone()),
            OValue::Array(a) => serde_json::Value::Array(a.iter().map(OValue::to_json).collect()),
            OValue::Object(o) => {
                serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Parses one JSON text.
    pub fn from_json_str(s: &str) -> serde_json::Result<OValue> {
        serde_json::from_str(s)
    }
}

impl<'de> Deserialize<'de> for OValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OValue, D::Error> {
        d.deserialize_any(OValueVisitor)
    }
}

struct OValueVisitor;

impl<'de> Visitor<'de> for OValueVisitor {
    type Value = OValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OValue, E> {
        Ok(OValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OValue, E> {
        Ok(OValue::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OValue, E> {
        Ok(OValue::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OValue, E> {
        Ok(Number::from_f64(v).map_or(OValue::Null, OValue::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<OValue, E> {
        Ok(OValue::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<OValue, E> {
        Ok(OValue::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<OValue, E> {
        Ok(OValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<OValue, E> {
        Ok(OValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<OValue, D::Error> {
        OValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OValue, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(OValue::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OValue, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, OValue>()? {
            out.push((k, v));
        }
        Ok(OValue::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_object_key_order() {
        let v = OValue::from_json_str(r#"{"B": 1, "A": [true, null, "x"]}"#).unwrap();
        let keys: Vec<_> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["B", "A"]);
        assert_eq!(v.get("B").unwrap().as_i64(), Some(1));
    }
}
