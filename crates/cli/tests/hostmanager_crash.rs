//! Crash safety of the real `tomato hostmanager run`: the daemon kills
//! itself with SIGKILL at a crash point (`TOMATO_CRASHPOINT`) in the middle
//! of prepare, start, stop, destroy or remove of a container with one
//! interface; the kernel objects left are listed ("before"); it is started
//! again without the crash point, and the API must show a consistent state
//! (the action finished, nothing pending, no problems, a started container
//! answers, a stopped one has no processes). Torn down through the API,
//! nothing is left ("after"). One more case: a container from a "previous
//! life" whose store rows are gone is swept at start. Needs root; skipped
//! otherwise.

#![allow(clippy::unwrap_used, missing_docs)]

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

fn is_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A hostmanager process of its own, with certificates; everything it made
/// is removed on drop, whatever happened.
struct Hm {
    dir: tempfile::TempDir,
    instance: String,
    ca: rpc::Ca,
    child: Option<Child>,
    api: u16,
}

impl Hm {
    fn new(tag: &str) -> Hm {
        rpc::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let instance = format!("k{}{tag}", std::process::id());
        let ca = rpc::Ca::create("crash test CA").unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        ca.issue_host("host", &["127.0.0.1".into()]).unwrap().save(&tls, "host").unwrap();
        std::fs::write(tls.join("ca.pem"), &ca.cert_pem).unwrap();
        Hm { dir, instance, ca, child: None, api: 0 }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("hostmanager.log")
    }

    /// Starts the daemon, crashing at `crash` if given; returns a backend
    /// client once the API answers (after recovery).
    async fn start(&mut self, crash: Option<&str>) -> rpc::Client {
        let log_before = self.log_text().len();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tomato"));
        cmd.args(["hostmanager", "run", "--data-dir"])
            .arg(self.data())
            .args(["--instance", &self.instance])
            .args(["--listen", "127.0.0.1:0"])
            // The kernel picks the ports: one picked here and released could
            // be taken by a parallel test before the daemon binds it.
            .args(["--fileserver-listen", "127.0.0.1:0"])
            .arg("--tls-dir")
            .arg(self.dir.path().join("tls"))
            .args(["--name", "host", "--chores-every", "3600"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        match crash {
            Some(point) => cmd.env("TOMATO_CRASHPOINT", point),
            None => cmd.env_remove("TOMATO_CRASHPOINT"),
        };
        self.child = Some(cmd.spawn().unwrap());
        // The port the kernel gave the API, from this start's first log line.
        let deadline = Instant::now() + Duration::from_secs(120);
        self.api = loop {
            let text = self.log_text();
            let port = text[log_before.min(text.len())..]
                .split_once(": API on 127.0.0.1:")
                .and_then(|(_, rest)| rest.split(',').next())
                .and_then(|p| p.parse().ok());
            if let Some(port) = port {
                break port;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none() && Instant::now() < deadline, "hostmanager did not start ({exited:?}):\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let issued = self.ca.issue_backend("backend").unwrap();
        let accepted = self.data().join("accepted");
        std::fs::create_dir_all(&accepted).unwrap();
        rpc::accepted::accept(&accepted, &issued.cert_pem).unwrap();
        let client = rpc::Client::new(
            &format!("https://127.0.0.1:{}", self.api),
            &self.ca.cert_pem,
            &issued.cert_pem,
            &issued.key_pem,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if call(&client, "host_info", json!([])).await.is_ok() {
                return client;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "hostmanager did not come up ({exited:?}):\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (by PID) for the daemon to end; returns the signal that ended it.
    async fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.signal();
            }
            assert!(Instant::now() < deadline, "hostmanager {} did not end", child.id());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the daemon with SIGKILL (by PID) and waits for it.
    async fn kill9(&mut self) {
        let pid = self.child.as_ref().unwrap().id();
        // SAFETY: kill takes plain integers; `pid` is our unreaped child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        assert_eq!(self.wait_exit().await, Some(libc::SIGKILL));
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Kernel objects and files of this hostmanager's containers.
    async fn leftovers(&self) -> container::Leftovers {
        let netns = hostmanager::netns::path_of(&format!("tomato-{}", self.instance));
        let netns = netns.exists().then_some(netns);
        container::leftovers(
            &self.data().join("containers"),
            &format!("tomato/{}", self.instance),
            netns.as_deref(),
            &[],
        )
        .await
        .unwrap()
    }
}

impl Drop for Hm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        hostmanager::sweep_instance(&self.data().join("containers"), &self.instance);
    }
}

async fn call(client: &rpc::Client, method: &str, args: Value) -> Result<Value, rpc::RpcError> {
    client.call(method, args.as_array().cloned().unwrap_or_default(), Map::new()).await
}

async fn ok(client: &rpc::Client, method: &str, args: Value) -> Value {
    call(client, method, args.clone()).await.unwrap_or_else(|e| panic!("{method} {args}: {e}"))
}

async fn state(c: &rpc::Client, id: i64) -> String {
    ok(c, "element_info", json!([id])).await["state"].as_str().unwrap().to_string()
}

/// A container with one interface; returns (container, interface).
async fn node(c: &rpc::Client) -> (i64, i64) {
    let n = ok(c, "element_create", json!(["container", null, {"ram": 64}])).await["id"].as_i64().unwrap();
    let i = ok(c, "element_create", json!(["container_interface", n, {"ip4address": "10.9.0.1/24"}])).await["id"]
        .as_i64()
        .unwrap();
    (n, i)
}

fn show(label: &str, point: &str, l: &container::Leftovers) {
    eprintln!(
        "[{point}] {label}: containers {:?}, processes {:?}, mounts {:?}, cgroups {:?}, veths {:?}, dirs {:?}",
        l.ids, l.processes, l.mounts, l.cgroups, l.veths, l.dirs
    );
}

/// Tears the container down through the API; nothing may be left.
async fn teardown(hm: &Hm, c: &rpc::Client, point: &str, n: i64) {
    if state(c, n).await == "started" {
        ok(c, "element_action", json!([n, "stop"])).await;
    }
    if state(c, n).await == "prepared" {
        ok(c, "element_action", json!([n, "destroy"])).await;
    }
    ok(c, "element_remove", json!([n])).await;
    assert_eq!(ok(c, "element_list", json!([])).await, json!([]));
    let after = hm.leftovers().await;
    show("after", point, &after);
    assert!(after.is_empty(), "[{point}] left after teardown: {after:?}");
}

async fn problems(c: &rpc::Client) -> Value {
    ok(c, "host_info", json!([])).await["problems"].clone()
}

/// Crashes at `point` while `action` runs on a container with one interface
/// (brought to a state `action` applies in), restarts and checks.
async fn crash_case(tag: &str, point: &str, action: &str) {
    if !is_root() {
        return;
    }
    let mut hm = Hm::new(tag);
    let c = hm.start(Some(point)).await;
    let (n, i) = node(&c).await;
    let (setup, expected): (&[&str], Option<&str>) = match action {
        "prepare" => (&[], Some("prepared")),
        "start" => (&["prepare"], Some("started")),
        "stop" => (&["prepare", "start"], Some("prepared")),
        "destroy" => (&["prepare"], Some("created")),
        "remove" => (&[], None),
        other => panic!("no case for {other}"),
    };
    for step in setup {
        ok(&c, "element_action", json!([n, step])).await;
    }
    let crashed = if action == "remove" {
        call(&c, "element_remove", json!([n])).await
    } else {
        call(&c, "element_action", json!([n, action])).await
    };
    assert!(crashed.is_err(), "[{point}] {action} answered {crashed:?}; the crash point was not hit");
    let signal = hm.wait_exit().await;
    assert_eq!(signal, Some(libc::SIGKILL), "[{point}] ended by {signal:?}:\n{}", hm.log_text());
    show("before", point, &hm.leftovers().await);

    let c = hm.start(None).await;
    assert_eq!(problems(&c).await, json!([]), "[{point}] problems after recovery");
    let Some(expected) = expected else {
        // The removal was finished: the container and its interface are gone.
        assert_eq!(ok(&c, "element_list", json!([])).await, json!([]), "[{point}] after recovery");
        let after = hm.leftovers().await;
        show("after", point, &after);
        assert!(after.is_empty(), "[{point}] left after recovery: {after:?}");
        return;
    };
    assert_eq!(state(&c, n).await, expected, "[{point}] container state after recovery:\n{}", hm.log_text());
    assert_eq!(state(&c, i).await, expected, "[{point}] interface state after recovery");
    let now = hm.leftovers().await;
    if expected == "started" {
        let out = ok(&c, "element_action", json!([n, "execute", {"cmd": "echo ok; ip -o addr show eth0"}])).await;
        let text = out["output"].as_str().unwrap_or_default();
        assert!(text.starts_with("ok\n") && text.contains("10.9.0.1/24"), "[{point}] execute: {out}");
        assert!(now.veths.contains(&container::host_end_name(&n.to_string(), 0)), "[{point}] {now:?}");
    } else {
        assert!(now.processes.is_empty(), "[{point}] {expected} container has processes: {now:?}");
        assert!(now.veths.is_empty(), "[{point}] {expected} container has interfaces: {now:?}");
        assert!(call(&c, "element_action", json!([n, "execute", {"cmd": "true"}])).await.is_err());
    }
    teardown(&hm, &c, point, n).await;
}

macro_rules! crash_tests {
    ($($name:ident: $point:literal, $action:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            crash_case(stringify!($name), $point, $action).await;
        }
    )*};
}

crash_tests! {
    bp: "before:prepare", "prepare";
    ap: "after:prepare", "prepare";
    bs: "before:start", "start";
    sac: "start:after-container", "start";
    as_: "after:start", "start";
    bo: "before:stop", "stop";
    ao: "after:stop", "stop";
    bd: "before:destroy", "destroy";
    ad: "after:destroy", "destroy";
    rbd: "remove:before-delete", "remove";
}

/// A started container whose store rows are gone (a crash of a "previous
/// life" after the store forgot it) is swept when the hostmanager starts.
#[tokio::test(flavor = "multi_thread")]
async fn previous_life_is_swept() {
    if !is_root() {
        return;
    }
    let point = "previous life";
    let mut hm = Hm::new("pl");
    let c = hm.start(None).await;
    let (n, i) = node(&c).await;
    for step in ["prepare", "start"] {
        ok(&c, "element_action", json!([n, step])).await;
    }
    hm.kill9().await;
    let store = hostmanager::store::Store::open(&hm.data().join("store.sqlite")).await.unwrap();
    store.delete(i).await.unwrap();
    store.delete(n).await.unwrap();
    drop(store);
    let before = hm.leftovers().await;
    show("before", point, &before);
    assert!(!before.processes.is_empty() && !before.veths.is_empty(), "{before:?}");

    let c = hm.start(None).await;
    assert_eq!(ok(&c, "element_list", json!([])).await, json!([]));
    assert_eq!(problems(&c).await, json!([]));
    let after = hm.leftovers().await;
    show("after", point, &after);
    assert!(after.is_empty(), "left after the sweep: {after:?}\n{}", hm.log_text());
}

/// `tomato host call` and `tomato host console` against the real daemon.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_calls_and_opens_a_console() {
    if !is_root() {
        return;
    }
    let mut hm = Hm::new("cli");
    let c = hm.start(None).await;
    let (n, _) = node(&c).await;
    ok(&c, "element_action", json!([n, "start"])).await;
    // The same backend's certificate in files, as the CLI reads it.
    let tls = hm.dir.path().join("backend-tls");
    std::fs::create_dir_all(&tls).unwrap();
    let issued = hm.ca.issue_backend("backend").unwrap();
    issued.save(&tls, "backend").unwrap();
    std::fs::write(tls.join("ca.pem"), &hm.ca.cert_pem).unwrap();
    rpc::accepted::accept(&hm.data().join("accepted"), &issued.cert_pem).unwrap();
    let tomato = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tomato"))
            .args(["host"])
            .args(args)
            .env("TOMATO_HOST_URL", format!("https://127.0.0.1:{}", hm.api))
            .env("TOMATO_BACKEND_TLS_DIR", &tls)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let id = n.to_string();
    let out = tomato(&["call", "element_info", &id], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["state"], "started");
    let out = tomato(&["call", "element_action", &id, "\"fly\""], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported_action"));
    let out = tomato(&["console", &id], "echo hi-$((40+2))\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hi-42"), "{}", String::from_utf8_lossy(&out.stdout));
    teardown(&hm, &c, "cli", n).await;
}
