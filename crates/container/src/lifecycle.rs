//! The container lifecycle: [`prepare`], [`start`], [`find_running`],
//! [`stop`], [`destroy`], and [`usage`].
//!
//! Each step is idempotent and safe to re-run after the caller died at any
//! point in it: `start` first returns a container that already runs, and
//! otherwise kills whatever an interrupted earlier start left in the
//! container's cgroups before starting afresh; `stop` kills by cgroup as
//! well as by the recorded PID, so it also ends a start that died before
//! recording it.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroup::CgroupKind;
use crate::launch::{self, Plan};
use crate::spec::ContainerSpec;
use crate::{Error, Result, sys};

/// A started container: its init's PID in the host's PID namespace and
/// that process's start time (clock ticks after boot, `/proc/PID/stat`
/// field 22), which tells it apart from a later process with the same PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    /// Init's PID (host view).
    pub pid: u32,
    /// Init's start time in clock ticks after boot.
    pub start_time: u64,
}

impl Running {
    /// Whether this init still runs (same PID, same start time, not a
    /// zombie).
    pub fn is_alive(&self) -> bool {
        sys::proc_stat(self.pid).is_some_and(|s| s.alive() && s.start_time == self.start_time)
    }

    /// Fails with [`Error::NotRunning`] unless [`Running::is_alive`].
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_alive() { Ok(()) } else { Err(Error::NotRunning { pid: self.pid }) }
    }
}

/// Resource usage of a container. Traffic is counted by the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// CPU time used since start, in seconds (cgroup `cpuacct.usage` or
    /// `cpu.stat usage_usec`).
    pub cputime_secs: f64,
    /// Memory in use, in bytes, less inactive file cache.
    pub memory_bytes: u64,
    /// Bytes allocated by the overlay's upper directory (what the
    /// container wrote), hard links counted once.
    pub diskspace_bytes: u64,
}

/// Materializes the container's disk: the overlay's `upper/` and `work/`
/// and the mount point `merged/` in `spec.dir`. Nothing is mounted here;
/// [`start`] mounts the overlay inside the container's own mount namespace.
/// The template (`spec.rootfs`) must exist.
pub fn prepare(spec: &ContainerSpec) -> Result<()> {
    spec.validate()?;
    if !spec.rootfs.is_dir() {
        return Err(Error::io(
            "template root",
            &spec.rootfs,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory (unpack the template first)"),
        ));
    }
    for dir in [spec.dir.clone(), spec.upper_dir(), spec.work_dir(), spec.merged_dir()] {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    }
    Ok(())
}

/// Starts the container (preparing it first if needed) and returns its
/// init, or returns the init that already runs. See `launch.rs` for what
/// the container gets. The container's processes outlive the caller.
pub fn start(spec: &ContainerSpec) -> Result<Running> {
    start_with(spec, &mut |_| Ok(()))
}

/// [`start`], calling `before_init` once the container's namespaces,
/// mounts and cgroups are set up but before its init runs, so what it adds
/// (interfaces, routes) is there when the boot scripts start. Its error
/// ends the start (nothing of the container is left running). Not called
/// for a container that already runs.
pub fn start_with(spec: &ContainerSpec, before_init: &mut dyn FnMut(&Running) -> Result<()>) -> Result<Running> {
    spec.validate()?;
    if let Some(running) = find_running(spec)? {
        return Ok(running);
    }
    prepare(spec)?;
    let cgroups = CgroupKind::host();
    let rel = spec.cgroup_path();
    // Whatever an interrupted start left behind goes first.
    cgroups.kill_all(&rel)?;
    cgroups.create(&rel, &spec.limits)?;
    let plan = Plan::new(spec, &cgroups.procs_files(&rel))?;
    let mut hook = |pid: u32| {
        let stat = sys::proc_stat(pid).filter(|s| s.alive()).ok_or(Error::NotRunning { pid })?;
        before_init(&Running { pid, start_time: stat.start_time })
    };
    let pid = match launch::launch(plan, &mut hook) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = cgroups.kill_all(&rel);
            return Err(launch::with_id(e, &spec.id));
        }
    };
    let recorded = sys::proc_stat(pid).filter(|s| s.alive()).ok_or(Error::NotRunning { pid }).and_then(|stat| {
        write_pid_file(spec, pid, stat.start_time)?;
        Ok(Running { pid, start_time: stat.start_time })
    });
    if recorded.is_err() {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = cgroups.kill_all(&rel);
        sys::try_reap(pid);
    }
    recorded
}

/// Writes `init.pid` atomically (temporary file, then rename).
fn write_pid_file(spec: &ContainerSpec, pid: u32, start_time: u64) -> Result<()> {
    let path = spec.pid_file();
    let tmp = spec.dir.join("init.pid.tmp");
    std::fs::write(&tmp, format!("{pid} {start_time}\n")).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename to", &path, e))
}

/// Reads `init.pid`: PID and start time.
pub(crate) fn read_pid_file(dir: &Path) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(dir.join("init.pid")).ok()?;
    let mut it = text.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The container's init if it runs: the recorded PID exists with the
/// recorded start time and is not a zombie. Re-adopts a container after a
/// hostmanager restart; a reused PID does not fool it. A dead init of ours
/// is reaped on the way.
pub fn find_running(spec: &ContainerSpec) -> Result<Option<Running>> {
    spec.validate()?;
    let Some((pid, start_time)) = read_pid_file(&spec.dir) else { return Ok(None) };
    match sys::proc_stat(pid) {
        Some(stat) if stat.start_time == start_time && stat.alive() => Ok(Some(Running { pid, start_time })),
        Some(stat) if stat.start_time == start_time => {
            sys::try_reap(pid);
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Ends every process of the container (SIGKILL to init ends its PID
/// namespace; whatever is left in its cgroups is killed too), unmounts
/// anything left under its directory in the caller's mount namespace and
/// removes its cgroups and `init.pid`. Idempotent.
pub fn stop(spec: &ContainerSpec) -> Result<()> {
    spec.validate()?;
    let running = find_running(spec)?;
    if let Some(r) = running {
        sys::kill(r.pid, libc::SIGKILL).map_err(|e| Error::sys(format!("kill {}", r.pid), e))?;
    }
    let cgroups = CgroupKind::host();
    let rel = spec.cgroup_path();
    cgroups.kill_all(&rel)?;
    if let Some(r) = running {
        let deadline = Instant::now() + Duration::from_secs(5);
        while r.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        sys::try_reap(r.pid);
    }
    cgroups.remove(&rel)?;
    for mount in sys::mounts_under(&spec.dir) {
        sys::umount_detach(&mount)?;
    }
    match std::fs::remove_file(spec.pid_file()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", spec.pid_file(), e)),
        _ => Ok(()),
    }
}

/// Stops the container if needed and removes its directory entirely.
/// Idempotent.
pub fn destroy(spec: &ContainerSpec) -> Result<()> {
    stop(spec)?;
    match std::fs::remove_dir_all(&spec.dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &spec.dir, e)),
        _ => Ok(()),
    }
}

/// The container's usage: CPU and memory from its cgroups (or, on a host
/// without cgroups, from `running`'s init alone), disk space from the
/// upper directory.
pub fn usage(spec: &ContainerSpec, running: Option<&Running>) -> Result<Usage> {
    spec.validate()?;
    let cgroups = CgroupKind::host();
    let rel = spec.cgroup_path();
    let (mut cpu, mut mem) = (cgroups.cpu_seconds(&rel), cgroups.memory_bytes(&rel));
    if let (None, Some(r)) = (cpu, running.filter(|r| r.is_alive())) {
        (cpu, mem) = proc_usage(r.pid);
    }
    Ok(Usage {
        cputime_secs: cpu.unwrap_or(0.0),
        memory_bytes: mem.unwrap_or(0),
        diskspace_bytes: disk_usage(&spec.upper_dir()),
    })
}

/// CPU seconds and resident bytes of one process, from `/proc`.
fn proc_usage(pid: u32) -> (Option<f64>, Option<u64>) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let cpu = stat.rfind(')').and_then(|at| {
        let f: Vec<&str> = stat[at + 1..].split_whitespace().collect();
        let utime: u64 = f.get(11)?.parse().ok()?;
        let stime: u64 = f.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 / ticks.max(1) as f64)
    });
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let rss = statm.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).map(|p| p * page.max(1) as u64);
    (cpu, rss)
}

/// Bytes allocated under `dir` (st_blocks), hard links once, symlinks not
/// followed.
pub(crate) fn disk_usage(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = path.symlink_metadata() else { continue };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_hard_links_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let empty = disk_usage(tmp.path());
        std::fs::write(tmp.path().join("a"), vec![1u8; 64 * 1024]).expect("write");
        let one = disk_usage(tmp.path());
        assert!(one >= empty + 64 * 1024, "{empty} -> {one}");
        std::fs::hard_link(tmp.path().join("a"), tmp.path().join("b")).expect("link");
        assert_eq!(disk_usage(tmp.path()), one);
    }

    #[test]
    fn the_pid_file_holds_pid_and_start_time() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_pid_file(tmp.path()), None);
        std::fs::write(tmp.path().join("init.pid"), "123 456\n").expect("write");
        assert_eq!(read_pid_file(tmp.path()), Some((123, 456)));
    }
}
