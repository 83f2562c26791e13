//! What a container is made of: [`ContainerSpec`] and its [`Limits`], with
//! the checks every lifecycle step runs first and the paths inside the
//! container's directory.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Resource limits of a container. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Memory limit in MiB (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    pub ram_mb: Option<u64>,
    /// CPU share in cores, e.g. 0.5 (v1 `cpu.cfs_quota_us` over a 100 ms
    /// period, v2 `cpu.max`).
    pub cpus: Option<f64>,
    /// Disk space in MiB. Not enforced (no quota on the upper directory):
    /// [`crate::usage`] measures the upper directory so the hostmanager can
    /// account for it and act on an excess.
    pub diskspace_mb: Option<u64>,
    /// Maximum number of processes and threads (`pids.max`).
    pub pids: Option<u64>,
}

/// A host directory that appears inside the container (read-write, without
/// set-uid programs or devices), e.g. the executable-archive directory at
/// `/mnt/nlXTP`. Mounted at start inside the container's mount namespace
/// only, after `pivot_root`, so the target resolves inside the container.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    /// The host directory (absolute).
    pub source: PathBuf,
    /// Where it appears in the container (absolute, no `..`); missing
    /// directories on the way are created in the container.
    pub target: PathBuf,
}

/// Everything the runtime needs to know about one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// `[a-z0-9]{1,10}`, unique on the host; used in kernel object names
    /// (cgroups, host veth names made by [`crate::host_end_name`]).
    pub id: String,
    /// The container's own directory: overlay `upper/`, `work/`, `merged/`
    /// and the runtime files. [`crate::sweep`] expects it to be
    /// `<dir_root>/<id>`.
    pub dir: PathBuf,
    /// The unpacked template, the overlay's read-only lower layer (shared by
    /// all containers of the template).
    pub rootfs: PathBuf,
    /// The container's hostname (1 to 64 bytes).
    pub hostname: String,
    /// Resource limits.
    pub limits: Limits,
    /// The cgroup path under which the container's cgroup `<id>` is made,
    /// relative to each hierarchy's root, e.g. `tomato/<instance>`; lets
    /// tests and several hostmanagers share a machine.
    pub cgroup_parent: String,
    /// Host directories mounted into the container at start.
    pub binds: Vec<Bind>,
}

/// Whether `id` is a valid container id (`[a-z0-9]{1,10}`).
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=10).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `parent` is a usable cgroup parent: relative, `/`-separated
/// names of `[A-Za-z0-9_.-]`, no `.` or `..`.
pub(crate) fn valid_cgroup_parent(parent: &str) -> bool {
    !parent.is_empty()
        && parent.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        })
}

/// Overlay options are comma-separated and lower dirs colon-separated, so
/// neither may appear in a path; nor may NUL.
fn overlay_safe(path: &Path) -> bool {
    let s = path.as_os_str().as_encoded_bytes();
    path.is_absolute() && !s.iter().any(|b| matches!(b, b',' | b':' | 0 | b'\\'))
}

impl ContainerSpec {
    /// Checks the spec; every lifecycle step calls this first.
    pub fn validate(&self) -> Result<()> {
        if !valid_id(&self.id) {
            return Err(Error::InvalidSpec(format!("id {:?} is not [a-z0-9]{{1,10}}", self.id)));
        }
        for (what, path) in [("dir", &self.dir), ("rootfs", &self.rootfs)] {
            if !overlay_safe(path) {
                return Err(Error::InvalidSpec(format!(
                    "{what} {path:?} must be absolute and free of ',', ':' and '\\'"
                )));
            }
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 || self.hostname.bytes().any(|b| b == 0) {
            return Err(Error::InvalidSpec(format!("hostname {:?} must be 1 to 64 bytes", self.hostname)));
        }
        if !valid_cgroup_parent(&self.cgroup_parent) {
            return Err(Error::InvalidSpec(format!(
                "cgroup_parent {:?} must be relative names of [A-Za-z0-9_.-] joined by '/'",
                self.cgroup_parent
            )));
        }
        for bind in &self.binds {
            let plain = bind
                .target
                .components()
                .all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)));
            if !bind.source.is_absolute() || !bind.target.is_absolute() || !plain || bind.target == Path::new("/") {
                return Err(Error::InvalidSpec(format!(
                    "bind {:?} -> {:?}: source and target must be absolute, the target below / without `..`",
                    bind.source, bind.target
                )));
            }
        }
        if let Some(cpus) = self.limits.cpus
            && !(cpus.is_finite() && cpus > 0.0 && cpus <= 4096.0)
        {
            return Err(Error::InvalidSpec(format!("cpus {cpus} must be in (0, 4096]")));
        }
        if self.limits.ram_mb == Some(0) || self.limits.pids == Some(0) {
            return Err(Error::InvalidSpec("ram_mb and pids must be positive when set".into()));
        }
        Ok(())
    }

    /// The overlay's writable layer.
    pub fn upper_dir(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// The overlay's work directory.
    pub(crate) fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The overlay's mount point (mounted inside the container only).
    pub(crate) fn merged_dir(&self) -> PathBuf {
        self.dir.join("merged")
    }

    /// The file holding init's PID and start time.
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("init.pid")
    }

    /// The file init's stdout and stderr go to.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("init.log")
    }

    /// The container's cgroup path relative to a hierarchy root.
    pub(crate) fn cgroup_path(&self) -> String {
        format!("{}/{}", self.cgroup_parent, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            id: "ab12".into(),
            dir: "/var/lib/tomato/ct/ab12".into(),
            rootfs: "/var/lib/tomato/tpl/busybox".into(),
            hostname: "pc1".into(),
            limits: Limits::default(),
            cgroup_parent: "tomato/main".into(),
            binds: vec![Bind { source: "/var/lib/tomato/nlxtp/ab12/dir".into(), target: "/mnt/nlXTP".into() }],
        }
    }

    #[test]
    fn a_plain_spec_is_valid() {
        spec().validate().expect("valid");
        assert_eq!(spec().cgroup_path(), "tomato/main/ab12");
    }

    #[test]
    fn bad_ids_paths_names_and_limits_are_refused() {
        type Change = fn(&mut ContainerSpec);
        let cases: Vec<(&str, Change)> = vec![
            ("empty id", |s| s.id.clear()),
            ("upper-case id", |s| s.id = "AB".into()),
            ("long id", |s| s.id = "abcdefghijk".into()),
            ("relative dir", |s| s.dir = "ct/ab12".into()),
            ("comma in rootfs", |s| s.rootfs = "/t/a,b".into()),
            ("colon in dir", |s| s.dir = "/t/a:b".into()),
            ("empty hostname", |s| s.hostname.clear()),
            ("dotdot parent", |s| s.cgroup_parent = "tomato/../x".into()),
            ("absolute parent", |s| s.cgroup_parent = "/tomato".into()),
            ("zero cpus", |s| s.limits.cpus = Some(0.0)),
            ("nan cpus", |s| s.limits.cpus = Some(f64::NAN)),
            ("zero ram", |s| s.limits.ram_mb = Some(0)),
            ("relative bind source", |s| s.binds[0].source = "nlxtp".into()),
            ("dotdot bind target", |s| s.binds[0].target = "/mnt/../etc".into()),
            ("bind over the root", |s| s.binds[0].target = "/".into()),
        ];
        for (name, change) in cases {
            let mut s = spec();
            change(&mut s);
            assert!(s.validate().is_err(), "{name} accepted");
        }
    }
}
