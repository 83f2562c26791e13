//! Cgroups of containers: which setup the host has (probed at run time),
//! creating a container's cgroups with its limits, the processes in them,
//! killing and removing them, and reading CPU and memory usage.
//!
//! Hosts like the test machines are *hybrid*: the memory, cpu, cpuacct and
//! pids controllers are on v1 hierarchies and the v2 hierarchy has none of
//! them; such a host counts as v1. A v2 hierarchy is used only when its
//! root offers the `memory` controller. Without either, containers run
//! without limits or accounting ([`CgroupKind::Absent`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::spec::Limits;
use crate::{Error, Result, sys};

/// The v1 controllers a container uses.
const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];

/// The CFS period both versions use, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// The host's cgroup setup, as far as containers are concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum CgroupKind {
    /// Legacy or hybrid: one hierarchy per controller (two may share one).
    V1 {
        /// Mount point of the `memory` hierarchy.
        memory: PathBuf,
        /// Mount point of the `cpu` hierarchy, if mounted.
        cpu: Option<PathBuf>,
        /// Mount point of the `cpuacct` hierarchy, if mounted.
        cpuacct: Option<PathBuf>,
        /// Mount point of the `pids` hierarchy, if mounted.
        pids: Option<PathBuf>,
    },
    /// Unified, with the controllers available at its root.
    V2 {
        /// Mount point of the cgroup2 file system.
        root: PathBuf,
    },
    /// No usable cgroups: no limits, no accounting.
    Absent,
}

/// One line of mountinfo: mount point, file system type, super options.
fn cgroup_mounts(mountinfo: &str) -> Vec<(PathBuf, String, Vec<String>)> {
    let points = sys::mount_points(mountinfo);
    mountinfo
        .lines()
        .zip(points)
        .filter_map(|(line, point)| {
            let after = line.split(" - ").nth(1)?;
            let mut f = after.split(' ');
            let fstype = f.next()?.to_string();
            let _source = f.next()?;
            let opts = f.next().unwrap_or("").split(',').map(str::to_string).collect();
            (fstype == "cgroup" || fstype == "cgroup2").then_some((point, fstype, opts))
        })
        .collect()
}

impl CgroupKind {
    /// Decides the setup from a mountinfo text, reading a v2 root's
    /// `cgroup.controllers` through `read` (a fake tree in tests).
    pub fn detect_from(mountinfo: &str, read: impl Fn(&Path) -> Option<String>) -> CgroupKind {
        let mounts = cgroup_mounts(mountinfo);
        for (point, fstype, _) in &mounts {
            if fstype == "cgroup2"
                && let Some(text) = read(&point.join("cgroup.controllers"))
                && text.split_whitespace().any(|c| c == "memory")
            {
                return CgroupKind::V2 { root: point.clone() };
            }
        }
        let v1 = |name: &str| {
            mounts
                .iter()
                .find(|(_, fstype, opts)| fstype == "cgroup" && opts.iter().any(|o| o == name))
                .map(|m| m.0.clone())
        };
        match v1("memory") {
            Some(memory) => CgroupKind::V1 { memory, cpu: v1("cpu"), cpuacct: v1("cpuacct"), pids: v1("pids") },
            None => CgroupKind::Absent,
        }
    }

    /// The host's setup, probed once per process from `/proc/self/mountinfo`.
    pub fn host() -> &'static CgroupKind {
        static KIND: OnceLock<CgroupKind> = OnceLock::new();
        KIND.get_or_init(|| {
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            CgroupKind::detect_from(&info, |p| std::fs::read_to_string(p).ok())
        })
    }

    /// The hierarchy roots a container has a cgroup in (each once).
    pub fn roots(&self) -> Vec<&Path> {
        match self {
            CgroupKind::V1 { memory, cpu, cpuacct, pids } => {
                let mut roots: Vec<&Path> = vec![memory];
                for p in [cpu, cpuacct, pids].into_iter().flatten() {
                    if !roots.contains(&p.as_path()) {
                        roots.push(p);
                    }
                }
                roots
            }
            CgroupKind::V2 { root } => vec![root],
            CgroupKind::Absent => Vec::new(),
        }
    }

    /// The directories of cgroup `rel` (e.g. `tomato/main/ab12`), one per
    /// hierarchy.
    pub(crate) fn dirs(&self, rel: &str) -> Vec<PathBuf> {
        self.roots().into_iter().map(|r| r.join(rel)).collect()
    }

    /// Creates cgroup `rel` in every hierarchy (and its parents) and writes
    /// `limits`; re-running with other limits replaces them.
    pub(crate) fn create(&self, rel: &str, limits: &Limits) -> Result<()> {
        for dir in self.dirs(rel) {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("create cgroup", &dir, e))?;
        }
        let ram = limits.ram_mb.map(|mb| mb * 1024 * 1024);
        let quota = limits.cpus.map(|c| ((c * CPU_PERIOD_US as f64).round() as u64).max(1000));
        match self {
            CgroupKind::V1 { memory, cpu, pids, .. } => {
                write(&memory.join(rel).join("memory.limit_in_bytes"), &ram.map_or("-1".into(), |b| b.to_string()))?;
                if let Some(cpu) = cpu {
                    let dir = cpu.join(rel);
                    write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota.map_or("-1".into(), |q| q.to_string()))?;
                }
                if let Some(pids) = pids {
                    write(&pids.join(rel).join("pids.max"), &limits.pids.map_or("max".into(), |n| n.to_string()))?;
                }
            }
            CgroupKind::V2 { root } => {
                // Controllers must be enabled in every ancestor's subtree.
                let mut at = root.clone();
                for part in rel.split('/') {
                    for controller in ["+memory", "+cpu", "+pids"] {
                        // A controller the host lacks is left out, not fatal.
                        let _ = std::fs::write(at.join("cgroup.subtree_control"), controller);
                    }
                    at.push(part);
                }
                write(&at.join("memory.max"), &ram.map_or("max".into(), |b| b.to_string()))?;
                let cpu_max = format!("{} {CPU_PERIOD_US}", quota.map_or("max".into(), |q| q.to_string()));
                write_if_present(&at.join("cpu.max"), &cpu_max)?;
                write_if_present(&at.join("pids.max"), &limits.pids.map_or("max".into(), |n| n.to_string()))?;
            }
            CgroupKind::Absent => {}
        }
        Ok(())
    }

    /// The `cgroup.procs` files of cgroup `rel`.
    pub(crate) fn procs_files(&self, rel: &str) -> Vec<PathBuf> {
        self.dirs(rel).into_iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The `cgroup.procs` files of the cgroups process `pid` is in (as
    /// `/proc/PID/cgroup` says), for joining a running container.
    pub(crate) fn procs_files_of(&self, pid: u32) -> Vec<PathBuf> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let mut files = Vec::new();
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
            let rel = path.trim_start_matches('/');
            let root = match self {
                CgroupKind::V2 { root } if controllers.is_empty() => Some(root.as_path()),
                CgroupKind::V1 { .. } => {
                    controllers.split(',').find(|c| V1_CONTROLLERS.contains(c)).and_then(|c| self.v1_root_of(c))
                }
                _ => None,
            };
            if let Some(root) = root {
                let file = root.join(rel).join("cgroup.procs");
                if !files.contains(&file) {
                    files.push(file);
                }
            }
        }
        files
    }

    fn v1_root_of(&self, controller: &str) -> Option<&Path> {
        match self {
            CgroupKind::V1 { memory, cpu, cpuacct, pids } => match controller {
                "memory" => Some(memory),
                "cpu" => cpu.as_deref(),
                "cpuacct" => cpuacct.as_deref(),
                "pids" => pids.as_deref(),
                _ => None,
            },
            _ => None,
        }
    }

    /// The processes in cgroup `rel` (any hierarchy), without duplicates.
    pub(crate) fn pids(&self, rel: &str) -> Vec<u32> {
        let mut pids: Vec<u32> = Vec::new();
        for file in self.procs_files(rel) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for pid in text.lines().filter_map(|l| l.trim().parse().ok()) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Kills every process in cgroup `rel` and waits (up to 10 s) until
    /// none is left.
    pub(crate) fn kill_all(&self, rel: &str) -> Result<()> {
        if let CgroupKind::V2 { root } = self {
            let _ = std::fs::write(root.join(rel).join("cgroup.kill"), "1");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = Vec::new();
        loop {
            let pids = self.pids(rel);
            if pids.is_empty() {
                // Out of the cgroup means exited: reap those that are ours
                // (a container's init, after `become_subreaper`).
                for pid in killed {
                    sys::try_reap(pid);
                }
                return Ok(());
            }
            for &pid in &pids {
                sys::kill(pid, libc::SIGKILL).map_err(|e| Error::sys(format!("kill {pid}"), e))?;
                if !killed.contains(&pid) {
                    killed.push(pid);
                }
            }
            if Instant::now() > deadline {
                return Err(Error::sys(
                    format!("cgroup {rel} still has processes {pids:?}"),
                    std::io::Error::from_raw_os_error(libc::EBUSY),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes cgroup `rel` from every hierarchy (its processes must be
    /// gone); missing cgroups are fine.
    pub(crate) fn remove(&self, rel: &str) -> Result<()> {
        for dir in self.dirs(rel) {
            remove_dir(&dir)?;
        }
        Ok(())
    }

    /// CPU time used by cgroup `rel`, in seconds.
    pub(crate) fn cpu_seconds(&self, rel: &str) -> Option<f64> {
        match self {
            CgroupKind::V1 { cpuacct, .. } => {
                let ns: u64 = read(&cpuacct.as_ref()?.join(rel).join("cpuacct.usage"))?.trim().parse().ok()?;
                Some(ns as f64 / 1e9)
            }
            CgroupKind::V2 { root } => {
                let stat = read(&root.join(rel).join("cpu.stat"))?;
                let us: u64 = stat_value(&stat, "usage_usec")?;
                Some(us as f64 / 1e6)
            }
            CgroupKind::Absent => None,
        }
    }

    /// Memory used by cgroup `rel`, in bytes: usage less the inactive file
    /// cache (what the kernel would drop first), as `docker stats` counts.
    pub(crate) fn memory_bytes(&self, rel: &str) -> Option<u64> {
        let (usage, stat, inactive_key) = match self {
            CgroupKind::V1 { memory, .. } => {
                let dir = memory.join(rel);
                (read(&dir.join("memory.usage_in_bytes"))?, read(&dir.join("memory.stat"))?, "total_inactive_file")
            }
            CgroupKind::V2 { root } => {
                let dir = root.join(rel);
                (read(&dir.join("memory.current"))?, read(&dir.join("memory.stat"))?, "inactive_file")
            }
            CgroupKind::Absent => return None,
        };
        let usage: u64 = usage.trim().parse().ok()?;
        Some(usage.saturating_sub(stat_value(&stat, inactive_key).unwrap_or(0)))
    }
}

/// Removes an empty cgroup directory, retrying while the kernel still
/// counts exiting tasks (EBUSY) for up to 2 s.
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(Error::io("remove cgroup", dir, e)),
        }
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| Error::io("write cgroup file", path, e))
}

fn write_if_present(path: &Path, value: &str) -> Result<()> {
    if path.exists() { write(path, value) } else { Ok(()) }
}

/// The value of `key` in a `key value` per line file (`cpu.stat`,
/// `memory.stat`).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 254:1 / / rw,relatime - ext4 /dev/vda rw
30 29 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
31 29 0:27 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 29 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 29 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 29 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_hybrid_host_without_v2_controllers_is_v1() {
        let kind = CgroupKind::detect_from(HYBRID, |_| Some("hugetlb\n".into()));
        assert_eq!(
            kind,
            CgroupKind::V1 {
                memory: "/sys/fs/cgroup/memory".into(),
                cpu: Some("/sys/fs/cgroup/cpu".into()),
                cpuacct: Some("/sys/fs/cgroup/cpuacct".into()),
                pids: Some("/sys/fs/cgroup/pids".into()),
            }
        );
        assert_eq!(kind.dirs("t/a").len(), 4);
    }

    #[test]
    fn comounted_cpu_and_cpuacct_share_one_directory() {
        let info = "30 29 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    33 29 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let kind = CgroupKind::detect_from(info, |_| None);
        assert_eq!(
            kind.dirs("x"),
            vec![PathBuf::from("/sys/fs/cgroup/memory/x"), "/sys/fs/cgroup/cpu,cpuacct/x".into()]
        );
    }

    #[test]
    fn a_unified_host_with_controllers_is_v2_and_none_is_absent() {
        let info = "40 29 0:35 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let kind = CgroupKind::detect_from(info, |p| {
            (p == Path::new("/sys/fs/cgroup/cgroup.controllers")).then(|| "cpuset cpu io memory pids\n".into())
        });
        assert_eq!(kind, CgroupKind::V2 { root: "/sys/fs/cgroup".into() });
        assert_eq!(CgroupKind::detect_from(info, |_| Some(String::new())), CgroupKind::Absent);
        assert_eq!(CgroupKind::detect_from("", |_| None), CgroupKind::Absent);
    }

    #[test]
    fn limits_are_written_to_a_fake_v1_tree_and_replaced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = |n: &str| tmp.path().join(n);
        let kind = CgroupKind::V1 {
            memory: root("memory"),
            cpu: Some(root("cpu")),
            cpuacct: Some(root("cpuacct")),
            pids: Some(root("pids")),
        };
        let limits = Limits { ram_mb: Some(64), cpus: Some(0.5), diskspace_mb: None, pids: Some(50) };
        kind.create("t/a", &limits).expect("create");
        let get = |p: &str| std::fs::read_to_string(tmp.path().join(p)).expect("written");
        assert_eq!(get("memory/t/a/memory.limit_in_bytes"), "67108864");
        assert_eq!(get("cpu/t/a/cpu.cfs_quota_us"), "50000");
        assert_eq!(get("cpu/t/a/cpu.cfs_period_us"), "100000");
        assert_eq!(get("pids/t/a/pids.max"), "50");
        kind.create("t/a", &Limits::default()).expect("re-create");
        assert_eq!(get("memory/t/a/memory.limit_in_bytes"), "-1");
        assert_eq!(get("cpu/t/a/cpu.cfs_quota_us"), "-1");
        assert_eq!(get("pids/t/a/pids.max"), "max");
    }

    #[test]
    fn usage_is_read_from_fake_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let kind = CgroupKind::V2 { root: tmp.path().to_path_buf() };
        let dir = tmp.path().join("t/a");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("cpu.stat"), "usage_usec 2500000\nuser_usec 1\n").expect("write");
        std::fs::write(dir.join("memory.current"), "1000000\n").expect("write");
        std::fs::write(dir.join("memory.stat"), "anon 5\ninactive_file 200000\n").expect("write");
        assert_eq!(kind.cpu_seconds("t/a"), Some(2.5));
        assert_eq!(kind.memory_bytes("t/a"), Some(800000));
        assert_eq!(stat_value("usage_usec_x 1\nusage_usec 7", "usage_usec"), Some(7));
    }
}
