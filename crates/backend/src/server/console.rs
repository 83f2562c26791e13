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

/// What a relayed message becomes on the other side.
enum Relayed<M> {
    /// Send this.
    Send(M),
    /// Nothing to pass on (pings, pongs: each side answers its own).
    Skip,
    /// The sender closed.
    End,
}

/// Copies messages both ways until either side closes.
async fn relay(user: WebSocket, host: rpc::client::WebSocket) {
    let (user_tx, user_rx) = user.split();
    let (host_tx, host_rx) = host.split();
    let to_host = forward(user_rx, host_tx, HostMessage::Close(None), |msg| match msg {
        AxumMessage::Binary(b) => Relayed::Send(HostMessage::Binary(b)),
        AxumMessage::Text(t) => Relayed::Send(HostMessage::Text(t.as_str().into())),
        AxumMessage::Close(_) => Relayed::End,
        _ => Relayed::Skip,
    });
    let to_user = forward(host_rx, user_tx, AxumMessage::Close(None), |msg| match msg {
        HostMessage::Binary(b) => Relayed::Send(AxumMessage::Binary(b)),
        HostMessage::Text(t) => Relayed::Send(AxumMessage::Text(t.as_str().into())),
        HostMessage::Close(_) => Relayed::End,
        _ => Relayed::Skip,
    });
    tokio::select! {
        _ = to_host => {}
        _ = to_user => {}
    }
}

/// Sends what `rx` delivers, converted, to `tx` until either ends; then
/// `close` to `tx`.
async fn forward<I, O, E>(
    mut rx: impl futures_util::Stream<Item = Result<I, E>> + Unpin,
    mut tx: impl futures_util::Sink<O> + Unpin,
    close: O,
    convert: impl Fn(I) -> Relayed<O>,
) {
    while let Some(Ok(msg)) = rx.next().await {
        match convert(msg) {
            Relayed::Send(out) => {
                if tx.send(out).await.is_err() {
                    break;
                }
            }
            Relayed::Skip => {}
            Relayed::End => break,
        }
    }
    let _ = tx.send(close).await;
}
