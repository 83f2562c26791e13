//! The load generator: `connections` clients, each on one keep-alive
//! HTTP/1.1 connection (hyper's low-level client, no pool), sending the
//! next request as soon as the answer is read, for a warm-up and then a
//! fixed measuring window. Every answer is checked; a transport error,
//! a status other than 200 or a body that fails the check counts as an
//! error (and the client reconnects).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;

/// What the clients send and how an answer is judged.
pub struct Target {
    /// The server.
    pub addr: SocketAddr,
    /// `/api/element_info` or `/RPC2`.
    pub path: &'static str,
    /// The request's content type.
    pub content_type: &'static str,
    /// The `Authorization` header, if any.
    pub authorization: Option<HeaderValue>,
    /// Request bodies, sent in turn (each client starts at its own index).
    pub bodies: Vec<Bytes>,
    /// Whether an answer's body is a success.
    pub check: fn(&[u8]) -> bool,
}

/// What one run measured.
pub struct Measured {
    /// Requests answered inside the window.
    pub requests: u64,
    /// Failed requests inside the window (and during the warm-up).
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// The window's length.
    pub secs: f64,
    /// Latencies in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Measured {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    /// The `q` quantile (nearest rank) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }
}

/// Drives `target` with `connections` clients: `warmup`, then `window`.
pub async fn run(target: Arc<Target>, connections: usize, warmup: Duration, window: Duration) -> Measured {
    let start = Instant::now() + warmup;
    let end = start + window;
    let clients: Vec<_> = (0..connections).map(|i| tokio::spawn(client(target.clone(), i, start, end))).collect();
    let mut measured =
        Measured { requests: 0, errors: 0, first_error: None, secs: window.as_secs_f64(), latencies_us: Vec::new() };
    for c in clients {
        match c.await {
            Ok(one) => {
                measured.requests += one.latencies_us.len() as u64;
                measured.errors += one.errors;
                measured.first_error = measured.first_error.or(one.first_error);
                measured.latencies_us.extend(one.latencies_us);
            }
            Err(e) => {
                measured.errors += 1;
                measured.first_error.get_or_insert_with(|| format!("client task: {e}"));
            }
        }
    }
    measured.latencies_us.sort_unstable();
    measured
}

struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// A client connection's request half.
pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive connection to `addr`, driven by a task of its own.
pub async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends `body` and reads the answer; its body if it is a success.
pub async fn one_request(sender: &mut Sender, target: &Target, body: Bytes) -> Result<Bytes, String> {
    sender.ready().await.map_err(|e| format!("connection: {e}"))?;
    let mut request = Request::post(target.path)
        .header(HOST, "127.0.0.1")
        .header(CONTENT_TYPE, target.content_type)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    if let Some(auth) = &target.authorization {
        request.headers_mut().insert(AUTHORIZATION, auth.clone());
    }
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
    if status != hyper::StatusCode::OK || !(target.check)(&body) {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
    }
    Ok(body)
}

async fn client(target: Arc<Target>, index: usize, start: Instant, end: Instant) -> ClientResult {
    let mut result = ClientResult { latencies_us: Vec::with_capacity(1 << 16), errors: 0, first_error: None };
    let mut next = index;
    let mut sender = None;
    loop {
        let began = Instant::now();
        if began >= end {
            return result;
        }
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(target.addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    result.errors += 1;
                    result.first_error.get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let body = target.bodies[next % target.bodies.len()].clone();
        next += 1;
        let outcome = one_request(s, &target, body).await;
        let done = Instant::now();
        match outcome {
            Ok(_) if began >= start && done <= end => {
                let us = done.duration_since(began).as_micros();
                result.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Ok(_) => {}
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert(e);
                sender = None;
            }
        }
    }
}
