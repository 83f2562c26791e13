//! What the root integration tests share: a [`Scratch`] area (directory,
//! cgroup parent, network namespace, all named after this process) with
//! the busybox template unpacked, that removes everything it made when
//! dropped, also while a failing test unwinds.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use container::{ContainerSpec, Limits};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Whether this process may create namespaces, mounts and cgroups.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !scratch::is_root() {
            eprintln!("skipped: needs root (namespaces, mounts, cgroups)");
            return;
        }
        if !std::path::Path::new("/bin/busybox").exists() {
            eprintln!("skipped: needs /bin/busybox (apt-get install busybox-static)");
            return;
        }
    };
}
pub(crate) use require_root;

/// A directory, a cgroup parent and a network namespace of this test.
pub struct Scratch {
    /// The directory holding the template and the containers.
    pub root: PathBuf,
    /// The cgroup parent of the containers.
    pub cgroup_parent: String,
    /// The network namespace for host ends.
    pub netns: String,
}

impl Scratch {
    /// Builds and unpacks the busybox template; makes the network
    /// namespace where host ends go.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Scratch {
        container::become_subreaper().expect("subreaper");
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let scratch = Scratch {
            root: PathBuf::from(format!("/tmp/tomato-ct-test-{tag}")),
            cgroup_parent: format!("tomato-test/{tag}"),
            netns: format!("tmct-{tag}"),
        };
        std::fs::create_dir_all(scratch.root.join("ct")).expect("scratch dir");
        let archive = scratch.root.join("busybox.tar.gz");
        let info = container::build_busybox_template(&archive).expect("template");
        container::unpack_template(&archive, &info.sha256, &scratch.rootfs()).expect("unpack");
        let out = Command::new("ip").args(["netns", "add", &scratch.netns]).output().expect("ip");
        assert!(out.status.success(), "ip netns add: {}", String::from_utf8_lossy(&out.stderr));
        scratch
    }

    /// The unpacked template.
    pub fn rootfs(&self) -> PathBuf {
        self.root.join("tpl/busybox")
    }

    /// Where container directories go.
    pub fn dir_root(&self) -> PathBuf {
        self.root.join("ct")
    }

    /// The path of the host-end namespace.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.netns))
    }

    /// A spec for container `id` with `limits`.
    pub fn spec(&self, id: &str, limits: Limits) -> ContainerSpec {
        ContainerSpec {
            id: id.to_string(),
            dir: self.dir_root().join(id),
            rootfs: self.rootfs(),
            hostname: format!("host-{id}"),
            limits,
            cgroup_parent: self.cgroup_parent.clone(),
            binds: Vec::new(),
        }
    }

    /// What is left of this scratch's containers.
    pub fn leftovers(&self) -> container::Leftovers {
        runtime()
            .block_on(container::leftovers(&self.dir_root(), &self.cgroup_parent, Some(&self.netns_path()), &[]))
            .expect("leftovers")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let swept =
            runtime().block_on(container::sweep(&self.dir_root(), &self.cgroup_parent, Some(&self.netns_path()), &[]));
        if let Err(e) = swept {
            eprintln!("cleanup: sweep: {e}");
        }
        if let Err(e) = container::remove_cgroup_parent(&self.cgroup_parent) {
            eprintln!("cleanup: cgroups: {e}");
        }
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A small runtime for the async parts.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// The namespace link of `pid` of `kind` (e.g. `net:[4026531840]`).
pub fn ns_of(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).expect("ns link").display().to_string()
}

/// Whether anything is mounted at or below `path` in our namespace.
pub fn path_is_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| Path::new(m).starts_with(path)))
}
