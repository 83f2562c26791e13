//! `tomato serve`: the whole testbed in one process on one machine: the
//! backend on SQLite and a local hostmanager (its own instance and network
//! namespace), registered over mutual TLS with certificates made under the
//! data directory on first run, and a first administrator whose generated
//! password is written to `DATA/admin-password` (mode 0600).
//!
//! The data directory holds everything: `backend.sqlite`, `tls/ca` (the
//! testbed CA), `tls/host`, `tls/backend`, `host/` (the hostmanager's data
//! directory, its accepted backends in `host/accepted`) and
//! `admin-password`. Stopping (Ctrl-C, SIGTERM) ends both servers; the
//! containers keep running and the next `tomato serve` on the same
//! directory re-adopts them.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backend::server::{self, Backend, HostPool, Identity, admin, hosts};
use backend::store::{Host, Store};
use clap::Args;
use hostmanager::HostConfig;
use hostmanager::daemon::{DaemonConfig, Listeners};
use rpc::Ca;
use tokio_util::sync::CancellationToken;

/// The administrator `tomato serve` creates on first run.
pub const ADMIN: &str = "admin";

/// The host's name in the backend.
const HOST_NAME: &str = "local";

/// Flags of `tomato serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Data directory (created if missing): database, certificates, the host's containers, admin-password.
    #[arg(long, default_value = "/var/lib/tomato-serve")]
    data: PathBuf,
    /// The API's address (plain HTTP: XML-RPC at /RPC2, JSON at /api/<method>).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// The local hostmanager's name on the machine (its network namespace is tomato-NAME).
    #[arg(long, default_value = "serve")]
    instance: String,
    /// The address users reach this machine at for the host's fileserver (archives, capture downloads) and
    /// live captures; default: the --listen address, or 127.0.0.1 when that is 0.0.0.0 or ::.
    #[arg(long)]
    address: Option<std::net::IpAddr>,
    /// Seconds between host polls, usage samples, accounting pulls and timeout checks.
    #[arg(long, default_value_t = 60)]
    chores_every: u64,
}

/// Certificates and keys under `DATA/tls`, made on first run; later runs
/// read them.
struct Tls {
    host_dir: PathBuf,
    backend: Identity,
}

/// Where the host's fileserver and live captures are reached: `--address`,
/// else the API's address unless it is a wildcard.
fn host_address(a: &ServeArgs) -> std::net::IpAddr {
    match a.address {
        Some(ip) => ip,
        None if a.listen.ip().is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        None => a.listen.ip(),
    }
}

/// The file beside the host's certificate naming the address it was
/// issued for; another address means a new certificate.
const HOST_ADDRESS_FILE: &str = "address";

fn certificates(data: &Path, address: std::net::IpAddr) -> anyhow::Result<Tls> {
    let tls = data.join("tls");
    let ca_dir = tls.join("ca");
    let ca = if ca_dir.join(rpc::certs::CA_CERT_FILE).exists() {
        Ca::load(&ca_dir)?
    } else {
        let ca = Ca::create("ToMaTo-rs serve CA")?;
        ca.save(&ca_dir)?;
        ca
    };
    let issue = |dir: PathBuf, name: &str, host: bool| -> anyhow::Result<PathBuf> {
        // Users check the fileserver's certificate against the address
        // they reach it at, so it names that address too.
        let marker = dir.join(HOST_ADDRESS_FILE);
        let stale = host && std::fs::read_to_string(&marker).ok().as_deref() != Some(&address.to_string());
        if stale {
            for file in [format!("{name}.pem"), format!("{name}.key")] {
                let _ = std::fs::remove_file(dir.join(file));
            }
        }
        if !dir.join(format!("{name}.pem")).exists() {
            let issued = if host {
                let mut sans = vec!["127.0.0.1".to_string()];
                if address != std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST) {
                    sans.push(address.to_string());
                }
                ca.issue_host(name, &sans)?
            } else {
                ca.issue_backend(name)?
            };
            issued.save(&dir, name)?;
            if host {
                std::fs::write(&marker, address.to_string()).with_context(|| marker.display().to_string())?;
            }
        }
        let ca_copy = dir.join(rpc::certs::CA_CERT_FILE);
        if !ca_copy.exists() {
            std::fs::write(&ca_copy, &ca.cert_pem).with_context(|| ca_copy.display().to_string())?;
        }
        Ok(dir)
    };
    let host_dir = issue(tls.join("host"), "host", true)?;
    let backend_dir = issue(tls.join("backend"), "backend", false)?;
    let backend = Identity::load(&backend_dir, "backend").context("reading the backend's certificate")?;
    Ok(Tls { host_dir, backend })
}

/// A password of 24 characters from the kernel's random numbers.
fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect())
}

/// Makes the administrator unless it exists: the password file first
/// (mode 0600, never overwritten), then the account; a failed account
/// removes the file again. Returns the new password.
async fn ensure_admin(store: &Store, data: &Path) -> anyhow::Result<Option<String>> {
    if store.user(ADMIN).await.is_ok() {
        return Ok(None);
    }
    let path = data.join("admin-password");
    let password = generate_password()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("{}: writing the new administrator's password", path.display()))?;
    let made = async {
        writeln!(file, "{password}")?;
        file.sync_all()?;
        admin::create_user(store, ADMIN, &password, "default", true, server::now()).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        return Err(e.context("creating the administrator"));
    }
    Ok(Some(password))
}

/// Runs `tomato serve`.
pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    rpc::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(a))
}

async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.data).with_context(|| a.data.display().to_string())?;
    let data = std::fs::canonicalize(&a.data)?;
    let address = host_address(&a);
    let tls = certificates(&data, address)?;
    let host_data = data.join("host");
    let accepted = host_data.join("accepted");
    rpc::accepted::accept(&accepted, &tls.backend.cert_pem).context("accepting the backend's certificate")?;

    // Bind both servers before anything runs: a taken port fails early.
    let listener =
        tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("listening on {}", a.listen))?;
    let config = DaemonConfig {
        host: HostConfig {
            data_dir: host_data.clone(),
            instance: a.instance.clone(),
            address: address.to_string(),
            fileserver_port: 0,
            capture_ip: address,
            rextfv_max_size: hostmanager::nlxtp::DEFAULT_MAX_SIZE,
        },
        listen: "127.0.0.1:0".parse()?,
        fileserver_listen: SocketAddr::new(address, 0),
        cert: tls.host_dir.join("host.pem"),
        key: tls.host_dir.join("host.key"),
        ca: tls.host_dir.join(rpc::certs::CA_CERT_FILE),
        accepted,
        chores_every: Duration::from_secs(a.chores_every.max(1)),
    };
    let listeners = Listeners::bind(&config).await?;
    let host_api = listeners.api.local_addr()?;

    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            _ = on_signal.cancelled() => {}
        }
        on_signal.cancel();
    });
    let mut hostmanager = tokio::spawn(hostmanager::daemon::run(config, listeners, stop.clone()));

    let db = format!("sqlite://{}", data.join("backend.sqlite").display());
    let outcome = async {
        let store = Store::open(&db).await.with_context(|| format!("opening {db}"))?;
        let password = ensure_admin(&store, &data).await?;
        // The hostmanager answers once it has recovered its containers.
        let pool = HostPool::new(tls.backend.clone());
        let fingerprint = {
            let pem = std::fs::read_to_string(tls.host_dir.join("host.pem"))?;
            rpc::CertInfo::from_pem(&pem, "host certificate")?.fingerprint
        };
        let url = format!("https://127.0.0.1:{}", host_api.port());
        let mut last = String::new();
        let mut registered = None;
        for _ in 0..600 {
            if hostmanager.is_finished() {
                break;
            }
            let host = Host::new(HOST_NAME, "default", &address.to_string(), &url, &fingerprint);
            match hosts::register(&store, &pool, host, "default", server::now()).await {
                Ok(h) => {
                    registered = Some(h);
                    break;
                }
                Err(e) => last = e.message,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let host = registered.with_context(|| format!("registering the local hostmanager at {url}: {last}"))?;
        Ok::<_, anyhow::Error>((store, password, host))
    }
    .await;
    let (store, password, host) = match outcome {
        Ok(v) => v,
        Err(e) => {
            stop.cancel();
            let ended = hostmanager.await;
            return Err(match ended {
                Ok(Err(hm)) => e.context(format!("the hostmanager ended: {hm:#}")),
                _ => e,
            });
        }
    };

    let backend = Arc::new(Backend::new(store, tls.backend));
    let api = listener.local_addr()?;
    eprintln!(
        "tomato serve: API on http://{api}/api/ and http://{api}/RPC2; host `{}` ({}) with {}; data in {}",
        host.name,
        host.rpcurl,
        host.element_types.iter().cloned().collect::<Vec<_>>().join(", "),
        data.display()
    );
    match password {
        Some(p) => println!(
            "administrator `{ADMIN}`, password {p} (saved in {}; shown only this once)",
            data.join("admin-password").display()
        ),
        None => println!("administrator `{ADMIN}`: password in {}", data.join("admin-password").display()),
    }
    println!("ready: http://{api}");
    // Host polling, the accounting pull and topology timeouts.
    let every = Duration::from_secs(a.chores_every.max(1));
    let chores_stop = stop.clone();
    tokio::spawn(server::chores::run(backend.clone(), every, async move { chores_stop.cancelled().await }));
    let api_stop = stop.clone();
    let api_server = server::serve(listener, backend, async move { api_stop.cancelled().await });
    let served = tokio::select! {
        served = api_server => served.map_err(anyhow::Error::from),
        ended = &mut hostmanager => {
            let e = match ended {
                Ok(Ok(())) => anyhow::anyhow!("the hostmanager ended"),
                Ok(Err(e)) => e.context("the hostmanager failed"),
                Err(e) => anyhow::anyhow!("the hostmanager failed: {e}"),
            };
            stop.cancel();
            return Err(e);
        }
    };
    stop.cancel();
    let ended = hostmanager.await.map_err(|e| anyhow::anyhow!("the hostmanager failed: {e}"))?;
    served?;
    ended?;
    eprintln!("tomato serve: stopped; containers keep running until the next `tomato serve --data {}`", data.display());
    Ok(ExitCode::SUCCESS)
}
