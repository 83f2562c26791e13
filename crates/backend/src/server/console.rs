//! Element consoles for users: `GET /console/<element id>` upgrades to a
//! WebSocket relayed to the element's hostmanager (`/console/<host id>`
//! over the backend's mTLS client). Hosts accept only the backend's
//! certificate, so this relay is how users reach a console; the caller
//! logs in with HTTP Basic and needs the console right on the element
//! ([`ComponentOp::Console`], a `user` of the topology, as ToMaTo showed
//! VNC details to every user). The messages are the host's: binary
//! terminal bytes both ways, text `{"type": "resize", ...}` controls.

use std::sync::Arc;

use axum::extract::ws::{Message as AxumMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use rpc::RpcError;
use rpc::jsonrpc::kind;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as HostMessage;

use super::{Backend, fail, now};
use crate::permissions::{ComponentOp, Subject, check_element};

/// The console route's handler.
pub(super) async fn open(
    State(backend): State<Arc<Backend>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    match connect(&backend, &headers, id).await {
        Ok(host_ws) => upgrade.on_upgrade(move |ws| relay(ws, host_ws)).into_response(),
        Err(e) => refuse(&e),
    }
}

/// The JSON error body of the API, with 401 asking for a Basic login.
fn refuse(e: &RpcError) -> Response {
    let answer = api::json::answer(&Err(e.clone()));
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response =
        (status, [(header::CONTENT_TYPE, api::json::CONTENT_TYPE)], answer.body.to_string()).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Basic realm=\"ToMaTo\""));
    }
    response
}

/// Logs the caller in, checks the console right and opens the host's
/// console, before the upgrade: a refusal is an HTTP answer, not a socket
/// that closes at once.
async fn connect(backend: &Backend, headers: &HeaderMap, id: i64) -> Result<rpc::client::WebSocket, RpcError> {
    let credentials = super::http::credentials(headers)?.ok_or_else(|| {
        RpcError::new(kind::NOT_LOGGED_IN, "console: needs a login: HTTP Basic user name and password")
    })?;
    let user = backend
        .store
        .login(&credentials.username, &credentials.password, now())
        .await
        .map_err(fail)?
        .ok_or_else(|| RpcError::new(kind::NOT_LOGGED_IN, "wrong user name or password"))?;
    let e = backend.store.element(id).await.map_err(fail)?;
    let members = backend.store.members(e.topology).await.map_err(fail)?;
    let who = Subject { name: &user.name, organization: &user.organization, flags: &user.flags };
    check_element(&who, &members, ComponentOp::Console).map_err(fail)?;
    let (Some(name), Some(hid)) = (&e.host, e.host_id) else {
        return Err(
            RpcError::invalid_state(format!("console: element {id} is on no host")).with_data(json!({"id": id}))
        );
    };
    let host = backend.store.host(name).await.map_err(fail)?;
    let client = backend.hosts.client(&host).await?;
    client
        .websocket(&format!("/console/{hid}"))
        .await
        .map_err(|e| RpcError { message: format!("console of element {id}: host {name}: {}", e.message), ..e })
}

/// Copies messages both ways until either side closes.
async fn relay(user: WebSocket, host: rpc::client::WebSocket) {
    let (mut user_tx, mut user_rx) = user.split();
    let (mut host_tx, mut host_rx) = host.split();
    let to_host = async {
        while let Some(Ok(msg)) = user_rx.next().await {
            let out = match msg {
                AxumMessage::Binary(b) => HostMessage::Binary(b),
                AxumMessage::Text(t) => HostMessage::Text(t.as_str().into()),
                AxumMessage::Close(_) => break,
                _ => continue,
            };
            if host_tx.send(out).await.is_err() {
                break;
            }
        }
        let _ = host_tx.send(HostMessage::Close(None)).await;
    };
    let to_user = async {
        while let Some(Ok(msg)) = host_rx.next().await {
            let out = match msg {
                HostMessage::Binary(b) => AxumMessage::Binary(b),
                HostMessage::Text(t) => AxumMessage::Text(t.as_str().into()),
                HostMessage::Close(_) => break,
                _ => continue,
            };
            if user_tx.send(out).await.is_err() {
                break;
            }
        }
        let _ = user_tx.send(AxumMessage::Close(None)).await;
    };
    tokio::select! {
        _ = to_host => {}
        _ = to_user => {}
    }
}
