//! The JSON transport's shapes: `POST /api/<method>` for the web UI and
//! curl, over the same method table as XML-RPC.
//!
//! A request body is one of:
//! - empty, or `{}`: no arguments;
//! - an object of named arguments, `{"id": 7, "full": true}` (the natural
//!   form for curl and browsers);
//! - an array of positional arguments, `[7, true]`;
//! - an envelope `{"args": [...], "kwargs": {...}}` (either key may be left
//!   out), the shape of ToMaTo's `ssl+jsonrpc` and of [`rpc::RpcRequest`].
//!   An object is read as an envelope exactly when its keys are `args`
//!   and/or `kwargs`; no method has parameters of those names (a test of
//!   the backend table holds that).
//!
//! The answer is HTTP 200 with `{"result": ...}`, or the status of the
//! error's kind ([`RpcError::http_status`]: 400 bad arguments, 401 no login,
//! 403 refused, 404 unknown method or object, 409 wrong state, 500 server
//! fault) with `{"error": {"type", "code", "message", "data"}}`, the same
//! error object an XML-RPC fault 999 carries.

use rpc::RpcError;
use rpc::jsonrpc::kind;
use serde_json::{Map, Value, json};

/// The path prefix: a method is `POST {PREFIX}<method>`.
pub const PREFIX: &str = "/api/";

/// The media type of requests and answers.
pub const CONTENT_TYPE: &str = "application/json";

/// The largest request body [`parse_request`] reads, in bytes.
pub const MAX_BODY: usize = 8 << 20;

/// The method named by a request path, `/api/topology_info` →
/// `topology_info`; `None` for paths outside [`PREFIX`] or without a name.
pub fn method_from_path(path: &str) -> Option<&str> {
    let name = path.strip_prefix(PREFIX)?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Reads a request body into positional and keyword arguments (the forms
/// are in the module doc).
pub fn parse_request(body: &[u8]) -> Result<(Vec<Value>, Map<String, Value>), RpcError> {
    if body.len() > MAX_BODY {
        return Err(RpcError::new(
            kind::BAD_REQUEST,
            format!("the body has {} bytes, more than {MAX_BODY}", body.len()),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Vec::new(), Map::new()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        RpcError::new(kind::BAD_REQUEST, format!("the body is not JSON: {e}"))
            .with_data(json!({"line": e.line(), "column": e.column()}))
    })?;
    match value {
        Value::Array(args) => Ok((args, Map::new())),
        Value::Object(mut object) if is_envelope(&object) => {
            let args = match object.remove("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(args)) => args,
                Some(other) => return Err(envelope_error("args", "an array of positional arguments", &other)),
            };
            let kwargs = match object.remove("kwargs") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(kwargs)) => kwargs,
                Some(other) => return Err(envelope_error("kwargs", "an object of named arguments", &other)),
            };
            Ok((args, kwargs))
        }
        Value::Object(named) => Ok((Vec::new(), named)),
        other => Err(RpcError::new(
            kind::BAD_REQUEST,
            format!(
                "the body is {}, but must be an object of named arguments, an array of positional arguments or \
                 {{\"args\": [...], \"kwargs\": {{...}}}}",
                json_type(&other)
            ),
        )),
    }
}

fn is_envelope(object: &Map<String, Value>) -> bool {
    !object.is_empty() && object.keys().all(|k| k == "args" || k == "kwargs")
}

fn envelope_error(field: &str, expected: &str, found: &Value) -> RpcError {
    RpcError::new(kind::BAD_REQUEST, format!("`{field}` must be {expected}, not {}", json_type(found)))
        .with_data(json!({"field": field}))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The answer to a call: HTTP status and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

/// The answer for a method's outcome: 200 with `{"result": ...}`, or the
/// error's status with `{"error": {...}}`.
pub fn answer(outcome: &Result<Value, RpcError>) -> Answer {
    match outcome {
        Ok(result) => Answer { status: 200, body: json!({ "result": result }) },
        Err(error) => Answer { status: error.http_status().as_u16(), body: json!({ "error": error.to_wire() }) },
    }
}

/// Reads an answer back (for clients and tests): the result, or the error
/// its body describes.
pub fn read_answer(status: u16, body: &[u8]) -> Result<Value, RpcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RpcError::transport(format!("HTTP {status}: the answer is not JSON: {e}")))?;
    if status == 200
        && let Some(result) = value.get("result")
    {
        return Ok(result.clone());
    }
    match value.get("error").and_then(RpcError::from_wire) {
        Some(error) => Err(error),
        None => Err(RpcError::transport(format!("HTTP {status}: the answer is neither a result nor an error"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_request_form_reads() {
        assert_eq!(parse_request(b""), Ok((vec![], Map::new())));
        assert_eq!(parse_request(b" \n"), Ok((vec![], Map::new())));
        assert_eq!(parse_request(b"{}"), Ok((vec![], Map::new())));
        assert_eq!(parse_request(br#"{"id": 7, "full": true}"#), Ok((vec![], map(json!({"id": 7, "full": true})))));
        assert_eq!(parse_request(b"[7, true]"), Ok((vec![json!(7), json!(true)], Map::new())));
        assert_eq!(
            parse_request(br#"{"args": [7], "kwargs": {"full": true}}"#),
            Ok((vec![json!(7)], map(json!({"full": true}))))
        );
        assert_eq!(parse_request(br#"{"args": [7]}"#), Ok((vec![json!(7)], Map::new())));
        assert_eq!(parse_request(br#"{"kwargs": null}"#), Ok((vec![], Map::new())));
        // A key beside args/kwargs makes it named arguments (the binder then
        // names `args` as unknown).
        assert_eq!(
            parse_request(br#"{"args": [7], "full": true}"#),
            Ok((vec![], map(json!({"args": [7], "full": true}))))
        );
    }

    #[test]
    fn bad_requests_say_why() {
        let error = parse_request(b"{\"id\": ").expect_err("truncated");
        assert_eq!(error.kind, kind::BAD_REQUEST);
        assert!(error.message.starts_with("the body is not JSON: EOF"), "{}", error.message);
        assert_eq!(error.http_status().as_u16(), 400);
        let error = parse_request(b"\"x\"").expect_err("string");
        assert!(error.message.starts_with("the body is a string, but must be an object"), "{}", error.message);
        let error = parse_request(br#"{"args": {"id": 1}}"#).expect_err("args map");
        assert_eq!(error.message, "`args` must be an array of positional arguments, not an object");
        let error = parse_request(br#"{"kwargs": [1]}"#).expect_err("kwargs list");
        assert_eq!(error.message, "`kwargs` must be an object of named arguments, not an array");
        let big = vec![b' '; MAX_BODY + 1];
        assert!(parse_request(&big).expect_err("big").message.contains("more than"));
    }

    #[test]
    fn answers_carry_status_and_tomato_error() {
        assert_eq!(answer(&Ok(json!({"id": 1}))), Answer { status: 200, body: json!({"result": {"id": 1}}) });
        assert_eq!(answer(&Ok(Value::Null)).body, json!({"result": null}));
        let error = RpcError::new("invalid_state", "pc1 is started");
        let a = answer(&Err(error.clone()));
        assert_eq!(a.status, 409);
        assert_eq!(
            a.body,
            json!({"error": {"type": "user", "code": "invalid_state", "message": "pc1 is started", "data": null}})
        );
        let body = a.body.to_string();
        assert_eq!(read_answer(a.status, body.as_bytes()), Err(error));
        assert_eq!(read_answer(200, br#"{"result": [1]}"#), Ok(json!([1])));
        assert_eq!(read_answer(502, b"<html>").expect_err("html").kind, kind::TRANSPORT);
        assert_eq!(answer(&Err(RpcError::new(kind::NOT_LOGGED_IN, "x"))).status, 401);
    }

    #[test]
    fn paths_name_methods() {
        assert_eq!(method_from_path("/api/topology_info"), Some("topology_info"));
        assert_eq!(method_from_path("/api/"), None);
        assert_eq!(method_from_path("/api/a/b"), None);
        assert_eq!(method_from_path("/rpc"), None);
    }
}
