//! A real hostmanager daemon on loopback for the server's tests (its own
//! instance, network namespace and temp dir, as the hostmanager's tests
//! run it) and the backend server in front of it, on SQLite or PostgreSQL
//! (a [`TestDb`]); everything is removed on drop, panics included.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use api::basic_auth::Credentials;
use backend::server::handlers::dispatch;
use backend::server::{Backend, Identity, admin, hosts, now};
use backend::store::Host;
use hostmanager::daemon::{DaemonConfig, Listeners};
use tokio_util::sync::CancellationToken;

use crate::common::TestDb;

/// A hostmanager daemon.
pub struct HostDaemon {
    pub dir: tempfile::TempDir,
    pub instance: String,
    pub api: SocketAddr,
    pub ca: rpc::Ca,
    pub config: DaemonConfig,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn is_root() -> bool {
    dataplane::lab::is_root()
}

impl HostDaemon {
    pub async fn start(tag: &str, ca: &rpc::Ca) -> HostDaemon {
        HostDaemon::start_with_chores(tag, ca, Duration::from_secs(3600)).await
    }

    /// A daemon whose chores (usage samples among them) run every `every`.
    pub async fn start_with_chores(tag: &str, ca: &rpc::Ca, every: Duration) -> HostDaemon {
        rpc::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let instance = format!("b{}{tag}", std::process::id());
        let config = DaemonConfig::on_loopback(dir.path(), &instance, ca, every).unwrap();
        let listeners = Listeners::bind(&config).await.unwrap();
        let api = listeners.api.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = Some(tokio::spawn(hostmanager::daemon::run(config.clone(), listeners, stop.clone())));
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(api).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        HostDaemon { dir, instance, api, ca: ca.clone(), config, stop, task }
    }

    /// The host's certificate fingerprint.
    pub fn fingerprint(&self) -> String {
        let pem = std::fs::read_to_string(&self.config.cert).unwrap();
        rpc::CertInfo::from_pem(&pem, "host certificate").unwrap().fingerprint
    }

    pub async fn leftovers(&self) -> container::Leftovers {
        let netns = hostmanager::netns::path_of(&format!("tomato-{}", self.instance));
        let netns = netns.exists().then_some(netns);
        let root = self.config.host.data_dir.join("containers");
        container::leftovers(&root, &format!("tomato/{}", self.instance), netns.as_deref(), &[]).await.unwrap()
    }
}

impl Drop for HostDaemon {
    fn drop(&mut self) {
        self.stop.cancel();
        hostmanager::sweep_instance(&self.config.host.data_dir.join("containers"), &self.instance);
    }
}

/// The backend server on a test database, with a backend identity issued
/// by `ca`.
pub struct Server {
    pub backend: Arc<Backend>,
    pub addr: SocketAddr,
    pub issued: rpc::Issued,
    stop: CancellationToken,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped after the server has stopped (fields drop in order).
    db: Option<TestDb>,
}

impl Server {
    pub async fn start(ca: &rpc::Ca, db: TestDb) -> Server {
        rpc::install_crypto_provider();
        let issued = ca.issue_backend("backend").unwrap();
        Server::serve(ca, issued, db).await
    }

    async fn serve(ca: &rpc::Ca, issued: rpc::Issued, db: TestDb) -> Server {
        let identity = Identity {
            ca_pem: ca.cert_pem.clone(),
            cert_pem: issued.cert_pem.clone(),
            key_pem: issued.key_pem.clone(),
        };
        let backend = Arc::new(Backend::new(db.open().await, identity));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let served =
            tokio::spawn(backend::server::serve(listener, backend.clone(), async move { token.cancelled().await }));
        Server { backend, addr, issued, stop, served: Some(served), db: Some(db) }
    }

    /// Stops this server (waiting for it, and closing the store), then
    /// starts a new `Backend` on the same database with the same identity.
    pub async fn restart(mut self, ca: &rpc::Ca) -> Server {
        self.stop.cancel();
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        self.backend.store.close().await;
        // Nothing else holds the old backend once the server has stopped.
        let issued = self.issued.clone();
        let db = self.db.take().expect("a server holds its database until dropped");
        drop(self);
        Server::serve(ca, issued, db).await
    }

    pub async fn user(&self, name: &str, password: &str, admin: bool) {
        admin::create_user(&self.backend.store, name, password, "lab", admin, now()).await.unwrap();
    }

    /// Makes site `site1` of organization `lab`.
    pub async fn site(&self) {
        hosts::ensure_site(&self.backend.store, "site1", "lab").await.unwrap();
    }

    /// Registers `host` as `host1` in `site1` through the API's
    /// `host_create`, called by a new administrator (accepting this backend
    /// on the host first).
    pub async fn register(&self, host: &HostDaemon) -> Host {
        std::fs::create_dir_all(&host.config.accepted).unwrap();
        rpc::accepted::accept(&host.config.accepted, &self.issued.cert_pem).unwrap();
        self.site().await;
        self.user("root", "root-secret", true).await;
        let root = Credentials { username: "root".into(), password: "root-secret".into() };
        let attrs = serde_json::json!({
            "address": "127.0.0.1",
            "rpcurl": format!("https://127.0.0.1:{}", host.api.port()),
            "fingerprint": host.fingerprint(),
        });
        let args = vec!["host1".into(), "site1".into(), attrs];
        let info = dispatch(&self.backend, Ok(Some(root)), "host_create", args, Default::default()).await.unwrap();
        assert_eq!(info["name"], "host1", "{info}");
        self.backend.store.host("host1").await.unwrap()
    }

    /// Calls `method` as `user` (password `USER-secret`, as the tests make
    /// them) through the dispatcher both transports use.
    pub async fn call(
        &self,
        user: &str,
        method: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<serde_json::Value, rpc::RpcError> {
        let who = Credentials { username: user.into(), password: format!("{user}-secret") };
        dispatch(&self.backend, Ok(Some(who)), method, args, Default::default()).await
    }

    /// Runs a Python script (standard library only) with the server's port
    /// in `TOMATO_PORT`; returns its output, failing with its stderr.
    pub async fn python(&self, script: &str, env: &[(&str, &str)]) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
        let mut cmd = Command::new("python3");
        cmd.arg(path).env("TOMATO_PORT", self.addr.port().to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
