//! A JSON tree built under a memory limit. serde_json's own `Value` takes
//! up to a hundred times the bytes of its text (`{"":0}` is a map node of
//! about 640 bytes for 7 bytes of text), so a body read as a tree is built
//! here instead: every allocation the tree makes is charged, by a
//! conservative estimate, against the limit its route reserved, and the
//! parse stops with [`TreeError::TooLarge`] the moment the limit is passed.

use std::cell::Cell;
use std::fmt;
use std::mem::size_of;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Bytes charged for one value in an array: its slot, doubled for the
/// vector's spare capacity as it grows.
const ARRAY_SLOT: usize = 2 * size_of::<Value>();
/// Bytes charged for an array's first allocation (a vector's first growth
/// makes room for four values).
const ARRAY_FIRST: usize = 4 * size_of::<Value>();
/// Bytes charged for one object: a B-tree leaf of eleven entries.
const MAP_NODE: usize = 11 * (size_of::<String>() + size_of::<Value>()) + 64;
/// Bytes charged for one entry of an object: its key and value, doubled
/// because B-tree nodes may be half full, and its share of the inner
/// nodes' edges.
const MAP_ENTRY: usize = 2 * (size_of::<String>() + size_of::<Value>()) + 16;

/// Why a tree was not built.
#[derive(Debug)]
pub enum TreeError {
    /// The text is not JSON.
    Malformed(serde_json::Error),
    /// The tree would take more than the limit.
    TooLarge,
}

/// Parses `text` into a tree that takes at most about `memory_limit` bytes.
pub fn parse(text: &[u8], memory_limit: usize) -> Result<Value, TreeError> {
    let left = Cell::new(memory_limit);
    let exhausted = Cell::new(false);
    let budget = Budget {
        left: &left,
        exhausted: &exhausted,
    };
    let mut json = serde_json::Deserializer::from_slice(text);
    let parsed = budget
        .deserialize(&mut json)
        .and_then(|value| json.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(_) if exhausted.get() => Err(TreeError::TooLarge),
        Err(error) => Err(TreeError::Malformed(error)),
    }
}

/// What is left of the limit, shared by every level of one parse.
#[derive(Clone, Copy)]
struct Budget<'a> {
    left: &'a Cell<usize>,
    exhausted: &'a Cell<bool>,
}

impl Budget<'_> {
    fn charge<E: de::Error>(self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exhausted.set(true);
                Err(E::custom("the JSON body holds more than this route reads"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Budget<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budget<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Value, E> {
        Ok(Value::Bool(flag))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Value, E> {
        Ok(Value::Number(number.into()))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Value, E> {
        Ok(Value::Number(number.into()))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Value, E> {
        Ok(Number::from_f64(number).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        self.charge(text.len())?;
        Ok(Value::String(text.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(ARRAY_FIRST)?;
        let mut items = Vec::new();
        loop {
            self.charge(ARRAY_SLOT)?;
            match seq.next_element_seed(self)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(MAP_NODE)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            self.charge(MAP_ENTRY + key.0.len())?;
            let value = map.next_value_seed(self)?;
            object.insert(key.0, value);
        }
        Ok(Value::Object(object))
    }
}

/// An object's key: text, charged by its caller once it is known.
struct KeyText(String);

impl<'de> serde::Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(KeyText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_within_its_limit_is_the_same_as_serde_jsons() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": []}], "c": {}}"#;
        let tree = parse(text.as_bytes(), 64 * 1024).unwrap();
        assert_eq!(tree, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn a_tree_past_its_limit_is_too_large_and_bad_text_is_malformed() {
        let pairs = format!("[{}]", vec!["[0,0]"; 10_000].join(","));
        assert!(matches!(
            parse(pairs.as_bytes(), pairs.len() * 16),
            Err(TreeError::TooLarge)
        ));
        let objects = format!("[{}]", vec![r#"{"":0}"#; 10_000].join(","));
        assert!(matches!(
            parse(objects.as_bytes(), objects.len() * 16),
            Err(TreeError::TooLarge)
        ));
        assert!(matches!(
            parse(b"{\"a\": ", 1 << 20),
            Err(TreeError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"[] x", 1 << 20),
            Err(TreeError::Malformed(_))
        ));
    }
}
