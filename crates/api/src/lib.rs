//! The public API of the ToMaTo-rs backend, without I/O: plain data and
//! functions that the backend's HTTP server (which comes with the backend)
//! calls. Both public transports share one method table.
//!
//! - [`method`]: method tables, parameter kinds, and the binder from
//!   positional and keyword arguments to named, checked parameters.
//! - [`backend`]: [`BACKEND`], ToMaTo's backend methods by ToMaTo's names.
//! - [`xmlrpc`]: the XML-RPC codec with ToMaTo's conventions (`[list,
//!   struct]` = args and kwargs, `nil`, `Fault(999, JSON)`), introspection.
//! - [`basic_auth`]: the `Authorization: Basic` header ToMaTo's clients log
//!   in with.
//! - [`json`]: the JSON transport's request and answer shapes.
//! - [`openapi`]: the JSON transport's OpenAPI document, from the table.
//!
//! Errors of every module convert into [`rpc::RpcError`] (ToMaTo's error
//! kinds), which maps to an HTTP status in one place
//! ([`rpc::RpcError::http_status`]) and to an XML-RPC fault in one place
//! ([`xmlrpc::Fault::from_error`]).
//!
//! A server handles an XML-RPC `POST` like this:
//!
//! ```
//! use api::{BACKEND, xmlrpc};
//! let body = b"<?xml version='1.0'?><methodCall><methodName>topology_info</methodName>\
//!     <params><param><value><array><data><value><int>7</int></value></data></array></value></param>\
//!     <param><value><struct><member><name>full</name><value><boolean>1</boolean></value></member>\
//!     </struct></value></param></params></methodCall>";
//! let outcome = xmlrpc::parse_call(body, &xmlrpc::Limits::DEFAULT)
//!     .map_err(rpc::RpcError::from)
//!     .and_then(|call| {
//!         if let Some(answer) = xmlrpc::introspect(&BACKEND, &call.method, &call.params) {
//!             return answer;
//!         }
//!         let (args, kwargs) = call.args_kwargs();
//!         let bound = BACKEND.bind(&call.method, args, kwargs)?;
//!         // Check `bound.method().access` against the caller, then run it.
//!         Ok(serde_json::json!({"id": bound.id("id")?.to_string(), "full": bound.flag("full")?}))
//!     });
//! let response = xmlrpc::write_response(&outcome);
//! assert!(response.contains("<name>full</name>\n<value><boolean>1</boolean></value>"));
//! ```
//!
//! Architecture invariant: this crate opens no socket, reads no clock and
//! starts no runtime; it depends on `rpc` only for [`rpc::RpcError`].

pub mod backend;
pub mod basic_auth;
pub mod json;
pub mod method;
pub mod openapi;
pub mod xmlrpc;

pub use backend::BACKEND;
pub use method::{Access, BindError, Bound, Kind, Method, Param, Table};
pub use rpc::RpcError;
