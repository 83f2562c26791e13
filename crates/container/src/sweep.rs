//! Finding and removing what containers left behind: [`leftovers`] lists,
//! [`sweep`] removes. A hostmanager sweeps at start-up with the ids its
//! store knows (`keep`), so a crash never leaves debris; tests list before
//! and after.
//!
//! A container is recognised by its id in any of: a directory
//! `<dir_root>/<id>`, a cgroup `<cgroup_parent>/<id>` in any hierarchy, a
//! host end named by [`crate::host_end_name`] in the host namespace. Other
//! names are never touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cgroup::{self, CgroupKind};
use crate::spec::{valid_cgroup_parent, valid_id};
use crate::{Error, Result, net, sys};

/// Kernel objects and files of containers that are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Ids of the containers found.
    pub ids: Vec<String>,
    /// Live processes in their cgroups, and inits recorded in `init.pid`.
    pub processes: Vec<u32>,
    /// Mount points under their directories (caller's mount namespace).
    pub mounts: Vec<PathBuf>,
    /// Their cgroup directories.
    pub cgroups: Vec<PathBuf>,
    /// Their host ends in the host namespace.
    pub veths: Vec<String>,
    /// Their directories.
    pub dirs: Vec<PathBuf>,
}

impl Leftovers {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Subdirectories of `dir` named like container ids.
fn id_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| valid_id(n))
        .collect()
}

fn check_parent(cgroup_parent: &str) -> Result<()> {
    if valid_cgroup_parent(cgroup_parent) {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!("cgroup_parent {cgroup_parent:?}")))
    }
}

/// Lists what containers not in `keep` left under `dir_root`, under
/// `cgroup_parent` and (if given) as host ends in `host_netns`, without
/// removing anything.
pub async fn leftovers(
    dir_root: &Path,
    cgroup_parent: &str,
    host_netns: Option<&Path>,
    keep: &[String],
) -> Result<Leftovers> {
    check_parent(cgroup_parent)?;
    let kind = CgroupKind::host();
    let veths = match host_netns {
        Some(ns) => net::host_ends(ns).await?,
        None => Vec::new(),
    };
    let mut ids = BTreeSet::new();
    ids.extend(id_dirs(dir_root));
    for dir in kind.dirs(cgroup_parent) {
        ids.extend(id_dirs(&dir));
    }
    ids.extend(veths.iter().filter_map(|v| net::id_of_host_end(v)).map(str::to_string));
    let mut found = Leftovers::default();
    for id in ids.into_iter().filter(|id| !keep.contains(id)) {
        let dir = dir_root.join(&id);
        let rel = format!("{cgroup_parent}/{id}");
        let mut pids = kind.pids(&rel);
        if let Some((pid, start)) = crate::lifecycle::read_pid_file(&dir)
            && sys::proc_stat(pid).is_some_and(|s| s.alive() && s.start_time == start)
            && !pids.contains(&pid)
        {
            pids.push(pid);
        }
        found.processes.extend(pids);
        found.mounts.extend(sys::mounts_under(&dir));
        found.cgroups.extend(kind.dirs(&rel).into_iter().filter(|d| d.is_dir()));
        found.veths.extend(veths.iter().filter(|v| net::id_of_host_end(v) == Some(id.as_str())).cloned());
        if dir.is_dir() {
            found.dirs.push(dir);
        }
        found.ids.push(id);
    }
    Ok(found)
}

/// Removes everything [`leftovers`] finds: kills the processes (by cgroup
/// and recorded init), detaches the mounts, removes the cgroups, deletes
/// the host ends and removes the directories. Returns what it found.
pub async fn sweep(
    dir_root: &Path,
    cgroup_parent: &str,
    host_netns: Option<&Path>,
    keep: &[String],
) -> Result<Leftovers> {
    let found = leftovers(dir_root, cgroup_parent, host_netns, keep).await?;
    let (parent, root, ids, processes) =
        (cgroup_parent.to_string(), dir_root.to_path_buf(), found.ids.clone(), found.processes.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let kind = CgroupKind::host();
        for pid in &processes {
            sys::kill(*pid, libc::SIGKILL).map_err(|e| Error::sys(format!("kill {pid}"), e))?;
        }
        for id in &ids {
            let rel = format!("{parent}/{id}");
            kind.kill_all(&rel)?;
            for pid in &processes {
                sys::try_reap(*pid);
            }
            let dir = root.join(id);
            for mount in sys::mounts_under(&dir) {
                sys::umount_detach(&mount)?;
            }
            kind.remove(&rel)?;
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("remove", &dir, e)),
                _ => {}
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::sys("sweep task", std::io::Error::other(e)))??;
    if let Some(ns) = host_netns {
        net::delete_host_ends(ns, &found.veths).await?;
    }
    Ok(found)
}

/// Removes the (empty) cgroup directories of `cgroup_parent` in every
/// hierarchy, innermost first, stopping at the first that is not empty
/// (another user's containers). For tests and uninstalling.
pub fn remove_cgroup_parent(cgroup_parent: &str) -> Result<()> {
    check_parent(cgroup_parent)?;
    let kind = CgroupKind::host();
    let mut rel = cgroup_parent.to_string();
    loop {
        for dir in kind.dirs(&rel) {
            if std::fs::read_dir(&dir).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().is_dir()))) {
                return Ok(());
            }
            cgroup::remove_dir(&dir)?;
        }
        match rel.rfind('/') {
            Some(at) => rel.truncate(at),
            None => return Ok(()),
        }
    }
}
