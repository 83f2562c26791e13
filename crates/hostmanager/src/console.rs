//! Element consoles: a shell on a PTY inside the element, streamed over a
//! WebSocket at `/console/<id>` on the mTLS API (so only the owner reaches
//! it). Binary messages carry terminal bytes both ways; a text message
//! `{"type": "resize", "cols": C, "rows": R}` resizes the terminal.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::host::Host;

/// Both directions of a terminal.
pub trait Terminal: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Terminal for T {}

/// An open console: the terminal, a way to resize it, and what must live
/// as long as it does (the shell, ended when this is dropped).
pub struct ConsoleSession {
    /// The PTY's controlling side.
    pub terminal: Box<dyn Terminal>,
    /// Sets the window size (columns, rows).
    pub resize: Box<dyn Fn(u16, u16) + Send + Sync>,
    /// Dropped when the console closes.
    pub keep: Box<dyn Send>,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleSession")
    }
}

/// A control message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    Resize { cols: u16, rows: u16 },
}

/// The console route (to be guarded by `rpc::require_accepted`).
pub fn router(host: Arc<Host>) -> Router {
    Router::new().route("/console/{id}", get(open)).with_state(host)
}

async fn open(
    State(host): State<Arc<Host>>,
    Extension(owner): Extension<rpc::Owner>,
    Path(id): Path<i64>,
    upgrade: WebSocketUpgrade,
) -> Response {
    match host.console(&owner.0, id).await {
        Ok(session) => upgrade.on_upgrade(move |ws| pump(ws, session)).into_response(),
        Err(e) => rpc::RpcError::from(e).into_response(),
    }
}

/// Copies terminal output to the socket and socket input to the terminal
/// until either side closes.
async fn pump(ws: WebSocket, session: ConsoleSession) {
    let ConsoleSession { terminal, resize, keep } = session;
    let (mut reader, mut writer) = tokio::io::split(terminal);
    let (mut tx, mut rx) = ws.split();
    let output = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Message::Close(None)).await;
    };
    let input = async {
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Binary(bytes) if writer.write_all(&bytes).await.is_err() => break,
                Message::Text(text) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::Resize { cols, rows }) => resize(cols, rows),
                    // Plain text from simple clients is typed input.
                    Err(_) => {
                        if writer.write_all(text.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
    drop(keep);
}
