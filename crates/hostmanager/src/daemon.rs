//! `tomato hostmanager run`: the API over mutual TLS, the fileserver, and
//! the minute's chores (usage samples, timeouts, expired grants).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::HostError;
use crate::host::{Host, HostConfig, now};

/// Where the daemon listens and finds its certificates.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The host core's configuration.
    pub host: HostConfig,
    /// The API's address (mutual TLS).
    pub listen: SocketAddr,
    /// The fileserver's address (TLS, grants instead of certificates).
    pub fileserver_listen: SocketAddr,
    /// The host's certificate (PEM).
    pub cert: PathBuf,
    /// The host's private key (PEM).
    pub key: PathBuf,
    /// The testbed CA's certificate (PEM).
    pub ca: PathBuf,
    /// The directory of accepted backend certificates.
    pub accepted: PathBuf,
    /// How often usage is sampled and timeouts are checked.
    pub chores_every: Duration,
}

impl DaemonConfig {
    /// A daemon on loopback with ports the kernel picks, its data in
    /// `DIR/data` and a host certificate issued by `ca` into `DIR/tls`:
    /// what test harnesses and benchmarks run (each with its own
    /// `instance`).
    pub fn on_loopback(
        dir: &Path,
        instance: &str,
        ca: &rpc::Ca,
        chores_every: Duration,
    ) -> anyhow::Result<DaemonConfig> {
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls)?;
        ca.issue_host("host", &["127.0.0.1".into()])?.save(&tls, "host")?;
        std::fs::write(tls.join("ca.pem"), &ca.cert_pem)?;
        let data = dir.join("data");
        let loopback = |port| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        Ok(DaemonConfig {
            host: HostConfig {
                data_dir: data.clone(),
                instance: instance.into(),
                address: "127.0.0.1".into(),
                fileserver_port: 0,
                capture_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                rextfv_max_size: crate::nlxtp::DEFAULT_MAX_SIZE,
            },
            listen: loopback(0),
            fileserver_listen: loopback(0),
            cert: tls.join("host.pem"),
            key: tls.join("host.key"),
            ca: tls.join("ca.pem"),
            accepted: data.join("accepted"),
            chores_every,
        })
    }
}

impl From<HostError> for rpc::RpcError {
    fn from(e: HostError) -> rpc::RpcError {
        rpc::RpcError::new(e.kind.name(), e.message).with_data(e.data)
    }
}

/// The method table behind the mTLS API.
struct Api {
    host: Arc<Host>,
}

impl rpc::Dispatch for Api {
    async fn call(
        &self,
        owner: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, rpc::RpcError> {
        crate::methods::dispatch(&self.host, owner, method, args, kwargs).await.map_err(Into::into)
    }
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

/// The bound listeners, so callers (tests) can learn ports picked by the
/// kernel before serving.
#[derive(Debug)]
pub struct Listeners {
    /// The API's listener.
    pub api: TcpListener,
    /// The fileserver's listener.
    pub fileserver: TcpListener,
}

impl Listeners {
    /// Binds both addresses of `config`.
    pub async fn bind(config: &DaemonConfig) -> anyhow::Result<Listeners> {
        let api =
            TcpListener::bind(config.listen).await.map_err(|e| anyhow::anyhow!("listen {}: {e}", config.listen))?;
        let fileserver = TcpListener::bind(config.fileserver_listen)
            .await
            .map_err(|e| anyhow::anyhow!("fileserver listen {}: {e}", config.fileserver_listen))?;
        Ok(Listeners { api, fileserver })
    }
}

/// Runs the hostmanager until `shutdown` is cancelled: recovers, then
/// serves the API and the fileserver and does the chores. Containers keep
/// running after it ends; the next run re-adopts them.
pub async fn run(mut config: DaemonConfig, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    rpc::install_crypto_provider();
    // Containers' inits whose starter ended are reparented here and reaped
    // by the runtime, not left as zombies (PID 1 may not reap them).
    container::become_subreaper()?;
    let (cert, key, ca) =
        (read(&config.cert, "host certificate")?, read(&config.key, "host key")?, read(&config.ca, "CA")?);
    let api_tls = rpc::server_config(&cert, &key, &ca, rpc::ClientAuth::Required)?;
    let file_tls = rpc::server_config(&cert, &key, &ca, rpc::ClientAuth::None)?;
    std::fs::create_dir_all(&config.accepted)?;
    config.host.fileserver_port = listeners.fileserver.local_addr()?.port();
    let (host, recovery) = Host::open(config.host.clone()).await?;
    tracing::info!(?recovery, "hostmanager {} recovered", config.host.instance);
    let host = Arc::new(host);
    let accepted = rpc::AcceptedDir::new(config.accepted.clone());
    let consoles = rpc::require_accepted(crate::console::router(host.clone()), accepted.clone());
    let api = rpc::rpc_router(Arc::new(Api { host: host.clone() }), accepted).merge(consoles);
    let files = crate::fileserver::router(host.clone());

    let chores = {
        let (host, stop, every) = (host.clone(), shutdown.clone(), config.chores_every);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        let t = now();
                        if let Err(e) = host.sample_usage(t as f64).await {
                            tracing::warn!("usage sample: {e}");
                        }
                        for id in host.expire(t).await {
                            tracing::info!(element = id, "timed out: torn down");
                        }
                    }
                }
            }
        })
    };
    let api_server = rpc::serve(listeners.api, api_tls, api, shutdown.clone().cancelled_owned());
    let file_server = rpc::serve(listeners.fileserver, file_tls, files, shutdown.clone().cancelled_owned());
    tokio::join!(api_server, file_server);
    let _ = chores.await;
    host.shutdown().await;
    Ok(())
}
