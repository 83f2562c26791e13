//! Attribute and action schemas as data.
//!
//! A kind's attributes and actions are described here once; validation, the
//! `capabilities` API (in ToMaTo's shape) and the generated documentation all
//! read the same values, so they cannot disagree.

use std::net::{Ipv4Addr, Ipv6Addr};

use regex::Regex;
use serde_json::{Value, json};

use crate::state::{State, list_states};

/// What values an attribute (or action parameter) accepts.
#[derive(Clone, Debug)]
pub enum ValueSchema {
    /// `true` or `false`.
    Bool,
    /// A whole number in `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A number in `min..=max` (whole numbers are accepted too).
    Float {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// Free text up to `max_len` characters, optionally matching a pattern.
    Text {
        /// Longest allowed text, in characters.
        max_len: usize,
        /// A pattern the whole text must match.
        pattern: Option<Pattern>,
    },
    /// An IPv4 address with prefix length, `10.0.0.1/24`.
    Ip4Cidr,
    /// An IPv6 address with prefix length, `fd00::1/64`.
    Ip6Cidr,
    /// A plain IPv4 address (a gateway).
    Ip4,
    /// A plain IPv6 address (a gateway).
    Ip6,
    /// An Ethernet address, `02:00:00:00:00:01`.
    Mac,
    /// `host:port`, the far end of a UDP tunnel.
    HostPort,
    /// A list whose items all match the inner schema.
    List(Box<ValueSchema>),
    /// Any JSON object (client data, structured settings).
    Map,
}

/// A regular expression with the source text it was built from.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: &'static str,
    regex: Regex,
}

impl Pattern {
    /// Builds a pattern that must match the whole text.
    pub fn new(source: &'static str) -> Pattern {
        let regex = Regex::new(&format!("^(?:{source})$")).expect("schema patterns are constants");
        Pattern { source, regex }
    }

    /// Whether the whole text matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The pattern as written, without anchors.
    pub fn source(&self) -> &'static str {
        self.source
    }
}

impl ValueSchema {
    /// Checks a (non-null) value; the error says what is wrong with it.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        match (self, value) {
            (ValueSchema::Bool, Value::Bool(_)) => Ok(()),
            (ValueSchema::Int { min, max }, Value::Number(n)) => {
                let Some(v) = as_whole_number(n) else {
                    return Err("is not a whole number".into());
                };
                if v < *min || v > *max {
                    return Err("is out of range".into());
                }
                Ok(())
            }
            (ValueSchema::Float { min, max }, Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if !(v >= *min && v <= *max) {
                    return Err("is out of range".into());
                }
                Ok(())
            }
            (ValueSchema::Choice(options), Value::String(s)) => {
                if options.contains(&s.as_str()) {
                    Ok(())
                } else {
                    Err("is not one of the options".into())
                }
            }
            (ValueSchema::Text { max_len, pattern }, Value::String(s)) => {
                if s.chars().count() > *max_len {
                    return Err(format!("is longer than {max_len} characters"));
                }
                if let Some(p) = pattern
                    && !p.regex.is_match(s)
                {
                    return Err("does not match the pattern".into());
                }
                Ok(())
            }
            (ValueSchema::Ip4Cidr, Value::String(s)) => check_cidr(s, 32, |a| a.parse::<Ipv4Addr>().is_ok()),
            (ValueSchema::Ip6Cidr, Value::String(s)) => check_cidr(s, 128, |a| a.parse::<Ipv6Addr>().is_ok()),
            (ValueSchema::Ip4, Value::String(s)) => {
                s.parse::<Ipv4Addr>().map(|_| ()).map_err(|_| "is not an IPv4 address".into())
            }
            (ValueSchema::Ip6, Value::String(s)) => {
                s.parse::<Ipv6Addr>().map(|_| ()).map_err(|_| "is not an IPv6 address".into())
            }
            (ValueSchema::Mac, Value::String(s)) => {
                if is_mac(s) {
                    Ok(())
                } else {
                    Err("is not an Ethernet address".into())
                }
            }
            (ValueSchema::HostPort, Value::String(s)) => check_host_port(s),
            (ValueSchema::List(inner), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    inner.check(item).map_err(|e| format!("item {i} ({item}) {e}"))?;
                }
                Ok(())
            }
            (ValueSchema::Map, Value::Object(_)) => Ok(()),
            _ => Err(format!("is {}", type_name(value))),
        }
    }

    /// A sentence fragment naming the allowed values, for error messages.
    pub fn allowed(&self, unit: Option<&str>) -> String {
        let unit = unit.map(|u| format!(" {u}")).unwrap_or_default();
        match self {
            ValueSchema::Bool => "true or false".into(),
            ValueSchema::Int { min, max } => format!("a whole number from {min} to {max}{unit}"),
            ValueSchema::Float { min, max } => format!("a number from {min} to {max}{unit}"),
            ValueSchema::Choice(options) => format!("one of: {}", options.join(", ")),
            ValueSchema::Text { max_len, pattern: None } => format!("text of at most {max_len} characters"),
            ValueSchema::Text { max_len, pattern: Some(p) } => {
                format!("text matching `{}` (at most {max_len} characters)", p.source)
            }
            ValueSchema::Ip4Cidr => "an IPv4 address with prefix length, like 10.0.0.1/24".into(),
            ValueSchema::Ip6Cidr => "an IPv6 address with prefix length, like fd00::1/64".into(),
            ValueSchema::Ip4 => "an IPv4 address, like 10.0.0.254".into(),
            ValueSchema::Ip6 => "an IPv6 address, like fd00::fe".into(),
            ValueSchema::Mac => "an Ethernet address, like 02:00:00:00:00:01".into(),
            ValueSchema::HostPort => "host:port, like 192.0.2.1:4789".into(),
            ValueSchema::List(inner) => format!("a list of {}", inner.allowed(None)),
            ValueSchema::Map => "a map (object)".into(),
        }
    }

    /// ToMaTo's type names for this schema (`types` in `value_schema`).
    pub fn type_names(&self) -> Vec<&'static str> {
        match self {
            ValueSchema::Bool => vec!["bool"],
            ValueSchema::Int { .. } => vec!["int"],
            ValueSchema::Float { .. } => vec!["int", "float"],
            ValueSchema::List(_) => vec!["list"],
            ValueSchema::Map => vec!["map"],
            _ => vec!["string"],
        }
    }

    /// The schema in ToMaTo's `value_schema` shape.
    pub fn describe(&self, unit: Option<&str>, nullable: bool) -> Value {
        let mut d = json!({ "types": self.type_names(), "null": nullable });
        let obj = d.as_object_mut().expect("built as an object");
        match self {
            ValueSchema::Int { min, max } => {
                obj.insert("min_value".into(), json!(min));
                obj.insert("max_value".into(), json!(max));
            }
            ValueSchema::Float { min, max } => {
                obj.insert("min_value".into(), json!(min));
                obj.insert("max_value".into(), json!(max));
            }
            ValueSchema::Choice(options) => {
                obj.insert("options".into(), json!(options));
            }
            ValueSchema::Text { max_len, pattern } => {
                obj.insert("max_length".into(), json!(max_len));
                if let Some(p) = pattern {
                    obj.insert("regex".into(), json!(p.source));
                }
            }
            ValueSchema::List(inner) => {
                obj.insert("items".into(), inner.describe(None, false));
            }
            ValueSchema::Ip4Cidr
            | ValueSchema::Ip6Cidr
            | ValueSchema::Ip4
            | ValueSchema::Ip6
            | ValueSchema::Mac
            | ValueSchema::HostPort => {
                obj.insert("format".into(), json!(self.format_name()));
            }
            ValueSchema::Bool | ValueSchema::Map => {}
        }
        if matches!(self, ValueSchema::Int { .. } | ValueSchema::Float { .. }) {
            obj.insert("unit".into(), json!(unit));
        }
        d
    }

    fn format_name(&self) -> &'static str {
        match self {
            ValueSchema::Ip4Cidr => "ipv4-cidr",
            ValueSchema::Ip6Cidr => "ipv6-cidr",
            ValueSchema::Ip4 => "ipv4",
            ValueSchema::Ip6 => "ipv6",
            ValueSchema::Mac => "mac",
            ValueSchema::HostPort => "host-port",
            _ => "",
        }
    }
}

/// The whole-number value of a JSON number (`3` or `3.0`), if it has one.
fn as_whole_number(n: &serde_json::Number) -> Option<i64> {
    if let Some(v) = n.as_i64() {
        return Some(v);
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn check_cidr(s: &str, max_prefix: u8, addr_ok: impl Fn(&str) -> bool) -> Result<(), String> {
    let Some((addr, prefix)) = s.split_once('/') else {
        return Err("has no prefix length (like /24)".into());
    };
    if !addr_ok(addr) {
        return Err("is not a valid address".into());
    }
    match prefix.parse::<u8>() {
        Ok(p) if p <= max_prefix => Ok(()),
        _ => Err(format!("has a prefix length outside 0..={max_prefix}")),
    }
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn check_host_port(s: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err("has no :port".into());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.chars().any(|c| c.is_whitespace()) {
        return Err("has no host".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("has a port outside 1..=65535".into()),
    }
}

/// A short name of a JSON value's type, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// One attribute of a kind.
#[derive(Clone, Debug)]
pub struct AttrSpec {
    /// The API name, `delay_to`.
    pub name: String,
    /// A short human label, `Delay (to A)`.
    pub label: String,
    /// What the attribute does.
    pub description: String,
    /// Allowed values.
    pub schema: ValueSchema,
    /// Unit of numbers, `ms`, `kbit/s`, `%`, `MB`.
    pub unit: Option<&'static str>,
    /// The value used when none is given (`null` when there is none).
    pub default: Value,
    /// Whether `null` is an allowed value.
    pub nullable: bool,
    /// States in which the attribute may be set or changed; empty means read-only.
    pub writable_in: Vec<State>,
}

impl AttrSpec {
    /// A read-only attribute with no default; use the builder methods to refine it.
    pub fn new(name: impl Into<String>, label: impl Into<String>, schema: ValueSchema) -> AttrSpec {
        AttrSpec {
            name: name.into(),
            label: label.into(),
            description: String::new(),
            schema,
            unit: None,
            default: Value::Null,
            nullable: false,
            writable_in: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn about(mut self, description: impl Into<String>) -> AttrSpec {
        self.description = description.into();
        self
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: &'static str) -> AttrSpec {
        self.unit = Some(unit);
        self
    }

    /// Sets the default value.
    pub fn default(mut self, value: Value) -> AttrSpec {
        self.default = value;
        self
    }

    /// Allows `null`.
    pub fn nullable(mut self) -> AttrSpec {
        self.nullable = true;
        self
    }

    /// Sets the states in which the attribute may be changed.
    pub fn writable(mut self, states: &[State]) -> AttrSpec {
        self.writable_in = states.to_vec();
        self
    }

    /// Whether the attribute can never be set by a user.
    pub fn read_only(&self) -> bool {
        self.writable_in.is_empty()
    }

    /// Whether the attribute can be changed while the component runs.
    pub fn live(&self) -> bool {
        self.writable_in.contains(&State::Started)
    }

    /// Checks a value against the schema, including `null`.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        if value.is_null() {
            return if self.nullable { Ok(()) } else { Err("is null".into()) };
        }
        self.schema.check(value)
    }

    /// The allowed values as a sentence fragment.
    pub fn allowed(&self) -> String {
        let base = self.schema.allowed(self.unit);
        if self.nullable { format!("{base}, or null") } else { base }
    }

    /// The attribute in ToMaTo's capabilities shape.
    pub fn describe(&self) -> Value {
        json!({
            "default": self.default,
            "label": self.label,
            "description": self.description,
            "read_only": self.read_only(),
            "value_schema": self.schema.describe(self.unit, self.nullable),
            "states_writable": self.writable_in.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        })
    }
}

/// One parameter of an action.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    /// Parameter name.
    pub name: &'static str,
    /// Allowed values.
    pub schema: ValueSchema,
    /// Whether the parameter must be given.
    pub required: bool,
}

/// One action of a kind, with the states it runs in and the state it leads to.
#[derive(Clone, Debug)]
pub struct ActionSpec {
    /// The API name, `prepare` or `(remove)`.
    pub name: &'static str,
    /// What the action does.
    pub description: &'static str,
    /// States in which the action may run.
    pub allowed_in: Vec<State>,
    /// The state after the action, if it changes the state.
    pub leads_to: Option<State>,
    /// Parameters.
    pub params: Vec<ParamSpec>,
}

/// The name ToMaTo uses for removing a component.
pub const REMOVE: &str = "(remove)";

impl ActionSpec {
    /// An action allowed in `allowed_in` that moves to `leads_to`.
    pub fn new(
        name: &'static str,
        description: &'static str,
        allowed_in: &[State],
        leads_to: Option<State>,
    ) -> ActionSpec {
        ActionSpec { name, description, allowed_in: allowed_in.to_vec(), leads_to, params: Vec::new() }
    }

    /// Adds a parameter.
    pub fn param(mut self, name: &'static str, schema: ValueSchema, required: bool) -> ActionSpec {
        self.params.push(ParamSpec { name, schema, required });
        self
    }

    /// The action in ToMaTo's capabilities shape.
    pub fn describe(&self) -> Value {
        let param_schema = if self.params.is_empty() {
            Value::Null
        } else {
            let items: serde_json::Map<String, Value> =
                self.params.iter().map(|p| (p.name.to_string(), p.schema.describe(None, !p.required))).collect();
            let required: Vec<&str> = self.params.iter().filter(|p| p.required).map(|p| p.name).collect();
            json!({ "types": ["map"], "null": false, "items": items, "required": required, "additional": false })
        };
        json!({
            "allowed_states": self.allowed_in.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "state_change": self.leads_to.map(|s| s.as_str()),
            "param_schema": param_schema,
            "description": self.description,
        })
    }

    /// A sentence fragment naming the allowed states, for messages.
    pub fn allowed_states(&self) -> String {
        list_states(&self.allowed_in)
    }
}
