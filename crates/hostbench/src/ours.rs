//! Our side: a hostmanager in this process (loopback, temp data dir,
//! unique instance, like its tests), driven as a backend over the mTLS API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use hostmanager::daemon::{DaemonConfig, Listeners};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// What one size gave.
pub struct Figures {
    pub seconds: f64,
    pub hostmanager_kib: f64,
    pub container_kib: f64,
}

/// A hostmanager on loopback; its containers, cgroups and namespace are
/// swept when dropped, whatever happened.
struct Daemon {
    dir: tempfile::TempDir,
    instance: String,
    api: SocketAddr,
    ca: rpc::Ca,
    config: DaemonConfig,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    async fn start(n: usize) -> Result<Daemon> {
        rpc::install_crypto_provider();
        let dir = tempfile::tempdir()?;
        let instance = format!("hb{}n{n}", std::process::id());
        let ca = rpc::Ca::create("hostbench CA")?;
        let config = DaemonConfig::on_loopback(dir.path(), &instance, &ca, Duration::from_secs(3600))?;
        let listeners = Listeners::bind(&config).await?;
        let api = listeners.api.local_addr()?;
        let stop = CancellationToken::new();
        let task = Some(tokio::spawn(hostmanager::daemon::run(config.clone(), listeners, stop.clone())));
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(api).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Daemon { dir, instance, api, ca, config, stop, task })
    }

    fn backend(&self) -> Result<rpc::Client> {
        let issued = self.ca.issue_backend("bench")?;
        std::fs::create_dir_all(&self.config.accepted)?;
        rpc::accepted::accept(&self.config.accepted, &issued.cert_pem)?;
        Ok(rpc::Client::new(
            &format!("https://127.0.0.1:{}", self.api.port()),
            &self.ca.cert_pem,
            &issued.cert_pem,
            &issued.key_pem,
        )?)
    }

    fn cgroup_parent(&self) -> String {
        format!("tomato/{}", self.instance)
    }

    fn containers_dir(&self) -> std::path::PathBuf {
        self.config.host.data_dir.join("containers")
    }

    async fn leftovers(&self) -> Result<container::Leftovers> {
        let netns = hostmanager::netns::path_of(&format!("tomato-{}", self.instance));
        let netns = netns.exists().then_some(netns);
        Ok(container::leftovers(&self.containers_dir(), &self.cgroup_parent(), netns.as_deref(), &[]).await?)
    }

    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.cancel();
        hostmanager::sweep_instance(&self.containers_dir(), &self.instance);
        let _ = &self.dir;
    }
}

async fn call(c: &rpc::Client, method: &str, args: Value) -> Result<Value> {
    c.call(method, args.as_array().cloned().unwrap_or_default(), Map::new())
        .await
        .map_err(|e| anyhow!("{method} {args}: {e}"))
}

async fn create(c: &rpc::Client, args: Value) -> Result<i64> {
    call(c, "element_create", args).await?["id"].as_i64().context("no id")
}

/// Resident set of this process (the hostmanager runs in it), KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Memory charged to the containers' common cgroup parent, bytes.
fn cgroup_bytes(parent: &str) -> Option<u64> {
    let file = match container::CgroupKind::host() {
        container::CgroupKind::V1 { memory, .. } => memory.join(parent).join("memory.usage_in_bytes"),
        container::CgroupKind::V2 { root } => root.join(parent).join("memory.current"),
        container::CgroupKind::Absent => return None,
    };
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// One node: container i (1-based) with one interface on the switch.
struct Node {
    ct: i64,
    link: i64,
}

/// Creates and starts N containers on one switch through the API; the
/// time from the first request until all answer pings from container 1.
pub async fn run(n: usize, inflight: usize) -> Result<Figures> {
    let mut d = Daemon::start(n).await?;
    let c = Arc::new(d.backend()?);
    // Warm up outside the timing: the first call sets up TLS sessions, and
    // the busybox template is built once per data dir (one container
    // started and removed).
    let warm = create(&c, json!(["container", null, {"ram": 64}])).await?;
    call(&c, "element_action", json!([warm, "start"])).await?;
    for a in ["stop", "destroy"] {
        call(&c, "element_action", json!([warm, a])).await?;
    }
    call(&c, "element_remove", json!([warm])).await?;
    let rss0 = rss_kib();
    let cg0 = cgroup_bytes(&d.cgroup_parent()).unwrap_or(0);

    let t0 = Instant::now();
    let sw = create(&c, json!(["switch"])).await?;
    let created = Instant::now();
    // Endpoints are added while the switch is created; it starts after.
    let nodes: Vec<Result<Node>> = futures_util::stream::iter(1..=n)
        .map(|i| {
            let c = c.clone();
            async move {
                let ct = create(&c, json!(["container", null, {"ram": 64}])).await?;
                let ifc = create(&c, json!(["container_interface", ct, {"ip4address": crate::address(i)}])).await?;
                let ep = create(&c, json!(["switch_endpoint", sw])).await?;
                let link =
                    call(&c, "connection_create", json!([ifc, ep, "bridge"])).await?["id"].as_i64().context("no id")?;
                Ok(Node { ct, link })
            }
        })
        .buffered(inflight)
        .collect()
        .await;
    let nodes: Vec<Node> = nodes.into_iter().collect::<Result<_>>()?;
    let made = created.elapsed().as_secs_f64();
    for a in ["prepare", "start"] {
        call(&c, "element_action", json!([sw, a])).await?;
    }
    let done: Vec<Result<()>> = futures_util::stream::iter(nodes.iter())
        .map(|node| {
            let c = c.clone();
            async move {
                call(&c, "element_action", json!([node.ct, "start"])).await?;
                call(&c, "connection_action", json!([node.link, "start"])).await?;
                Ok(())
            }
        })
        .buffered(inflight)
        .collect()
        .await;
    done.into_iter().collect::<Result<Vec<()>>>()?;
    let started = created.elapsed().as_secs_f64();
    let first = nodes.first().context("no nodes")?.ct;
    let ping = call(&c, "element_action", json!([first, "execute", {"cmd": crate::ping_script(n)}])).await?;
    let seconds = t0.elapsed().as_secs_f64();
    let output = ping["output"].as_str().unwrap_or_default().trim().to_string();
    println!(
        "  ours    n={n}: created {made:.2} s, up {:.2} s ({:.1} ms/container, {inflight} requests in flight), {output}, all pingable {seconds:.2} s",
        started,
        1000.0 * started / n as f64
    );
    let rss1 = rss_kib();
    let cg1 = cgroup_bytes(&d.cgroup_parent()).unwrap_or(0);
    let hostmanager_kib = rss1.saturating_sub(rss0) as f64 / n as f64;
    let container_kib = cg1.saturating_sub(cg0) as f64 / 1024.0 / n as f64;
    println!(
        "  ours    n={n}: hostmanager RSS {rss0} -> {rss1} KiB ({hostmanager_kib:.0} KiB/container); containers' cgroups {:.1} MiB ({container_kib:.0} KiB/container)",
        cg1 as f64 / 1048576.0
    );
    if !crate::all_answered(&output) {
        bail!("not all containers answered: {output}");
    }

    if let Err(e) = teardown(&c, &d, &nodes, sw, inflight).await {
        println!("  ours    n={n}: teardown: {e:#}");
    }
    d.stop().await;
    Ok(Figures { seconds, hostmanager_kib, container_kib })
}

/// Tears down through the API and reports what is left (nothing, we hope).
async fn teardown(c: &Arc<rpc::Client>, d: &Daemon, nodes: &[Node], sw: i64, inflight: usize) -> Result<()> {
    let n = nodes.len();
    let t1 = Instant::now();
    let done: Vec<Result<()>> = futures_util::stream::iter(nodes.iter())
        .map(|node| {
            let c = c.clone();
            async move {
                call(&c, "connection_action", json!([node.link, "stop"])).await?;
                for a in ["stop", "destroy"] {
                    call(&c, "element_action", json!([node.ct, a])).await?;
                }
                call(&c, "element_remove", json!([node.ct])).await?;
                Ok(())
            }
        })
        .buffered(inflight)
        .collect()
        .await;
    done.into_iter().collect::<Result<Vec<()>>>()?;
    for a in ["stop", "destroy"] {
        call(c, "element_action", json!([sw, a])).await?;
    }
    call(c, "element_remove", json!([sw])).await?;
    let left = d.leftovers().await?;
    let conns = call(c, "connection_list", json!([])).await?;
    println!(
        "  ours    n={n}: torn down through the API in {:.2} s; leftovers: {}",
        t1.elapsed().as_secs_f64(),
        if left.is_empty() && conns == json!([]) { "none".to_string() } else { format!("{left:?} {conns}") }
    );
    Ok(())
}
