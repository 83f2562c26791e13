//! The HTTPS server of a hostmanager (and its fileserver): TLS with the
//! host's certificate, optionally asking clients for a certificate signed by
//! the testbed CA, serving an axum [`Router`] over HTTP/1.1 or HTTP/2
//! (websocket upgrades included).
//!
//! Every request carries a [`Peer`] extension describing the client
//! certificate of its connection (empty without one). Whether a certificate
//! is *accepted* is not decided here but by
//! [`require_accepted`](crate::jsonrpc::require_accepted) in the router, so
//! the same server also serves the fileserver, whose clients use grants
//! instead of certificates ([`ClientAuth::None`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::certs::{self, CertError};

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after a failed `accept` (for example too many open files)
/// before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The client certificate of a request's connection, as a request
/// extension. Both fields are `None` when the client presented none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// The certificate's common name (the backend's name).
    pub cn: Option<String>,
    /// SHA-256 of the certificate's DER encoding, lowercase hex.
    pub fingerprint: Option<String>,
}

impl Peer {
    fn from_certs(certs: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Peer {
        let Some(der) = certs.and_then(<[_]>::first) else {
            return Peer::default();
        };
        // The verifier has parsed this certificate already; a CN that still
        // cannot be read is treated as absent.
        let cn = certs::common_name(der.as_ref(), "client certificate").ok().flatten();
        Peer { cn, fingerprint: Some(certs::fingerprint(der.as_ref())) }
    }
}

/// Whether the server asks clients for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client must present a certificate that chains to the CA, or the
    /// handshake fails.
    Required,
    /// A client may present a certificate; if it does, it must chain to the
    /// CA. Requests without one reach the router with an empty [`Peer`] (and
    /// [`require_accepted`](crate::jsonrpc::require_accepted) answers them
    /// with a readable 403).
    Optional,
    /// No client certificates (the fileserver); `ca_pem` is not used.
    None,
}

/// Installs aws-lc-rs as rustls' process-wide crypto provider, unless one is
/// installed already. This crate's own configurations name the provider
/// explicitly; this is for other rustls users in the same process.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The rustls crypto provider of every configuration this crate builds.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    install_crypto_provider();
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The TLS configuration of a host's server: its certificate (PEM, may be
/// followed by intermediate certificates) and key, and for client
/// certificates the CA they must chain to. Offers HTTP/2 and HTTP/1.1.
pub fn server_config(
    host_cert_pem: &str,
    host_key_pem: &str,
    ca_pem: &str,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, CertError> {
    let provider = provider();
    let chain = certs::certs(host_cert_pem, "host certificate")?;
    let key = certs::private_key(host_key_pem, "host key")?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| CertError::Tls { what: "server TLS configuration".into(), source })?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required | ClientAuth::Optional => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs::certs(ca_pem, "CA certificate")? {
                roots.add(cert).map_err(|source| CertError::Tls { what: "CA certificate".into(), source })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if client_auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| CertError::Verifier {
                what: "client certificate verifier".into(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| CertError::Tls { what: "host certificate and key".into(), source })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then
/// stops accepting, lets open connections finish their requests (HTTP/2
/// clients get GOAWAY, idle HTTP/1.1 connections are closed) and returns
/// once all have ended. Upgraded connections (websockets) belong to their
/// handlers and do not delay the return. Dropping the future instead stops
/// everything at once.
///
/// Each connection's TLS handshake must finish within 10 s; failed
/// handshakes (an unknown CA, no certificate where one is required) close
/// the connection. Every request gets the connection's [`Peer`] as an
/// extension.
pub async fn serve<F>(listener: TcpListener, tls: Arc<ServerConfig>, router: Router, shutdown: F)
where
    F: Future<Output = ()> + Send,
{
    let acceptor = TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    connections.spawn(serve_connection(acceptor.clone(), tcp, router.clone(), stop_rx.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_RETRY).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Receivers only see `true` or a dropped sender; both mean stop.
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(acceptor: TlsAcceptor, tcp: TcpStream, router: Router, mut stop: watch::Receiver<bool>) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(_)) | Err(_) => return,
        },
        _ = stop.wait_for(|stopped| *stopped) => return,
    };
    let peer = Peer::from_certs(tls.get_ref().1.peer_certificates());
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        router.clone().oneshot(request)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    connection.as_mut().graceful_shutdown();
    // The connection's end is all that matters here; its error (a client
    // that went away) has no one to go to.
    let _ = connection.await;
}
