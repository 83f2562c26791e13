//! The user commands: `tomato login`, `up`, `down`, `topology
//! list|info|start|...`, `element exec|info|console`, `connection set`.
//! Each is one or a few calls of the backend's JSON API (`POST
//! /api/<method>`, HTTP Basic) with the login saved by `tomato login`;
//! grants' files go straight to the hosts' fileservers ([`Api::upload`],
//! [`Api::download`]), consoles through the backend's relay.
//!
//! Components made by `tomato up` carry their file name as client data
//! (`_name`: `pc1`, `pc1.eth0`), which is how `element exec TOPOLOGY pc1`
//! and `connection set TOPOLOGY/pc1.eth0` find them again.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use model::file::{self, Format};
use model::{ComponentId, ElementPath};
use serde_json::{Map, Value, json};

/// The client-data key that holds a component's name from its file.
const NAME_KEY: &str = "_name";

/// A saved login.
#[derive(Clone)]
struct Login {
    url: String,
    user: String,
    password: String,
}

fn config_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?).join(".config")
        }
    };
    Ok(base.join("tomato").join("login.json"))
}

impl Login {
    fn load() -> anyhow::Result<Login> {
        let path = config_path()?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: not logged in; run `tomato login URL USER` first", path.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let field = |k: &str| {
            v[k].as_str()
                .map(String::from)
                .with_context(|| format!("{}: field `{k}` (a string) is missing", path.display()))
        };
        Ok(Login { url: field("url")?, user: field("user")?, password: field("password")? })
    }

    /// Writes the login file (mode 0600) through a temporary file.
    fn save(&self) -> anyhow::Result<PathBuf> {
        let path = config_path()?;
        let dir = path.parent().context("the login file has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let tmp = dir.join(".login.json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let text =
            serde_json::to_string_pretty(&json!({"url": self.url, "user": self.user, "password": self.password}))?;
        let written = (|| {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| path.display().to_string());
        }
        Ok(path)
    }
}

/// A client of the backend's JSON API.
pub(crate) struct Api {
    http: reqwest::Client,
    login: Login,
    rt: tokio::runtime::Runtime,
}

impl Api {
    fn new(login: Login) -> anyhow::Result<Api> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build()?;
        Ok(Api { http, login, rt })
    }

    pub(crate) fn connect() -> anyhow::Result<Api> {
        Api::new(Login::load()?)
    }

    /// Calls `method` with positional `args`; errors read `method: kind: message`.
    pub(crate) fn call(&self, method: &str, args: Value) -> anyhow::Result<Value> {
        let url = format!("{}{}{method}", self.login.url.trim_end_matches('/'), api::json::PREFIX);
        let request = self
            .http
            .post(&url)
            .basic_auth(&self.login.user, Some(&self.login.password))
            .header("content-type", api::json::CONTENT_TYPE)
            .body(args.to_string());
        let answer = self.rt.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) = answer.with_context(|| format!("{method}: reaching {}", self.login.url))?;
        api::json::read_answer(status, &body).map_err(|e| anyhow::anyhow!("{method}: {}: {}", e.kind, e.message))
    }

    /// A client of hosts' fileservers: HTTPS checked against the testbed
    /// CA the backend names (`server_info`'s `host_ca`), no login (the
    /// grant is the credential).
    fn fileserver_client(&self) -> anyhow::Result<reqwest::Client> {
        let info = self.call("server_info", json!([]))?;
        let ca = info["host_ca"].as_str().context("server_info: the backend names no `host_ca` to check hosts by")?;
        let certs = reqwest::Certificate::from_pem_bundle(ca.as_bytes()).context("server_info: `host_ca`")?;
        Ok(reqwest::Client::builder()
            .tls_certs_only(certs)
            .https_only(true)
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .build()?)
    }

    /// POSTs `body` to the fileserver of `component` (an element's or a
    /// connection's info, with `host_info`) for `grant`.
    pub(crate) fn upload(&self, component: &Value, grant: &Value, body: Vec<u8>) -> anyhow::Result<()> {
        let url = fileserver_url(component, grant, "upload")?;
        let http = self.fileserver_client()?;
        self.rt.block_on(async {
            let response = http.post(&url).body(body).send().await.with_context(|| format!("upload to {url}"))?;
            let status = response.status().as_u16();
            let text = response.bytes().await.with_context(|| format!("upload to {url}"))?;
            fileserver_answer(&url, status, &text)
        })
    }

    /// GETs the file of `grant` from the fileserver of `component` into
    /// `out` (through a temporary file beside it); the bytes written.
    pub(crate) fn download(&self, component: &Value, grant: &Value, out: &Path) -> anyhow::Result<u64> {
        let url = fileserver_url(component, grant, "download")?;
        let http = self.fileserver_client()?;
        let tmp = out.with_extension("part");
        let written = self.rt.block_on(async {
            let mut response = http.get(&url).send().await.with_context(|| format!("download from {url}"))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let text = response.bytes().await.unwrap_or_default();
                fileserver_answer(&url, status, &text)?;
                bail!("{url}: HTTP {status}");
            }
            let mut file = std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
            let mut written = 0u64;
            while let Some(chunk) = response.chunk().await.with_context(|| format!("download from {url}"))? {
                std::io::Write::write_all(&mut file, &chunk).with_context(|| tmp.display().to_string())?;
                written += chunk.len() as u64;
            }
            file.sync_all()?;
            Ok::<_, anyhow::Error>(written)
        });
        match written {
            Ok(n) => {
                std::fs::rename(&tmp, out).with_context(|| out.display().to_string())?;
                Ok(n)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// The saved login's URL, user and password (for the console's own
    /// connection).
    pub(crate) fn login(&self) -> (&str, &str, &str) {
        (&self.login.url, &self.login.user, &self.login.password)
    }

    /// Runs `work` on this client's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, work: F) -> F::Output {
        self.rt.block_on(work)
    }
}

/// `https://ADDRESS:FILESERVER_PORT/GRANT/OP` from a component's
/// `host_info` (ToMaTo's way of building grant URLs).
fn fileserver_url(component: &Value, grant: &Value, op: &str) -> anyhow::Result<String> {
    let what = if component.get("elements").is_some() { "connection" } else { "element" };
    let host = &component["host_info"];
    let address = host["address"].as_str().with_context(|| {
        format!("{what} {}: the backend gives no host_info.address (is it on a host?)", component["id"])
    })?;
    let port = host["fileserver_port"]
        .as_u64()
        .with_context(|| format!("{what} {}: host {address} has not reported its fileserver_port", component["id"]))?;
    let grant = grant.as_str().with_context(|| format!("the grant is not a string: {grant}"))?;
    if grant.is_empty() || !grant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("the host answered a grant `{grant}` that cannot be part of a URL");
    }
    let address = if address.contains(':') { format!("[{address}]") } else { address.to_string() };
    Ok(format!("https://{address}:{port}/{grant}/{op}"))
}

/// A fileserver's answer: fine on 2xx, else its error (the API's JSON
/// error shape) or the text it sent.
fn fileserver_answer(url: &str, status: u16, body: &[u8]) -> anyhow::Result<()> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    match api::json::read_answer(status, body) {
        Err(e) => bail!("{url}: {}: {}", e.kind, e.message),
        Ok(_) => bail!("{url}: HTTP {status}: {}", String::from_utf8_lossy(body)),
    }
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TOMATO_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Flags of `tomato login`.
#[derive(Args)]
pub struct LoginArgs {
    /// The backend's URL, e.g. http://127.0.0.1:8000.
    url: String,
    /// The account's name.
    user: String,
}

/// Flags of `tomato up`.
#[derive(Args)]
pub struct UpArgs {
    /// The topology file (YAML, JSON, ToMaTo export, topdl).
    file: String,
    /// Only create the topology; do not start it.
    #[arg(long)]
    no_start: bool,
}

/// Which topology: its id or its exact name.
#[derive(Args)]
pub struct Which {
    /// The topology's id or name.
    topology: String,
}

/// Subcommands of `tomato element`.
#[derive(Subcommand)]
pub enum ElementCommand {
    /// Run a command in a started element: `tomato element exec lan pc1 ping -c 3 10.0.0.2`.
    Exec {
        /// The topology's id or name.
        topology: String,
        /// The element's name in its file (pc1) or its id.
        element: String,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Open the console of a started element (a shell; Ctrl-] ends it, piped input ends at its end).
    Console {
        /// The topology's id or name.
        topology: String,
        /// The element's name in its file (pc1) or its id.
        element: String,
    },
    /// Show an element (state, attributes from the host).
    Info {
        /// The topology's id or name.
        topology: String,
        /// The element's name in its file (pc1) or its id.
        element: String,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

/// Subcommands of `tomato connection`.
#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// Change attributes, also of a running link: `tomato connection set lan/pc1.eth0 delay_to=50`.
    Set {
        /// The connection's id, or TOPOLOGY/END where END is one of its ends (pc1.eth0).
        connection: String,
        /// KEY=VALUE pairs; a VALUE that reads as JSON is that value, otherwise a string.
        #[arg(required = true)]
        attrs: Vec<String>,
    },
    /// Show a connection (state, attributes).
    Info {
        /// The connection's id, or TOPOLOGY/END where END is one of its ends (pc1.eth0).
        connection: String,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

/// The commands of `tomato topology` that talk to the backend.
pub enum Remote {
    /// List the user's topologies.
    List {
        /// JSON output.
        json: bool,
    },
    /// Show one topology.
    Info {
        /// Which.
        topology: String,
        /// JSON output.
        json: bool,
    },
    /// Run a topology action.
    Action {
        /// Which.
        topology: String,
        /// prepare, start, stop, destroy.
        action: &'static str,
    },
    /// Remove a destroyed topology.
    Remove {
        /// Which.
        topology: String,
    },
    /// Create a topology from a file with `topology_import`.
    Import {
        /// The file.
        file: String,
    },
    /// Write the topology as a file.
    Export {
        /// Which.
        topology: String,
        /// The format.
        to: Format,
    },
}

/// Runs `tomato login`.
pub fn login(a: LoginArgs) -> anyhow::Result<ExitCode> {
    if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
        bail!("URL `{}`: allowed: http://HOST:PORT or https://HOST:PORT", a.url);
    }
    let login = Login { url: a.url, user: a.user, password: read_password()? };
    let api = Api::new(login.clone())?;
    let me = api.call("account_info", json!([]))?;
    let path = login.save()?;
    println!("logged in to {} as {} ({}); saved in {}", login.url, login.user, flags(&me), path.display());
    Ok(ExitCode::SUCCESS)
}

fn flags(account: &Value) -> String {
    match account["flags"].as_array() {
        Some(f) if !f.is_empty() => f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
        _ => "no flags".into(),
    }
}

/// One status line per component: a progress bar on a terminal, plain
/// lines otherwise.
pub(crate) struct Progress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    labels: Vec<String>,
}

impl Progress {
    pub(crate) fn new(labels: Vec<String>) -> Progress {
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::new();
            let style = ProgressStyle::with_template("{spinner} {prefix:<32} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bars = labels
                .iter()
                .map(|l| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(l.clone());
                    bar.set_message("waiting");
                    bar
                })
                .collect();
            (multi, bars)
        });
        Progress { bars, labels }
    }

    pub(crate) fn set(&self, i: usize, message: &str) {
        match &self.bars {
            Some((_, bars)) => {
                bars[i].set_message(message.to_string());
                bars[i].tick();
            }
            None => println!("{:<32} {message}", self.labels[i]),
        }
    }

    /// Spins every line with `message` while `work` runs.
    fn during<T>(&self, message: &str, work: impl FnOnce() -> T) -> T {
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                bar.set_message(message.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
            }
        }
        let out = work();
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                bar.disable_steady_tick();
            }
        }
        out
    }

    pub(crate) fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                bar.finish();
            }
        }
    }
}

/// Runs `tomato up FILE`.
pub fn up(a: UpArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file))?;
    let loaded = file::load(&text, Format::from_path(&a.file));
    if !loaded.problems.is_empty() {
        eprintln!("{}: {} problem(s)\n{}", a.file, loaded.problems.len(), model::problem::report(&loaded.problems));
        return Ok(ExitCode::from(1));
    }
    let topology = loaded.topology;
    let api = Api::connect()?;
    let mut components: Vec<(ComponentId, String)> = Vec::new();
    for (path, el) in topology.walk() {
        components.push((ComponentId::Element(path.clone()), format!("{path} ({})", el.kind.name)));
    }
    for c in &topology.connections {
        components.push((c.id(), format!("{} -- {} ({})", c.ends[0], c.ends[1], c.kind.name)));
    }
    let progress = Progress::new(components.iter().map(|(_, l)| l.clone()).collect());
    let index: HashMap<ComponentId, usize> = components.iter().enumerate().map(|(i, (c, _))| (c.clone(), i)).collect();

    let created = api.call("topology_create", json!([]))?;
    let tid = created["id"].as_i64().context("topology_create answered no id")?;
    let made = (|| {
        let mut attrs: Map<String, Value> =
            topology.attrs.iter().filter(|(k, _)| k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
        let name = match topology.attrs.get("name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => std::path::Path::new(&a.file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| a.file.clone()),
        };
        attrs.insert("name".into(), json!(name));
        attrs.insert("_file".into(), json!(a.file));
        api.call("topology_modify", json!([tid, attrs]))?;
        let mut ids: HashMap<ElementPath, i64> = HashMap::new();
        for (path, el) in topology.walk() {
            let i = index[&ComponentId::Element(path.clone())];
            progress.set(i, "creating");
            let mut attrs = el.attrs.clone();
            attrs.insert(NAME_KEY.into(), json!(path.to_string()));
            let parent = match &path.child {
                Some(_) => Some(ids[&ElementPath::top(path.element.clone())]),
                None => None,
            };
            let e = api.call("element_create", json!([tid, el.kind.name, parent, attrs]))?;
            let id = e["id"].as_i64().context("element_create answered no id")?;
            progress.set(i, &format!("created (element {id})"));
            ids.insert(path, id);
        }
        for c in &topology.connections {
            let i = index[&c.id()];
            progress.set(i, "creating");
            let mut attrs = c.attrs.clone();
            attrs.insert("type".into(), json!(c.kind.name));
            let end =
                |p: &ElementPath| ids.get(p).copied().with_context(|| format!("connection end {p} was not created"));
            let made = api.call("connection_create", json!([end(&c.ends[0])?, end(&c.ends[1])?, attrs]))?;
            let id = made["id"].as_i64().context("connection_create answered no id")?;
            progress.set(i, &format!("created (connection {id})"));
        }
        Ok::<_, anyhow::Error>(())
    })();
    if let Err(e) = made {
        progress.finish();
        // Nothing half-created: every component is still `created`.
        if let Err(undo) = api.call("topology_remove", json!([tid])) {
            eprintln!("error: removing the half-created topology {tid} failed too: {undo:#}");
        }
        return Err(e.context(format!("{}: creating topology {tid} (removed again)", a.file)));
    }
    if a.no_start {
        progress.finish();
        println!("topology {tid} created; start it with `tomato topology start {tid}`");
        return Ok(ExitCode::SUCCESS);
    }
    let started = progress.during("starting", || api.call("topology_action", json!([tid, "start"])));
    let info = api.call("topology_info", json!([tid, true]))?;
    for (i, (id, _)) in components.iter().enumerate() {
        progress.set(i, &state_of(&info, id));
    }
    progress.finish();
    match started {
        Ok(answer) => {
            let steps = answer["steps"].as_array().map(Vec::len).unwrap_or(0);
            println!("topology {tid} started ({steps} steps)");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!(
                "topology {tid} is kept as it is; `tomato topology info {tid}` shows it, `tomato down {tid}` removes it"
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// A component's state line from a full topology_info.
fn state_of(info: &Value, id: &ComponentId) -> String {
    let empty = Vec::new();
    let elements = info["elements"].as_array().unwrap_or(&empty);
    let name_of = |eid: &Value| {
        elements.iter().find(|e| e["id"] == *eid).and_then(|e| e["attrs"][NAME_KEY].as_str()).map(String::from)
    };
    match id {
        ComponentId::Element(path) => {
            let want = path.to_string();
            elements
                .iter()
                .find(|e| e["attrs"][NAME_KEY].as_str() == Some(&want))
                .map(|e| format!("{} (element {})", e["state"].as_str().unwrap_or("?"), e["id"]))
                .unwrap_or_else(|| "missing".into())
        }
        ComponentId::Connection([a, b]) => {
            let (a, b) = (a.to_string(), b.to_string());
            info["connections"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .find(|c| {
                    let ends: Vec<Option<String>> =
                        c["elements"].as_array().unwrap_or(&empty).iter().map(name_of).collect();
                    ends == [Some(a.clone()), Some(b.clone())] || ends == [Some(b.clone()), Some(a.clone())]
                })
                .map(|c| format!("{} (connection {})", c["state"].as_str().unwrap_or("?"), c["id"]))
                .unwrap_or_else(|| "missing".into())
        }
    }
}

/// The id of topology `which` (an id or an exact name).
pub(crate) fn topology_id(api: &Api, which: &str) -> anyhow::Result<i64> {
    if let Ok(id) = which.parse::<i64>() {
        return Ok(id);
    }
    let list = api.call("topology_list", json!([]))?;
    let all = list.as_array().cloned().unwrap_or_default();
    let matches: Vec<&Value> = all.iter().filter(|t| t["name"].as_str() == Some(which)).collect();
    match matches.as_slice() {
        [one] => one["id"].as_i64().context("topology_list answered a topology without id"),
        [] => {
            let names: Vec<String> =
                all.iter().map(|t| format!("{} ({})", t["name"].as_str().unwrap_or(""), t["id"])).collect();
            bail!(
                "topology `{which}`: no topology of yours has this id or name; yours: {}",
                if names.is_empty() { "none".into() } else { names.join(", ") }
            )
        }
        many => {
            let ids: Vec<String> = many.iter().map(|t| t["id"].to_string()).collect();
            bail!("topology `{which}`: {} topologies have this name; use an id: {}", many.len(), ids.join(", "))
        }
    }
}

/// The element of `info` named `which` (its `_name` or its id).
pub(crate) fn find_element<'a>(info: &'a Value, which: &str) -> anyhow::Result<&'a Value> {
    let elements: &'a [Value] = info["elements"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let found = elements.iter().find(|e| {
        e["attrs"][NAME_KEY].as_str() == Some(which)
            || which.parse::<i64>().ok().is_some_and(|id| e["id"].as_i64() == Some(id))
    });
    found.with_context(|| {
        let names: Vec<String> = elements
            .iter()
            .map(|e| e["attrs"][NAME_KEY].as_str().map(String::from).unwrap_or_else(|| e["id"].to_string()))
            .collect();
        format!("element `{which}`: not in topology {}; allowed: {}", info["id"], names.join(", "))
    })
}

/// Runs `tomato topology list|info|...` against the backend.
pub fn topology(cmd: Remote) -> anyhow::Result<ExitCode> {
    let api = Api::connect()?;
    match cmd {
        Remote::List { json } => {
            let list = api.call("topology_list", json!([]))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:>4}  {:<10} {:>8} {:>11}  name", "id", "state", "elements", "connections");
                for t in list.as_array().cloned().unwrap_or_default() {
                    println!(
                        "{:>4}  {:<10} {:>8} {:>11}  {}",
                        t["id"].as_i64().unwrap_or(0),
                        t["state_max"].as_str().unwrap_or("empty"),
                        t["elements"].as_array().map(Vec::len).unwrap_or(0),
                        t["connections"].as_array().map(Vec::len).unwrap_or(0),
                        t["name"].as_str().unwrap_or("")
                    );
                }
            }
        }
        Remote::Info { topology, json } => {
            let id = topology_id(&api, &topology)?;
            let info = api.call("topology_info", json!([id, true]))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_topology(&info);
            }
        }
        Remote::Action { topology, action } => {
            let id = topology_id(&api, &topology)?;
            let answer = api.call("topology_action", json!([id, action]))?;
            let steps = answer["steps"].as_array().cloned().unwrap_or_default();
            for s in &steps {
                println!(
                    "{} {} {}: {}",
                    s["type"].as_str().unwrap_or(""),
                    s["id"],
                    s["action"].as_str().unwrap_or(""),
                    s["state"].as_str().unwrap_or("")
                );
            }
            println!("topology {id}: {action} done ({} steps)", steps.len());
        }
        Remote::Remove { topology } => {
            let id = topology_id(&api, &topology)?;
            api.call("topology_remove", json!([id]))?;
            println!("topology {id} removed");
        }
        Remote::Import { file } => {
            let Some(data) = tomato_file(&file)? else { return Ok(ExitCode::from(1)) };
            let answer = api.call("topology_import", json!([data]))?;
            let count = |i: usize| answer[i].as_array().map(Vec::len).unwrap_or(0);
            println!(
                "topology {} imported from {file}: {} elements, {} connections; start it with `tomato topology start {}`",
                answer[0],
                count(1),
                count(2),
                answer[0]
            );
        }
        Remote::Export { topology, to } => {
            let id = topology_id(&api, &topology)?;
            let info = api.call("topology_info", json!([id, true]))?;
            let t = to_model(&info)?;
            print!("{}", file::write(&t, to));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The file as a ToMaTo export: a ToMaTo file as it is (the backend reads
/// versions 3 and 4), any other format read and written as version 4.
/// `None` after printing the file's problems.
fn tomato_file(path: &str) -> anyhow::Result<Option<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    if let Ok(doc) = serde_json::from_str::<Value>(&text)
        && file::tomato::is_tomato(&doc)
    {
        return Ok(Some(doc));
    }
    let loaded = file::load(&text, Format::from_path(path));
    if !loaded.problems.is_empty() {
        eprintln!("{path}: {} problem(s)\n{}", loaded.problems.len(), model::problem::report(&loaded.problems));
        return Ok(None);
    }
    Ok(Some(file::tomato::export(&loaded.topology)))
}

fn print_topology(info: &Value) {
    let empty = Vec::new();
    println!(
        "topology {} `{}`: {}",
        info["id"],
        info["name"].as_str().unwrap_or(""),
        info["state_max"].as_str().unwrap_or("empty")
    );
    let elements = info["elements"].as_array().unwrap_or(&empty);
    let name = |id: &Value| {
        elements
            .iter()
            .find(|e| e["id"] == *id)
            .and_then(|e| e["attrs"][NAME_KEY].as_str().map(String::from))
            .unwrap_or_else(|| id.to_string())
    };
    for e in elements {
        println!(
            "  element {:>4}  {:<20} {:<20} {:<9} host {}",
            e["id"].as_i64().unwrap_or(0),
            name(&e["id"]),
            e["type"].as_str().unwrap_or(""),
            e["state"].as_str().unwrap_or(""),
            e["host"].as_str().unwrap_or("-")
        );
    }
    for c in info["connections"].as_array().unwrap_or(&empty) {
        let ends: Vec<String> = c["elements"].as_array().unwrap_or(&empty).iter().map(name).collect();
        let attrs: Vec<String> = c["attrs"]
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| format!("{k}={v}")).collect())
            .unwrap_or_default();
        println!(
            "  connection {:>4}  {:<38} {:<9} {}",
            c["id"].as_i64().unwrap_or(0),
            ends.join(" -- "),
            c["state"].as_str().unwrap_or(""),
            attrs.join(" ")
        );
    }
}

/// The stored topology as the model's, named by `_name` (ids where a
/// component has none), without client data of components.
fn to_model(info: &Value) -> anyhow::Result<model::Topology> {
    let empty = Vec::new();
    let elements = info["elements"].as_array().unwrap_or(&empty);
    let registry = model::registry();
    let own_name =
        |e: &Value| e["attrs"][NAME_KEY].as_str().map(String::from).unwrap_or_else(|| format!("e{}", e["id"]));
    let attrs_of = |v: &Value| -> model::Attrs {
        v["attrs"]
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let kind = |v: &Value| -> anyhow::Result<model::topology::KindRef> {
        let name = v["type"].as_str().unwrap_or("");
        registry.get(name).map(model::topology::KindRef).with_context(|| format!("type `{name}` is not a known kind"))
    };
    let mut t = model::Topology::default();
    t.attrs.insert("name".into(), info["name"].clone());
    let mut paths: HashMap<i64, ElementPath> = HashMap::new();
    for e in elements.iter().filter(|e| e["parent"].is_null()) {
        let name = own_name(e);
        let mut children = Vec::new();
        for c in elements.iter().filter(|c| c["parent"] == e["id"]) {
            let full = own_name(c);
            let child = full.rsplit('.').next().unwrap_or(&full).to_string();
            paths.insert(c["id"].as_i64().unwrap_or(0), ElementPath::child(name.clone(), child.clone()));
            children.push(model::Element { name: child, kind: kind(c)?, attrs: attrs_of(c), children: Vec::new() });
        }
        paths.insert(e["id"].as_i64().unwrap_or(0), ElementPath::top(name.clone()));
        t.elements.push(model::Element { name, kind: kind(e)?, attrs: attrs_of(e), children });
    }
    for c in info["connections"].as_array().unwrap_or(&empty) {
        let ends: Vec<ElementPath> = c["elements"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter_map(|id| id.as_i64().and_then(|id| paths.get(&id).cloned()))
            .collect();
        let [a, b]: [ElementPath; 2] =
            ends.try_into().map_err(|_| anyhow::anyhow!("connection {} does not join two elements", c["id"]))?;
        t.connections.push(model::Connection { kind: kind(c)?, ends: [a, b], attrs: attrs_of(c) });
    }
    Ok(t)
}

/// Runs `tomato up`'s opposite: stop, destroy and remove a topology.
pub fn down(w: Which) -> anyhow::Result<ExitCode> {
    let api = Api::connect()?;
    let id = topology_id(&api, &w.topology)?;
    for action in ["stop", "destroy"] {
        let answer = api.call("topology_action", json!([id, action]))?;
        let n = answer["steps"].as_array().map(Vec::len).unwrap_or(0);
        println!("topology {id}: {action} ({n} steps)");
    }
    api.call("topology_remove", json!([id]))?;
    println!("topology {id} removed");
    Ok(ExitCode::SUCCESS)
}

/// Runs `tomato element ...`.
pub fn element(cmd: ElementCommand) -> anyhow::Result<ExitCode> {
    let api = Api::connect()?;
    match cmd {
        ElementCommand::Exec { topology, element, cmd } => {
            let tid = topology_id(&api, &topology)?;
            let info = api.call("topology_info", json!([tid, true]))?;
            let e = find_element(&info, &element)?;
            let line = cmd.join(" ");
            let out = api.call("element_action", json!([e["id"], "execute", {"cmd": line}]))?;
            match &out {
                Value::String(s) => print!("{s}"),
                Value::Object(m) => {
                    if let Some(text) = m.get("output").and_then(Value::as_str) {
                        print!("{text}");
                    }
                    if let Some(status) = m.get("status").and_then(Value::as_i64)
                        && status != 0
                    {
                        eprintln!("exit status {status}");
                        return Ok(ExitCode::from(u8::try_from(status.clamp(1, 255)).unwrap_or(1)));
                    }
                }
                other => println!("{other}"),
            }
        }
        ElementCommand::Console { topology, element } => {
            let tid = topology_id(&api, &topology)?;
            let info = api.call("topology_info", json!([tid, true]))?;
            let id = find_element(&info, &element)?["id"].as_i64().context("topology_info: an element without id")?;
            let (url, user, password) = api.login();
            api.block_on(crate::console::attach_backend(url, user, password, id))?;
        }
        ElementCommand::Info { topology, element, json } => {
            let tid = topology_id(&api, &topology)?;
            let info = api.call("topology_info", json!([tid, true]))?;
            let e = find_element(&info, &element)?;
            let full = api.call("element_info", json!([e["id"], true]))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&full)?);
            } else {
                println!(
                    "element {} `{element}`: {} {}",
                    full["id"],
                    full["type"].as_str().unwrap_or(""),
                    full["state"].as_str().unwrap_or("")
                );
                for (k, v) in full["attrs"].as_object().cloned().unwrap_or_default() {
                    println!("  {k} = {v}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The connection id of `which`: an id, or TOPOLOGY/END.
pub(crate) fn connection_id(api: &Api, which: &str) -> anyhow::Result<i64> {
    if let Ok(id) = which.parse::<i64>() {
        return Ok(id);
    }
    let (topology, end) = which
        .rsplit_once('/')
        .with_context(|| format!("connection `{which}`: allowed: an id, or TOPOLOGY/END such as lan/pc1.eth0"))?;
    let tid = topology_id(api, topology)?;
    let info = api.call("topology_info", json!([tid, true]))?;
    let e = find_element(&info, end)?;
    e["connection"].as_i64().with_context(|| format!("connection `{which}`: element {end} has no connection"))
}

/// `KEY=VALUE` as an attribute; the value as JSON when it reads so.
fn parse_attr(pair: &str) -> anyhow::Result<(String, Value)> {
    let (k, v) = pair.split_once('=').with_context(|| format!("`{pair}`: allowed: KEY=VALUE, e.g. delay_to=20"))?;
    if k.is_empty() {
        bail!("`{pair}`: the KEY before `=` is empty");
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

/// Runs `tomato connection ...`.
pub fn connection(cmd: ConnectionCommand) -> anyhow::Result<ExitCode> {
    let api = Api::connect()?;
    match cmd {
        ConnectionCommand::Set { connection, attrs } => {
            let attrs: Map<String, Value> = attrs.iter().map(|p| parse_attr(p)).collect::<anyhow::Result<_>>()?;
            let id = connection_id(&api, &connection)?;
            let info = api.call("connection_modify", json!([id, attrs]))?;
            let now: Vec<String> = attrs.keys().map(|k| format!("{k}={}", info["attrs"][k])).collect();
            println!("connection {id} ({}): {}", info["state"].as_str().unwrap_or(""), now.join(" "));
        }
        ConnectionCommand::Info { connection, json } => {
            let id = connection_id(&api, &connection)?;
            let info = api.call("connection_info", json!([id, true]))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!(
                    "connection {id}: {} {}",
                    info["type"].as_str().unwrap_or(""),
                    info["state"].as_str().unwrap_or("")
                );
                for (k, v) in info["attrs"].as_object().cloned().unwrap_or_default() {
                    println!("  {k} = {v}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_as_json_or_text() {
        assert_eq!(parse_attr("delay_to=20").ok(), Some(("delay_to".into(), json!(20))));
        assert_eq!(parse_attr("distribution_to=normal").ok(), Some(("distribution_to".into(), json!("normal"))));
        assert_eq!(parse_attr("capturing=true").ok(), Some(("capturing".into(), json!(true))));
        let e = parse_attr("delay_to").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("KEY=VALUE"), "{e}");
        assert!(parse_attr("=1").is_err());
    }
}

/// Flags of `tomato usage`.
#[derive(Args)]
pub struct UsageArgs {
    /// A topology's usage (id or name) instead of an account's.
    #[arg(long, conflicts_with = "user")]
    topology: Option<String>,
    /// Another account's usage (needs admin rights over it); your own by default.
    #[arg(long)]
    user: Option<String>,
    /// Print the backend's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `tomato usage`: an account's monthly quota and use, or a
/// topology's, with the newest records.
pub fn usage(args: UsageArgs) -> anyhow::Result<ExitCode> {
    use backend::quota::{Resource, bytes};
    let api = Api::connect()?;
    let (records, account) = match &args.topology {
        Some(t) => (api.call("topology_usage", json!([topology_id(&api, t)?]))?, None),
        None => {
            let name = args.user.clone().unwrap_or_else(|| api.login.user.clone());
            let info = api.call("account_info", json!([name]))?;
            (api.call("account_usage", json!([name]))?, Some(info))
        }
    };
    if args.json {
        let answer = match &account {
            Some(info) => json!({"quota": info["quota"], "records": records}),
            None => json!({"records": records}),
        };
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let usage_of = |v: &Value| -> accounting::Usage { serde_json::from_value(v.clone()).unwrap_or_default() };
    if let Some(info) = &account {
        let quota = &info["quota"];
        let (used, monthly) = (usage_of(&quota["used"]), usage_of(&quota["monthly"]));
        println!(
            "account {} ({}), this month:",
            info["name"].as_str().unwrap_or(""),
            info["organization"].as_str().unwrap_or("")
        );
        for r in Resource::ALL {
            let (u, q) = (r.of(&used), r.of(&monthly));
            let share = if q > 0.0 { 100.0 * u / q } else { 100.0 };
            println!("  {:<10} {:>34} of {:<34} {share:>6.2}%", r.name(), r.format(u), r.format(q));
        }
    }
    println!(
        "{:<9} {:>20} {:>20} {:>12} {:>12} {:>12} {:>12}",
        "record", "begin (UTC)", "end (UTC)", "cpu s", "memory", "disk", "traffic"
    );
    for kind in ["single", "5minutes", "hour", "day", "month", "year"] {
        let Some(last) = records[kind].as_array().and_then(|l| l.last()) else { continue };
        let time = |k: &str| {
            last[k]
                .as_f64()
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t as i64).ok())
                .map(|t| {
                    format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute())
                })
                .unwrap_or_default()
        };
        let u = usage_of(&last["usage"]);
        println!(
            "{kind:<9} {:>20} {:>20} {:>12.2} {:>12} {:>12} {:>12}",
            time("begin"),
            time("end"),
            u.cputime,
            bytes(u.memory),
            bytes(u.diskspace),
            bytes(u.traffic)
        );
    }
    Ok(ExitCode::SUCCESS)
}
