//! The host core: every API operation, checked against the model, stored,
//! then carried out by the type's driver.
//!
//! Entities live in memory and in the store; each change is written before
//! the call answers. An action marks its entity busy and writes its name to
//! `pending` before the driver runs, so a crash in the middle is finished or
//! rolled back by [`Host::open`]. Callers see only their own entities (the
//! `owner` is their certificate's common name); another owner's id answers
//! exactly like an id that does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use accounting::{RecordType, Sample, UsageStatistics};
use model::registry::Class as KindClass;
use model::schema::REMOVE;
use model::{Attrs, Kind, State};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::drivers::{self, Cx, View};
use crate::error::{ErrorKind, HostError, Result};
use crate::plane::{self, Plane};
use crate::store::{Class, Entity, Grant, Resource, Store};

/// Longest allowed element timeout (ToMaTo's `MAX_TIMEOUT`), seconds.
pub const MAX_TIMEOUT: i64 = 30 * 24 * 3600;
/// How long an upload grant lives, seconds.
pub const UPLOAD_GRANT_SECS: i64 = 3600;
/// How long a download grant lives, seconds.
pub const DOWNLOAD_GRANT_SECS: i64 = 12 * 3600;

/// How a hostmanager is set up.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Store, containers, templates, captures and grant files live here.
    pub data_dir: PathBuf,
    /// The hostmanager's name on this machine; kernel objects carry it
    /// (`tomato-<instance>` namespace), so several can share a machine.
    pub instance: String,
    /// The address backends and users reach this host at (for `host_info`).
    pub address: String,
    /// The fileserver's port (for `host_info`).
    pub fileserver_port: u16,
    /// Where live capture streams listen.
    pub capture_ip: IpAddr,
    /// The largest executable archive (nlXTP), compressed and unpacked,
    /// in bytes (`rextfv_max_size`; [`crate::nlxtp::DEFAULT_MAX_SIZE`]).
    pub rextfv_max_size: u64,
}

/// The current time in epoch seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

struct Inner {
    entities: BTreeMap<i64, Entity>,
    resources: BTreeMap<i64, Resource>,
    busy: BTreeSet<i64>,
}

/// One hostmanager.
pub struct Host {
    config: HostConfig,
    store: Store,
    cx: Arc<Cx>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("config", &self.config).finish()
    }
}

/// What recovery found and did at start.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recovery {
    /// Interrupted actions finished: (entity, action).
    pub finished: Vec<(i64, String)>,
    /// Interrupted actions rolled back: (entity, action, why).
    pub rolled_back: Vec<(i64, String, String)>,
    /// Entities whose host side failed to match their state: (entity, why).
    pub failed: Vec<(i64, String)>,
    /// Leftover files and kernel objects removed.
    pub removed: Vec<String>,
}

fn kind_of(e: &Entity) -> Result<&'static Kind> {
    model::registry().get(&e.kind).ok_or_else(|| HostError::internal(format!("unknown stored type {}", e.kind)))
}

fn class_of(kind: &Kind) -> Class {
    match kind.class {
        KindClass::Element => Class::Element,
        KindClass::Connection => Class::Connection,
    }
}

/// Resolves a type name (ours, ToMaTo's or an alias) to a kind this host
/// offers, of the given class.
fn offered_kind(name: &str, class: Class) -> Result<&'static Kind> {
    let wanted = match class {
        Class::Element => KindClass::Element,
        Class::Connection => KindClass::Connection,
    };
    let offered: Vec<&str> = drivers::offered()
        .into_iter()
        .filter(|k| model::registry().get(k).is_some_and(|k| k.class == wanted))
        .collect();
    let kind = model::registry().lookup(name, wanted).map_err(|e| HostError::new(ErrorKind::UnsupportedType, e))?;
    if !offered.contains(&kind.name) {
        return Err(HostError::new(
            ErrorKind::UnsupportedType,
            format!("type: this host does not offer {}; it offers {}", kind.name, offered.join(", ")),
        ));
    }
    Ok(kind)
}

/// Checks attributes against the kind: known, valid, writable in `state`.
fn check_attrs(kind: &Kind, attrs: &Attrs, state: State) -> Result<()> {
    for (name, value) in attrs {
        if name == "timeout" {
            continue;
        }
        let spec = kind.attr(name).ok_or_else(|| {
            HostError::new(
                ErrorKind::UnsupportedAttribute,
                format!(
                    "{}: {} has no attribute `{name}`; it has {}",
                    kind.name,
                    kind.name,
                    kind.attr_names().join(", ")
                ),
            )
            .with_data(json!({"attribute": name}))
        })?;
        spec.check(value).map_err(|m| {
            HostError::invalid(format!("{name}: {m} (allowed: {})", spec.allowed()))
                .with_data(json!({"attribute": name}))
        })?;
        if !spec.writable_in.contains(&state) {
            let when = if spec.writable_in.is_empty() {
                "it is read-only".to_string()
            } else {
                format!("it can be set when {}", model::state::list_states(&spec.writable_in))
            };
            return Err(HostError::new(
                ErrorKind::InvalidState,
                format!("{name}: cannot be changed while {} is {state}; {when}", kind.name),
            )
            .with_data(json!({"attribute": name})));
        }
    }
    Ok(())
}

/// Reads the `timeout` attribute (epoch seconds), capped at now + 30 days.
fn take_timeout(attrs: &mut Attrs, now: i64) -> Result<Option<i64>> {
    let Some(v) = attrs.remove("timeout") else { return Ok(None) };
    let t = v.as_f64().ok_or_else(|| HostError::invalid(format!("timeout: {v} is not a number; give epoch seconds")))?
        as i64;
    if t > now + MAX_TIMEOUT {
        return Err(HostError::invalid(format!("timeout: at most now + {MAX_TIMEOUT} s (30 days)")));
    }
    Ok(Some(t))
}

/// Checks action parameters against the action's declared parameters.
fn check_params(kind: &Kind, action: &model::schema::ActionSpec, params: &Attrs) -> Result<()> {
    for (name, value) in params {
        let spec = action.params.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = action.params.iter().map(|p| p.name).collect();
            HostError::invalid(format!(
                "{}: {} of {} takes {}",
                name,
                action.name,
                kind.name,
                if names.is_empty() { "no parameters".to_string() } else { names.join(", ") }
            ))
        })?;
        spec.schema
            .check(value)
            .map_err(|m| HostError::invalid(format!("{name}: {m} (allowed: {})", spec.schema.allowed(None))))?;
    }
    for p in action.params.iter().filter(|p| p.required) {
        if !params.contains_key(p.name) {
            return Err(HostError::invalid(format!("{}: {} needs parameter `{}`", kind.name, action.name, p.name)));
        }
    }
    Ok(())
}

/// A grant of `action` on `path` for `secs` seconds, without a size limit.
fn new_grant(owner: &str, id: i64, action: &str, path: &Path, secs: i64, token: String) -> Grant {
    Grant {
        token,
        owner: owner.to_string(),
        entity: id,
        action: action.to_string(),
        path: path.display().to_string(),
        expires: now() + secs,
        max_size: None,
    }
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| HostError::internal(format!("randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Inner {
    fn visible(&self, owner: &str, id: i64, class: Class) -> Result<&Entity> {
        self.entities
            .get(&id)
            .filter(|e| e.owner == owner && e.class == class)
            .ok_or_else(|| HostError::not_found(class.name(), id))
    }

    fn children(&self, id: i64) -> Vec<i64> {
        self.entities.values().filter(|e| e.parent == Some(id)).map(|e| e.id).collect()
    }

    /// The connection attached to element `id`, if any.
    fn connection_of(&self, id: i64) -> Option<i64> {
        self.entities.values().find(|e| e.ends.is_some_and(|ends| ends.contains(&id))).map(|e| e.id)
    }

    fn view(&self, id: i64) -> Option<View> {
        let entity = self.entities.get(&id)?.clone();
        let parent = entity.parent.and_then(|p| self.entities.get(&p)).cloned();
        let children = self.children(id).iter().filter_map(|c| self.entities.get(c)).cloned().collect();
        let ends =
            entity.ends.map(|e| e.iter().filter_map(|x| self.entities.get(x)).cloned().collect()).unwrap_or_default();
        let resources = self.resources.values().filter(|r| r.owner == entity.owner).cloned().collect();
        Some(View { entity, parent, children, ends, resources })
    }
}

impl Host {
    /// Opens the hostmanager's store under `config.data_dir`, sets up its
    /// namespace and data plane, and recovers: interrupted actions are
    /// finished or rolled back, running elements re-adopted, and leftovers
    /// of entities that no longer exist removed.
    pub async fn open(config: HostConfig) -> Result<(Host, Recovery)> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = Store::open(&config.data_dir.join("store.sqlite")).await?;
        let netns = crate::netns::ensure(&format!("tomato-{}", config.instance))?;
        // Captures do not survive a restart (their writer was this
        // process); their rings are stale.
        let captures = config.data_dir.join("captures");
        let _ = std::fs::remove_dir_all(&captures);
        let plane = Plane::new(&netns, captures, config.capture_ip)?;
        // The host's own copy of the guest binary, run inside containers
        // (their templates may not have one).
        let guest = config.data_dir.join("guest").join("tomato-guest");
        std::fs::create_dir_all(config.data_dir.join("guest"))?;
        guest::install(&guest).map_err(|e| HostError::host(format!("installing {}: {e}", guest.display())))?;
        let cx = Arc::new(Cx {
            data_dir: config.data_dir.clone(),
            instance: config.instance.clone(),
            netns,
            plane: std::sync::Mutex::new(plane),
            guest,
            rextfv_limits: crate::nlxtp::Limits {
                max_bytes: config.rextfv_max_size,
                max_entries: crate::nlxtp::MAX_ENTRIES,
            },
        });
        let entities = store.entities().await?.into_iter().map(|e| (e.id, e)).collect();
        let resources = store.resources().await?.into_iter().map(|r| (r.id, r)).collect();
        let host = Host { config, store, cx, inner: Mutex::new(Inner { entities, resources, busy: BTreeSet::new() }) };
        let recovery = host.recover().await?;
        Ok((host, recovery))
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The drivers' context (data plane, paths).
    pub fn cx(&self) -> &Arc<Cx> {
        &self.cx
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Cx) -> T + Send + 'static) -> Result<T> {
        let cx = self.cx.clone();
        tokio::task::spawn_blocking(move || f(&cx)).await.map_err(|e| HostError::internal(format!("driver task: {e}")))
    }

    /// Makes the data plane match the entities (called with the lock held,
    /// so plane changes happen in the order of entity changes).
    async fn reconcile(&self, inner: &Inner) {
        let want = plane::desired(&inner.entities);
        let errors = self.blocking(move |cx| cx.plane().reconcile(&want)).await.unwrap_or_default();
        for (id, e) in errors {
            tracing::warn!(entity = id, "data plane: {e}");
        }
    }

    async fn recover(&self) -> Result<Recovery> {
        let mut report = Recovery::default();
        let mut inner = self.inner.lock().await;
        // Interrupted removals first, in the order `remove` runs them:
        // connections and children before their elements (ids grow with
        // creation, so highest first). Then the rest, parents first, so
        // children see their parents recovered.
        let removing = |e: &Entity| e.pending.as_deref() == Some(REMOVE);
        let mut ids: Vec<i64> = inner.entities.values().filter(|e| removing(e)).map(|e| e.id).rev().collect();
        ids.extend(inner.entities.values().filter(|e| !removing(e)).map(|e| e.id));
        for id in ids {
            let Some(view) = inner.view(id) else { continue };
            let e = view.entity.clone();
            let Some(driver) = drivers::driver(&e.kind) else {
                report.failed.push((id, format!("no driver for {}", e.kind)));
                continue;
            };
            if let Some(action) = e.pending.clone() {
                if action == REMOVE {
                    // Finish the removal.
                    let v = view.clone();
                    let _ = self.blocking(move |cx| driver.remove(cx, &v)).await;
                    self.store.delete(id).await?;
                    inner.entities.remove(&id);
                    report.finished.push((id, action));
                    continue;
                }
                let v = view.clone();
                let act = action.clone();
                let result = self.blocking(move |cx| driver.action(cx, &v, &act, &Attrs::new())).await.and_then(|r| r);
                match result {
                    Ok(_) => {
                        let next = kind_of(&e)?.action(&action).and_then(|a| a.leads_to);
                        self.finish(&mut inner, id, next).await?;
                        report.finished.push((id, action));
                    }
                    Err(err) => {
                        // Back to the state it was in: make the host match it.
                        let driver = drivers::driver(&e.kind).ok_or_else(|| HostError::internal("driver vanished"))?;
                        let v = view.clone();
                        let back = self.blocking(move |cx| driver.recover(cx, &v)).await.and_then(|r| r);
                        self.finish(&mut inner, id, None).await?;
                        report.rolled_back.push((id, action, err.to_string()));
                        if let Err(e) = back {
                            report.failed.push((id, e.to_string()));
                        }
                    }
                }
            } else {
                let v = view.clone();
                if let Err(err) = self.blocking(move |cx| driver.recover(cx, &v)).await.and_then(|r| r) {
                    report.failed.push((id, err.to_string()));
                }
            }
        }
        report.removed.extend(self.sweep(&inner).await?);
        self.reconcile(&inner).await;
        Ok(report)
    }

    /// Removes files of entities and grants that no longer exist.
    async fn sweep(&self, inner: &Inner) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let live: BTreeSet<String> = self.store.grant_paths().await?.into_iter().collect();
        for dir in ["downloads", "uploads"] {
            let Ok(entries) = std::fs::read_dir(self.config.data_dir.join(dir)) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let keep = live.contains(&path.display().to_string())
                    || (dir == "uploads"
                        && path
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .and_then(|s| s.parse::<i64>().ok())
                            .is_some_and(|id| inner.entities.contains_key(&id)));
                if !keep && std::fs::remove_file(&path).is_ok() {
                    removed.push(path.display().to_string());
                }
            }
        }
        let keep: Vec<Entity> = inner.entities.values().cloned().collect();
        let swept = self.blocking(move |cx| drivers::sweep(cx, &keep)).await??;
        removed.extend(swept);
        Ok(removed)
    }

    /// Ends an action: clears `pending`, applies the new state (children
    /// follow their parent), writes everything changed.
    async fn finish(&self, inner: &mut Inner, id: i64, next: Option<State>) -> Result<()> {
        inner.busy.remove(&id);
        let children = inner.children(id);
        let Some(e) = inner.entities.get_mut(&id) else { return Ok(()) };
        e.pending = None;
        if let Some(state) = next {
            e.state = state;
        }
        let (e, state) = (e.clone(), e.state);
        self.store.update(&e).await?;
        for c in children {
            if let Some(child) = inner.entities.get_mut(&c)
                && child.state != state
            {
                child.state = state;
                let child = child.clone();
                self.store.update(&child).await?;
            }
        }
        Ok(())
    }

    // ---- elements -------------------------------------------------------

    /// `element_create(type, parent=None, attrs=None)`.
    pub async fn element_create(&self, owner: &str, kind: &str, parent: Option<i64>, attrs: Attrs) -> Result<Value> {
        let kind = offered_kind(kind, Class::Element)?;
        self.create(owner, kind, parent, None, attrs).await
    }

    /// `connection_create(element1, element2, type=None, attrs=None)`.
    pub async fn connection_create(
        &self,
        owner: &str,
        element1: i64,
        element2: i64,
        kind: Option<&str>,
        attrs: Attrs,
    ) -> Result<Value> {
        let kind = offered_kind(kind.unwrap_or("bridge"), Class::Connection)?;
        self.create(owner, kind, None, Some([element1, element2]), attrs).await
    }

    async fn create(
        &self,
        owner: &str,
        kind: &'static Kind,
        parent: Option<i64>,
        ends: Option<[i64; 2]>,
        mut attrs: Attrs,
    ) -> Result<Value> {
        let now = now();
        let timeout = take_timeout(&mut attrs, now)?.unwrap_or(now + MAX_TIMEOUT);
        let mut inner = self.inner.lock().await;
        let mut state = kind.initial_state();
        match (kind.parent, parent) {
            (None, Some(_)) => {
                return Err(HostError::new(ErrorKind::UnsupportedType, format!("parent: {} has no parent", kind.name)));
            }
            (Some(want), None) => {
                return Err(HostError::new(
                    ErrorKind::UnsupportedType,
                    format!("parent: a {} needs a parent {want}", kind.name),
                ));
            }
            (Some(want), Some(p)) => {
                let pe = inner.visible(owner, p, Class::Element)?;
                if pe.kind != want {
                    return Err(HostError::new(
                        ErrorKind::UnsupportedType,
                        format!("parent: a {} belongs to a {want}, not to {} {p}", kind.name, pe.kind),
                    ));
                }
                let rule = kind_of(pe)?.children.as_ref();
                if !rule.is_some_and(|r| r.add_in.contains(&pe.state)) {
                    return Err(HostError::new(
                        ErrorKind::InvalidState,
                        format!("parent: cannot add a {} while {} {p} is {}", kind.name, pe.kind, pe.state),
                    ));
                }
                state = pe.state;
            }
            (None, None) => {}
        }
        if let Some([a, b]) = ends {
            if a == b {
                return Err(HostError::invalid("element2: a connection joins two different elements"));
            }
            for (field, id) in [("element1", a), ("element2", b)] {
                let e = inner
                    .visible(owner, id, Class::Element)
                    .map_err(|e| HostError { message: format!("{field}: {}", e.message), ..e })?;
                if !kind_of(e)?.connectable {
                    return Err(HostError::new(
                        ErrorKind::UnsupportedType,
                        format!("{field}: a {} cannot be connected; connect its interfaces or endpoints", e.kind),
                    ));
                }
                if let Some(c) = inner.connection_of(id) {
                    return Err(HostError::new(
                        ErrorKind::InvalidState,
                        format!("{field}: element {id} is already connected by connection {c}"),
                    ));
                }
            }
        }
        check_attrs(kind, &attrs, state)?;
        if let Some(p) = parent {
            // Children are numbered (eth0, eth1, ...): the lowest free number.
            let used: BTreeSet<u64> =
                inner.children(p).iter().filter_map(|c| inner.entities.get(c)?.attrs.get("num")?.as_u64()).collect();
            let num = (0..).find(|n| !used.contains(n)).unwrap_or(0);
            attrs.insert("num".into(), json!(num));
        }
        let mut e = Entity {
            id: 0,
            class: class_of(kind),
            owner: owner.to_string(),
            kind: kind.name.to_string(),
            parent,
            ends,
            state,
            attrs,
            timeout,
            pending: None,
            usage: UsageStatistics::new(now as f64),
        };
        e.id = self.store.insert(&e).await?;
        let id = e.id;
        inner.entities.insert(id, e);
        self.reconcile(&inner).await;
        drop(inner);
        self.info(owner, id, class_of(kind)).await
    }

    /// `element_modify(id, attrs)` / `connection_modify(id, attrs)`.
    pub async fn modify(&self, owner: &str, id: i64, class: Class, mut attrs: Attrs) -> Result<Value> {
        let timeout = take_timeout(&mut attrs, now())?;
        let mut inner = self.inner.lock().await;
        let e = inner.visible(owner, id, class)?;
        let kind = kind_of(e)?;
        check_attrs(kind, &attrs, e.state)?;
        if inner.busy.contains(&id) {
            return Err(HostError::new(ErrorKind::EntityBusy, format!("{} {id} is busy with an action", class.name())));
        }
        let e = inner.entities.get_mut(&id).ok_or_else(|| HostError::not_found(class.name(), id))?;
        let before = e.clone();
        e.attrs.extend(attrs.clone());
        if let Some(t) = timeout {
            e.timeout = t;
        }
        let view = inner.view(id).ok_or_else(|| HostError::not_found(class.name(), id))?;
        if !attrs.is_empty() {
            let driver = drivers::driver(&view.entity.kind).ok_or_else(|| HostError::internal("no driver"))?;
            let result = self.blocking(move |cx| driver.modify(cx, &view, &attrs)).await.and_then(|r| r);
            if let Err(err) = result {
                inner.entities.insert(id, before);
                return Err(err);
            }
        }
        let e = inner.entities[&id].clone();
        self.store.update(&e).await?;
        self.reconcile(&inner).await;
        drop(inner);
        self.info(owner, id, class).await
    }

    /// `element_action(id, action, params=None)` / `connection_action`.
    pub async fn action(&self, owner: &str, id: i64, class: Class, action: &str, params: Attrs) -> Result<Value> {
        if action == REMOVE || action == "__remove__" {
            return self.remove(owner, id, class).await.map(|()| Value::Null);
        }
        let mut inner = self.inner.lock().await;
        let e = inner.visible(owner, id, class)?;
        let kind = kind_of(e)?;
        let driver = drivers::driver(&e.kind).ok_or_else(|| HostError::internal("no driver"))?;
        let spec = kind.action(action).filter(|a| drivers::offers(driver.as_ref(), a.name)).ok_or_else(|| {
            let offered: Vec<&str> =
                kind.actions.iter().map(|a| a.name).filter(|a| drivers::offers(driver.as_ref(), a)).collect();
            HostError::new(
                ErrorKind::UnsupportedAction,
                format!("action: {} on this host has no action `{action}`; it has {}", kind.name, offered.join(", ")),
            )
        })?;
        if !spec.allowed_in.contains(&e.state) {
            return Err(HostError::new(
                ErrorKind::InvalidState,
                format!("action: {action} of {} runs when {}, not {}", kind.name, spec.allowed_states(), e.state),
            )
            .with_data(json!({"state": e.state.as_str()})));
        }
        check_params(kind, spec, &params)?;
        if inner.busy.contains(&id) {
            return Err(HostError::new(ErrorKind::EntityBusy, format!("{} {id} is busy with an action", class.name())));
        }
        let next = spec.leads_to;
        if action == "upload_grant" {
            return self.grant(owner, id, "upload", &self.upload_path(id)?, UPLOAD_GRANT_SECS).await;
        }
        if action == "rextfv_upload_grant" {
            let token = random_token()?;
            let path = self.archive_upload_path(id)?;
            let limit = i64::try_from(self.config.rextfv_max_size).ok();
            let grant = Grant { max_size: limit, ..new_grant(owner, id, "upload", &path, UPLOAD_GRANT_SECS, token) };
            return self.store_grant(grant).await;
        }
        inner.busy.insert(id);
        if let Some(e) = inner.entities.get_mut(&id) {
            e.pending = Some(action.to_string());
        }
        let e = inner.entities[&id].clone();
        if let Err(err) = self.store.update(&e).await {
            inner.busy.remove(&id);
            return Err(err);
        }
        let view = inner.view(id).ok_or_else(|| HostError::not_found(class.name(), id))?;
        drop(inner);

        let action_name = action.to_string();
        let result: Result<Value> = match action {
            "upload_use" => {
                let path = self.upload_path(id)?;
                if !path.exists() {
                    Err(HostError::invalid("upload_use: nothing was uploaded; use upload_grant and upload first"))
                } else {
                    let p = path.clone();
                    let r = self.blocking(move |cx| driver.upload_use(cx, &view, &p)).await.and_then(|r| r);
                    let _ = std::fs::remove_file(&path);
                    r.map(|()| Value::Null)
                }
            }
            "rextfv_upload_use" => {
                let path = self.archive_upload_path(id)?;
                if !path.exists() {
                    Err(HostError::invalid(
                        "rextfv_upload_use: nothing was uploaded; use rextfv_upload_grant and upload first",
                    ))
                } else {
                    let p = path.clone();
                    let r = self.blocking(move |cx| driver.rextfv_upload_use(cx, &view, &p)).await.and_then(|r| r);
                    let _ = std::fs::remove_file(&path);
                    r.map(|()| Value::Null)
                }
            }
            "download_grant" | "rextfv_download_grant" => {
                let token = random_token()?;
                let path = self.cx.dir("downloads")?.join(&token);
                let p = path.clone();
                let archive = action == "rextfv_download_grant";
                let r = self
                    .blocking(move |cx| {
                        if archive {
                            driver.rextfv_download(cx, &view, &p)
                        } else {
                            driver.download(cx, &view, &params, &p)
                        }
                    })
                    .await
                    .and_then(|r| r);
                match r {
                    Ok(()) => {
                        self.store_grant(new_grant(owner, id, "download", &path, DOWNLOAD_GRANT_SECS, token)).await
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        Err(e)
                    }
                }
            }
            _ => {
                crate::crashpoint::hit(&format!("before:{action}"));
                let r = self.blocking(move |cx| driver.action(cx, &view, &action_name, &params)).await.and_then(|r| r);
                crate::crashpoint::hit(&format!("after:{action}"));
                r
            }
        };
        let mut inner = self.inner.lock().await;
        self.finish(&mut inner, id, if result.is_ok() { next } else { None }).await?;
        self.reconcile(&inner).await;
        result
    }

    /// Where an upload for entity `id` lands (its grant's file).
    fn upload_path(&self, id: i64) -> Result<PathBuf> {
        Ok(self.cx.dir("uploads")?.join(format!("{id}.upload")))
    }

    /// Where an executable archive for entity `id` lands.
    fn archive_upload_path(&self, id: i64) -> Result<PathBuf> {
        Ok(self.cx.dir("uploads")?.join(format!("{id}.rextfv")))
    }

    async fn grant(&self, owner: &str, id: i64, action: &str, path: &Path, secs: i64) -> Result<Value> {
        let token = random_token()?;
        self.store_grant(new_grant(owner, id, action, path, secs, token)).await
    }

    async fn store_grant(&self, g: Grant) -> Result<Value> {
        self.store.insert_grant(&g).await?;
        Ok(json!(g.token))
    }

    /// Takes grant `token` for `action` (single use): the file to read or
    /// write. Expired, used and unknown grants are all refused alike.
    pub async fn use_grant(&self, token: &str, action: &str) -> Result<Grant> {
        let g = self.store.take_grant(token, now()).await?;
        match g {
            Some(g) if g.action == action => Ok(g),
            Some(g) => {
                // Wrong operation: put it back untouched.
                self.store.insert_grant(&g).await?;
                Err(HostError::new(ErrorKind::EntityDoesNotExist, format!("grant: not an {action} grant")))
            }
            None => Err(HostError::new(ErrorKind::EntityDoesNotExist, "grant: unknown, used or expired")),
        }
    }

    /// Opens a console on the caller's started element `id`.
    pub async fn console(&self, owner: &str, id: i64) -> Result<crate::console::ConsoleSession> {
        let view = {
            let inner = self.inner.lock().await;
            let e = inner.visible(owner, id, Class::Element)?;
            if e.state != State::Started {
                return Err(HostError::new(
                    ErrorKind::InvalidState,
                    format!("console: {} {id} is {}; consoles open when it is started", e.kind, e.state),
                ));
            }
            inner.view(id).ok_or_else(|| HostError::not_found("element", id))?
        };
        let driver = drivers::driver(&view.entity.kind).ok_or_else(|| HostError::internal("no driver"))?;
        self.blocking(move |cx| driver.console(cx, &view)).await?
    }

    /// `element_remove(id)` / `connection_remove(id)`: removes the entity,
    /// its children and the connections attached to them.
    pub async fn remove(&self, owner: &str, id: i64, class: Class) -> Result<()> {
        let mut inner = self.inner.lock().await;
        inner.visible(owner, id, class)?;
        // Connections first, then children, then the entity.
        let mut order = Vec::new();
        if class == Class::Element {
            let mut elements = inner.children(id);
            elements.push(id);
            for &el in &elements {
                if let Some(c) = inner.connection_of(el)
                    && !order.contains(&c)
                {
                    order.push(c);
                }
            }
            order.extend(elements);
        } else {
            order.push(id);
        }
        for &x in &order {
            let e = &inner.entities[&x];
            let kind = kind_of(e)?;
            if inner.busy.contains(&x) {
                return Err(HostError::new(
                    ErrorKind::EntityBusy,
                    format!("{} {x} is busy with an action", e.class.name()),
                ));
            }
            let allowed = kind.action(REMOVE).is_some_and(|a| a.allowed_in.contains(&e.state));
            if !allowed {
                let when = kind.action(REMOVE).map(|a| a.allowed_states()).unwrap_or_default();
                return Err(HostError::new(
                    ErrorKind::InvalidState,
                    format!("(remove): {} {x} is {}; it can be removed when {when}", e.kind, e.state),
                ));
            }
        }
        // All of them are marked at once, so a crash part way through is
        // finished by recovery for all of them, not only the one it hit.
        self.store.set_pending(&order, Some(REMOVE)).await?;
        for &x in &order {
            if let Some(e) = inner.entities.get_mut(&x) {
                e.pending = Some(REMOVE.to_string());
            }
        }
        for (n, &x) in order.iter().enumerate() {
            let e = inner.entities[&x].clone();
            let view = inner.view(x).ok_or_else(|| HostError::internal("entity vanished"))?;
            if let Some(driver) = drivers::driver(&e.kind) {
                let removed = self.blocking(move |cx| driver.remove(cx, &view)).await.and_then(|r| r);
                if let Err(err) = removed {
                    // Those not yet tried stay as they were; this one stays
                    // marked (a problem in host_info, retried at restart).
                    let rest = &order[n + 1..];
                    self.store.set_pending(rest, None).await?;
                    for y in rest {
                        if let Some(e) = inner.entities.get_mut(y) {
                            e.pending = None;
                        }
                    }
                    return Err(err);
                }
            }
            crate::crashpoint::hit("remove:before-delete");
            self.store.delete(x).await?;
            inner.entities.remove(&x);
        }
        self.reconcile(&inner).await;
        Ok(())
    }

    /// `element_info(id)` / `connection_info(id)`.
    pub async fn info(&self, owner: &str, id: i64, class: Class) -> Result<Value> {
        let inner = self.inner.lock().await;
        inner.visible(owner, id, class)?;
        let view = inner.view(id).ok_or_else(|| HostError::not_found(class.name(), id))?;
        let connection = inner.connection_of(id);
        drop(inner);
        self.info_of(view, connection).await
    }

    async fn info_of(&self, view: View, connection: Option<i64>) -> Result<Value> {
        let e = view.entity.clone();
        let kind = kind_of(&e)?;
        let mut attrs: serde_json::Map<String, Value> = kind
            .attrs
            .iter()
            .map(|a| (a.name.clone(), e.attrs.get(&a.name).cloned().unwrap_or(a.default.clone())))
            .collect();
        let runtime = match drivers::driver(&e.kind) {
            Some(d) => self.blocking(move |cx| d.info(cx, &view)).await?,
            None => Attrs::new(),
        };
        attrs.extend(runtime);
        let mut info = json!({
            "id": e.id,
            "type": e.kind,
            "state": e.state.as_str(),
            "attrs": attrs,
        });
        let obj = info.as_object_mut().ok_or_else(|| HostError::internal("info is an object"))?;
        match e.class {
            Class::Element => {
                obj.insert("parent".into(), json!(e.parent));
                obj.insert("timeout".into(), json!(e.timeout));
                let inner = self.inner.lock().await;
                obj.insert("children".into(), json!(inner.children(e.id)));
                obj.insert("connection".into(), json!(connection));
            }
            Class::Connection => {
                obj.insert("elements".into(), json!(e.ends));
            }
        }
        Ok(info)
    }

    /// `element_list(type_filter=None)` / `connection_list`.
    pub async fn list(&self, owner: &str, class: Class, type_filter: Option<&str>) -> Result<Value> {
        let wanted = match type_filter {
            Some(t) => Some(offered_kind(t, class)?.name),
            None => None,
        };
        let views: Vec<(View, Option<i64>)> = {
            let inner = self.inner.lock().await;
            inner
                .entities
                .values()
                .filter(|e| e.owner == owner && e.class == class && wanted.is_none_or(|w| e.kind == w))
                .filter_map(|e| inner.view(e.id).map(|v| (v, inner.connection_of(e.id))))
                .collect()
        };
        let mut out = Vec::new();
        for (v, c) in views {
            out.push(self.info_of(v, c).await?);
        }
        Ok(Value::Array(out))
    }

    // ---- resources ------------------------------------------------------

    /// `resource_create(type, attrs)`.
    pub async fn resource_create(&self, owner: &str, kind: &str, attrs: Attrs) -> Result<Value> {
        crate::resources::check(kind, &attrs, &self.config.data_dir)?;
        let mut r = Resource { id: 0, owner: owner.to_string(), kind: kind.to_string(), attrs };
        r.id = self.store.insert_resource(&r).await?;
        let info = crate::resources::info(&r);
        self.inner.lock().await.resources.insert(r.id, r);
        Ok(info)
    }

    /// `resource_modify(id, attrs)`.
    pub async fn resource_modify(&self, owner: &str, id: i64, attrs: Attrs) -> Result<Value> {
        let mut inner = self.inner.lock().await;
        let r = inner
            .resources
            .get(&id)
            .filter(|r| r.owner == owner)
            .ok_or_else(|| HostError::not_found("resource", id))?;
        let mut merged = r.attrs.clone();
        merged.extend(attrs);
        crate::resources::check(&r.kind, &merged, &self.config.data_dir)?;
        let r = inner.resources.get_mut(&id).ok_or_else(|| HostError::not_found("resource", id))?;
        r.attrs = merged;
        self.store.update_resource(r).await?;
        Ok(crate::resources::info(r))
    }

    /// `resource_remove(id)`.
    pub async fn resource_remove(&self, owner: &str, id: i64) -> Result<()> {
        let mut inner = self.inner.lock().await;
        inner.resources.get(&id).filter(|r| r.owner == owner).ok_or_else(|| HostError::not_found("resource", id))?;
        self.store.delete_resource(id).await?;
        inner.resources.remove(&id);
        Ok(())
    }

    /// `resource_info(id)`.
    pub async fn resource_info(&self, owner: &str, id: i64) -> Result<Value> {
        let inner = self.inner.lock().await;
        let r = inner
            .resources
            .get(&id)
            .filter(|r| r.owner == owner)
            .ok_or_else(|| HostError::not_found("resource", id))?;
        Ok(crate::resources::info(r))
    }

    /// `resource_list(type_filter=None)`.
    pub async fn resource_list(&self, owner: &str, type_filter: Option<&str>) -> Result<Value> {
        let inner = self.inner.lock().await;
        Ok(Value::Array(
            inner
                .resources
                .values()
                .filter(|r| r.owner == owner && type_filter.is_none_or(|t| r.kind == t))
                .map(crate::resources::info)
                .collect(),
        ))
    }

    /// The resources `owner` may use: its own.
    pub async fn resources_of(&self, owner: &str) -> Vec<Resource> {
        self.inner.lock().await.resources.values().filter(|r| r.owner == owner).cloned().collect()
    }

    // ---- host -----------------------------------------------------------

    /// `host_capabilities()`: the offered types in ToMaTo's shape, from the
    /// model's schema, with the actions this host carries out.
    pub fn capabilities(&self) -> Value {
        let mut elements = serde_json::Map::new();
        let mut connections = serde_json::Map::new();
        for name in drivers::offered() {
            let (Some(kind), Some(driver)) = (model::registry().get(name), drivers::driver(name)) else { continue };
            let mut caps = kind.capabilities();
            if let Some(actions) = caps.get_mut("actions").and_then(Value::as_object_mut) {
                actions.retain(|a, _| drivers::offers(driver.as_ref(), a));
            }
            match kind.class {
                KindClass::Element => elements.insert(name.to_string(), caps),
                KindClass::Connection => connections.insert(name.to_string(), caps),
            };
        }
        json!({"elements": elements, "connections": connections})
    }

    /// `host_info()`.
    pub async fn host_info(&self) -> Value {
        let mut info = crate::sysinfo::host_info(&self.config.data_dir);
        if let Some(obj) = info.as_object_mut() {
            obj.insert("address".into(), json!(self.config.address));
            obj.insert("fileserver_port".into(), json!(self.config.fileserver_port));
            obj.insert("time".into(), json!(now()));
            let inner = self.inner.lock().await;
            let stuck: Vec<Value> = inner
                .entities
                .values()
                .filter(|e| e.pending.is_some() && !inner.busy.contains(&e.id))
                .map(|e| json!(format!("{} {} has an unfinished {}", e.kind, e.id, e.pending.as_deref().unwrap_or(""))))
                .collect();
            obj.insert("problems".into(), Value::Array(stuck));
        }
        info
    }

    /// `accounting_statistics(type=None, after=None, before=None)`: the
    /// caller's usage records by element and connection id.
    pub async fn accounting_statistics(
        &self,
        owner: &str,
        kind: Option<&str>,
        after: Option<f64>,
        before: Option<f64>,
    ) -> Result<Value> {
        let kinds: Vec<RecordType> = match kind {
            Some(k) => vec![RecordType::from_name(k).map_err(|e| HostError::invalid(format!("type: {e}")))?],
            None => RecordType::ALL.to_vec(),
        };
        let inner = self.inner.lock().await;
        let mut elements = serde_json::Map::new();
        let mut connections = serde_json::Map::new();
        for e in inner.entities.values().filter(|e| e.owner == owner) {
            let records: Vec<_> = kinds.iter().flat_map(|k| e.usage.query(*k, after, before)).collect();
            let value = serde_json::to_value(records).map_err(|e| HostError::internal(e.to_string()))?;
            match e.class {
                Class::Element => elements.insert(e.id.to_string(), value),
                Class::Connection => connections.insert(e.id.to_string(), value),
            };
        }
        Ok(json!({"elements": elements, "connections": connections}))
    }

    /// Samples every entity's usage once (the minute's record), at `at`.
    pub async fn sample_usage(&self, at: f64) -> Result<()> {
        let mut inner = self.inner.lock().await;
        let views: Vec<View> = inner.entities.keys().filter_map(|id| inner.view(*id)).collect();
        let (samples, traffic) = self
            .blocking(move |cx| {
                let samples: Vec<(i64, Sample)> = views
                    .iter()
                    .filter_map(|v| drivers::driver(&v.entity.kind).map(|d| (v.entity.id, d.usage(cx, v))))
                    .collect();
                (samples, cx.plane().traffic())
            })
            .await?;
        // An element's traffic is that of the connections on it and its children.
        let mut element_traffic: BTreeMap<i64, u64> = BTreeMap::new();
        for (conn, bytes) in &traffic {
            if let Some([a, b]) = inner.entities.get(conn).and_then(|c| c.ends) {
                for end in [a, b] {
                    let owner_el = inner.entities.get(&end).and_then(|e| e.parent).unwrap_or(end);
                    *element_traffic.entry(owner_el).or_default() += bytes;
                }
            }
        }
        let mut changed = Vec::new();
        for (id, mut sample) in samples {
            let Some(e) = inner.entities.get_mut(&id) else { continue };
            let t = match e.class {
                Class::Connection => traffic.get(&id).copied(),
                Class::Element => element_traffic.get(&id).copied(),
            };
            sample.traffic = t.unwrap_or(0) as f64;
            // A sample covers the time since the previous one (since the
            // entity began for the first): records from the beginning each
            // time left every period after the first five minutes empty.
            let begin = e.usage.last_end().unwrap_or(e.usage.begin());
            e.usage.record(begin, at, &sample);
            changed.push(e.clone());
        }
        self.store.update_usage(&changed).await?;
        Ok(())
    }

    /// Tears down top-level elements whose timeout passed before `now`:
    /// stop, destroy, remove (with children and connections). Returns
    /// their ids.
    pub async fn expire(&self, now: i64) -> Vec<i64> {
        let expired: Vec<(String, i64, State)> = {
            let inner = self.inner.lock().await;
            inner
                .entities
                .values()
                .filter(|e| e.class == Class::Element && e.parent.is_none() && e.timeout < now)
                .map(|e| (e.owner.clone(), e.id, e.state))
                .collect()
        };
        let mut done = Vec::new();
        for (owner, id, state) in expired {
            let steps: &[&str] = match state {
                State::Started => &["stop", "destroy"],
                State::Prepared => &["destroy"],
                State::Created => &[],
            };
            let mut ok = true;
            for step in steps {
                if let Err(e) = self.action(&owner, id, Class::Element, step, Attrs::new()).await {
                    // Switches go straight from started to prepared to created.
                    tracing::warn!(entity = id, "timeout {step}: {e}");
                    ok = false;
                    break;
                }
            }
            if ok && self.remove(&owner, id, Class::Element).await.is_ok() {
                done.push(id);
            }
        }
        let _ = self.store.expire_grants(now).await.map(|paths| {
            for p in paths {
                let _ = std::fs::remove_file(p);
            }
        });
        done
    }

    /// Ends the data plane (kernel objects and containers stay, for the
    /// next start to re-adopt).
    pub async fn shutdown(&self) {
        let _ = self.blocking(|cx| cx.plane().clear()).await;
        // Containers that run on keep their cgroups (and so the parent);
        // with none left, the instance's empty cgroup directories go.
        let parent = crate::drivers::container::cgroup_parent(&self.cx);
        if let Err(e) = ::container::remove_cgroup_parent(&parent) {
            tracing::warn!("shutdown: cgroup {parent}: {e}");
        }
    }
}
