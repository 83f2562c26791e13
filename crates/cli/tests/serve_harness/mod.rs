//! The harness of the `tomato serve` tests: the real binary as a child
//! process on a free port with a temporary data directory and its own
//! instance, the CLI run against it, and everything its hostmanager made
//! removed on drop.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn is_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `tomato serve` process with its data directory and login; the
/// process (by PID) and everything its hostmanager made are removed on
/// drop, panics included.
pub struct Serve {
    pub dir: tempfile::TempDir,
    pub instance: String,
    pub port: u16,
    /// More flags for `tomato serve`.
    pub flags: Vec<String>,
    child: Option<Child>,
}

impl Serve {
    pub fn new() -> Serve {
        let dir = tempfile::tempdir().unwrap();
        Serve { dir, instance: format!("s{}", std::process::id()), port: free_port(), flags: Vec::new(), child: None }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Starts `tomato serve`; returns its standard output up to `ready:`.
    pub fn start(&mut self) -> String {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap();
        let out = self.dir.path().join("serve.out");
        let _ = std::fs::remove_file(&out);
        let child = Command::new(env!("CARGO_BIN_EXE_tomato"))
            .args(["serve", "--data"])
            .arg(self.data())
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--instance", &self.instance])
            .args(&self.flags)
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
    pub fn stop(&mut self) {
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
    pub fn tomato(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.tomato_as("config", args, stdin)
    }

    /// Runs `tomato ARGS` with the login saved under `config` (one
    /// directory per user).
    pub fn tomato_as(&self, config: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tomato"));
        cmd.args(args).env("XDG_CONFIG_HOME", self.dir.path().join(config)).env_remove("TOMATO_PASSWORD");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// `tomato login` as the administrator `tomato serve` made; its password.
    pub fn login_admin(&self) -> String {
        let password = std::fs::read_to_string(self.data().join("admin-password")).unwrap().trim().to_string();
        let url = format!("http://127.0.0.1:{}", self.port);
        let ok = self.tomato(&["login", &url, "admin"], Some(&format!("{password}\n")));
        assert!(ok.status.success(), "{ok:?}");
        password
    }

    /// `tomato ARGS` that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
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

    pub async fn leftovers(&self) -> container::Leftovers {
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
        hostmanager::sweep_instance(&self.data().join("host").join("containers"), &self.instance);
    }
}

/// The minimum RTT in ms of busybox ping's summary.
pub fn min_rtt(out: &str) -> f64 {
    let line = out.lines().find(|l| l.contains("min/avg/max")).unwrap_or_else(|| panic!("no ping summary in\n{out}"));
    let numbers = line.split('=').nth(1).unwrap().trim();
    numbers.split('/').next().unwrap().trim().parse().unwrap()
}

/// Writes topology `name`: containers `a` (10.0.0.1) and `b` (10.0.0.2)
/// joined `a.eth0 -- b.eth0`, the link with `link` attributes (YAML flow
/// map, `{}` for none); its path.
pub fn write_pair(dir: &Path, name: &str, link: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\n\
             defaults:\n  connection: {link}\n\
             elements:\n\
             \x20 a: {{type: container, interfaces: {{eth0: {{ip4address: 10.0.0.1/24}}}}}}\n\
             \x20 b: {{type: container, interfaces: {{eth0: {{ip4address: 10.0.0.2/24}}}}}}\n\
             connections:\n  - between: [a.eth0, b.eth0]\n"
        ),
    )
    .unwrap();
    path
}
