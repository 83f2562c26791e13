//! Method tables and the argument binder shared by every transport.
//!
//! A [`Table`] lists [`Method`]s: a name, a one-line doc, who may call it
//! ([`Access`]) and its [`Param`]s in order, each with a [`Kind`] and, when
//! optional, a [`Fallback`]. [`Table::bind`] turns a call's positional and
//! keyword arguments (Python's `f(*args, **kwargs)`, which ToMaTo's
//! transports carry) into a [`Bound`] call with every parameter named,
//! checked and defaulted, or a [`BindError`] that names the method, the
//! parameter and what it accepts. The binder knows no method by name, so the
//! backend's table ([`crate::backend::BACKEND`]) and the hostmanager's can
//! share it.

use std::fmt;

use rpc::RpcError;
use rpc::jsonrpc::kind;
use serde_json::{Map, Value};

/// Who may call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, also without credentials (ToMaTo: `server_info`, the public
    /// lists of sites and hosts, self-registration with `account_create`).
    Anyone,
    /// A logged-in user; without one the call fails with `not_logged_in`
    /// (HTTP 401). Permissions beyond that are the backend's to check.
    User,
}

/// What values a parameter accepts. JSON `null` is never a value of a kind:
/// for an optional parameter it means "not given", for a required one it is
/// an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any value (the method checks it itself).
    Any,
    /// A string.
    Str,
    /// An integer.
    Int,
    /// A number, integer or not.
    Number,
    /// `true` or `false`.
    Bool,
    /// An object id: an integer or a non-empty string (ToMaTo's ids were
    /// strings, ours may be numbers; both spellings are accepted).
    Id,
    /// A map of names to values (XML-RPC struct, JSON object).
    Map,
    /// A list (XML-RPC array, JSON array).
    List,
    /// One of the given strings.
    OneOf(&'static [&'static str]),
}

impl Kind {
    /// Whether `value` (not `null`) is of this kind.
    pub fn accepts(&self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) => false,
            (Kind::Any, _) => true,
            (Kind::Str, Value::String(_)) => true,
            // Integers beyond i64 are refused: no accessor could return them.
            (Kind::Int, Value::Number(n)) => n.is_i64(),
            (Kind::Number, Value::Number(_)) => true,
            (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Id, Value::Number(n)) => n.is_i64(),
            (Kind::Id, Value::String(s)) => !s.is_empty(),
            (Kind::Map, Value::Object(_)) => true,
            (Kind::List, Value::Array(_)) => true,
            (Kind::OneOf(allowed), Value::String(s)) => allowed.contains(&s.as_str()),
            _ => false,
        }
    }

    /// The kind in words, for messages and docs: "a string", "one of
    /// `prepare`, `start`".
    pub fn describe(&self) -> String {
        match self {
            Kind::Any => "any value".into(),
            Kind::Str => "a string".into(),
            Kind::Int => "an integer".into(),
            Kind::Number => "a number".into(),
            Kind::Bool => "true or false".into(),
            Kind::Id => "an id (an integer or a non-empty string)".into(),
            Kind::Map => "a map of names to values (struct)".into(),
            Kind::List => "a list (array)".into(),
            Kind::OneOf(allowed) => {
                let names: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                format!("one of {}", names.join(", "))
            }
        }
    }
}

/// The value an optional parameter takes when it is not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// `None` / `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'static str),
    /// An empty map.
    EmptyMap,
}

impl Fallback {
    /// The default as a JSON value.
    pub fn to_json(self) -> Value {
        match self {
            Fallback::Null => Value::Null,
            Fallback::Bool(b) => Value::Bool(b),
            Fallback::Str(s) => Value::String(s.into()),
            Fallback::EmptyMap => Value::Object(Map::new()),
        }
    }

    /// The default as Python writes it in a signature (`None`, `False`,
    /// `""`, `{}`).
    pub fn python(self) -> String {
        match self {
            Fallback::Null => "None".into(),
            Fallback::Bool(true) => "True".into(),
            Fallback::Bool(false) => "False".into(),
            Fallback::Str(s) => format!("{s:?}"),
            Fallback::EmptyMap => "{}".into(),
        }
    }
}

/// One parameter of a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// The name keyword arguments use (ToMaTo's Python parameter name).
    pub name: &'static str,
    /// The values it accepts.
    pub kind: Kind,
    /// `None` when the parameter is required, otherwise its default.
    pub default: Option<Fallback>,
    /// What it is, in a few words.
    pub doc: &'static str,
}

impl Param {
    /// A required parameter.
    pub const fn required(name: &'static str, kind: Kind, doc: &'static str) -> Param {
        Param { name, kind, default: None, doc }
    }

    /// An optional parameter with its default.
    pub const fn optional(name: &'static str, kind: Kind, default: Fallback, doc: &'static str) -> Param {
        Param { name, kind, default: Some(default), doc }
    }

    /// Whether the call must give this parameter.
    pub const fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// One method of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    /// The name callers use (ToMaTo's, e.g. `topology_info`).
    pub name: &'static str,
    /// The group it belongs to (`topology`, `element`, ...), the OpenAPI tag.
    pub group: &'static str,
    /// What it does, in one line.
    pub doc: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its parameters in positional order.
    pub params: &'static [Param],
}

impl Method {
    /// The signature as Python shows it: `element_create(top, type,
    /// parent=None, attrs=None)`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default {
                None => p.name.to_owned(),
                Some(d) => format!("{}={}", p.name, d.python()),
            })
            .collect();
        format!("{}({})", self.name, params.join(", "))
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    fn param_names(&self) -> String {
        if self.params.is_empty() {
            return "no arguments".into();
        }
        let names: Vec<&str> = self.params.iter().map(|p| p.name).collect();
        names.join(", ")
    }

    /// Binds positional `args` and keyword `kwargs` to this method's
    /// parameters, as Python does for `f(*args, **kwargs)`, and checks each
    /// value's kind. Optional parameters that are not given (or given as
    /// `null`) take their defaults.
    pub fn bind(&'static self, args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Bound, BindError> {
        let method = self.name;
        if args.len() > self.params.len() {
            return Err(BindError::TooManyArguments {
                method,
                takes: self.params.len(),
                given: args.len(),
                params: self.param_names(),
            });
        }
        let mut slots: Vec<Option<Value>> = vec![None; self.params.len()];
        for (slot, value) in slots.iter_mut().zip(args) {
            *slot = Some(value);
        }
        for (name, value) in kwargs {
            let Some(index) = self.params.iter().position(|p| p.name == name) else {
                let suggestion = closest(&name, self.params.iter().map(|p| p.name));
                return Err(BindError::UnknownArgument { method, name, suggestion, params: self.param_names() });
            };
            if slots[index].is_some() {
                return Err(BindError::DuplicateArgument { method, name: self.params[index].name });
            }
            slots[index] = Some(value);
        }
        let mut values = Vec::with_capacity(self.params.len());
        for (param, slot) in self.params.iter().zip(slots) {
            let value = match (slot, param.default) {
                (None | Some(Value::Null), None) => {
                    return Err(BindError::MissingArgument {
                        method,
                        name: param.name,
                        expected: param.kind.describe(),
                    });
                }
                (None | Some(Value::Null), Some(default)) => default.to_json(),
                (Some(value), _) => {
                    if !param.kind.accepts(&value) {
                        return Err(BindError::WrongKind {
                            method,
                            name: param.name,
                            kind: param.kind,
                            found: describe_value(&value),
                        });
                    }
                    value
                }
            };
            values.push(value);
        }
        Ok(Bound { method: self, values })
    }
}

/// A list of methods: what a server offers.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    methods: &'static [Method],
}

impl Table {
    /// A table of `methods` (names must be unique; [`Table::check`] says
    /// whether they are).
    pub const fn new(methods: &'static [Method]) -> Table {
        Table { methods }
    }

    /// Every method, in table order.
    pub fn methods(&self) -> &'static [Method] {
        self.methods
    }

    /// The method called `name`.
    pub fn get(&self, name: &str) -> Option<&'static Method> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The method called `name`, or [`BindError::UnknownMethod`] with the
    /// closest name as a suggestion.
    pub fn find(&self, name: &str) -> Result<&'static Method, BindError> {
        self.get(name).ok_or_else(|| BindError::UnknownMethod {
            method: name.to_owned(),
            suggestion: closest(name, self.methods.iter().map(|m| m.name)),
        })
    }

    /// Finds `name` and binds the arguments ([`Method::bind`]).
    pub fn bind(&self, name: &str, args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Bound, BindError> {
        self.find(name)?.bind(args, kwargs)
    }

    /// Checks the table itself: unique method names, unique parameter names,
    /// required parameters before optional ones (a positional call could
    /// not skip an optional one otherwise), docs present, defaults of the
    /// parameter's kind.
    pub fn check(&self) -> Result<(), String> {
        for (i, m) in self.methods.iter().enumerate() {
            if self.methods[..i].iter().any(|o| o.name == m.name) {
                return Err(format!("{}: listed twice", m.name));
            }
            if m.doc.trim().is_empty() || m.doc.contains('\n') {
                return Err(format!("{}: needs a one-line doc", m.name));
            }
            for (j, p) in m.params.iter().enumerate() {
                if m.params[..j].iter().any(|o| o.name == p.name) {
                    return Err(format!("{}: parameter {} listed twice", m.name, p.name));
                }
                if p.is_required() && m.params[..j].iter().any(|o| !o.is_required()) {
                    return Err(format!("{}: required {} follows an optional parameter", m.name, p.name));
                }
                if p.doc.trim().is_empty() {
                    return Err(format!("{}: parameter {} needs a doc", m.name, p.name));
                }
                if let Some(d) = p.default {
                    let value = d.to_json();
                    if !value.is_null() && !p.kind.accepts(&value) {
                        return Err(format!("{}: default of {} is not {}", m.name, p.name, p.kind.describe()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A call whose arguments are bound to its method's parameters: every
/// parameter has a value (its default when not given), of its kind or
/// `null` for optional ones without a default.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    method: &'static Method,
    values: Vec<Value>,
}

/// An object id as a call gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Id {
    /// Given as an integer.
    Int(i64),
    /// Given as a string.
    Str(String),
}

impl Id {
    /// The id as an integer: an integer, or a string of decimal digits.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Id::Int(i) => Some(*i),
            Id::Str(s) => s.parse().ok(),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(i) => write!(f, "{i}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

impl Bound {
    /// The method called.
    pub fn method(&self) -> &'static Method {
        self.method
    }

    /// The value of parameter `name`; `None` when it is `null` or the
    /// method has no such parameter.
    pub fn value(&self, name: &str) -> Option<&Value> {
        let index = self.method.params.iter().position(|p| p.name == name)?;
        self.values.get(index).filter(|v| !v.is_null())
    }

    fn need(&self, name: &str) -> Result<&Value, BindError> {
        self.value(name).ok_or_else(|| BindError::MissingArgument {
            method: self.method.name,
            name: self.method.param(name).map_or("(unknown parameter)", |p| p.name),
            expected: self.method.param(name).map_or_else(|| "a parameter of the method".into(), |p| p.kind.describe()),
        })
    }

    fn wrong(&self, name: &str, kind: Kind, value: &Value) -> BindError {
        BindError::WrongKind {
            method: self.method.name,
            name: self.method.param(name).map_or("(unknown parameter)", |p| p.name),
            kind,
            found: describe_value(value),
        }
    }

    /// A string parameter (also for [`Kind::OneOf`]).
    pub fn str(&self, name: &str) -> Result<&str, BindError> {
        let value = self.need(name)?;
        value.as_str().ok_or_else(|| self.wrong(name, Kind::Str, value))
    }

    /// An optional string parameter.
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, BindError> {
        self.value(name).map(|_| self.str(name)).transpose()
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<i64, BindError> {
        let value = self.need(name)?;
        value.as_i64().ok_or_else(|| self.wrong(name, Kind::Int, value))
    }

    /// An optional integer parameter.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, BindError> {
        self.value(name).map(|_| self.int(name)).transpose()
    }

    /// A number parameter.
    pub fn number(&self, name: &str) -> Result<f64, BindError> {
        let value = self.need(name)?;
        value.as_f64().ok_or_else(|| self.wrong(name, Kind::Number, value))
    }

    /// A boolean parameter; `false` when it is `null`.
    pub fn flag(&self, name: &str) -> Result<bool, BindError> {
        match self.value(name) {
            None => Ok(false),
            Some(value) => value.as_bool().ok_or_else(|| self.wrong(name, Kind::Bool, value)),
        }
    }

    /// An id parameter.
    pub fn id(&self, name: &str) -> Result<Id, BindError> {
        let value = self.need(name)?;
        match value {
            Value::String(s) if !s.is_empty() => Ok(Id::Str(s.clone())),
            Value::Number(n) => n.as_i64().map(Id::Int).ok_or_else(|| self.wrong(name, Kind::Id, value)),
            _ => Err(self.wrong(name, Kind::Id, value)),
        }
    }

    /// An optional id parameter.
    pub fn opt_id(&self, name: &str) -> Result<Option<Id>, BindError> {
        self.value(name).map(|_| self.id(name)).transpose()
    }

    /// A map parameter; empty when it is `null`.
    pub fn map(&self, name: &str) -> Result<Map<String, Value>, BindError> {
        match self.value(name) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(value) => Err(self.wrong(name, Kind::Map, value)),
        }
    }

    /// All parameters by name (defaults included), for dispatchers that
    /// pass them on whole.
    pub fn into_map(self) -> Map<String, Value> {
        self.method.params.iter().map(|p| p.name.to_owned()).zip(self.values).collect()
    }
}

/// Why a call could not be bound to a method.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BindError {
    /// No method of that name.
    #[error("no method `{method}`{}", match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => "; system.listMethods lists the methods".into(),
    })]
    UnknownMethod {
        /// The name called.
        method: String,
        /// The closest name in the table, if one is close.
        suggestion: Option<&'static str>,
    },
    /// More positional arguments than parameters.
    #[error("{method}: takes {takes} arguments ({params}), got {given}")]
    TooManyArguments {
        /// The method.
        method: &'static str,
        /// How many parameters it has.
        takes: usize,
        /// How many positional arguments came.
        given: usize,
        /// Its parameter names.
        params: String,
    },
    /// A keyword argument the method does not have.
    #[error("{method}: no parameter `{name}`{}; it takes {params}", match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    })]
    UnknownArgument {
        /// The method.
        method: &'static str,
        /// The keyword given.
        name: String,
        /// The closest parameter name, if one is close.
        suggestion: Option<&'static str>,
        /// Its parameter names.
        params: String,
    },
    /// An argument given both by position and by keyword.
    #[error("{method}: `{name}` is given twice, by position and by keyword")]
    DuplicateArgument {
        /// The method.
        method: &'static str,
        /// The parameter.
        name: &'static str,
    },
    /// A required argument missing or `null`.
    #[error("{method}: `{name}` is missing; it must be {expected}")]
    MissingArgument {
        /// The method.
        method: &'static str,
        /// The parameter.
        name: &'static str,
        /// What it accepts, in words.
        expected: String,
    },
    /// An argument of the wrong kind.
    #[error("{method}: `{name}` must be {}, not {found}", kind.describe())]
    WrongKind {
        /// The method.
        method: &'static str,
        /// The parameter.
        name: &'static str,
        /// What it accepts.
        kind: Kind,
        /// What came, in words.
        found: String,
    },
}

impl From<BindError> for RpcError {
    /// An unknown method is `unknown_method` (404); every other binding error
    /// is `invalid_value` (400) with `data` naming the method, the parameter
    /// and, for [`Kind::OneOf`], the allowed values.
    fn from(error: BindError) -> RpcError {
        let message = error.to_string();
        match error {
            BindError::UnknownMethod { method, suggestion } => RpcError::new(kind::UNKNOWN_METHOD, message)
                .with_data(serde_json::json!({"method": method, "suggestion": suggestion})),
            BindError::TooManyArguments { method, takes, given, .. } => RpcError::invalid_value(message)
                .with_data(serde_json::json!({"method": method, "takes": takes, "given": given})),
            BindError::UnknownArgument { method, name, suggestion, .. } => RpcError::invalid_value(message)
                .with_data(serde_json::json!({"method": method, "parameter": name, "suggestion": suggestion})),
            BindError::DuplicateArgument { method, name } | BindError::MissingArgument { method, name, .. } => {
                RpcError::invalid_value(message).with_data(serde_json::json!({"method": method, "parameter": name}))
            }
            BindError::WrongKind { method, name, kind, .. } => {
                let mut data = serde_json::json!({"method": method, "parameter": name, "expected": kind.describe()});
                if let Kind::OneOf(allowed) = kind {
                    data["allowed"] = serde_json::json!(allowed);
                }
                RpcError::invalid_value(message).with_data(data)
            }
        }
    }
}

/// A value in words for messages: its JSON type and, when short, itself.
fn describe_value(value: &Value) -> String {
    let what = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    };
    let text = value.to_string();
    if text.chars().count() <= 40 { format!("{what} {text}") } else { what.to_owned() }
}

/// The candidate closest to `name` by edit distance (case-insensitive, `.`
/// and `-` read as `_`), if it is close enough to be a typo: at most a third
/// of the name's length, and at least 1 and at most 3 edits.
pub fn closest(name: &str, candidates: impl IntoIterator<Item = &'static str>) -> Option<&'static str> {
    let wanted: Vec<char> =
        name.chars().map(|c| if c == '.' || c == '-' { '_' } else { c.to_ascii_lowercase() }).collect();
    let limit = (wanted.len() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&wanted, &c.chars().collect::<Vec<_>>()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACTIONS: &[&str] = &["start", "stop"];
    static METHODS: &[Method] = &[
        Method {
            name: "thing_create",
            group: "thing",
            doc: "Creates a thing.",
            access: Access::User,
            params: &[
                Param::required("top", Kind::Id, "the topology"),
                Param::required("type", Kind::Str, "the type"),
                Param::optional("parent", Kind::Id, Fallback::Null, "the parent"),
                Param::optional("attrs", Kind::Map, Fallback::EmptyMap, "attributes"),
            ],
        },
        Method {
            name: "thing_action",
            group: "thing",
            doc: "Runs an action.",
            access: Access::User,
            params: &[
                Param::required("id", Kind::Id, "the thing"),
                Param::required("action", Kind::OneOf(ACTIONS), "the action"),
                Param::optional("full", Kind::Bool, Fallback::Bool(false), "all of it"),
                Param::optional("count", Kind::Int, Fallback::Null, "how many"),
            ],
        },
    ];
    const TABLE: Table = Table::new(METHODS);

    fn kw(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn binds_positional_and_keyword_arguments_with_defaults() {
        let b =
            TABLE.bind("thing_create", vec![json!(1), json!("container")], kw(&[("attrs", json!({"a": 1}))])).unwrap();
        assert_eq!(b.id("top").unwrap(), Id::Int(1));
        assert_eq!(b.str("type").unwrap(), "container");
        assert_eq!(b.opt_id("parent").unwrap(), None);
        assert_eq!(b.map("attrs").unwrap()["a"], json!(1));
        let b = TABLE.bind("thing_action", vec![], kw(&[("id", json!("ab12")), ("action", json!("stop"))])).unwrap();
        assert_eq!(b.id("id").unwrap(), Id::Str("ab12".into()));
        assert!(!b.flag("full").unwrap());
        assert_eq!(b.opt_int("count").unwrap(), None);
        assert_eq!(
            b.clone().into_map(),
            kw(&[("id", json!("ab12")), ("action", json!("stop")), ("full", json!(false)), ("count", Value::Null)])
        );
        // null for an optional parameter means "not given".
        let b = TABLE.bind("thing_action", vec![json!(3), json!("start"), Value::Null, json!(7)], Map::new()).unwrap();
        assert!(!b.flag("full").unwrap());
        assert_eq!(b.int("count").unwrap(), 7);
        assert_eq!(Id::Str("12".into()).as_int(), Some(12));
        assert!(!Kind::Int.accepts(&json!(u64::MAX)) && !Kind::Id.accepts(&json!(u64::MAX)));
        assert_eq!(Id::Str("x".into()).as_int(), None);
    }

    #[test]
    fn errors_name_method_parameter_and_allowed_values() {
        let message = |r: Result<Bound, BindError>| r.expect_err("must fail").to_string();
        assert_eq!(
            message(TABLE.bind("thing_craete", vec![], Map::new())),
            "no method `thing_craete`; did you mean `thing_create`?"
        );
        assert_eq!(
            message(TABLE.bind("nothing_like_it", vec![], Map::new())),
            "no method `nothing_like_it`; system.listMethods lists the methods"
        );
        assert_eq!(
            message(TABLE.bind("thing_create", vec![json!(1); 5], Map::new())),
            "thing_create: takes 4 arguments (top, type, parent, attrs), got 5"
        );
        assert_eq!(
            message(TABLE.bind("thing_create", vec![json!(1), json!("x")], kw(&[("atrs", json!({}))]))),
            "thing_create: no parameter `atrs` (did you mean `attrs`?); it takes top, type, parent, attrs"
        );
        assert_eq!(
            message(TABLE.bind("thing_create", vec![json!(1), json!("x")], kw(&[("top", json!(2))]))),
            "thing_create: `top` is given twice, by position and by keyword"
        );
        assert_eq!(
            message(TABLE.bind("thing_create", vec![json!(1)], Map::new())),
            "thing_create: `type` is missing; it must be a string"
        );
        assert_eq!(
            message(TABLE.bind("thing_create", vec![Value::Null, json!("x")], Map::new())),
            "thing_create: `top` is missing; it must be an id (an integer or a non-empty string)"
        );
        assert_eq!(
            message(TABLE.bind("thing_action", vec![json!(1), json!("explode")], Map::new())),
            "thing_action: `action` must be one of `start`, `stop`, not a string \"explode\""
        );
        assert_eq!(
            message(TABLE.bind("thing_action", vec![json!(1), json!("stop"), json!("yes")], Map::new())),
            "thing_action: `full` must be true or false, not a string \"yes\""
        );
        assert_eq!(
            message(TABLE.bind("thing_action", vec![json!(1), json!("stop"), json!(true), json!(1.5)], Map::new())),
            "thing_action: `count` must be an integer, not a number 1.5"
        );
        assert_eq!(
            message(TABLE.bind("thing_create", vec![json!(""), json!("x")], Map::new())),
            "thing_create: `top` must be an id (an integer or a non-empty string), not a string \"\""
        );
        let long = json!({"a": "a rather long value that is not shown in full"});
        assert_eq!(
            message(TABLE.bind("thing_create", vec![long, json!("x")], Map::new())),
            "thing_create: `top` must be an id (an integer or a non-empty string), not a map"
        );
    }

    #[test]
    fn bind_errors_become_rpc_errors_with_data() {
        let e: RpcError = TABLE.bind("thing_lst", vec![], Map::new()).expect_err("unknown").into();
        assert_eq!(e.kind, kind::UNKNOWN_METHOD);
        assert_eq!(e.http_status().as_u16(), 404);
        assert_eq!(e.data["suggestion"], json!(null));
        let e: RpcError = TABLE.bind("thing_action", vec![json!(1), json!("go")], Map::new()).expect_err("kind").into();
        assert_eq!(e.kind, kind::INVALID_VALUE);
        assert_eq!(e.http_status().as_u16(), 400);
        assert_eq!(
            e.data,
            json!({"method": "thing_action", "parameter": "action", "expected": "one of `start`, `stop`", "allowed": ["start", "stop"]})
        );
    }

    #[test]
    fn signatures_read_like_python() {
        assert_eq!(METHODS[0].signature(), "thing_create(top, type, parent=None, attrs={})");
        assert_eq!(METHODS[1].signature(), "thing_action(id, action, full=False, count=None)");
        assert_eq!(TABLE.check(), Ok(()));
    }

    #[test]
    fn check_finds_table_mistakes() {
        static BAD: &[Method] = &[Method {
            name: "m",
            group: "g",
            doc: "Does.",
            access: Access::Anyone,
            params: &[Param::optional("a", Kind::Str, Fallback::Null, "a"), Param::required("b", Kind::Str, "b")],
        }];
        assert_eq!(Table::new(BAD).check(), Err("m: required b follows an optional parameter".into()));
        static BAD_DEFAULT: &[Method] = &[Method {
            name: "m",
            group: "g",
            doc: "Does.",
            access: Access::Anyone,
            params: &[Param::optional("a", Kind::Int, Fallback::Str("x"), "a")],
        }];
        assert_eq!(Table::new(BAD_DEFAULT).check(), Err("m: default of a is not an integer".into()));
        static TWICE: &[Method] = &[
            Method { name: "m", group: "g", doc: "Does.", access: Access::Anyone, params: &[] },
            Method { name: "m", group: "g", doc: "Does.", access: Access::Anyone, params: &[] },
        ];
        assert_eq!(Table::new(TWICE).check(), Err("m: listed twice".into()));
    }

    #[test]
    fn closest_names_are_typos_only() {
        let names = ["topology_list", "topology_info", "element_info"];
        assert_eq!(closest("topology_lst", names), Some("topology_list"));
        assert_eq!(closest("Topology_Info", names), Some("topology_info"));
        assert_eq!(closest("topology.info", names), Some("topology_info"));
        assert_eq!(closest("host_list", names), None);
        assert_eq!(closest("", names), None);
    }
}
