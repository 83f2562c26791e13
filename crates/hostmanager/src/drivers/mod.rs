//! Element and connection drivers, one module per type, registered by the
//! model's kind name.
//!
//! The host core checks everything the model declares (states, actions and
//! their parameters, attributes and when they may change) before a driver
//! is called, and records the state an action leads to after it returns;
//! a driver only acts on the host. Every driver action must be idempotent:
//! after a crash, recovery runs the interrupted action again.
//!
//! To add a type: write a module with a type implementing [`Driver`] and
//! add one line to [`DRIVERS`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use accounting::Sample;
use model::Attrs;
use serde_json::Value;

use crate::error::{ErrorKind, HostError, Result};
use crate::plane::Plane;
use crate::store::Entity;

mod bridge;
pub mod container;
mod switch;

/// What drivers share: paths, the hostmanager's namespace, the data plane.
#[derive(Debug)]
pub struct Cx {
    /// The hostmanager's data directory.
    pub data_dir: PathBuf,
    /// This hostmanager's name on the machine (kernel object names).
    pub instance: String,
    /// The hostmanager's network namespace (host ends of interfaces).
    pub netns: PathBuf,
    /// The data plane.
    pub plane: Mutex<Plane>,
    /// The host's copy of the static nlXTP guest binary (`tomato-guest`),
    /// run inside containers whatever their template holds.
    pub guest: PathBuf,
    /// What an executable archive may hold.
    pub rextfv_limits: crate::nlxtp::Limits,
}

impl Cx {
    /// A directory of the data dir, created if missing.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.data_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The data plane, locked.
    pub fn plane(&self) -> std::sync::MutexGuard<'_, Plane> {
        self.plane.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An entity with what its driver may need to see around it.
#[derive(Debug, Clone)]
pub struct View {
    /// The entity.
    pub entity: Entity,
    /// Its parent element.
    pub parent: Option<Entity>,
    /// Its children.
    pub children: Vec<Entity>,
    /// A connection's two ends (elements).
    pub ends: Vec<Entity>,
    /// The owner's resources (templates).
    pub resources: Vec<crate::store::Resource>,
}

impl View {
    /// The attribute `name`, or the kind's default.
    pub fn attr(&self, name: &str) -> Value {
        attr_or_default(&self.entity, name)
    }
}

/// An entity's attribute, or its kind's default.
pub fn attr_or_default(e: &Entity, name: &str) -> Value {
    e.attrs
        .get(name)
        .cloned()
        .or_else(|| model::registry().get(&e.kind).and_then(|k| k.attr(name)).map(|a| a.default.clone()))
        .unwrap_or(Value::Null)
}

/// The lifecycle of one element or connection type on this host.
pub trait Driver: Send + Sync {
    /// Actions beyond the lifecycle (`prepare`, `start`, `stop`, `destroy`,
    /// `(remove)`) and grants that this host offers for the type.
    fn extra_actions(&self) -> &'static [&'static str] {
        &[]
    }

    /// Runs `action` (already checked against the model); returns its
    /// result for the caller. Must be idempotent.
    fn action(&self, cx: &Cx, view: &View, action: &str, params: &Attrs) -> Result<Value>;

    /// Applies `changed` attributes (already checked against the model and
    /// stored) to a live entity.
    fn modify(&self, _cx: &Cx, _view: &View, _changed: &Attrs) -> Result<()> {
        Ok(())
    }

    /// After a restart: makes the host match the entity's stored state
    /// (re-adopts what runs, restarts what should run). Idempotent.
    fn recover(&self, _cx: &Cx, _view: &View) -> Result<()> {
        Ok(())
    }

    /// Removes what the entity keeps on the host when it is removed.
    fn remove(&self, _cx: &Cx, _view: &View) -> Result<()> {
        Ok(())
    }

    /// Counters for accounting (cumulative CPU seconds and traffic bytes,
    /// current memory and disk bytes).
    fn usage(&self, _cx: &Cx, _view: &View) -> Sample {
        Sample::default()
    }

    /// Runtime facts for `*_info` (read-only attributes).
    fn info(&self, _cx: &Cx, _view: &View) -> Attrs {
        Attrs::new()
    }

    /// Writes the entity's downloadable file (disk image, capture) to
    /// `out`, for `download_grant`.
    fn download(&self, _cx: &Cx, view: &View, _params: &Attrs, _out: &Path) -> Result<()> {
        Err(unsupported(&view.entity.kind, "download_grant"))
    }

    /// Opens a shell on a terminal inside the running element.
    fn console(&self, _cx: &Cx, view: &View) -> Result<crate::console::ConsoleSession> {
        Err(unsupported(&view.entity.kind, "console"))
    }

    /// Uses an uploaded file (`upload_use`).
    fn upload_use(&self, _cx: &Cx, view: &View, _file: &Path) -> Result<()> {
        Err(unsupported(&view.entity.kind, "upload_use"))
    }

    /// Places an uploaded executable archive (`rextfv_upload_use`) and runs
    /// it if the element runs.
    fn rextfv_upload_use(&self, _cx: &Cx, view: &View, _file: &Path) -> Result<()> {
        Err(unsupported(&view.entity.kind, "rextfv_upload_use"))
    }

    /// Writes the archive directory as tar.gz to `out`
    /// (`rextfv_download_grant`).
    fn rextfv_download(&self, _cx: &Cx, view: &View, _out: &Path) -> Result<()> {
        Err(unsupported(&view.entity.kind, "rextfv_download_grant"))
    }
}

/// Actions every driver carries out (the model decides when).
const LIFECYCLE: &[&str] = &["prepare", "start", "stop", "destroy", model::schema::REMOVE];

/// Whether `driver` carries out `action`: the lifecycle, its extra actions,
/// and `upload_grant` (`rextfv_upload_grant`) where it can use an upload
/// (an archive).
pub fn offers(driver: &dyn Driver, action: &str) -> bool {
    let extra = driver.extra_actions();
    LIFECYCLE.contains(&action)
        || extra.contains(&action)
        || (action == "upload_grant" && extra.contains(&"upload_use"))
        || (action == "rextfv_upload_grant" && extra.contains(&"rextfv_upload_use"))
}

/// The error for an action a type's driver does not offer.
pub fn unsupported(kind: &str, action: &str) -> HostError {
    HostError::new(ErrorKind::UnsupportedAction, format!("{kind} on this host does not offer `{action}`"))
}

/// A driver's constructor.
pub type MakeDriver = fn() -> Box<dyn Driver>;

/// One line per type this host offers: the model's kind name and its driver.
#[rustfmt::skip]
pub const DRIVERS: &[(&str, MakeDriver)] = &[
    ("container", container::container),
    ("container_interface", container::interface),
    ("switch", switch::switch),
    ("switch_endpoint", switch::endpoint),
    ("bridge", bridge::bridge),
];

/// The driver of `kind`.
pub fn driver(kind: &str) -> Option<Box<dyn Driver>> {
    DRIVERS.iter().find(|(name, _)| *name == kind).map(|(_, make)| make())
}

/// The kinds this host offers.
pub fn offered() -> Vec<&'static str> {
    DRIVERS.iter().map(|(name, _)| *name).collect()
}

/// Removes host objects of entities that no longer exist (after a crash
/// between a driver's work and the store's delete); returns what it
/// removed. `keep` is every stored entity.
pub fn sweep(cx: &Cx, keep: &[Entity]) -> Result<Vec<String>> {
    let ids: Vec<String> = keep.iter().filter(|e| e.kind == "container").map(|e| e.id.to_string()).collect();
    let dir_root = cx.dir("containers")?;
    let parent = container::cgroup_parent(cx);
    let netns = cx.netns.clone();
    let handle = tokio::runtime::Handle::try_current().map_err(|e| HostError::internal(e.to_string()))?;
    let found = handle
        .block_on(::container::sweep(&dir_root, &parent, Some(&netns), &ids))
        .map_err(|e| HostError::host(format!("sweep: {e}")))?;
    let mut removed: Vec<String> = found.ids.iter().map(|id| format!("container {id}")).collect();
    removed.extend(found.processes.iter().map(|p| format!("process {p}")));
    removed.extend(found.mounts.iter().map(|m| format!("mount {}", m.display())));
    removed.extend(found.cgroups.iter().map(|c| format!("cgroup {}", c.display())));
    removed.extend(found.veths.iter().map(|v| format!("veth {v}")));
    removed.extend(found.dirs.iter().map(|d| format!("dir {}", d.display())));
    // Uploaded root file systems and archive directories of containers
    // that are gone.
    for dir in ["rootfs", "nlxtp"] {
        let Ok(entries) = std::fs::read_dir(cx.data_dir.join(dir)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !ids.contains(&name) && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed.push(format!("dir {}", entry.path().display()));
            }
        }
    }
    Ok(removed)
}
