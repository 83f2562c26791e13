//! `tomato backend run`: the backend server (ToMaTo's API over XML-RPC and
//! JSON, on SQLite or PostgreSQL, reaching hosts with the backend's
//! certificate), and its bootstrap: `tomato backend user-create` (the first
//! administrator) and `tomato backend host-create` (register a host).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backend::server::{self, Backend, HostPool, Identity, admin, hosts};
use backend::store::{Host, Store};
use clap::{Args, Subcommand};

/// Subcommands of `tomato backend`.
#[derive(Subcommand)]
pub enum BackendCommand {
    /// Serve the API: XML-RPC at /RPC2 (and /), JSON at /api/<method>, OpenAPI at /api/openapi.json.
    Run(RunArgs),
    /// Create an account (the password from TOMATO_PASSWORD, or the first line of stdin).
    UserCreate(UserCreateArgs),
    /// Register a host (or update its address): the backend polls it once, so it must be accepted there.
    HostCreate(HostCreateArgs),
}

/// The database and the backend's certificate.
#[derive(Args)]
pub struct Common {
    /// The database: sqlite://PATH (created if missing) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "TOMATO_DB", default_value = "sqlite:///var/lib/tomato/backend.sqlite")]
    db: String,
}

/// Flags of `tomato backend run`.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// The API's address (plain HTTP; put TLS in front when it leaves the machine).
    #[arg(long, default_value = "127.0.0.1:8001")]
    listen: SocketAddr,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Seconds between passes over the hosts: polling (info and capabilities),
    /// the accounting pull and topology timeouts.
    #[arg(long, default_value_t = 60)]
    poll_every: u64,
}

/// The backend's certificate towards hosts.
#[derive(Args)]
pub struct IdentityArgs {
    /// Directory with the backend's NAME.pem, NAME.key and ca.pem (from `tomato cert backend`).
    #[arg(long, env = "TOMATO_BACKEND_TLS_DIR")]
    tls_dir: PathBuf,
    /// The backend's certificate name in --tls-dir.
    #[arg(long, env = "TOMATO_BACKEND_NAME", default_value = "backend")]
    backend_name: String,
}

impl IdentityArgs {
    fn load(&self) -> anyhow::Result<Identity> {
        Identity::load(&self.tls_dir, &self.backend_name).context("reading the backend's certificate")
    }
}

/// Flags of `tomato backend user-create`.
#[derive(Args)]
pub struct UserCreateArgs {
    #[command(flatten)]
    common: Common,
    /// The account's name.
    name: String,
    /// Its organization (created when missing).
    #[arg(long, default_value = "default")]
    organization: String,
    /// Give it global_admin and global_host_manager.
    #[arg(long)]
    admin: bool,
}

/// Flags of `tomato backend host-create`.
#[derive(Args)]
pub struct HostCreateArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    identity: IdentityArgs,
    /// The host's name.
    name: String,
    /// The hostmanager's API URL, e.g. https://10.0.0.5:8000 (a SAN of its certificate).
    #[arg(long)]
    url: String,
    /// The host's certificate (NAME.pem from `tomato cert host`), for its fingerprint.
    #[arg(long)]
    cert: PathBuf,
    /// The address users and other hosts reach it at; default the URL's host.
    #[arg(long)]
    address: Option<String>,
    /// Its site (created when missing).
    #[arg(long, default_value = "default")]
    site: String,
    /// The site's organization, when the site is created.
    #[arg(long, default_value = "default")]
    organization: String,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn open(common: &Common) -> anyhow::Result<Store> {
    Store::open(&common.db).await.with_context(|| format!("opening {}", common.db))
}

fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TOMATO_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Runs `tomato backend ...`.
pub fn run(cmd: BackendCommand) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    rpc::install_crypto_provider();
    let rt = runtime()?;
    match cmd {
        BackendCommand::Run(a) => rt.block_on(serve(a)),
        BackendCommand::UserCreate(a) => rt.block_on(async {
            let password = password()?;
            let store = open(&a.common).await?;
            let user = admin::create_user(&store, &a.name, &password, &a.organization, a.admin, server::now()).await?;
            println!("{} ({}): {}", user.name, user.organization, user.flags.names().join(", "));
            Ok(ExitCode::SUCCESS)
        }),
        BackendCommand::HostCreate(a) => rt.block_on(async {
            let store = open(&a.common).await?;
            let pool = HostPool::new(a.identity.load()?);
            let pem = std::fs::read_to_string(&a.cert).with_context(|| format!("reading {}", a.cert.display()))?;
            let fingerprint = rpc::CertInfo::from_pem(&pem, "host certificate")?.fingerprint;
            let address = match a.address {
                Some(addr) => addr,
                None => a
                    .url
                    .split("://")
                    .nth(1)
                    .and_then(|rest| rest.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']']).to_string()))
                    .context("--url: expected https://HOST:PORT")?,
            };
            let host = Host::new(&a.name, &a.site, &address, &a.url, &fingerprint);
            let host = hosts::register(&store, &pool, host, &a.organization, server::now())
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.kind, e.message))?;
            println!(
                "{} at {}: elements {}; connections {}",
                host.name,
                host.rpcurl,
                host.element_types.iter().cloned().collect::<Vec<_>>().join(", "),
                host.connection_types.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }),
    }
}

async fn serve(a: RunArgs) -> anyhow::Result<ExitCode> {
    let store = open(&a.common).await?;
    let backend = Arc::new(Backend::new(store, a.identity.load()?));
    let listener =
        tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("listening on {}", a.listen))?;
    eprintln!("backend: API on http://{}/RPC2 and /api/, database {}", listener.local_addr()?, a.common.db);
    // Host polling, the accounting pull and topology timeouts.
    let every = Duration::from_secs(a.poll_every.max(1));
    tokio::spawn(server::chores::run(backend.clone(), every, std::future::pending()));
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    server::serve(listener, backend, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
