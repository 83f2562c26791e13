//! JSON-RPC over HTTPS between a backend and a hostmanager, shaped like
//! ToMaTo's `ssl+jsonrpc`.
//!
//! A call is `POST /rpc` with `{"method": "...", "args": [...], "kwargs":
//! {...}}` (`args` and `kwargs` may be left out). The answer is HTTP 200 with
//! `{"result": ...}`, or an HTTP error status ([`RpcError::http_status`])
//! with `{"error": {"type", "code", "message", "data"}}`, ToMaTo's error
//! shape: `code` is the [`RpcError::kind`] and `type` its category
//! (`user`, `internal` or `transport`).
//!
//! [`rpc_router`] checks that the caller's certificate is accepted
//! ([`require_accepted`]) and hands the call, with the certificate's CN as
//! the owner, to a [`Dispatch`]: the hostmanager's method table. This module
//! only parses and answers; what a method does is the dispatcher's.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::accepted::AcceptedDir;
use crate::server::Peer;

/// The path of the JSON-RPC endpoint.
pub const RPC_PATH: &str = "/rpc";

/// Error kinds (ToMaTo's error codes) that this crate produces or maps to an
/// HTTP status. A dispatcher may use any other kind too; see
/// [`RpcError::http_status`].
pub mod kind {
    /// The element, connection or other object does not exist (404).
    pub const ENTITY_DOES_NOT_EXIST: &str = "entity_does_not_exist";
    /// An argument or attribute value is wrong (400).
    pub const INVALID_VALUE: &str = "invalid_value";
    /// The action is not possible in the object's current state (409).
    pub const INVALID_STATE: &str = "invalid_state";
    /// The caller may not do this (403).
    pub const NOT_ALLOWED: &str = "not_allowed";
    /// The object's type has no such action (400).
    pub const UNSUPPORTED_ACTION: &str = "unsupported_action";
    /// The server has no method of that name (404).
    pub const UNKNOWN_METHOD: &str = "unknown_method";
    /// The method needs a logged-in user and the call carried no (valid)
    /// credentials (401); ToMaTo's `not_logged_in`.
    pub const NOT_LOGGED_IN: &str = "not_logged_in";
    /// The request is not a JSON-RPC request (400).
    pub const BAD_REQUEST: &str = "bad_request";
    /// The client presented no certificate (403).
    pub const NO_CERTIFICATE: &str = "no_certificate";
    /// The client's certificate is valid but not accepted by this host (403).
    pub const NOT_ACCEPTED: &str = "not_accepted";
    /// A fault of the server itself (500).
    pub const INTERNAL: &str = "internal";
    /// The call did not reach the server or its answer did not come back
    /// (connection, TLS, HTTP or decoding); produced by the client only.
    pub const TRANSPORT: &str = "transport";
}

/// An error of a remote call: a kind (ToMaTo's error code), a message for
/// people and structured data for programs.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    /// What went wrong, as one of ToMaTo's error codes (see [`kind`]).
    pub kind: String,
    /// What went wrong, for people.
    pub message: String,
    /// Details for programs (for example the attribute and allowed values);
    /// `null` when there are none.
    pub data: Value,
}

impl RpcError {
    /// An error of any kind with no data.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> RpcError {
        RpcError { kind: kind.into(), message: message.into(), data: Value::Null }
    }

    /// The same error with `data` attached.
    pub fn with_data(self, data: Value) -> RpcError {
        RpcError { data, ..self }
    }

    /// [`kind::ENTITY_DOES_NOT_EXIST`].
    pub fn entity_does_not_exist(message: impl Into<String>) -> RpcError {
        RpcError::new(kind::ENTITY_DOES_NOT_EXIST, message)
    }

    /// [`kind::INVALID_VALUE`].
    pub fn invalid_value(message: impl Into<String>) -> RpcError {
        RpcError::new(kind::INVALID_VALUE, message)
    }

    /// [`kind::INVALID_STATE`].
    pub fn invalid_state(message: impl Into<String>) -> RpcError {
        RpcError::new(kind::INVALID_STATE, message)
    }

    /// [`kind::NOT_ALLOWED`].
    pub fn not_allowed(message: impl Into<String>) -> RpcError {
        RpcError::new(kind::NOT_ALLOWED, message)
    }

    /// [`kind::UNSUPPORTED_ACTION`].
    pub fn unsupported_action(message: impl Into<String>) -> RpcError {
        RpcError::new(kind::UNSUPPORTED_ACTION, message)
    }

    /// [`kind::UNKNOWN_METHOD`], naming the method.
    pub fn unknown_method(method: &str) -> RpcError {
        RpcError::new(kind::UNKNOWN_METHOD, format!("this host has no method `{method}`"))
    }

    /// [`kind::INTERNAL`].
    pub fn internal(message: impl Into<String>) -> RpcError {
        RpcError::new(kind::INTERNAL, message)
    }

    /// [`kind::TRANSPORT`].
    pub fn transport(message: impl Into<String>) -> RpcError {
        RpcError::new(kind::TRANSPORT, message)
    }

    /// The HTTP status a server answers this error with. This is the one
    /// place kinds map to statuses: missing objects and methods 404, refused
    /// callers 403, missing login 401, state conflicts 409, other caller mistakes 400, and
    /// `internal`, `transport` and kinds not listed here 500.
    pub fn http_status(&self) -> StatusCode {
        match self.kind.as_str() {
            kind::ENTITY_DOES_NOT_EXIST | kind::UNKNOWN_METHOD => StatusCode::NOT_FOUND,
            kind::NOT_LOGGED_IN => StatusCode::UNAUTHORIZED,
            kind::NOT_ALLOWED | kind::NO_CERTIFICATE | kind::NOT_ACCEPTED | "denied" | "different_user" => {
                StatusCode::FORBIDDEN
            }
            kind::INVALID_STATE
            | "entity_busy"
            | "already_exists"
            | "already_connected"
            | "not_empty"
            | "timed_out" => StatusCode::CONFLICT,
            kind::INVALID_VALUE
            | kind::UNSUPPORTED_ACTION
            | kind::BAD_REQUEST
            | "unsupported_attribute"
            | "unsupported_type"
            | "invalid_configuration"
            | "unable_to_connect"
            | "no_data_available"
            | "no_resources"
            | "invalid_resource_type" => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// ToMaTo's error `type`: `internal` for server faults, `transport` for
    /// transport errors, `user` for everything the caller can fix.
    pub fn category(&self) -> &'static str {
        match self.kind.as_str() {
            kind::TRANSPORT => "transport",
            _ if self.http_status().is_server_error() => "internal",
            _ => "user",
        }
    }
}

impl RpcError {
    /// ToMaTo's error object `{"type", "code", "message", "data"}` as JSON,
    /// the body of an HTTP error answer and of an XML-RPC fault 999.
    pub fn to_wire(&self) -> Value {
        serde_json::json!({
            "type": self.category(),
            "code": self.kind,
            "message": self.message,
            "data": self.data,
        })
    }

    /// Reads ToMaTo's error object back; `None` when `wire` is not an object
    /// with string `code` and `message` (`type` and `data` may be missing;
    /// other keys, such as ToMaTo's `module`, are ignored).
    pub fn from_wire(wire: &Value) -> Option<RpcError> {
        let object = wire.as_object()?;
        Some(RpcError {
            kind: object.get("code")?.as_str()?.to_owned(),
            message: object.get("message")?.as_str()?.to_owned(),
            data: object.get("data").cloned().unwrap_or(Value::Null),
        })
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RpcError {}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        let wire =
            WireError { r#type: self.category().to_owned(), code: self.kind, message: self.message, data: self.data };
        (status, axum::Json(ErrorBody { error: wire })).into_response()
    }
}

/// A call as it travels: `{"method", "args", "kwargs"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcRequest {
    /// The method's name, for example `element_create`.
    pub method: String,
    /// Positional arguments.
    #[serde(default)]
    pub args: Vec<Value>,
    /// Keyword arguments.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
}

/// A successful answer: `{"result": ...}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ResultBody {
    pub(crate) result: Value,
}

/// A failed answer: `{"error": {...}}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: WireError,
}

/// ToMaTo's error object.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireError {
    pub(crate) r#type: String,
    pub(crate) code: String,
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) data: Value,
}

impl From<WireError> for RpcError {
    fn from(wire: WireError) -> RpcError {
        RpcError { kind: wire.code, message: wire.message, data: wire.data }
    }
}

/// The methods a server offers: the hostmanager's method table.
///
/// `owner` is the CN of the calling backend's accepted certificate; a
/// dispatcher keeps each owner's objects apart. Unknown methods should be
/// answered with [`RpcError::unknown_method`].
pub trait Dispatch: Send + Sync + 'static {
    /// Runs one call.
    fn call(
        &self,
        owner: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send;
}

/// The CN of the caller's accepted certificate, put into the request's
/// extensions by [`require_accepted`] for the handlers behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner(pub String);

/// `POST /rpc` answered by `dispatch`, for callers whose certificate is in
/// `accepted` ([`require_accepted`]). Serve it with [`crate::server::serve`],
/// which tells the router who the peer is; merge other routes (consoles)
/// into it with [`Router::merge`] after wrapping them in [`require_accepted`]
/// too.
pub fn rpc_router<D: Dispatch>(dispatch: Arc<D>, accepted: AcceptedDir) -> Router {
    let routes = Router::new().route(RPC_PATH, post(handle_rpc::<D>)).with_state(dispatch);
    require_accepted(routes, accepted)
}

/// Wraps every route of `router` so that it answers only callers whose client
/// certificate is in `accepted` (read on every request, so accepting or
/// revoking applies at once), and gives handlers the caller as an
/// [`Owner`] extension. Others get HTTP 403 with `no_certificate` or
/// `not_accepted`. Paths outside `router`'s routes stay unguarded (404 when
/// nothing else serves them). `router` must have at least one route (axum
/// panics otherwise).
pub fn require_accepted(router: Router, accepted: AcceptedDir) -> Router {
    router.route_layer(axum::middleware::from_fn_with_state(accepted, check_accepted))
}

async fn check_accepted(State(accepted): State<AcceptedDir>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<Peer>().cloned().unwrap_or_default();
    let Some(fingerprint) = peer.fingerprint else {
        return RpcError::new(
            kind::NO_CERTIFICATE,
            "no client certificate was presented; this host serves only backends with an accepted certificate",
        )
        .into_response();
    };
    let lookup = {
        let fingerprint = fingerprint.clone();
        tokio::task::spawn_blocking(move || accepted.find(&fingerprint)).await
    };
    match lookup {
        Ok(Ok(Some(cert))) => {
            request.extensions_mut().insert(Owner(cert.cn));
            next.run(request).await
        }
        Ok(Ok(None)) => RpcError::new(
            kind::NOT_ACCEPTED,
            format!(
                "the client certificate {} (sha256 {fingerprint}) is signed by the testbed CA but not accepted by this \
                 host; accept it there with `tomato cert accept`",
                peer.cn.map(|cn| format!("CN={cn}")).unwrap_or_else(|| "without CN".into()),
            ),
        )
        .with_data(serde_json::json!({ "fingerprint": fingerprint }))
        .into_response(),
        Ok(Err(e)) => RpcError::internal(format!("the accepted certificates cannot be read: {e}")).into_response(),
        Err(e) => RpcError::internal(format!("checking the accepted certificates failed: {e}")).into_response(),
    }
}

async fn handle_rpc<D: Dispatch>(
    State(dispatch): State<Arc<D>>,
    axum::Extension(Owner(owner)): axum::Extension<Owner>,
    body: Bytes,
) -> Response {
    let request: RpcRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return RpcError::new(
                kind::BAD_REQUEST,
                format!("the body is not a call {{\"method\": ..., \"args\": [...], \"kwargs\": {{...}}}}: {e}"),
            )
            .into_response();
        }
    };
    match dispatch.call(&owner, &request.method, request.args, request.kwargs).await {
        Ok(result) => axum::Json(ResultBody { result }).into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_use_tomato_shape_and_status() {
        let error = RpcError::invalid_state("pc1 is started").with_data(serde_json::json!({"state": "started"}));
        assert_eq!(error.http_status(), StatusCode::CONFLICT);
        assert_eq!(error.category(), "user");
        assert_eq!(RpcError::internal("x").category(), "internal");
        assert_eq!(RpcError::new("command_failed", "x").http_status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(RpcError::entity_does_not_exist("x").http_status(), StatusCode::NOT_FOUND);
        assert_eq!(RpcError::not_allowed("x").http_status(), StatusCode::FORBIDDEN);
        assert_eq!(RpcError::unsupported_action("x").http_status(), StatusCode::BAD_REQUEST);
        // A timed-out topology refuses actions: the caller's to renew, not a server fault.
        assert_eq!(RpcError::new("timed_out", "x").category(), "user");
        let wire = serde_json::to_value(ErrorBody {
            error: WireError {
                r#type: error.category().into(),
                code: error.kind.clone(),
                message: error.message.clone(),
                data: error.data.clone(),
            },
        })
        .expect("json");
        assert_eq!(
            wire,
            serde_json::json!({"error": {"type": "user", "code": "invalid_state", "message": "pc1 is started", "data": {"state": "started"}}})
        );
    }

    #[test]
    fn wire_form_round_trips_and_not_logged_in_is_401() {
        let error = RpcError::entity_does_not_exist("no topology 7").with_data(serde_json::json!({"id": 7}));
        let wire = error.to_wire();
        assert_eq!(
            wire,
            serde_json::json!({"type": "user", "code": "entity_does_not_exist", "message": "no topology 7", "data": {"id": 7}})
        );
        assert_eq!(RpcError::from_wire(&wire), Some(error));
        let tomato = serde_json::json!({"type": "user", "code": "denied", "message": "no", "module": "backend"});
        assert_eq!(RpcError::from_wire(&tomato), Some(RpcError::new("denied", "no")));
        assert_eq!(RpcError::from_wire(&serde_json::json!({"code": 1, "message": "x"})), None);
        assert_eq!(RpcError::from_wire(&serde_json::json!("text")), None);
        let login = RpcError::new(kind::NOT_LOGGED_IN, "log in");
        assert_eq!(login.http_status(), StatusCode::UNAUTHORIZED);
        assert_eq!(login.category(), "user");
    }

    #[test]
    fn requests_default_args_and_refuse_unknown_fields() {
        let request: RpcRequest = serde_json::from_str(r#"{"method": "host_info"}"#).expect("parse");
        assert_eq!(request, RpcRequest { method: "host_info".into(), args: vec![], kwargs: Map::new() });
        assert!(serde_json::from_str::<RpcRequest>(r#"{"method": "x", "kwarg": {}}"#).is_err());
    }
}
