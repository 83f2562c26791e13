//! The CLI side of an element console: the local terminal in raw mode,
//! bytes to and from a console WebSocket: the hostmanager's own (`tomato
//! host console`, as a backend) or the backend's relay of it (`tomato
//! element console`, as a user). Ctrl-] (0x1d) ends it.

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Ends the session when typed.
const ESCAPE: u8 = 0x1d;

/// Puts stdin's terminal in raw mode until dropped (nothing when stdin is
/// not a terminal, so scripts can pipe input).
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter() -> RawMode {
        // SAFETY: isatty only inspects fd 0.
        if unsafe { libc::isatty(0) } != 1 {
            return RawMode(None);
        }
        // SAFETY: an all-zero termios is valid output space for tcgetattr.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is a terminal and `saved` is writable.
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return RawMode(None);
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: fd 0 is a terminal; `raw` is a valid termios.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
        RawMode(Some(saved))
    }

    /// The terminal's size (columns, rows), if stdin is one.
    fn size() -> Option<(u16, u16)> {
        // SAFETY: an all-zero winsize is valid output space.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes only `ws`.
        (unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0).then_some((ws.ws_col, ws.ws_row))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the settings read from the same terminal.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
        }
    }
}

/// Attaches the local terminal to the console of element `id` on a
/// hostmanager (as the backend).
pub async fn attach(client: &rpc::Client, id: i64) -> anyhow::Result<()> {
    let ws =
        client.websocket(&format!("/console/{id}")).await.map_err(|e| anyhow::anyhow!("{}: {}", e.kind, e.message))?;
    attach_socket(ws).await
}

/// Attaches the local terminal to the console of element `id` through the
/// backend at `base` (`http://host:port`), logged in as `user`.
pub async fn attach_backend(base: &str, user: &str, password: &str, id: i64) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(base).with_context(|| format!("backend URL `{base}`"))?;
    if url.scheme() != "http" {
        // A TLS proxy in front of the backend would need a TLS WebSocket
        // client here; the backend itself speaks plain HTTP.
        anyhow::bail!("backend URL `{base}`: consoles are reached over http:// only; allowed: http://HOST:PORT");
    }
    let host = url.host_str().with_context(|| format!("backend URL `{base}` has no host"))?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let ws_url = format!("ws://{}:{port}/console/{id}", url.host().map(|h| h.to_string()).unwrap_or(host.clone()));
    let mut request = ws_url.as_str().into_client_request().context("console URL")?;
    let login = api::basic_auth::Credentials { username: user.into(), password: password.into() };
    request.headers_mut().insert(
        "authorization",
        api::basic_auth::encode_basic(&login).parse().context("the login does not fit an HTTP header")?,
    );
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("console: reaching {base}"))?;
    let ws = match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, _)) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let e = api::json::read_answer(response.status().as_u16(), body).err();
            match e {
                Some(e) => anyhow::bail!("console of element {id}: {}: {}", e.kind, e.message),
                None => anyhow::bail!("console of element {id}: HTTP {}", response.status()),
            }
        }
        Err(e) => anyhow::bail!("console of element {id}: {ws_url}: {e}"),
    };
    attach_socket(ws).await
}

/// Copies stdin to the socket and the socket to stdout until either ends.
async fn attach_socket<S: AsyncRead + AsyncWrite + Unpin>(ws: WebSocketStream<S>) -> anyhow::Result<()> {
    let (mut tx, mut rx) = ws.split();
    let raw = RawMode::enter();
    if let Some((cols, rows)) = RawMode::size() {
        let resize = serde_json::json!({"type": "resize", "cols": cols, "rows": rows}).to_string();
        tx.send(Message::Text(resize.into())).await.context("console")?;
    }
    let input = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // End of input is end of input for the shell too (Ctrl-D);
                    // its last output still arrives before the console closes.
                    // Repeated: a Ctrl-D that reaches the terminal while it is
                    // still in canonical mode is lost when the shell's line
                    // editor switches it to raw mode, and the session hung.
                    // At most ten: a console that respawns its shell never
                    // closes, and then the session ends from here.
                    for _ in 0..10 {
                        if tx.send(Message::Binary(vec![0x04].into())).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    break;
                }
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let end = chunk.iter().position(|b| *b == ESCAPE);
            let send = &chunk[..end.unwrap_or(n)];
            if !send.is_empty() && tx.send(Message::Binary(send.to_vec().into())).await.is_err() {
                break;
            }
            if end.is_some() {
                break;
            }
        }
        let _ = tx.send(Message::Close(None)).await;
    };
    let output = async {
        let mut stdout = tokio::io::stdout();
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Binary(b) => {
                    let _ = stdout.write_all(&b).await;
                    let _ = stdout.flush().await;
                }
                Message::Text(t) => {
                    let _ = stdout.write_all(t.as_bytes()).await;
                    let _ = stdout.flush().await;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::select! {
        _ = input => {}
        _ = output => {}
    }
    drop(raw);
    Ok(())
}
