//! A hostmanager daemon on loopback for tests, with a CA, a host
//! certificate and accepted backends; everything it made is removed on drop.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hostmanager::daemon::{DaemonConfig, Listeners};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// A running test hostmanager.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub instance: String,
    pub api: SocketAddr,
    pub fileserver: SocketAddr,
    pub ca: rpc::Ca,
    pub config: DaemonConfig,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn is_root() -> bool {
    dataplane::lab::is_root()
}

impl Daemon {
    /// Starts a daemon in a fresh temp dir.
    pub async fn start(tag: &str) -> Daemon {
        Daemon::start_with(tag, Duration::from_secs(3600)).await
    }

    /// Starts a daemon whose chores (usage samples, timeouts) run every `chores_every`.
    pub async fn start_with(tag: &str, chores_every: Duration) -> Daemon {
        rpc::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let instance = format!("t{}{tag}", std::process::id());
        let ca = rpc::Ca::create("test CA").unwrap();
        let config = DaemonConfig::on_loopback(dir.path(), &instance, &ca, chores_every).unwrap();
        let mut d = Daemon {
            dir,
            instance,
            api: "127.0.0.1:0".parse().unwrap(),
            fileserver: "127.0.0.1:0".parse().unwrap(),
            ca,
            config,
            stop: CancellationToken::new(),
            task: None,
        };
        d.launch().await;
        d
    }

    async fn launch(&mut self) {
        let mut config = self.config.clone();
        if self.api.port() != 0 {
            config.listen = self.api;
            config.fileserver_listen = self.fileserver;
        }
        let listeners = Listeners::bind(&config).await.unwrap();
        self.api = listeners.api.local_addr().unwrap();
        self.fileserver = listeners.fileserver.local_addr().unwrap();
        self.stop = CancellationToken::new();
        self.task = Some(tokio::spawn(hostmanager::daemon::run(config, listeners, self.stop.clone())));
        // Wait until the API answers (recovery runs first).
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.api).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the daemon (containers stay) and starts it again.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// A backend named `name`, accepted by this host unless `accepted` is false.
    pub fn backend(&self, name: &str, accepted: bool) -> rpc::Client {
        let issued = self.ca.issue_backend(name).unwrap();
        if accepted {
            std::fs::create_dir_all(&self.config.accepted).unwrap();
            rpc::accepted::accept(&self.config.accepted, &issued.cert_pem).unwrap();
        }
        rpc::Client::new(
            &format!("https://127.0.0.1:{}", self.api.port()),
            &self.ca.cert_pem,
            &issued.cert_pem,
            &issued.key_pem,
        )
        .unwrap()
    }

    /// The fileserver URL of a grant.
    pub fn grant_url(&self, grant: &str, op: &str) -> String {
        format!("https://127.0.0.1:{}/{grant}/{op}", self.fileserver.port())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.host.data_dir.clone()
    }
}

impl Daemon {
    /// Kernel objects and files of this hostmanager's containers.
    pub async fn leftovers(&self) -> container::Leftovers {
        let netns = hostmanager::netns::path_of(&format!("tomato-{}", self.instance));
        let netns = netns.exists().then_some(netns);
        container::leftovers(&self.data_dir().join("containers"), &self.cgroup_parent(), netns.as_deref(), &[])
            .await
            .unwrap()
    }

    pub fn cgroup_parent(&self) -> String {
        format!("tomato/{}", self.instance)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.cancel();
        // Everything the test's containers left, whatever happened.
        hostmanager::sweep_instance(&self.data_dir().join("containers"), &self.instance);
    }
}

/// Calls `method` with positional JSON arguments.
pub async fn call(client: &rpc::Client, method: &str, args: Value) -> Result<Value, rpc::RpcError> {
    client.call(method, args.as_array().cloned().unwrap_or_default(), Map::new()).await
}
