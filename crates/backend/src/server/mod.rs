//! The backend's HTTP server: ToMaTo's API over XML-RPC (`POST /RPC2` and
//! `POST /`) and JSON (`POST /api/<method>`, `GET /api/openapi.json`),
//! both through one dispatcher ([`handlers`]) that logs the caller in
//! (HTTP Basic), binds the arguments with the `api` crate's table, checks
//! [`crate::permissions`] and runs the method on the store and the hosts.
//!
//! - `http.rs`: the routes and the two transports.
//! - [`handlers`]: the dispatcher and the methods served.
//! - [`hosts`]: clients of the hostmanagers, polling and registration.
//! - [`admin`]: bootstrap (the first admin account).
//! - [`accounting`]: the pull of hosts' usage records and the month's
//!   usage for quotas.
//! - [`chores`]: the periodic pass (poll hosts, pull accounting, timeouts).
//! - `console.rs`: element consoles relayed to the hosts (WebSocket).

pub mod accounting;
pub mod admin;
pub mod chores;
mod console;
pub mod handlers;
pub mod hosts;
mod http;

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use hosts::{HostPool, Identity};
pub use http::router;

use crate::Error;
use crate::store::Store;
use crate::timeouts::TimeoutConfig;

/// What the server works with: the store, the hosts and the settings.
#[derive(Debug)]
pub struct Backend {
    /// The database.
    pub store: Store,
    /// Clients of the hosts.
    pub hosts: HostPool,
    /// Topology timeouts.
    pub timeouts: TimeoutConfig,
}

impl Backend {
    /// A backend on `store` reaching hosts as `identity`, with ToMaTo's
    /// timeouts.
    pub fn new(store: Store, identity: Identity) -> Backend {
        Backend { store, hosts: HostPool::new(identity), timeouts: TimeoutConfig::tomato() }
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    backend: Arc<Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(backend)).with_graceful_shutdown(shutdown).await
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// A crate error as the API answers it; internal failures are logged with
/// their detail.
pub fn fail(error: impl Into<Error>) -> rpc::RpcError {
    let error = error.into();
    if error.code() == "internal" {
        tracing::error!("backend: {error}");
    }
    error.to_rpc()
}
