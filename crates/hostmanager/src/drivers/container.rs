//! `container` and `container_interface`: Linux containers from the
//! `container` crate, their interfaces as veth pairs whose host ends live
//! in the hostmanager's namespace (where the data plane links them).
//!
//! The container's id in kernel names is its entity id; its directory is
//! `<data>/containers/<id>`; its root file system is the template's
//! (unpacked once per sha256 under `<data>/templates/`) or an uploaded one
//! (`<data>/rootfs/<id>`). Its executable-archive directory
//! (`<data>/nlxtp/<id>/dir`, see [`crate::nlxtp`]) is bound at `/mnt/nlXTP`;
//! the host runs a waiting archive with its own guest binary after a start
//! (interfaces and routes in place) and after an upload into a running
//! container, whatever the template holds.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use accounting::Sample;
use container::{Bind, ContainerSpec, InterfaceSpec, Limits, Running};
use model::{Attrs, State};
use serde_json::{Value, json};

use super::{Cx, Driver, View, attr_or_default};
use crate::console::ConsoleSession;
use crate::error::{ErrorKind, HostError, Result};
use crate::store::Entity;

/// How long `execute` may run.
const EXECUTE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long starting the archive monitor may take (it detaches at once).
const MONITOR_TIMEOUT: Duration = Duration::from_secs(30);
/// Processes a container may have unless its profile says otherwise.
const DEFAULT_PIDS: u64 = 4096;
/// The built-in template's name.
pub const BUSYBOX: &str = "busybox";

struct Container;
struct Interface;

/// The `container` driver.
pub fn container() -> Box<dyn Driver> {
    Box::new(Container)
}

/// The `container_interface` driver.
pub fn interface() -> Box<dyn Driver> {
    Box::new(Interface)
}

fn runtime_error(e: container::Error) -> HostError {
    HostError::host(e.to_string())
}

/// The container id used in kernel object names.
fn container_id(e: &Entity) -> String {
    e.id.to_string()
}

/// The number of an interface (`ethN`), given by the host at creation.
pub fn interface_num(e: &Entity) -> u16 {
    e.attrs.get("num").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()).unwrap_or(0)
}

/// The host end's name of interface `iface` of container `parent`.
pub fn host_end(parent: &Entity, iface: &Entity) -> String {
    container::host_end_name(&container_id(parent), interface_num(iface))
}

fn uploaded_rootfs(cx: &Cx, e: &Entity) -> PathBuf {
    cx.data_dir.join("rootfs").join(container_id(e))
}

/// Unpacks (once) and returns the root file system the container uses.
fn rootfs(cx: &Cx, view: &View) -> Result<PathBuf> {
    let e = &view.entity;
    let uploaded = uploaded_rootfs(cx, e);
    if uploaded.is_dir() {
        return Ok(uploaded);
    }
    let templates = cx.dir("templates")?;
    let name = attr_or_default(e, "template");
    let (archive, sha) = match name.as_str() {
        None | Some(BUSYBOX) => {
            let archive = templates.join("busybox.tar.gz");
            let sha_file = templates.join("busybox.sha256");
            let sha = match std::fs::read_to_string(&sha_file) {
                Ok(s) if archive.is_file() => s.trim().to_string(),
                _ => {
                    let info = container::build_busybox_template(&archive).map_err(runtime_error)?;
                    std::fs::write(&sha_file, &info.sha256)?;
                    info.sha256
                }
            };
            (archive, sha)
        }
        Some(name) => {
            let r = view
                .resources
                .iter()
                .find(|r| r.kind == "template" && r.attrs.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| {
                    let names: Vec<&str> = view
                        .resources
                        .iter()
                        .filter(|r| r.kind == "template")
                        .filter_map(|r| r.attrs.get("name").and_then(Value::as_str))
                        .collect();
                    HostError::invalid(format!(
                        "template: no template {name:?} on this host; there are {BUSYBOX}{}{}",
                        if names.is_empty() { "" } else { ", " },
                        names.join(", ")
                    ))
                })?;
            let text = |k: &str| r.attrs.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            (PathBuf::from(text("path")), text("sha256"))
        }
    };
    let dir = templates.join(&sha);
    if !dir.is_dir() {
        // Verified against its digest before it is unpacked.
        container::unpack_template(&archive, &sha, &dir).map_err(runtime_error)?;
    }
    Ok(dir)
}

/// The element's executable-archive files.
fn archive(cx: &Cx, e: &Entity) -> crate::nlxtp::Layout {
    crate::nlxtp::Layout::new(&cx.data_dir, e.id)
}

fn archive_error(e: crate::nlxtp::ArchiveError) -> HostError {
    match e {
        crate::nlxtp::ArchiveError::Io { .. } => HostError::host(format!("executable archive: {e}")),
        _ => HostError::invalid(format!("rextfv_upload_use: {e}")),
    }
}

/// Starts the monitor of a waiting archive inside the running container,
/// with the host's guest binary (it detaches and outlives this call).
fn start_monitor(cx: &Cx, running: &Running) -> Result<()> {
    let args = ["monitor", "--background", "--dir", crate::nlxtp::GUEST_TARGET];
    let out = container::execute_file(running, &cx.guest, &args, MONITOR_TIMEOUT).map_err(runtime_error)?;
    if !out.status.success() {
        return Err(HostError::host(format!(
            "starting the archive monitor: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn spec(cx: &Cx, view: &View) -> Result<ContainerSpec> {
    let e = &view.entity;
    let layout = archive(cx, e);
    layout.ensure()?;
    let hostname = attr_or_default(e, "hostname").as_str().map(str::to_string).unwrap_or_else(|| format!("c{}", e.id));
    let limits = Limits {
        ram_mb: attr_or_default(e, "ram").as_u64(),
        cpus: attr_or_default(e, "cpus").as_f64(),
        diskspace_mb: attr_or_default(e, "diskspace").as_u64(),
        pids: Some(DEFAULT_PIDS),
    };
    Ok(ContainerSpec {
        id: container_id(e),
        dir: cx.dir("containers")?.join(container_id(e)),
        rootfs: rootfs(cx, view)?,
        hostname,
        limits,
        cgroup_parent: cgroup_parent(cx),
        binds: vec![Bind { source: layout.dir(), target: crate::nlxtp::GUEST_TARGET.into() }],
    })
}

/// The cgroup (in every hierarchy) holding this instance's containers.
pub fn cgroup_parent(cx: &Cx) -> String {
    format!("tomato/{}", cx.instance)
}

/// A spec for stopping and removing, which need no root file system.
fn spec_without_rootfs(cx: &Cx, e: &Entity) -> Result<ContainerSpec> {
    Ok(ContainerSpec {
        id: container_id(e),
        dir: cx.dir("containers")?.join(container_id(e)),
        rootfs: cx.data_dir.join("templates"),
        hostname: "c".into(),
        limits: Limits::default(),
        cgroup_parent: cgroup_parent(cx),
        binds: Vec::new(),
    })
}

/// A locally administered unicast MAC, the same for the same instance and
/// interface, so a restart keeps it.
fn default_mac(cx: &Cx, id: i64) -> [u8; 6] {
    let mut h: u32 = 0x811c_9dc5;
    for b in cx.instance.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let id = (id as u32).to_be_bytes();
    [0x02, (h >> 8) as u8 ^ (h as u8), id[0], id[1], id[2], id[3]]
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = text.split(':').filter_map(|p| u8::from_str_radix(p, 16).ok()).collect();
    parts.try_into().ok()
}

fn parse_cidr<T: std::str::FromStr>(v: &Value) -> Option<(T, u8)> {
    let (addr, len) = v.as_str()?.split_once('/')?;
    Some((addr.parse().ok()?, len.parse().ok()?))
}

fn interface_spec(cx: &Cx, parent: &Entity, iface: &Entity) -> InterfaceSpec {
    let mac = attr_or_default(iface, "mac").as_str().and_then(parse_mac).unwrap_or_else(|| default_mac(cx, iface.id));
    InterfaceSpec {
        name: format!("eth{}", interface_num(iface)),
        mac,
        host_name: host_end(parent, iface),
        ip4: parse_cidr::<Ipv4Addr>(&attr_or_default(iface, "ip4address")),
        ip6: parse_cidr::<Ipv6Addr>(&attr_or_default(iface, "ip6address")),
        dhcp: attr_or_default(iface, "use_dhcp").as_bool().unwrap_or(false),
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T> {
    let handle = tokio::runtime::Handle::try_current().map_err(|e| HostError::internal(format!("no runtime: {e}")))?;
    Ok(handle.block_on(f))
}

fn gateways(e: &Entity) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let g4 = attr_or_default(e, "gateway4").as_str().and_then(|s| s.parse().ok());
    let g6 = attr_or_default(e, "gateway6").as_str().and_then(|s| s.parse().ok());
    (g4, g6)
}

/// Starts the container (idempotently) with all its interfaces and routes.
fn start(cx: &Cx, view: &View) -> Result<Running> {
    let spec = spec(cx, view)?;
    container::prepare(&spec).map_err(runtime_error)?;
    // Interfaces and routes are made before init runs, so boot scripts
    // (and an executable archive run at boot) find them.
    let mut failure = None;
    let network = |running: &Running| -> Result<()> {
        crate::crashpoint::hit("start:after-container");
        for iface in &view.children {
            let ispec = interface_spec(cx, &view.entity, iface);
            block_on(container::add_interface(running, &ispec, &cx.netns))?.map_err(runtime_error)?;
        }
        let (g4, g6) = gateways(&view.entity);
        if g4.is_some() || g6.is_some() {
            block_on(container::set_gateways(running, g4, g6))?.map_err(runtime_error)?;
        }
        Ok(())
    };
    let adopted = container::find_running(&spec).map_err(runtime_error)?;
    let started = container::start_with(&spec, &mut |r| {
        network(r).map_err(|e| {
            let text = e.to_string();
            failure = Some(e);
            container::Error::Sys {
                what: "setting up the network before init".into(),
                source: std::io::Error::other(text),
            }
        })
    });
    let result = match (started, adopted) {
        // Already running (an interrupted start re-run): make sure its
        // network is complete (each step is idempotent).
        (Ok(running), Some(_)) => network(&running).map(|()| running),
        (Ok(running), None) => Ok(running),
        (Err(e), _) => Err(failure.take().unwrap_or_else(|| runtime_error(e))),
    };
    let running = match result {
        Ok(r) => r,
        Err(e) => {
            // Roll back to prepared: a half-networked container is no use.
            let _ = container::stop(&spec);
            return Err(e);
        }
    };
    // An archive uploaded while it was stopped runs now, with its network
    // in place. (A template's own guest daemon may have started it at
    // boot already; the monitor's claim on exec_status/ lets one run.)
    if crate::nlxtp::pending(&archive(cx, &view.entity).dir())
        && let Err(e) = start_monitor(cx, &running)
    {
        tracing::warn!(element = view.entity.id, "executable archive not started: {e}");
    }
    Ok(running)
}

fn running(cx: &Cx, e: &Entity) -> Result<Running> {
    container::find_running(&spec_without_rootfs(cx, e)?)
        .map_err(runtime_error)?
        .ok_or_else(|| HostError::new(ErrorKind::InvalidState, format!("container {}: its processes are gone", e.id)))
}

fn destroy(cx: &Cx, e: &Entity) -> Result<()> {
    container::destroy(&spec_without_rootfs(cx, e)?).map_err(runtime_error)?;
    let uploaded = uploaded_rootfs(cx, e);
    if uploaded.exists() {
        std::fs::remove_dir_all(&uploaded)?;
    }
    Ok(())
}

impl Driver for Container {
    fn extra_actions(&self) -> &'static [&'static str] {
        &["execute", "upload_use", "download_grant", "rextfv_upload_use", "rextfv_download_grant"]
    }

    fn action(&self, cx: &Cx, view: &View, action: &str, params: &Attrs) -> Result<Value> {
        let e = &view.entity;
        match action {
            "prepare" => {
                container::prepare(&spec(cx, view)?).map_err(runtime_error)?;
            }
            "start" => {
                start(cx, view)?;
            }
            "stop" => container::stop(&spec_without_rootfs(cx, e)?).map_err(runtime_error)?,
            "destroy" => destroy(cx, e)?,
            "execute" => {
                let cmd = params.get("cmd").and_then(Value::as_str).unwrap_or_default();
                let out = container::execute(&running(cx, e)?, cmd, EXECUTE_TIMEOUT).map_err(runtime_error)?;
                return Ok(json!({
                    "status": out.status.code(),
                    "output": String::from_utf8_lossy(&out.stdout),
                    "stderr": String::from_utf8_lossy(&out.stderr),
                    "timed_out": out.timed_out,
                }));
            }
            other => return Err(super::unsupported(&e.kind, other)),
        }
        Ok(Value::Null)
    }

    fn modify(&self, cx: &Cx, view: &View, changed: &Attrs) -> Result<()> {
        if view.entity.state == State::Started && (changed.contains_key("gateway4") || changed.contains_key("gateway6"))
        {
            let (g4, g6) = gateways(&view.entity);
            block_on(container::set_gateways(&running(cx, &view.entity)?, g4, g6))?.map_err(runtime_error)?;
        }
        Ok(())
    }

    fn recover(&self, cx: &Cx, view: &View) -> Result<()> {
        let e = &view.entity;
        match archive(cx, e).tidy().map_err(archive_error)? {
            crate::nlxtp::Tidied::Clean => {}
            crate::nlxtp::Tidied::Dropped => {
                tracing::warn!(element = e.id, "an executable archive upload was interrupted; use it again")
            }
            crate::nlxtp::Tidied::Completed => {
                tracing::warn!(element = e.id, "an executable archive swap was interrupted and has been finished")
            }
        }
        match e.state {
            // Re-adopt what runs; restart what should run but does not.
            State::Started => match container::find_running(&spec_without_rootfs(cx, e)?).map_err(runtime_error)? {
                Some(_) => Ok(()),
                None => start(cx, view).map(|_| ()),
            },
            State::Prepared => {
                let spec = spec_without_rootfs(cx, e)?;
                container::stop(&spec).map_err(runtime_error)?;
                container::prepare(&spec).map_err(runtime_error)
            }
            State::Created => destroy(cx, e),
        }
    }

    fn remove(&self, cx: &Cx, view: &View) -> Result<()> {
        destroy(cx, &view.entity)?;
        archive(cx, &view.entity).remove()?;
        Ok(())
    }

    fn usage(&self, cx: &Cx, view: &View) -> Sample {
        let Ok(spec) = spec_without_rootfs(cx, &view.entity) else { return Sample::default() };
        let running = container::find_running(&spec).ok().flatten();
        match container::usage(&spec, running.as_ref()) {
            Ok(u) => Sample {
                cputime: u.cputime_secs,
                memory: u.memory_bytes as f64,
                diskspace: u.diskspace_bytes as f64,
                traffic: 0.0,
            },
            Err(_) => Sample::default(),
        }
    }

    fn info(&self, cx: &Cx, view: &View) -> Attrs {
        let mut info = Attrs::new();
        if view.entity.state == State::Started
            && let Ok(r) = running(cx, &view.entity)
        {
            info.insert("pid".into(), json!(r.pid));
        }
        info.insert("rextfv_supported".into(), json!(true));
        info.insert("rextfv_max_size".into(), json!(cx.rextfv_limits.max_bytes));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let status = crate::nlxtp::run_status(&archive(cx, &view.entity).dir(), now);
        info.insert("rextfv_run_status".into(), status);
        info
    }

    fn console(&self, cx: &Cx, view: &View) -> Result<ConsoleSession> {
        let r = running(cx, &view.entity)?;
        let console = container::spawn_console(&r, 24, 80).map_err(runtime_error)?;
        let fd = console.pty.as_fd().try_clone_to_owned()?;
        let resize = move |cols: u16, rows: u16| {
            let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
            // SAFETY: `fd` is the PTY's open controlling side; TIOCSWINSZ
            // reads only `ws`.
            unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        };
        Ok(ConsoleSession { terminal: Box::new(console.pty), resize: Box::new(resize), keep: Box::new(console.child) })
    }

    fn download(&self, cx: &Cx, view: &View, _params: &Attrs, out: &Path) -> Result<()> {
        let spec = spec(cx, view)?;
        crate::disk::archive(&spec.upper_dir(), &spec.rootfs, out)
    }

    fn upload_use(&self, cx: &Cx, view: &View, file: &Path) -> Result<()> {
        let e = &view.entity;
        let sha = container::sha256_file(file).map_err(runtime_error)?;
        let target = uploaded_rootfs(cx, e);
        let staging = target.with_extension("new");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(target.parent().unwrap_or(Path::new("/")))?;
        container::unpack_template(file, &sha, &staging)
            .map_err(|err| HostError::invalid(format!("upload: not a usable root file system archive: {err}")))?;
        // The new root replaces the old one and what was written over it.
        container::destroy(&spec_without_rootfs(cx, e)?).map_err(runtime_error)?;
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&staging, &target)?;
        container::prepare(&spec(cx, view)?).map_err(runtime_error)
    }

    fn rextfv_upload_use(&self, cx: &Cx, view: &View, file: &Path) -> Result<()> {
        let e = &view.entity;
        crate::nlxtp::install(&archive(cx, e), file, cx.rextfv_limits).map_err(archive_error)?;
        // Running: the archive runs now; stopped: at its next start.
        if let Some(running) = container::find_running(&spec_without_rootfs(cx, e)?).map_err(runtime_error)? {
            start_monitor(cx, &running)?;
        }
        Ok(())
    }

    fn rextfv_download(&self, cx: &Cx, view: &View, out: &Path) -> Result<()> {
        let layout = archive(cx, &view.entity);
        layout.ensure()?;
        crate::nlxtp::pack(&layout.dir(), out).map_err(archive_error)
    }
}

impl Driver for Interface {
    fn action(&self, _cx: &Cx, view: &View, action: &str, _params: &Attrs) -> Result<Value> {
        Err(super::unsupported(&view.entity.kind, action))
    }

    fn modify(&self, cx: &Cx, view: &View, _changed: &Attrs) -> Result<()> {
        let Some(parent) = &view.parent else { return Ok(()) };
        if parent.state == State::Started {
            let spec = interface_spec(cx, parent, &view.entity);
            block_on(container::configure_interface(&running(cx, parent)?, &spec))?.map_err(runtime_error)?;
        }
        Ok(())
    }

    fn remove(&self, cx: &Cx, view: &View) -> Result<()> {
        if let Some(parent) = &view.parent {
            block_on(container::remove_interface(&cx.netns, &host_end(parent, &view.entity)))?
                .map_err(runtime_error)?;
        }
        Ok(())
    }

    fn info(&self, _cx: &Cx, view: &View) -> Attrs {
        let mut info = Attrs::new();
        info.insert("name".into(), json!(format!("eth{}", interface_num(&view.entity))));
        info.insert("num".into(), json!(interface_num(&view.entity)));
        info
    }
}
