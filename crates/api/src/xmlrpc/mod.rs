//! XML-RPC as ToMaTo speaks it (Python's `xmlrpc.client` with
//! `allow_none=True`).
//!
//! - Calls: [`parse_call`] reads a `methodCall` into a [`Call`];
//!   [`Call::args_kwargs`] applies ToMaTo's convention that exactly two
//!   parameters `[list, struct]` are positional and keyword arguments (what
//!   ToMaTo's client always sends), while any other parameter list is
//!   positional (what a plain `ServerProxy` sends).
//! - Answers: [`write_response`] writes a method's result (`null` becomes
//!   `<nil/>`) or its error as a fault: `Fault(999, JSON{type, code,
//!   message, data, module})` like ToMaTo, except an unknown method, which
//!   is `Fault(26, text)` as ToMaTo answered it. A call that needs a login
//!   and has none is not a fault at all: [`unauthorized_status`] gives the
//!   HTTP status ToMaTo used.
//! - Introspection: [`introspect`] answers `system.listMethods`,
//!   `system.methodHelp` and `system.methodSignature` (and ToMaTo's
//!   `_listMethods` spellings) from a method table.
//! - Every type: `int`/`i4`, `i8`, `boolean`, `string` (typed or untyped),
//!   `double`, `dateTime.iso8601`, `base64`, `struct`, `array`, and `nil`
//!   as `<nil/>` or `<ex:nil/>`; [`value`] documents how they map to JSON.
//!
//! The codec is written on quick-xml rather than dxr (which the dependency
//! notes suggest): methods here take and return untyped JSON, which dxr
//! would reach only through its own value model and chrono date-times; our
//! reader must bound body size and nesting before any recursion (fuzzed
//! input), accept namespace-prefixed names such as `<ex:nil/>` as Python
//! does, and write bodies laid out as Python writes them so golden files can
//! compare bytes. That is a few hundred lines over a dependency the
//! workspace already has.

mod parse;
pub mod value;
mod write;

use rpc::RpcError;
use rpc::jsonrpc::kind;
use serde_json::{Map, Value, json};

use crate::method::{Access, Table};

pub use parse::{parse_call, parse_response};
pub use value::{XmlValue, join_args, split_args};
pub use write::{write_call, write_fault, write_value_response};

/// Bounds on what [`parse_call`] and [`parse_response`] accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest body in bytes.
    pub max_bytes: usize,
    /// The deepest element nesting. A value nested in arrays or structs
    /// costs three elements per level (`<value><array><data>`), and a call
    /// wraps its values in three more.
    pub max_depth: usize,
}

impl Limits {
    /// 8 MiB and 100 elements deep (about 30 levels of nested values): well
    /// above what ToMaTo's clients send, including `topology_import`.
    pub const DEFAULT: Limits = Limits { max_bytes: 8 << 20, max_depth: 100 };
}

/// A parsed `methodCall`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The method's name, whitespace trimmed.
    pub method: String,
    /// The parameters in order.
    pub params: Vec<XmlValue>,
}

impl Call {
    /// The call's positional and keyword arguments as JSON, by ToMaTo's
    /// `[list, struct]` convention ([`split_args`]).
    pub fn args_kwargs(&self) -> (Vec<Value>, Map<String, Value>) {
        split_args(&self.params)
    }
}

/// An XML-RPC fault: a code and a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `faultCode`.
    pub code: i64,
    /// `faultString`.
    pub string: String,
}

/// ToMaTo's fault code for every error of a method: the string is the error
/// as JSON.
pub const FAULT_ERROR: i64 = 999;
/// ToMaTo's fault code for an unknown method.
pub const FAULT_NO_SUCH_METHOD: i64 = 26;
/// The `module` ToMaTo's error JSON names; its clients rebuild errors from
/// the JSON's keys, so the key is kept.
pub const MODULE: &str = "backend";

impl Fault {
    /// The fault a server answers `error` with: [`FAULT_NO_SUCH_METHOD`] with
    /// the message for `unknown_method`, otherwise [`FAULT_ERROR`] with
    /// `{"type", "code", "message", "data", "module"}` as JSON.
    pub fn from_error(error: &RpcError) -> Fault {
        if error.kind == kind::UNKNOWN_METHOD {
            return Fault { code: FAULT_NO_SUCH_METHOD, string: error.message.clone() };
        }
        let mut wire = error.to_wire();
        wire["module"] = json!(MODULE);
        Fault { code: FAULT_ERROR, string: wire.to_string() }
    }

    /// The error a client reads from this fault: the JSON of a 999 fault,
    /// `unknown_method` for 26, and `internal` (with `faultCode` in `data`)
    /// for any other fault, such as one from a server that is not ToMaTo.
    pub fn to_error(&self) -> RpcError {
        if self.code == FAULT_ERROR
            && let Some(error) = serde_json::from_str::<Value>(&self.string).ok().as_ref().and_then(RpcError::from_wire)
        {
            return error;
        }
        let kind = if self.code == FAULT_NO_SUCH_METHOD { kind::UNKNOWN_METHOD } else { kind::INTERNAL };
        RpcError::new(kind, self.string.clone()).with_data(json!({"faultCode": self.code}))
    }
}

/// A parsed `methodResponse`.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// The method's result.
    Value(XmlValue),
    /// A fault.
    Fault(Fault),
}

/// Why a body is not XML-RPC.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum XmlRpcError {
    /// The body is larger than [`Limits::max_bytes`].
    #[error("the body has {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Elements nest deeper than [`Limits::max_depth`].
    #[error("at byte {position}: elements nest deeper than the limit of {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Where the limit was passed.
        position: usize,
    },
    /// The body is not UTF-8.
    #[error("at byte {position}: the body is not UTF-8 (XML-RPC bodies here must be)")]
    NotUtf8 {
        /// Where the first bad byte is.
        position: usize,
    },
    /// The body is not well-formed XML.
    #[error("at byte {position}: not well-formed XML: {message}")]
    Syntax {
        /// Where.
        position: usize,
        /// What the XML reader said.
        message: String,
    },
    /// Well-formed XML, but not the XML-RPC structure.
    #[error("at byte {position}: expected {expected}, found {found}")]
    Unexpected {
        /// What XML-RPC requires there.
        expected: String,
        /// What came.
        found: String,
        /// Where.
        position: usize,
    },
    /// A typed value whose text is not of its type.
    #[error("at byte {position}: <{tag}> holds {text:?}, which is not {expected}")]
    BadValue {
        /// The type's element name.
        tag: String,
        /// The text (shortened).
        text: String,
        /// What the type allows.
        expected: &'static str,
        /// Where the value starts.
        position: usize,
    },
    /// An element where a value type must be.
    #[error(
        "at byte {position}: <{tag}> is not an XML-RPC type; the types are int, i4, i8, boolean, string, double, \
         dateTime.iso8601, base64, struct, array and nil"
    )]
    UnknownType {
        /// The element's name.
        tag: String,
        /// Where.
        position: usize,
    },
}

impl XmlRpcError {
    /// The byte offset the error refers to.
    pub fn position(&self) -> usize {
        match self {
            XmlRpcError::TooLarge { limit, .. } => *limit,
            XmlRpcError::TooDeep { position, .. }
            | XmlRpcError::NotUtf8 { position }
            | XmlRpcError::Syntax { position, .. }
            | XmlRpcError::Unexpected { position, .. }
            | XmlRpcError::BadValue { position, .. }
            | XmlRpcError::UnknownType { position, .. } => *position,
        }
    }
}

impl From<XmlRpcError> for RpcError {
    /// A malformed body is `bad_request` with the byte offset in `data`.
    fn from(error: XmlRpcError) -> RpcError {
        let position = error.position();
        RpcError::new(kind::BAD_REQUEST, format!("XML-RPC body: {error}")).with_data(json!({"position": position}))
    }
}

/// The `methodResponse` a server sends for a method's outcome: the value
/// (`null` as `<nil/>`) or the fault ([`Fault::from_error`]). A result
/// holding a character XML 1.0 cannot carry (controls other than tab, line
/// feed and carriage return) becomes an `internal` fault naming where it is,
/// since Python's reader would reject the whole body.
pub fn write_response(outcome: &Result<Value, RpcError>) -> String {
    match outcome {
        Ok(value) => match unwritable(value, &mut String::new()) {
            None => write_value_response(&XmlValue::from_json(value)),
            Some(at) => write_fault(&Fault::from_error(&RpcError::internal(format!(
                "the result holds a character XML cannot carry at {at}"
            )))),
        },
        Err(error) => write_fault(&Fault::from_error(error)),
    }
}

/// The path (`result.attrs.name`) and code point of the first character in
/// `value` that XML 1.0 does not allow, if any.
fn unwritable(value: &Value, path: &mut String) -> Option<String> {
    let bad = |s: &str| {
        s.chars().find(
            |c| matches!(*c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'),
        )
    };
    let here = |path: &str| format!("result{path}");
    match value {
        Value::String(s) => bad(s).map(|c| format!("{} (U+{:04X})", here(path), u32::from(c))),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let length = path.len();
            path.push_str(&format!("[{i}]"));
            let found = unwritable(item, path);
            path.truncate(length);
            found
        }),
        Value::Object(members) => members.iter().find_map(|(name, member)| {
            if let Some(c) = bad(name) {
                return Some(format!("a member name in {} (U+{:04X})", here(path), u32::from(c)));
            }
            let length = path.len();
            path.push('.');
            path.push_str(name);
            let found = unwritable(member, path);
            path.truncate(length);
            found
        }),
        _ => None,
    }
}

/// The HTTP status a server answers instead of a fault when `error` is
/// `not_logged_in`, as ToMaTo did (so Python's client raises
/// `ProtocolError`): 401 when the call carried no credentials (send
/// `WWW-Authenticate: Basic realm="ToMaTo"` with it), 403 when it carried
/// wrong ones. `None` for every other error.
pub fn unauthorized_status(error: &RpcError, had_credentials: bool) -> Option<u16> {
    (error.kind == kind::NOT_LOGGED_IN).then_some(if had_credentials { 403 } else { 401 })
}

/// The introspection methods [`introspect`] answers.
pub const INTROSPECTION: &[&str] = &["system.listMethods", "system.methodHelp", "system.methodSignature"];

/// Answers an introspection call from `table`, or `None` when `method` is
/// not one ([`INTROSPECTION`], also spelled `_listMethods`, `_methodHelp`,
/// `_methodSignature` as ToMaTo's client calls them). `listMethods` returns
/// the table's names and these three, sorted; `methodSignature` the Python
/// signature as text (as ToMaTo did, not XML-RPC's type lists);
/// `methodHelp` the signature, the doc, each parameter and whether a login
/// is needed.
pub fn introspect(table: &Table, method: &str, params: &[XmlValue]) -> Option<Result<Value, RpcError>> {
    let name = method.strip_prefix("system.").or_else(|| method.strip_prefix('_'))?;
    if !matches!(name, "listMethods" | "methodHelp" | "methodSignature") {
        return None;
    }
    if name == "listMethods" {
        let mut names: Vec<&str> =
            table.methods().iter().map(|m| m.name).chain(INTROSPECTION.iter().copied()).collect();
        names.sort_unstable();
        return Some(Ok(json!(names)));
    }
    let (args, kwargs) = split_args(params);
    let asked = args.first().or_else(|| kwargs.get("method")).and_then(Value::as_str);
    let Some(asked) = asked else {
        return Some(Err(RpcError::invalid_value(format!(
            "system.{name}: `method` is missing; it must be a string, the name of a method"
        ))
        .with_data(json!({"method": format!("system.{name}"), "parameter": "method"}))));
    };
    if INTROSPECTION.contains(&asked) {
        let text = match asked {
            "system.listMethods" => "system.listMethods()\n\nLists the methods.",
            "system.methodHelp" => "system.methodHelp(method)\n\nDescribes a method.",
            _ => "system.methodSignature(method)\n\nReturns a method's signature.",
        };
        let signature = text.lines().next().unwrap_or_default();
        return Some(Ok(json!(if name == "methodHelp" { text } else { signature })));
    }
    let found = match table.find(asked) {
        Ok(found) => found,
        Err(error) => return Some(Err(error.into())),
    };
    if name == "methodSignature" {
        return Some(Ok(json!(found.signature())));
    }
    let mut help = format!("{}\n\n{}\n", found.signature(), found.doc);
    if !found.params.is_empty() {
        help.push_str("\nParameters:\n");
        for p in found.params {
            let requirement = match p.default {
                None => "required".to_owned(),
                Some(d) => format!("default {}", d.python()),
            };
            help.push_str(&format!("  {}: {}, {requirement}; {}\n", p.name, p.kind.describe(), p.doc));
        }
    }
    help.push_str(match found.access {
        Access::User => "\nNeeds a login.\n",
        Access::Anyone => "\nOpen to anyone.\n",
    });
    Some(Ok(json!(help)))
}

#[cfg(test)]
mod tests;
