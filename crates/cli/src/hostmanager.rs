//! `tomato hostmanager run`: the per-host daemon, and `tomato host ...`:
//! a backend-side client for one hostmanager (API calls and consoles).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use hostmanager::HostConfig;
use hostmanager::daemon::{DaemonConfig, Listeners};
use serde_json::{Map, Value};

/// Subcommands of `tomato hostmanager`.
#[derive(Subcommand)]
pub enum HostmanagerCommand {
    /// Run the hostmanager (as root): recover, then serve the API (mutual TLS) and the fileserver.
    Run(RunArgs),
}

/// Flags of `tomato hostmanager run`.
#[derive(Args)]
pub struct RunArgs {
    /// Data directory: store, containers, templates, captures, grant files.
    #[arg(long, default_value = "/var/lib/tomato")]
    data_dir: PathBuf,
    /// This hostmanager's name on the machine (its namespace is tomato-NAME).
    #[arg(long, default_value = "hm")]
    instance: String,
    /// API address (mutual TLS; backends need an accepted certificate).
    #[arg(long, default_value = "0.0.0.0:8000")]
    listen: SocketAddr,
    /// Fileserver address (TLS; one-time grants).
    #[arg(long, default_value = "0.0.0.0:8888")]
    fileserver_listen: SocketAddr,
    /// The address backends and users reach this host at (reported by host_info).
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Directory with the host's certificate NAME.pem, key NAME.key and ca.pem (from `tomato cert host`).
    #[arg(long)]
    tls_dir: PathBuf,
    /// The host's certificate name in --tls-dir.
    #[arg(long, default_value = "host")]
    name: String,
    /// Directory of accepted backend certificates (`tomato cert accept`); default DATA_DIR/accepted.
    #[arg(long)]
    accepted_dir: Option<PathBuf>,
    /// Seconds between usage samples and timeout checks.
    #[arg(long, default_value_t = 60)]
    chores_every: u64,
    /// Largest executable archive (nlXTP) in bytes, compressed and unpacked.
    #[arg(long, default_value_t = hostmanager::nlxtp::DEFAULT_MAX_SIZE)]
    rextfv_max_size: u64,
}

/// Subcommands of `tomato host`.
#[derive(Subcommand)]
pub enum HostCommand {
    /// Call one API method: `tomato host call element_create '"container"' null '{"ram": 64}'`.
    Call {
        #[command(flatten)]
        conn: Connect,
        /// The method (element_create, element_action, host_info, ...).
        method: String,
        /// Positional arguments, each one JSON value.
        args: Vec<String>,
    },
    /// Open the console of a started element (Ctrl-] ends it).
    Console {
        #[command(flatten)]
        conn: Connect,
        /// The element id.
        id: i64,
    },
}

/// How to reach a hostmanager as a backend.
#[derive(Args)]
pub struct Connect {
    /// The hostmanager's API URL, e.g. https://127.0.0.1:8000.
    #[arg(long, env = "TOMATO_HOST_URL")]
    url: String,
    /// Directory with the backend's NAME.pem, NAME.key and ca.pem (from `tomato cert backend`).
    #[arg(long, env = "TOMATO_BACKEND_TLS_DIR")]
    tls_dir: PathBuf,
    /// The backend's certificate name in --tls-dir.
    #[arg(long, env = "TOMATO_BACKEND_NAME", default_value = "backend")]
    name: String,
}

impl Connect {
    fn client(&self) -> anyhow::Result<rpc::Client> {
        let read = |file: String| {
            let path = self.tls_dir.join(&file);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let (ca, cert, key) =
            (read("ca.pem".into())?, read(format!("{}.pem", self.name))?, read(format!("{}.key", self.name))?);
        Ok(rpc::Client::new(&self.url, &ca, &cert, &key)?)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Runs `tomato hostmanager ...`.
pub fn run(cmd: HostmanagerCommand) -> anyhow::Result<ExitCode> {
    let HostmanagerCommand::Run(a) = cmd;
    let capture_ip: IpAddr = a.listen.ip();
    let config = DaemonConfig {
        host: HostConfig {
            data_dir: a.data_dir.clone(),
            instance: a.instance,
            address: a.address,
            fileserver_port: a.fileserver_listen.port(),
            capture_ip,
            rextfv_max_size: a.rextfv_max_size,
        },
        listen: a.listen,
        fileserver_listen: a.fileserver_listen,
        cert: a.tls_dir.join(format!("{}.pem", a.name)),
        key: a.tls_dir.join(format!("{}.key", a.name)),
        ca: a.tls_dir.join("ca.pem"),
        accepted: a.accepted_dir.unwrap_or_else(|| a.data_dir.join("accepted")),
        chores_every: Duration::from_secs(a.chores_every.max(1)),
    };
    // Logs to stderr; RUST_LOG=debug for more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let rt = runtime()?;
    rt.block_on(async {
        let listeners = Listeners::bind(&config).await?;
        eprintln!(
            "hostmanager {}: API on {}, fileserver on {}, data in {}",
            config.host.instance,
            listeners.api.local_addr()?,
            listeners.fileserver.local_addr()?,
            config.host.data_dir.display()
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            on_signal.cancel();
        });
        hostmanager::daemon::run(config, listeners, stop).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `tomato host ...`.
pub fn run_client(cmd: HostCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match cmd {
        HostCommand::Call { conn, method, args } => {
            let args: Vec<Value> = args
                .iter()
                .enumerate()
                .map(|(i, a)| serde_json::from_str(a).with_context(|| format!("argument {} is not JSON: {a}", i + 1)))
                .collect::<anyhow::Result<_>>()?;
            let client = conn.client()?;
            match rt.block_on(client.call(&method, args, Map::new())) {
                Ok(v) => {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{}: {}", e.kind, e.message);
                    Ok(ExitCode::from(1))
                }
            }
        }
        HostCommand::Console { conn, id } => {
            let client = conn.client()?;
            rt.block_on(crate::console::attach(&client, id))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
