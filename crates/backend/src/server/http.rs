//! The routes: XML-RPC at `/RPC2` and `/`, JSON at `/api/<method>`, the
//! OpenAPI document at `/api/openapi.json`, element consoles (WebSocket)
//! at `/console/<id>`.

use std::sync::Arc;

use api::basic_auth::{Credentials, parse_basic};
use api::xmlrpc::{self, Limits};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rpc::RpcError;
use serde_json::Value;

use super::Backend;
use super::handlers::{dispatch, served};

/// The server's routes over `backend`.
pub fn router(backend: Arc<Backend>) -> Router {
    Router::new()
        .route("/RPC2", post(xml_rpc))
        .route("/", post(xml_rpc))
        .route("/api/openapi.json", get(openapi))
        .route("/api/{method}", post(json_call))
        .route("/console/{id}", get(super::console::open))
        .layer(DefaultBodyLimit::max(api::json::MAX_BODY))
        .with_state(backend)
}

/// The caller's credentials: `None` without an `Authorization` header,
/// `not_logged_in` when it is unreadable.
pub(super) fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, RpcError> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                RpcError::new(rpc::jsonrpc::kind::NOT_LOGGED_IN, "the Authorization header is not ASCII")
            })?;
            Ok(Some(parse_basic(text)?))
        }
    }
}

fn unauthorized(status: u16, error: &RpcError, content_type: &'static str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"ToMaTo\""));
    }
    tracing::debug!("refused: {}", error.message);
    response
}

async fn xml_rpc(State(backend): State<Arc<Backend>>, headers: HeaderMap, body: Bytes) -> Response {
    let had_credentials = headers.contains_key(header::AUTHORIZATION);
    let outcome = match xmlrpc::parse_call(&body, &Limits::DEFAULT) {
        Err(e) => Err(RpcError::from(e)),
        Ok(call) => match xmlrpc::introspect(served(), &call.method, &call.params) {
            Some(answer) => answer,
            None => {
                let (args, kwargs) = call.args_kwargs();
                dispatch(&backend, credentials(&headers), &call.method, args, kwargs).await
            }
        },
    };
    if let Err(error) = &outcome
        && let Some(status) = xmlrpc::unauthorized_status(error, had_credentials)
    {
        return unauthorized(status, error, "text/plain", format!("{}\n", error.message));
    }
    ([(header::CONTENT_TYPE, "text/xml")], xmlrpc::write_response(&outcome)).into_response()
}

async fn json_call(
    State(backend): State<Arc<Backend>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = match api::json::parse_request(&body) {
        Err(e) => Err(e),
        Ok((args, kwargs)) => dispatch(&backend, credentials(&headers), &method, args, kwargs).await,
    };
    let answer = api::json::answer(&outcome);
    let text = answer.body.to_string();
    if answer.status == 401
        && let Err(error) = &outcome
    {
        return unauthorized(401, error, api::json::CONTENT_TYPE, text);
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, api::json::CONTENT_TYPE)], text).into_response()
}

async fn openapi() -> Response {
    let document: Value = api::openapi::document(
        served(),
        &api::openapi::Info {
            title: "ToMaTo-rs backend",
            version: env!("CARGO_PKG_VERSION"),
            description: "ToMaTo's backend API over JSON: POST /api/<method> with named arguments and HTTP Basic \
                          login. The same methods are served over XML-RPC at /RPC2 with ToMaTo's conventions.",
        },
    );
    ([(header::CONTENT_TYPE, api::json::CONTENT_TYPE)], document.to_string()).into_response()
}
