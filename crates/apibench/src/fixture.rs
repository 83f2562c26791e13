//! What the benchmark serves: a store with a user, a host and a topology
//! of containers with interfaces and links (rows written straight through
//! the store, as `element_info` without `fetch` reads only the store),
//! the real server in front of it, and the floor: a handler on the same
//! HTTP stack that answers a fixed body and does no work.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use backend::permissions::Role;
use backend::server::{Backend, Identity, admin, hosts, now};
use backend::store::{Connection, Element, Host, Store, Topology};
use backend::timeouts::{TimeoutConfig, TopologyTimeout};
use bytes::Bytes;
use model::{Attrs, State};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The user the clients log in as.
pub const USER: &str = "alice";
/// Their password (HTTP Basic on every request, as ToMaTo's clients send).
pub const PASSWORD: &str = "alice-secret-for-the-benchmark";

/// The element ids the clients ask about.
pub struct Fixture {
    pub elements: Vec<i64>,
}

fn attrs(v: serde_json::Value) -> Attrs {
    serde_json::from_value(v).unwrap_or_default()
}

/// Fills `store`: alice (organization `lab`, a plain user), a host, and
/// alice's topology of `pairs` pairs of started containers, each with an
/// interface, the two interfaces of a pair joined by a bridge connection.
pub async fn fill(store: &Store, pairs: usize) -> anyhow::Result<Fixture> {
    let at = now();
    admin::create_user(store, USER, PASSWORD, "lab", false, at).await.context("user")?;
    hosts::ensure_site(store, "site1", "lab").await.context("site")?;
    let mut host = Host::new("host1", "site1", "127.0.0.1", "https://127.0.0.1:8000", &"ab".repeat(32));
    host.host_info = json!({"fileserver_port": 8888});
    host.element_types = ["container", "container_interface"].iter().map(|s| s.to_string()).collect();
    store.create_host(&host).await.context("host")?;
    let topology = Topology {
        id: 0,
        name: "benchmark".into(),
        site: None,
        timeout: TopologyTimeout::new(at, &TimeoutConfig::tomato()),
        client_data: attrs(json!({"_notes": "element_info benchmark"})),
        created: at,
        permissions: BTreeMap::from([(USER.to_string(), Role::Owner)]),
    };
    let topology = store.create_topology(&topology, USER).await.context("topology")?;
    let mut elements = Vec::new();
    let mut host_id = 1000;
    let mut placed = |kind: &str, parent: Option<i64>, a: serde_json::Value| {
        host_id += 1;
        Element {
            id: 0,
            topology: topology.id,
            kind: kind.into(),
            parent,
            state: State::Started,
            attrs: attrs(a),
            host: Some("host1".into()),
            host_id: Some(host_id),
        }
    };
    for pair in 0..pairs {
        let mut ends = [0; 2];
        for (side, end) in ends.iter_mut().enumerate() {
            let n = 2 * pair + side;
            let ct = placed("container", None, json!({"_name": format!("pc{n}"), "ram": 256}));
            let ct = store.create_element(&ct).await.context("container")?;
            let ifc = placed(
                "container_interface",
                Some(ct.id),
                json!({"ip4address": format!("10.0.{pair}.{}/24", side + 1)}),
            );
            let ifc = store.create_element(&ifc).await.context("interface")?;
            elements.extend([ct.id, ifc.id]);
            *end = ifc.id;
        }
        let link = Connection {
            id: 0,
            topology: topology.id,
            kind: "bridge".into(),
            ends,
            state: State::Started,
            attrs: attrs(json!({"delay_to": 10})),
            host: Some("host1".into()),
            host_id: Some(5000 + pair as i64),
        };
        store.create_connection(&link).await.context("connection")?;
    }
    Ok(Fixture { elements })
}

/// The real server on `store`, serving until `stop` is cancelled.
pub async fn serve(store: Store, stop: CancellationToken) -> anyhow::Result<SocketAddr> {
    rpc::install_crypto_provider();
    let ca = rpc::Ca::create("benchmark CA")?;
    let issued = ca.issue_backend("backend")?;
    let identity = Identity { ca_pem: ca.cert_pem.clone(), cert_pem: issued.cert_pem, key_pem: issued.key_pem };
    let backend = Arc::new(Backend::new(store, identity));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(backend::server::serve(listener, backend, async move { stop.cancelled_owned().await }));
    Ok(addr)
}

/// The floor: the routes the clients use, each answering `json` or `xml`
/// (a real answer, captured) without reading the request.
pub async fn serve_floor(json: Bytes, xml: Bytes, stop: CancellationToken) -> anyhow::Result<SocketAddr> {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::post;
    let router = axum::Router::new()
        .route("/api/element_info", post(move || async move { ([(CONTENT_TYPE, "application/json")], json) }))
        .route("/RPC2", post(move || async move { ([(CONTENT_TYPE, "text/xml")], xml) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled_owned().await }).await
    });
    Ok(addr)
}
