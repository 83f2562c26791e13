//! The backend's side: calls to one hostmanager over mutual TLS.
//!
//! A [`Client`] trusts only the testbed CA (no system roots) and presents
//! the backend's certificate. It makes JSON-RPC calls ([`Client::call`]),
//! opens websockets on the same host and port ([`Client::websocket`], for
//! consoles) and fetches or posts bytes at fileserver URLs without the
//! certificate ([`Client::get_bytes`], [`Client::post_bytes`]: the
//! fileserver trusts grants, but its certificate is still checked against
//! the CA). Every failure to reach the host or read its answer is an
//! [`RpcError`] of kind [`TRANSPORT`](crate::jsonrpc::kind::TRANSPORT) naming the URL and the cause.
//!
//! Calls have a 10 s connect timeout and no overall timeout: actions such as
//! preparing a VM take as long as they take.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rustls_pki_types::ServerName;
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;

use crate::certs::{self, CertError};
use crate::jsonrpc::{ErrorBody, RPC_PATH, ResultBody, RpcError, RpcRequest};
use crate::server::provider;

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an unexpected answer's body goes into an error message.
const BODY_EXCERPT: usize = 200;

/// Why a [`Client`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an `https://host[:port]` URL.
    #[error("invalid hostmanager URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The CA, the certificate or the key is unusable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// reqwest refused the TLS settings.
    #[error("building the HTTP client failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// A websocket to a hostmanager over mutual TLS.
pub type WebSocket = WebSocketStream<TlsStream<TcpStream>>;

/// Calls to one hostmanager. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    base: Url,
    with_identity: reqwest::Client,
    anonymous: reqwest::Client,
    websocket_tls: TlsConnector,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the hostmanager at `base_url` (`https://host:port`, the
    /// host matching a subject alternative name of the host's certificate)
    /// that trusts only `ca_pem` and presents `client_cert_pem` with
    /// `client_key_pem`.
    pub fn new(
        base_url: &str,
        ca_pem: &str,
        client_cert_pem: &str,
        client_key_pem: &str,
    ) -> Result<Client, ClientError> {
        let base =
            Url::parse(base_url).map_err(|e| ClientError::Url { url: base_url.to_owned(), reason: e.to_string() })?;
        if base.scheme() != "https" || base.host().is_none() {
            return Err(ClientError::Url { url: base_url.to_owned(), reason: "expected https://host[:port]".into() });
        }
        // Check the PEM texts here, so mistakes are named before any call.
        let ca = certs::certs(ca_pem, "CA certificate")?;
        let chain = certs::certs(client_cert_pem, "client certificate")?;
        let key = certs::private_key(client_key_pem, "client key")?;

        let provider = provider();
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(|source| CertError::Tls { what: "CA certificate".into(), source })?;
        }
        let mut websocket_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| CertError::Tls { what: "client TLS configuration".into(), source })?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|source| CertError::Tls { what: "client certificate and key".into(), source })?;
        // Websockets upgrade an HTTP/1.1 connection.
        websocket_config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let identity = reqwest::Identity::from_pem(format!("{client_cert_pem}\n{client_key_pem}").as_bytes())?;
        let with_identity = http_client(ca_pem)?.identity(identity).build()?;
        let anonymous = http_client(ca_pem)?.build()?;
        Ok(Client { base, with_identity, anonymous, websocket_tls: TlsConnector::from(Arc::new(websocket_config)) })
    }

    /// The hostmanager's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Calls `method` with positional `args` and keyword `kwargs`: the
    /// method's result, or the host's error, or a transport error.
    pub async fn call(&self, method: &str, args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Value, RpcError> {
        let url = self.url(RPC_PATH)?;
        let request = RpcRequest { method: method.to_owned(), args, kwargs };
        let response =
            self.with_identity.post(url.clone()).json(&request).send().await.map_err(|e| transport_error(&url, &e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport_error(&url, &e))?;
        if status.is_success() {
            let answer: ResultBody = serde_json::from_slice(&body).map_err(|e| {
                RpcError::transport(format!("{url}: the answer is not {{\"result\": ...}}: {e}: {}", excerpt(&body)))
            })?;
            Ok(answer.result)
        } else {
            Err(error_from_answer(&url, status.as_u16(), &body))
        }
    }

    /// Opens a websocket at `path` (for example `/console/<id>`) on the
    /// hostmanager, presenting the backend's certificate. A refusal by the
    /// host (HTTP 403 and the like) comes back as the host's error.
    pub async fn websocket(&self, path: &str) -> Result<WebSocket, RpcError> {
        let mut url = self.url(path)?;
        url.set_scheme("wss").map_err(|()| RpcError::transport(format!("{url}: cannot use it as a websocket URL")))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let (server_name, addrs) = match url.host() {
            Some(url::Host::Domain(name)) => {
                let server_name = ServerName::try_from(name.to_owned())
                    .map_err(|e| RpcError::transport(format!("{url}: invalid host name: {e}")))?;
                let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|e| RpcError::transport(format!("{url}: cannot resolve `{name}`: {e}")))?
                    .collect();
                (server_name, addrs)
            }
            Some(url::Host::Ipv4(ip)) => (ServerName::IpAddress(ip.into()), vec![(ip, port).into()]),
            Some(url::Host::Ipv6(ip)) => (ServerName::IpAddress(ip.into()), vec![(ip, port).into()]),
            None => return Err(RpcError::transport(format!("{url}: no host"))),
        };
        let connect = async {
            let tcp = TcpStream::connect(&*addrs).await?;
            self.websocket_tls.connect(server_name, tcp).await
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| RpcError::transport(format!("{url}: connecting took longer than {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| RpcError::transport(format!("{url}: {e}")))?;
        match tokio_tungstenite::client_async(url.as_str(), tls).await {
            Ok((socket, _response)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                Err(error_from_answer(&url, response.status().as_u16(), body))
            }
            Err(e) => Err(RpcError::transport(format!("{url}: websocket handshake failed: {e}"))),
        }
    }

    /// GETs `url` (a fileserver URL with a grant) without the backend's
    /// certificate; the body of a 2xx answer.
    pub async fn get_bytes(&self, url: &str) -> Result<Vec<u8>, RpcError> {
        let url = parse_url(url)?;
        self.bytes(self.anonymous.get(url.clone()), &url).await
    }

    /// POSTs `body` to `url` (a fileserver URL with a grant) without the
    /// backend's certificate; the body of a 2xx answer.
    pub async fn post_bytes(&self, url: &str, body: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        let url = parse_url(url)?;
        self.bytes(self.anonymous.post(url.clone()).body(body), &url).await
    }

    async fn bytes(&self, request: reqwest::RequestBuilder, url: &Url) -> Result<Vec<u8>, RpcError> {
        let response = request.send().await.map_err(|e| transport_error(url, &e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport_error(url, &e))?;
        if status.is_success() { Ok(body.to_vec()) } else { Err(error_from_answer(url, status.as_u16(), &body)) }
    }

    fn url(&self, path: &str) -> Result<Url, RpcError> {
        self.base.join(path).map_err(|e| RpcError::transport(format!("{}{path}: invalid URL: {e}", self.base)))
    }
}

fn http_client(ca_pem: &str) -> Result<reqwest::ClientBuilder, ClientError> {
    let ca = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())?;
    Ok(reqwest::Client::builder().tls_certs_only(ca).https_only(true).no_proxy().connect_timeout(CONNECT_TIMEOUT))
}

fn parse_url(url: &str) -> Result<Url, RpcError> {
    Url::parse(url).map_err(|e| RpcError::transport(format!("invalid URL `{url}`: {e}")))
}

/// A transport error naming the URL and the whole chain of causes (reqwest's
/// own message is only the outermost, such as "error sending request").
fn transport_error(url: &Url, error: &reqwest::Error) -> RpcError {
    let mut message = format!("{url}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    RpcError::transport(message)
}

/// The host's error from a non-2xx answer, or a transport error quoting the
/// body when it is not one.
fn error_from_answer(url: &Url, status: u16, body: &[u8]) -> RpcError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(answer) => answer.error.into(),
        Err(_) => RpcError::transport(format!("{url}: HTTP {status}: {}", excerpt(body)))
            .with_data(serde_json::json!({ "http_status": status })),
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(BODY_EXCERPT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.into_owned(),
    }
}
