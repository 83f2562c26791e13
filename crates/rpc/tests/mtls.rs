//! A hostmanager-like server and backend clients over real TLS on
//! 127.0.0.1: who may call, who the owner is, errors, websockets, the
//! fileserver mode and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use axum::extract::{Extension, Path};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use rpc::accepted::{self, AcceptedDir};
use rpc::jsonrpc::kind;
use rpc::{Ca, Client, ClientAuth, Dispatch, Issued, Owner, Peer, RpcError};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Answers every call with who called what; `fail` returns an error with
/// data, `slow` answers after 300 ms.
struct Echo;

impl Dispatch for Echo {
    async fn call(
        &self,
        owner: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, RpcError> {
        match method {
            "fail" => Err(RpcError::invalid_state("pc1 is started").with_data(json!({"state": "started"}))),
            "slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(json!("done"))
            }
            "echo" => Ok(json!({"owner": owner, "method": method, "args": args, "kwargs": kwargs})),
            other => Err(RpcError::unknown_method(other)),
        }
    }
}

/// A CA, a host certificate for 127.0.0.1 and an accepted directory.
struct Testbed {
    dir: tempfile::TempDir,
    ca: Ca,
    host: Issued,
}

impl Testbed {
    fn new() -> Testbed {
        Testbed::with_sans(&["127.0.0.1"])
    }

    fn with_sans(sans: &[&str]) -> Testbed {
        let ca = Ca::create("Test CA").expect("ca");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let host = ca.issue_host("host1", &sans).expect("host cert");
        Testbed { dir: tempfile::tempdir().expect("tempdir"), ca, host }
    }

    fn accepted_dir(&self) -> PathBuf {
        self.dir.path().join("accepted")
    }

    /// A backend certificate, accepted by the host or not.
    fn backend(&self, name: &str, accept: bool) -> Issued {
        let issued = self.ca.issue_backend(name).expect("backend cert");
        if accept {
            accepted::accept(&self.accepted_dir(), &issued.cert_pem).expect("accept");
        }
        issued
    }

    fn client(&self, addr: SocketAddr, backend: &Issued) -> Client {
        Client::new(&format!("https://{addr}"), &self.ca.cert_pem, &backend.cert_pem, &backend.key_pem).expect("client")
    }

    /// The RPC router plus an accepted-only websocket echo at
    /// `/console/{id}` and an open `/whoami` answering the `Peer`.
    fn router(&self) -> Router {
        let accepted = AcceptedDir::new(self.accepted_dir());
        let consoles = Router::new().route("/console/{id}", get(console));
        rpc::rpc_router(Arc::new(Echo), accepted.clone())
            .merge(rpc::require_accepted(consoles, accepted))
            .route("/whoami", get(whoami).post(whoami))
    }

    fn start(&self, client_auth: ClientAuth) -> Server {
        let tls = rpc::server_config(&self.host.cert_pem, &self.host.key_pem, &self.ca.cert_pem, client_auth)
            .expect("server config");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let (stop, stopped) = oneshot::channel::<()>();
        let router = self.router();
        let task = tokio::spawn(rpc::serve(listener, tls, router, async move {
            let _ = stopped.await;
        }));
        Server { addr, stop, task }
    }
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn console(ws: WebSocketUpgrade, Path(id): Path<String>, Extension(Owner(owner)): Extension<Owner>) -> Response {
    ws.on_upgrade(move |mut socket| async move {
        if socket.send(AxumMessage::Text(format!("console {id} of {owner}").into())).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if let AxumMessage::Text(text) = message
                && socket.send(AxumMessage::Text(text)).await.is_err()
            {
                return;
            }
        }
    })
}

async fn whoami(Extension(peer): Extension<Peer>) -> String {
    format!("{:?}", peer.cn)
}

fn no_kwargs() -> Map<String, Value> {
    Map::new()
}

/// A POST to `/rpc` with raw reqwest: the HTTP status and JSON body.
async fn raw_post(bed: &Testbed, addr: SocketAddr, identity: Option<&Issued>, body: &str) -> (u16, Value) {
    let ca = reqwest::Certificate::from_pem(bed.ca.cert_pem.as_bytes()).expect("ca");
    let mut builder = reqwest::Client::builder().tls_certs_only([ca]).no_proxy();
    if let Some(issued) = identity {
        let pem = format!("{}\n{}", issued.cert_pem, issued.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    let response = builder
        .build()
        .expect("reqwest")
        .post(format!("https://{addr}/rpc"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn each_accepted_backend_is_the_owner_of_its_calls() {
    let bed = Testbed::new();
    let a = bed.backend("backend-a", true);
    let b = bed.backend("backend-b", true);
    let server = bed.start(ClientAuth::Required);
    let mut kwargs = Map::new();
    kwargs.insert("parent".into(), json!(null));
    let result =
        bed.client(server.addr, &a).call("echo", vec![json!("container"), json!(1)], kwargs).await.expect("call a");
    assert_eq!(
        result,
        json!({"owner": "backend-a", "method": "echo", "args": ["container", 1], "kwargs": {"parent": null}})
    );
    let result = bed.client(server.addr, &b).call("echo", vec![], no_kwargs()).await.expect("call b");
    assert_eq!(result["owner"], "backend-b");
}

#[tokio::test]
async fn a_certificate_of_the_ca_that_is_not_accepted_gets_403_until_accepted() {
    let bed = Testbed::new();
    bed.backend("backend-a", true);
    let c = bed.backend("backend-c", false);
    let server = bed.start(ClientAuth::Required);
    let client = bed.client(server.addr, &c);

    let error = client.call("echo", vec![], no_kwargs()).await.expect_err("not accepted");
    assert_eq!(error.kind, kind::NOT_ACCEPTED, "{error}");
    assert!(error.message.contains("CN=backend-c"), "{error}");
    let (status, body) = raw_post(&bed, server.addr, Some(&c), r#"{"method": "echo"}"#).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "not_accepted");
    assert_eq!(body["error"]["type"], "user");

    // Accepting takes effect for the next request, on the same connection pool.
    let entry = accepted::accept(&bed.accepted_dir(), &c.cert_pem).expect("accept");
    let result = client.call("echo", vec![], no_kwargs()).await.expect("accepted now");
    assert_eq!(result["owner"], "backend-c");
    assert_eq!(error.data["fingerprint"], entry.fingerprint.as_str());

    // Revoking too.
    accepted::revoke(&bed.accepted_dir(), "backend-c").expect("revoke");
    let error = client.call("echo", vec![], no_kwargs()).await.expect_err("revoked");
    assert_eq!(error.kind, kind::NOT_ACCEPTED, "{error}");
}

#[tokio::test]
async fn a_certificate_of_another_ca_fails_the_handshake_as_a_transport_error() {
    let bed = Testbed::new();
    let other_ca = Ca::create("Other CA").expect("ca");
    let stranger = other_ca.issue_backend("backend-a").expect("cert");
    // Even accepting the stranger's certificate does not let it in: it must chain to the CA.
    accepted::accept(&bed.accepted_dir(), &stranger.cert_pem).expect("accept");
    for client_auth in [ClientAuth::Required, ClientAuth::Optional] {
        let server = bed.start(client_auth);
        let error = bed.client(server.addr, &stranger).call("echo", vec![], no_kwargs()).await.expect_err("refused");
        assert_eq!(error.kind, kind::TRANSPORT, "{client_auth:?}: {error}");
        assert!(error.message.contains(&format!("https://{}/rpc", server.addr)), "{error}");
    }
}

#[tokio::test]
async fn a_host_certificate_of_another_ca_is_refused_by_the_client() {
    let bed = Testbed::new();
    let a = bed.backend("backend-a", true);
    let server = bed.start(ClientAuth::Required);
    let other_ca = Ca::create("Other CA").expect("ca");
    let client =
        Client::new(&format!("https://{}", server.addr), &other_ca.cert_pem, &a.cert_pem, &a.key_pem).expect("client");
    let error = client.call("echo", vec![], no_kwargs()).await.expect_err("unknown issuer");
    assert_eq!(error.kind, kind::TRANSPORT);
    assert!(error.message.to_lowercase().contains("certificate"), "{error}");
}

#[tokio::test]
async fn no_client_certificate_is_refused() {
    let bed = Testbed::new();
    let a = bed.backend("backend-a", true);

    // Required: the handshake fails.
    let server = bed.start(ClientAuth::Required);
    let client = bed.client(server.addr, &a);
    let url = format!("https://{}/rpc", server.addr);
    let error = client.post_bytes(&url, br#"{"method": "echo"}"#.to_vec()).await.expect_err("no certificate");
    assert_eq!(error.kind, kind::TRANSPORT, "{error}");

    // Optional: the request arrives and is answered with a readable 403.
    let server = bed.start(ClientAuth::Optional);
    let (status, body) = raw_post(&bed, server.addr, None, r#"{"method": "echo"}"#).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "no_certificate", "{body}");
    // With a certificate, the same optional server serves the backend.
    let result = bed.client(server.addr, &a).call("echo", vec![], no_kwargs()).await.expect("call");
    assert_eq!(result["owner"], "backend-a");
}

#[tokio::test]
async fn errors_round_trip_with_kind_message_and_data() {
    let bed = Testbed::new();
    let a = bed.backend("backend-a", true);
    let server = bed.start(ClientAuth::Required);
    let client = bed.client(server.addr, &a);
    let error = client.call("fail", vec![], no_kwargs()).await.expect_err("fails");
    assert_eq!(error, RpcError::invalid_state("pc1 is started").with_data(json!({"state": "started"})));
    let (status, body) = raw_post(&bed, server.addr, Some(&a), r#"{"method": "fail"}"#).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"error": {"type": "user", "code": "invalid_state", "message": "pc1 is started", "data": {"state": "started"}}})
    );

    let error = client.call("nope", vec![], no_kwargs()).await.expect_err("unknown");
    assert_eq!(error.kind, kind::UNKNOWN_METHOD);
    let (status, body) = raw_post(&bed, server.addr, Some(&a), r#"{"method": 1}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
}

#[tokio::test]
async fn websocket_echo_over_mutual_tls() {
    let bed = Testbed::new();
    let a = bed.backend("backend-a", true);
    let c = bed.backend("backend-c", false);
    let server = bed.start(ClientAuth::Required);
    let mut socket = bed.client(server.addr, &a).websocket("/console/pc1").await.expect("websocket");
    let greeting = socket.next().await.expect("a message").expect("ok");
    assert_eq!(greeting, Message::Text("console pc1 of backend-a".into()));
    socket.send(Message::Text("ls /".into())).await.expect("send");
    assert_eq!(socket.next().await.expect("a message").expect("ok"), Message::Text("ls /".into()));
    socket.close(None).await.expect("close");

    let error = bed.client(server.addr, &c).websocket("/console/pc1").await.expect_err("not accepted");
    assert_eq!(error.kind, kind::NOT_ACCEPTED, "{error}");
}

#[tokio::test]
async fn the_fileserver_mode_serves_without_client_certificates() {
    let bed = Testbed::new();
    let a = bed.backend("backend-a", true);
    let server = bed.start(ClientAuth::None);
    let client = bed.client(server.addr, &a);
    let url = format!("https://{}/whoami", server.addr);
    assert_eq!(client.get_bytes(&url).await.expect("get"), b"None");
    assert_eq!(client.post_bytes(&url, b"data".to_vec()).await.expect("post"), b"None");
    // The RPC route still refuses, now for lack of a certificate.
    let error = client.call("echo", vec![], no_kwargs()).await.expect_err("no certificate");
    assert_eq!(error.kind, kind::NO_CERTIFICATE, "{error}");
    // A wrong URL is an error with the HTTP status.
    let error = client.get_bytes(&format!("https://{}/missing", server.addr)).await.expect_err("404");
    assert_eq!(error.data["http_status"], 404, "{error}");
}

#[tokio::test]
async fn the_peer_extension_names_the_certificate() {
    let bed = Testbed::new();
    let c = bed.backend("backend-c", false);
    let server = bed.start(ClientAuth::Optional);
    // `/whoami` is outside `require_accepted`: it sees the peer either way.
    let ca = reqwest::Certificate::from_pem(bed.ca.cert_pem.as_bytes()).expect("ca");
    let pem = format!("{}\n{}", c.cert_pem, c.key_pem);
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"))
        .no_proxy()
        .build()
        .expect("reqwest");
    let body = http.get(format!("https://{}/whoami", server.addr)).send().await.expect("send").text().await;
    assert_eq!(body.expect("text"), r#"Some("backend-c")"#);
}

#[tokio::test]
async fn graceful_shutdown_finishes_running_calls_and_ends_serve() {
    let bed = Testbed::new();
    let a = bed.backend("backend-a", true);
    let server = bed.start(ClientAuth::Required);
    let client = bed.client(server.addr, &a);
    client.call("echo", vec![], no_kwargs()).await.expect("warm connection");
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call("slow", vec![], no_kwargs()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.send(()).expect("server runs");
    assert_eq!(slow.await.expect("join").expect("the running call finishes"), json!("done"));
    tokio::time::timeout(Duration::from_secs(5), server.task).await.expect("serve ends").expect("no panic");
    let error = client.call("echo", vec![], no_kwargs()).await.expect_err("stopped");
    assert_eq!(error.kind, kind::TRANSPORT);
}

#[tokio::test]
async fn the_host_name_must_be_in_the_host_certificate() {
    for (sans, accepted) in [(&["127.0.0.1"][..], false), (&["localhost"][..], true)] {
        let bed = Testbed::with_sans(sans);
        let a = bed.backend("backend-a", true);
        let server = bed.start(ClientAuth::Required);
        let client = Client::new(
            &format!("https://localhost:{}", server.addr.port()),
            &bed.ca.cert_pem,
            &a.cert_pem,
            &a.key_pem,
        )
        .expect("client");
        let call = client.call("echo", vec![], no_kwargs()).await;
        let websocket = client.websocket("/console/pc1").await;
        if accepted {
            assert_eq!(call.expect("call")["owner"], "backend-a");
            websocket.expect("websocket");
        } else {
            assert_eq!(call.expect_err("name mismatch").kind, kind::TRANSPORT);
            let error = websocket.expect_err("name mismatch");
            assert_eq!(error.kind, kind::TRANSPORT);
            assert!(error.message.contains("not valid for name \"localhost\""), "{error}");
        }
    }
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_stuck_in_the_handshake() {
    let bed = Testbed::new();
    let server = bed.start(ClientAuth::Required);
    // Connects and never says a word: the server waits in the TLS handshake.
    let silent = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop.send(()).expect("server runs");
    tokio::time::timeout(Duration::from_secs(2), server.task).await.expect("serve ends").expect("no panic");
    drop(silent);
}
