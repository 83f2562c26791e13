//! `tomato serve` as a user meets it: the real binary as a child process
//! on a free port with a temporary data directory and its own instance;
//! `tomato login` with the generated password, `tomato up` of two
//! containers joined by a link with 10 ms each way, ping through
//! `tomato element exec` (RTT ≥ 20 ms), `tomato connection set` on the
//! running link (RTT ≥ 60 ms), a restart of `tomato serve` that keeps the
//! topology and its running containers, `tomato down`, and nothing left on
//! the machine afterwards. Needs root; skipped otherwise.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `tomato serve` process with its data directory and login; the
/// process (by PID) and everything its hostmanager made are removed on
/// drop, panics included.
struct Serve {
    dir: tempfile::TempDir,
    instance: String,
    port: u16,
    child: Option<Child>,
}

impl Serve {
    fn new() -> Serve {
        let dir = tempfile::tempdir().unwrap();
        Serve { dir, instance: format!("s{}", std::process::id()), port: free_port(), child: None }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Starts `tomato serve`; returns its standard output up to `ready:`.
    fn start(&mut self) -> String {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap();
        let out = self.dir.path().join("serve.out");
        let _ = std::fs::remove_file(&out);
        let child = Command::new(env!("CARGO_BIN_EXE_tomato"))
            .args(["serve", "--data"])
            .arg(self.data())
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--instance", &self.instance])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.contains("ready: ") {
                return text;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "tomato serve did not come up ({exited:?}):\n{}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM to the process (by PID) and waits for a clean exit.
    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill takes plain integers; the PID is our unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "tomato serve ended with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "tomato serve {} did not stop", child.id());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `tomato ARGS` as the logged-in user.
    fn tomato(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tomato"));
        cmd.args(args).env("XDG_CONFIG_HOME", self.dir.path().join("config")).env_remove("TOMATO_PASSWORD");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// `tomato ARGS` that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.tomato(args, None);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "tomato {args:?} failed:\n{stdout}\n{}\nserve log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
        stdout
    }

    async fn leftovers(&self) -> container::Leftovers {
        let netns = hostmanager::netns::path_of(&format!("tomato-{}", self.instance));
        let netns = netns.exists().then_some(netns);
        let root = self.data().join("host").join("containers");
        container::leftovers(&root, &format!("tomato/{}", self.instance), netns.as_deref(), &[]).await.unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (root, instance) = (self.data().join("host").join("containers"), self.instance.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let parent = format!("tomato/{instance}");
            let netns = hostmanager::netns::path_of(&format!("tomato-{instance}"));
            let netns = netns.exists().then_some(netns);
            let _ = rt.block_on(container::sweep(&root, &parent, netns.as_deref(), &[]));
            let _ = container::remove_cgroup_parent(&parent);
        })
        .join();
        let _ = hostmanager::netns::remove(&format!("tomato-{}", self.instance));
    }
}

/// The minimum RTT in ms of busybox ping's summary.
fn min_rtt(out: &str) -> f64 {
    let line = out.lines().find(|l| l.contains("min/avg/max")).unwrap_or_else(|| panic!("no ping summary in\n{out}"));
    let numbers = line.split('=').nth(1).unwrap().trim();
    numbers.split('/').next().unwrap().trim().parse().unwrap()
}

fn write_topology(dir: &Path) -> PathBuf {
    let path = dir.join("pair.yaml");
    std::fs::write(
        &path,
        "name: pair\n\
         defaults:\n  connection: {delay_to: 10, delay_from: 10}\n\
         elements:\n\
         \x20 a: {type: container, interfaces: {eth0: {ip4address: 10.0.0.1/24}}}\n\
         \x20 b: {type: container, interfaces: {eth0: {ip4address: 10.0.0.2/24}}}\n\
         connections:\n  - between: [a.eth0, b.eth0]\n",
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_a_topology_for_the_cli_and_keeps_it_over_a_restart() {
    if !is_root() {
        return;
    }
    let mut serve = Serve::new();
    let first = serve.start();
    let password_file = serve.data().join("admin-password");
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_string();
    assert!(first.contains(&password), "the first run shows the password:\n{first}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&password_file).unwrap().permissions().mode() & 0o777, 0o600);
    let url = format!("http://127.0.0.1:{}", serve.port);

    // A wrong password is refused and saves nothing.
    let wrong = serve.tomato(&["login", &url, "admin"], Some("not-the-password\n"));
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("account_info"), "{wrong:?}");
    let login = serve.dir.path().join("config/tomato/login.json");
    assert!(!login.exists());
    let ok = serve.tomato(&["login", &url, "admin"], Some(&format!("{password}\n")));
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(std::fs::metadata(&login).unwrap().permissions().mode() & 0o777, 0o600);

    let file = write_topology(serve.dir.path());
    let up = serve.ok(&["up", file.to_str().unwrap()]);
    assert!(up.contains("topology 1 started (5 steps)"), "{up}");
    assert!(up.lines().any(|l| l.starts_with("a.eth0 -- b.eth0 (bridge)") && l.contains("started")), "{up}");
    let list = serve.ok(&["topology", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["name"], "pair");
    assert_eq!(list[0]["state_max"], "started");

    let ping = serve.ok(&["element", "exec", "pair", "a", "ping", "-c", "3", "10.0.0.2"]);
    assert!(ping.contains("3 packets received"), "{ping}");
    let before = min_rtt(&ping);
    assert!((20.0..40.0).contains(&before), "RTT {before} ms with 10 ms each way:\n{ping}");

    let set = serve.ok(&["connection", "set", "pair/a.eth0", "delay_to=50"]);
    assert!(set.contains("delay_to=50"), "{set}");
    let ping = serve.ok(&["element", "exec", "pair", "a", "ping", "-c", "3", "10.0.0.2"]);
    let after = min_rtt(&ping);
    assert!(after >= 60.0, "RTT {after} ms after delay_to=50:\n{ping}");

    // Errors name the field and what is allowed.
    let bad = serve.tomato(&["element", "exec", "pair", "nope", "true"], None);
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && text.contains("element `nope`") && text.contains("a.eth0"), "{text}");

    // Stopped, the containers keep running; started again, all is there.
    serve.stop();
    let running = serve.leftovers().await;
    assert_eq!(running.ids.len(), 2, "{running:?}");
    let second = serve.start();
    assert!(!second.contains(&password), "the password is shown only once:\n{second}");
    let info = serve.ok(&["topology", "info", "pair"]);
    assert!(info.contains("topology 1 `pair`: started"), "{info}");
    let ping = serve.ok(&["element", "exec", "pair", "b", "ping", "-c", "2", "10.0.0.1"]);
    assert!(ping.contains("2 packets received") && min_rtt(&ping) >= 60.0, "{ping}");

    // The same file uploaded through `topology_import`: created, not
    // started, its components named as in the file; exported back, it
    // carries the file's attributes.
    let import = serve.ok(&["topology", "upload", file.to_str().unwrap()]);
    assert!(import.contains("topology 2 imported from") && import.contains("4 elements, 1 connections"), "{import}");
    let info = serve.ok(&["topology", "info", "2"]);
    assert!(info.contains("topology 2 `pair`: created") && info.contains("a.eth0 -- b.eth0"), "{info}");
    let exported = serve.ok(&["topology", "export", "2", "--to", "json"]);
    assert!(exported.contains("\"delay_to\": 10") && exported.contains("10.0.0.2/24"), "{exported}");
    let bad = serve.tomato(&["topology", "upload", "/nonexistent.yaml"], None);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.yaml"), "{bad:?}");
    serve.ok(&["topology", "remove", "2"]);

    let down = serve.ok(&["down", "pair"]);
    assert!(down.contains("topology 1 removed"), "{down}");
    let list = serve.ok(&["topology", "list", "--json"]);
    assert_eq!(list.trim(), "[]");
    serve.stop();
    let left = serve.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
    // With no container left, a clean stop removes the instance's cgroups.
    let parent = format!("tomato/{}", serve.instance);
    let kept: Vec<_> =
        container::CgroupKind::host().roots().iter().map(|r| r.join(&parent)).filter(|d| d.exists()).collect();
    assert!(kept.is_empty(), "cgroup directories left: {kept:?}");
}
