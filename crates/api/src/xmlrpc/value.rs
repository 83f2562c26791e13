//! XML-RPC values and how they map to and from JSON.
//!
//! [`XmlValue`] keeps every XML-RPC type apart, so a body parses and writes
//! back without loss. Methods work on JSON ([`serde_json::Value`]), and the
//! mapping is:
//!
//! | XML-RPC | JSON | back to XML-RPC |
//! |---|---|---|
//! | `int`, `i4`, `i8` (also `i1`, `i2`, `bigint`) | integer | `int` when it fits 32 bits, else `i8` |
//! | `boolean` | `true`/`false` | `boolean` |
//! | `string`, untyped `<value>text</value>` | string | `string` |
//! | `double` | number | `double` (integers beyond `i64` too) |
//! | `dateTime.iso8601` | string, the text as sent (`20240102T03:04:05`) | `string` |
//! | `base64` | string, the bytes in standard base64 | `string` |
//! | `struct` | object | `struct` |
//! | `array` | array | `array` |
//! | `nil`, `ex:nil` | `null` | `nil` |
//!
//! So date-times and bytes reach methods as strings with their content
//! intact; ToMaTo's API passes times as epoch numbers and files through
//! upload grants, so neither type carries meaning there.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Number, Value};

/// One XML-RPC value.
#[derive(Clone, Debug, PartialEq)]
pub enum XmlValue {
    /// `<int>`, `<i4>` or `<i8>`.
    Int(i64),
    /// `<boolean>` (`0` or `1`).
    Bool(bool),
    /// `<string>` or an untyped value.
    String(String),
    /// `<double>`, always finite.
    Double(f64),
    /// `<dateTime.iso8601>`, the text as sent (checked to look like
    /// `YYYYMMDDTHH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, optionally with more).
    DateTime(String),
    /// `<base64>`, decoded.
    Base64(Vec<u8>),
    /// `<struct>`; a name given twice keeps the last value, as Python does.
    Struct(BTreeMap<String, XmlValue>),
    /// `<array>`.
    Array(Vec<XmlValue>),
    /// `<nil/>` (also spelled `<ex:nil/>`): Python's `None`.
    Nil,
}

impl XmlValue {
    /// The value as JSON (see the module doc for the mapping).
    pub fn to_json(&self) -> Value {
        match self {
            XmlValue::Int(i) => Value::Number((*i).into()),
            XmlValue::Bool(b) => Value::Bool(*b),
            XmlValue::String(s) | XmlValue::DateTime(s) => Value::String(s.clone()),
            // A parsed double is finite, so from_f64 holds; Null stays
            // unreachable rather than a panic.
            XmlValue::Double(d) => Number::from_f64(*d).map_or(Value::Null, Value::Number),
            XmlValue::Base64(bytes) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            XmlValue::Struct(members) => Value::Object(members.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            XmlValue::Array(items) => Value::Array(items.iter().map(XmlValue::to_json).collect()),
            XmlValue::Nil => Value::Null,
        }
    }

    /// A JSON value as XML-RPC (see the module doc for the mapping).
    pub fn from_json(value: &Value) -> XmlValue {
        match value {
            Value::Null => XmlValue::Nil,
            Value::Bool(b) => XmlValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => XmlValue::Int(i),
                // u64 beyond i64 or a float: XML-RPC has no wider integer.
                None => XmlValue::Double(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => XmlValue::String(s.clone()),
            Value::Array(items) => XmlValue::Array(items.iter().map(XmlValue::from_json).collect()),
            Value::Object(members) => {
                XmlValue::Struct(members.iter().map(|(k, v)| (k.clone(), XmlValue::from_json(v))).collect())
            }
        }
    }
}

/// Splits call parameters by ToMaTo's convention: exactly two parameters, a
/// list and a struct, are positional and keyword arguments (what ToMaTo's
/// Python client always sends); anything else is positional arguments only.
pub fn split_args(params: &[XmlValue]) -> (Vec<Value>, Map<String, Value>) {
    match params {
        [XmlValue::Array(args), XmlValue::Struct(kwargs)] => (
            args.iter().map(XmlValue::to_json).collect(),
            kwargs.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
        ),
        _ => (params.iter().map(XmlValue::to_json).collect(), Map::new()),
    }
}

/// The reverse of [`split_args`]: what a ToMaTo-style client sends for
/// `method(*args, **kwargs)`, always the `[list, struct]` pair.
pub fn join_args(args: &[Value], kwargs: &Map<String, Value>) -> Vec<XmlValue> {
    vec![
        XmlValue::Array(args.iter().map(XmlValue::from_json).collect()),
        XmlValue::Struct(kwargs.iter().map(|(k, v)| (k.clone(), XmlValue::from_json(v))).collect()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_mapping_follows_the_table() {
        let value = XmlValue::Struct(BTreeMap::from([
            ("i".into(), XmlValue::Int(-3)),
            ("b".into(), XmlValue::Bool(true)),
            ("d".into(), XmlValue::Double(2.5)),
            ("t".into(), XmlValue::DateTime("20240102T03:04:05".into())),
            ("x".into(), XmlValue::Base64(b"hi\0".to_vec())),
            ("n".into(), XmlValue::Nil),
            ("a".into(), XmlValue::Array(vec![XmlValue::String("s".into())])),
        ]));
        assert_eq!(
            value.to_json(),
            json!({"i": -3, "b": true, "d": 2.5, "t": "20240102T03:04:05", "x": "aGkA", "n": null, "a": ["s"]})
        );
        assert_eq!(XmlValue::from_json(&json!(u64::MAX)), XmlValue::Double(u64::MAX as f64));
        assert_eq!(XmlValue::from_json(&json!(2.0)), XmlValue::Double(2.0));
        assert_eq!(XmlValue::from_json(&json!(2)), XmlValue::Int(2));
    }

    #[test]
    fn tomato_convention_splits_only_list_then_struct() {
        let pair = join_args(&[json!(1)], &json!({"full": true}).as_object().cloned().unwrap_or_default());
        assert_eq!(split_args(&pair), (vec![json!(1)], json!({"full": true}).as_object().cloned().unwrap_or_default()));
        let plain = [XmlValue::Int(1), XmlValue::String("x".into())];
        assert_eq!(split_args(&plain), (vec![json!(1), json!("x")], Map::new()));
        // A struct then a list is two positional arguments.
        let reversed = [XmlValue::Struct(BTreeMap::new()), XmlValue::Array(vec![])];
        assert_eq!(split_args(&reversed), (vec![json!({}), json!([])], Map::new()));
        let one_list = [XmlValue::Array(vec![XmlValue::Int(1)])];
        assert_eq!(split_args(&one_list), (vec![json!([1])], Map::new()));
    }
}
