//! The dispatcher both transports share, and the methods it serves.
//!
//! [`dispatch`] finds the method in [`served`] (the `api` crate's
//! `BACKEND` table narrowed to the methods below), logs the caller in,
//! refuses anonymous calls to methods that need a login, binds the
//! arguments and runs the method. Elements and connections live on hosts:
//! each operation is the hostmanager call for the component's host, and
//! the store changes only after the host agreed (a creation the store then
//! refuses is removed from the host again), so a failed call leaves the
//! component as it was.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use api::basic_auth::Credentials;
use api::{Access, Bound, Table};
use model::topology::KindRef;
use model::{Attrs, Class, ComponentId, ElementPath, State, TopologyAction};
use rpc::RpcError;
use rpc::jsonrpc::kind;
use serde_json::{Map, Value, json};

use super::{Backend, fail, hosts, now};
use crate::permissions::{
    self, AdminOp, ComponentOp, Flag, Member, Role, Subject, TopologyOp, check_admin, check_connection, check_element,
    check_set_permission, check_topology,
};
use crate::placement::{LocationPrefs, Requirements, rank};
use crate::store::{Connection, Element, Host, Topology, User};
use crate::timeouts::TopologyTimeout;

/// The methods this server answers (all others of ToMaTo's table are
/// unknown here, also to `system.listMethods` and the OpenAPI document).
pub const SERVED: &[&str] = &[
    "server_info",
    "account_info",
    "account_create",
    "host_create",
    "host_list",
    "topology_create",
    "topology_list",
    "topology_info",
    "topology_modify",
    "topology_set_permission",
    "topology_remove",
    "topology_action",
    "element_create",
    "element_modify",
    "element_info",
    "element_remove",
    "element_action",
    "connection_create",
    "connection_modify",
    "connection_info",
    "connection_remove",
    "connection_action",
];

/// The `BACKEND` table narrowed to [`SERVED`].
pub fn served() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let methods: Vec<api::Method> =
            api::BACKEND.methods().iter().filter(|m| SERVED.contains(&m.name)).copied().collect();
        Table::new(Box::leak(methods.into_boxed_slice()))
    })
}

type Outcome = Result<Value, RpcError>;

fn not_logged_in(message: impl Into<String>) -> RpcError {
    RpcError::new(kind::NOT_LOGGED_IN, message)
}

/// Runs one call: `credentials` as the transport read them.
pub async fn dispatch(
    backend: &Backend,
    credentials: Result<Option<Credentials>, RpcError>,
    method: &str,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Outcome {
    let m = served().find(method)?;
    let user = match credentials? {
        None => None,
        Some(c) => Some(
            backend
                .store
                .login(&c.username, &c.password, now())
                .await
                .map_err(fail)?
                .ok_or_else(|| not_logged_in("wrong user name or password"))?,
        ),
    };
    if m.access == Access::User && user.is_none() {
        return Err(not_logged_in(format!("`{method}` needs a login: HTTP Basic user name and password")));
    }
    let bound = m.bind(args, kwargs)?;
    let cx = Cx { b: backend, user: user.as_ref() };
    match m.name {
        "server_info" => Ok(cx.server_info()),
        "account_info" => cx.account_info(bound.opt_str("name")?).await,
        "account_create" => cx.account_create(&bound).await,
        "host_create" => cx.host_create(&bound).await,
        "host_list" => cx.host_list(bound.opt_str("site")?, bound.opt_str("organization")?).await,
        "topology_create" => cx.topology_create().await,
        "topology_list" => {
            cx.topology_list(bound.flag("full")?, bound.flag("showAll")?, bound.opt_str("organization")?).await
        }
        "topology_info" => {
            let (t, _) = cx.topology(id(&bound, "id")?, TopologyOp::View).await?;
            cx.topology_value(&t, bound.flag("full")?).await
        }
        "topology_modify" => cx.topology_modify(id(&bound, "id")?, bound.map("attrs")?).await,
        "topology_set_permission" => {
            cx.topology_set_permission(id(&bound, "id")?, bound.str("user")?, bound.str("role")?).await
        }
        "topology_remove" => cx.topology_remove(id(&bound, "id")?).await,
        "topology_action" => cx.topology_action(id(&bound, "id")?, bound.str("action")?, opt_map(&bound)?).await,
        "element_create" => cx.element_create(&bound).await,
        "element_modify" => cx.element_modify(id(&bound, "id")?, bound.map("attrs")?).await,
        "element_info" => cx.element_info(id(&bound, "id")?, bound.flag("fetch")?).await,
        "element_remove" => cx.element_remove(id(&bound, "id")?).await,
        "element_action" => cx.element_action(id(&bound, "id")?, bound.str("action")?, opt_map(&bound)?).await,
        "connection_create" => cx.connection_create(&bound).await,
        "connection_modify" => cx.connection_modify(id(&bound, "id")?, bound.map("attrs")?).await,
        "connection_info" => cx.connection_info(id(&bound, "id")?, bound.flag("fetch")?).await,
        "connection_remove" => cx.connection_remove(id(&bound, "id")?).await,
        "connection_action" => cx.connection_action(id(&bound, "id")?, bound.str("action")?, opt_map(&bound)?).await,
        other => Err(RpcError::internal(format!("`{other}` is listed as served but has no handler"))),
    }
}

fn id(bound: &Bound, name: &str) -> Result<i64, RpcError> {
    let given = bound.id(name)?;
    given.as_int().ok_or_else(|| {
        RpcError::invalid_value(format!("{}: `{name}` must be a decimal id, not `{given}`", bound.method().name))
            .with_data(json!({"field": name}))
    })
}

fn opt_map(bound: &Bound) -> Result<Map<String, Value>, RpcError> {
    Ok(match bound.value("params") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    })
}

fn subject(u: &User) -> Subject<'_> {
    Subject { name: &u.name, organization: &u.organization, flags: &u.flags }
}

fn client_data(attrs: &Map<String, Value>) -> bool {
    attrs.keys().all(|k| k.starts_with('_'))
}

fn without_client_data(attrs: &Attrs) -> Map<String, Value> {
    attrs.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn element_value(e: &Element, all: &[Element], connections: &[Connection]) -> Value {
    let children: Vec<i64> = all.iter().filter(|c| c.parent == Some(e.id)).map(|c| c.id).collect();
    let connection = connections.iter().find(|c| c.ends.contains(&e.id)).map(|c| c.id);
    json!({
        "id": e.id,
        "type": e.kind,
        "topology": e.topology,
        "parent": e.parent,
        "state": e.state.as_str(),
        "attrs": e.attrs,
        "host": e.host,
        "children": children,
        "connection": connection,
    })
}

fn connection_value(c: &Connection) -> Value {
    json!({
        "id": c.id,
        "type": c.kind,
        "topology": c.topology,
        "elements": c.ends,
        "state": c.state.as_str(),
        "attrs": c.attrs,
        "host": c.host,
    })
}

/// `info` with the host's attributes (defaults and run-time values) under
/// the stored ones.
fn with_host_attrs(mut info: Value, host: &Value) -> Value {
    if let (Some(host_attrs), Some(obj)) = (host["attrs"].as_object(), info.as_object_mut()) {
        let mut attrs = host_attrs.clone();
        if let Some(own) = obj.get("attrs").and_then(Value::as_object) {
            attrs.extend(own.clone());
        }
        obj.insert("attrs".into(), Value::Object(attrs));
    }
    info
}

fn host_value(h: &Host) -> Value {
    json!({
        "name": h.name,
        "site": h.site,
        "address": h.address,
        "rpcurl": h.rpcurl,
        "enabled": h.enabled,
        "problems": h.problems,
        "element_types": h.element_types,
        "connection_types": h.connection_types,
        "last_poll": h.last_poll,
        "availability": h.availability,
    })
}

struct Cx<'a> {
    b: &'a Backend,
    user: Option<&'a User>,
}

impl Cx<'_> {
    fn me(&self) -> Result<&User, RpcError> {
        self.user.ok_or_else(|| not_logged_in("this method needs a login: HTTP Basic user name and password"))
    }

    fn server_info(&self) -> Value {
        let t = &self.b.timeouts;
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "api_version": [4, 0, 0],
            "topology_timeout": {
                "initial": t.initial,
                "default": t.default,
                "maximum": t.max,
                "options": t.options,
                "warning": t.warning,
            },
            "public_key": self.b.hosts.certificate(),
        })
    }

    // ---- accounts ---------------------------------------------------------

    async fn account_info(&self, name: Option<&str>) -> Outcome {
        let me = self.me()?;
        let target = match name {
            None => me.clone(),
            Some(n) => self.b.store.user(n).await.map_err(fail)?,
        };
        let private =
            target.name == me.name || check_admin(&subject(me), AdminOp::ViewUserDetails(&subject(&target))).is_ok();
        let mut info = json!({
            "name": target.name,
            "organization": target.organization,
            "realname": target.realname,
            "created": target.created,
        });
        if private && let Some(obj) = info.as_object_mut() {
            obj.insert("email".into(), json!(target.email));
            obj.insert("flags".into(), json!(target.flags.names()));
            obj.insert("last_login".into(), json!(target.last_login));
            obj.insert("client_data".into(), json!(target.client_data));
        }
        Ok(info)
    }

    async fn account_create(&self, bound: &Bound) -> Outcome {
        let (name, password, organization) =
            (bound.str("username")?, bound.str("password")?, bound.str("organization")?);
        if let Some(me) = self.user {
            check_admin(&subject(me), AdminOp::CreateUser(organization)).map_err(fail)?;
        }
        self.b.store.organization(organization).await.map_err(fail)?;
        let attrs = match bound.value("attrs") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let mut user = User::new(name, organization, "", "", now());
        for (key, value) in attrs {
            let text = || {
                value.as_str().map(String::from).ok_or_else(|| {
                    RpcError::invalid_value(format!("account_create: attrs.{key} must be a string"))
                        .with_data(json!({"field": key}))
                })
            };
            match key.as_str() {
                "realname" => user.realname = text()?,
                "email" => user.email = text()?,
                k if k.starts_with('_') => {
                    user.client_data.insert(key.clone(), value.clone());
                }
                _ => {
                    return Err(RpcError::invalid_value(format!(
                        "account_create: attrs.{key} is not allowed; allowed: `realname`, `email`, `_*` client data"
                    ))
                    .with_data(json!({"field": key})));
                }
            }
        }
        if self.user.is_none() {
            user.flags.set(Flag::NewAccount, true);
        }
        self.b.store.create_user(&user, password).await.map_err(fail)?;
        Ok(json!({"name": user.name, "organization": user.organization, "realname": user.realname}))
    }

    // ---- hosts ------------------------------------------------------------

    async fn host_create(&self, bound: &Bound) -> Outcome {
        let me = self.me()?;
        let (name, site) = (bound.str("name")?, bound.str("site")?);
        let site = self.b.store.site(site).await.map_err(fail)?;
        check_admin(&subject(me), AdminOp::CreateHost(&site.organization)).map_err(fail)?;
        let attrs = match bound.value("attrs") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        const ALLOWED: &str = "allowed: `address`, `rpcurl`, `fingerprint` (required), `description`";
        let field = |key: &str| -> Result<String, RpcError> {
            attrs.get(key).and_then(Value::as_str).map(String::from).ok_or_else(|| {
                RpcError::invalid_value(format!("host_create: attrs.{key} (a string) is missing; {ALLOWED}"))
                    .with_data(json!({"field": key}))
            })
        };
        if let Some(key) =
            attrs.keys().find(|k| !["address", "rpcurl", "fingerprint", "description"].contains(&k.as_str()))
        {
            return Err(RpcError::invalid_value(format!("host_create: attrs.{key} is not allowed; {ALLOWED}"))
                .with_data(json!({"field": key})));
        }
        let mut host = Host::new(name, &site.name, &field("address")?, &field("rpcurl")?, &field("fingerprint")?);
        if attrs.contains_key("description") {
            host.description = field("description")?;
        }
        let host = hosts::register(&self.b.store, &self.b.hosts, host, &site.organization, now()).await?;
        Ok(host_value(&host))
    }

    async fn host_list(&self, site: Option<&str>, organization: Option<&str>) -> Outcome {
        let mut list = self.b.store.hosts(site).await.map_err(fail)?;
        if let (None, Some(org)) = (site, organization) {
            let sites: BTreeSet<String> =
                self.b.store.sites(Some(org)).await.map_err(fail)?.into_iter().map(|s| s.name).collect();
            list.retain(|h| sites.contains(&h.site));
        }
        Ok(Value::Array(list.iter().map(host_value).collect()))
    }

    // ---- topologies -------------------------------------------------------

    /// The topology `id` and its members, if the caller may do `op` on it.
    async fn topology(&self, id: i64, op: TopologyOp) -> Result<(Topology, Vec<Member>), RpcError> {
        let me = self.me()?;
        let t = self.b.store.topology(id).await.map_err(fail)?;
        let members = self.b.store.members(id).await.map_err(fail)?;
        check_topology(&subject(me), &members, op).map_err(fail)?;
        Ok((t, members))
    }

    async fn topology_value(&self, t: &Topology, full: bool) -> Outcome {
        let elements = self.b.store.elements(t.id).await.map_err(fail)?;
        let connections = self.b.store.connections(t.id).await.map_err(fail)?;
        let mut attrs = Map::new();
        attrs.insert("name".into(), json!(t.name));
        attrs.insert("site".into(), json!(t.site));
        attrs.extend(t.client_data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let permissions: Map<String, Value> = t.permissions.iter().map(|(u, r)| (u.clone(), json!(r.name()))).collect();
        let element_list: Vec<Value> = if full {
            elements.iter().map(|e| element_value(e, &elements, &connections)).collect()
        } else {
            elements.iter().map(|e| json!(e.id)).collect()
        };
        let connection_list: Vec<Value> = if full {
            connections.iter().map(connection_value).collect()
        } else {
            connections.iter().map(|c| json!(c.id)).collect()
        };
        let state_max = elements.iter().map(|e| e.state).chain(connections.iter().map(|c| c.state)).max();
        Ok(json!({
            "id": t.id,
            "name": t.name,
            "attrs": attrs,
            "permissions": permissions,
            "timeout": t.timeout.at,
            "created": t.created,
            "state_max": state_max.map(State::as_str),
            "elements": element_list,
            "connections": connection_list,
        }))
    }

    async fn topology_create(&self) -> Outcome {
        let me = self.me()?;
        check_admin(&subject(me), AdminOp::CreateTopology).map_err(fail)?;
        let at = now();
        let t = Topology {
            id: 0,
            name: "New topology".into(),
            site: None,
            timeout: TopologyTimeout::new(at, &self.b.timeouts),
            client_data: Attrs::new(),
            created: at,
            permissions: BTreeMap::new(),
        };
        let t = self.b.store.create_topology(&t, &me.name).await.map_err(fail)?;
        self.topology_value(&t, false).await
    }

    async fn topology_list(&self, full: bool, show_all: bool, organization: Option<&str>) -> Outcome {
        let me = self.me()?;
        let list = if show_all {
            check_admin(&subject(me), AdminOp::ListAllTopologies).map_err(fail)?;
            self.b.store.topologies(None).await.map_err(fail)?
        } else if let Some(org) = organization {
            check_admin(&subject(me), AdminOp::ListOrganizationTopologies(org)).map_err(fail)?;
            let mut all = Vec::new();
            for t in self.b.store.topologies(None).await.map_err(fail)? {
                if self.b.store.members(t.id).await.map_err(fail)?.iter().any(|m| m.organization == org) {
                    all.push(t);
                }
            }
            all
        } else {
            self.b.store.topologies(Some(&me.name)).await.map_err(fail)?
        };
        let mut out = Vec::new();
        for t in &list {
            out.push(self.topology_value(t, full).await?);
        }
        Ok(Value::Array(out))
    }

    async fn topology_modify(&self, id: i64, attrs: Map<String, Value>) -> Outcome {
        let op = if client_data(&attrs) { TopologyOp::ModifyClientData } else { TopologyOp::Modify };
        let (mut t, _) = self.topology(id, op).await?;
        for (key, value) in attrs {
            match key.as_str() {
                "name" => {
                    t.name = value.as_str().map(String::from).ok_or_else(|| {
                        RpcError::invalid_value("topology_modify: attrs.name must be a string")
                            .with_data(json!({"field": "name"}))
                    })?;
                }
                "site" => {
                    t.site = match value {
                        Value::Null => None,
                        Value::String(s) if s.is_empty() => None,
                        Value::String(s) => Some(s),
                        _ => {
                            return Err(RpcError::invalid_value(
                                "topology_modify: attrs.site must be a site's name or null",
                            )
                            .with_data(json!({"field": "site"})));
                        }
                    };
                }
                k if k.starts_with('_') => {
                    if value.is_null() {
                        t.client_data.remove(k);
                    } else {
                        t.client_data.insert(key, value);
                    }
                }
                _ => {
                    return Err(RpcError::invalid_value(format!(
                        "topology_modify: attrs.{key} is not allowed; allowed: `name`, `site`, `_*` client data"
                    ))
                    .with_data(json!({"field": key})));
                }
            }
        }
        self.b.store.update_topology(&t).await.map_err(fail)?;
        self.topology_value(&t, false).await
    }

    async fn topology_set_permission(&self, id: i64, user: &str, role: &str) -> Outcome {
        let me = self.me()?;
        let role = Role::parse(role).map_err(fail)?;
        let t = self.b.store.topology(id).await.map_err(fail)?;
        let members = self.b.store.members(id).await.map_err(fail)?;
        check_topology(&subject(me), &members, TopologyOp::View).map_err(fail)?;
        check_set_permission(&subject(me), &members, user, role).map_err(fail)?;
        self.b.store.user(user).await.map_err(fail)?;
        self.b.store.set_permission(id, user, role).await.map_err(fail)?;
        let t = self.b.store.topology(t.id).await.map_err(fail)?;
        self.topology_value(&t, false).await
    }

    async fn topology_remove(&self, id: i64) -> Outcome {
        let (t, _) = self.topology(id, TopologyOp::Remove).await?;
        let elements = self.b.store.elements(t.id).await.map_err(fail)?;
        let connections = self.b.store.connections(t.id).await.map_err(fail)?;
        let busy: Vec<String> = elements
            .iter()
            .filter(|e| e.state != State::Created)
            .map(|e| format!("element {} ({}) is {}", e.id, e.kind, e.state.as_str()))
            .chain(
                connections
                    .iter()
                    .filter(|c| c.state != State::Created)
                    .map(|c| format!("connection {} ({}) is {}", c.id, c.kind, c.state.as_str())),
            )
            .collect();
        if !busy.is_empty() {
            return Err(RpcError::invalid_state(format!(
                "topology {id} cannot be removed: {}; allowed: every component created (run topology_action destroy first)",
                busy.join(", ")
            )));
        }
        for c in &connections {
            self.remove_connection_everywhere(c).await?;
        }
        for e in elements.iter().filter(|e| e.parent.is_none()) {
            self.remove_element_everywhere(e).await?;
        }
        self.b.store.remove_topology(t.id).await.map_err(fail)?;
        Ok(Value::Null)
    }

    // ---- placement and host calls -----------------------------------------

    async fn host_of(&self, name: &Option<String>, host_id: Option<i64>, what: &str) -> Result<(Host, i64), RpcError> {
        match (name, host_id) {
            (Some(name), Some(hid)) => Ok((self.b.store.host(name).await.map_err(fail)?, hid)),
            _ => Err(RpcError::invalid_state(format!("{what} is on no host"))),
        }
    }

    /// Reads the element's state on its host into the store; returns the
    /// host's info.
    async fn refresh_element(&self, e: &mut Element) -> Outcome {
        let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {}", e.id)).await?;
        let info = self.b.hosts.call(&host, "element_info", vec![json!(hid)]).await?;
        if let Some(state) = info["state"].as_str().and_then(State::parse)
            && state != e.state
        {
            e.state = state;
            self.b.store.update_element(e).await.map_err(fail)?;
        }
        Ok(info)
    }

    /// The element and its children, states read from the host.
    async fn refresh_family(&self, id: i64) -> Result<(), RpcError> {
        let mut e = self.b.store.element(id).await.map_err(fail)?;
        self.refresh_element(&mut e).await?;
        for mut child in self.b.store.elements(e.topology).await.map_err(fail)? {
            if child.parent == Some(id) {
                self.refresh_element(&mut child).await?;
            }
        }
        Ok(())
    }

    async fn refresh_connection(&self, c: &mut Connection) -> Outcome {
        let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {}", c.id)).await?;
        let info = self.b.hosts.call(&host, "connection_info", vec![json!(hid)]).await?;
        if let Some(state) = info["state"].as_str().and_then(State::parse)
            && state != c.state
        {
            c.state = state;
            self.b.store.update_connection(c).await.map_err(fail)?;
        }
        Ok(info)
    }

    /// Removes an element (with its children and connection) from its host,
    /// then from the store. An element its host no longer knows is only
    /// removed from the store.
    async fn remove_element_everywhere(&self, e: &Element) -> Result<(), RpcError> {
        if let (Some(_), Some(_)) = (&e.host, e.host_id) {
            let (host, hid) = self.host_of(&e.host, e.host_id, "element").await?;
            match self.b.hosts.call(&host, "element_remove", vec![json!(hid)]).await {
                Ok(_) => {}
                Err(err) if err.kind == kind::ENTITY_DOES_NOT_EXIST => {}
                Err(err) => return Err(err),
            }
        }
        self.b.store.remove_element(e.id).await.map_err(fail)?;
        Ok(())
    }

    async fn remove_connection_everywhere(&self, c: &Connection) -> Result<(), RpcError> {
        if let (Some(_), Some(_)) = (&c.host, c.host_id) {
            let (host, hid) = self.host_of(&c.host, c.host_id, "connection").await?;
            match self.b.hosts.call(&host, "connection_remove", vec![json!(hid)]).await {
                Ok(_) => {}
                Err(err) if err.kind == kind::ENTITY_DOES_NOT_EXIST => {}
                Err(err) => return Err(err),
            }
        }
        self.b.store.remove_connection(c.id).await.map_err(fail)?;
        Ok(())
    }

    // ---- elements ---------------------------------------------------------

    async fn element_checked(&self, id: i64, op: ComponentOp<'_>) -> Result<(Element, Topology), RpcError> {
        let me = self.me()?;
        let e = self.b.store.element(id).await.map_err(fail)?;
        let members = self.b.store.members(e.topology).await.map_err(fail)?;
        check_element(&subject(me), &members, op).map_err(fail)?;
        let t = self.b.store.topology(e.topology).await.map_err(fail)?;
        Ok((e, t))
    }

    async fn element_info_value(&self, e: &Element, host_info: Option<&Value>) -> Outcome {
        let all = self.b.store.elements(e.topology).await.map_err(fail)?;
        let connections = self.b.store.connections(e.topology).await.map_err(fail)?;
        let info = element_value(e, &all, &connections);
        Ok(match host_info {
            Some(h) => with_host_attrs(info, h),
            None => info,
        })
    }

    async fn element_create(&self, bound: &Bound) -> Outcome {
        let top = id(bound, "top")?;
        let (t, _) = self.topology(top, TopologyOp::CreateComponent).await?;
        let kind = model::registry().lookup(bound.str("type")?, Class::Element).map_err(|m| {
            RpcError::invalid_value(format!("element_create: type: {m}")).with_data(json!({"field": "type"}))
        })?;
        let attrs: Attrs = match bound.value("attrs") {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Attrs::new(),
        };
        let parent = match bound.opt_id("parent")? {
            None => None,
            Some(p) => {
                let p = p.as_int().ok_or_else(|| {
                    RpcError::invalid_value("element_create: `parent` must be a decimal id")
                        .with_data(json!({"field": "parent"}))
                })?;
                let parent = self.b.store.element(p).await.map_err(fail)?;
                if parent.topology != t.id {
                    return Err(RpcError::invalid_value(format!(
                        "element_create: parent {p} belongs to topology {}, not {}",
                        parent.topology, t.id
                    ))
                    .with_data(json!({"field": "parent"})));
                }
                Some(parent)
            }
        };
        let (host, host_parent) = match &parent {
            Some(p) => {
                let (host, hid) = self.host_of(&p.host, p.host_id, &format!("parent element {}", p.id)).await?;
                (host, Some(hid))
            }
            None => {
                let hosts = self.b.store.placement_hosts().await.map_err(fail)?;
                let req = Requirements {
                    site: t.site.clone(),
                    element_types: BTreeSet::from([kind.name.to_string()]),
                    ..Requirements::default()
                };
                let ranked = rank(&hosts, &req, &LocationPrefs::default()).map_err(fail)?;
                let best = ranked.first().ok_or_else(|| RpcError::internal("placement ranked no host"))?;
                (self.b.store.host(&best.host).await.map_err(fail)?, None)
            }
        };
        let created = self
            .b
            .hosts
            .call(
                &host,
                "element_create",
                vec![json!(kind.name), json!(host_parent), Value::Object(without_client_data(&attrs))],
            )
            .await?;
        let hid = created["id"]
            .as_i64()
            .ok_or_else(|| RpcError::internal(format!("host {}: element_create answered no id", host.name)))?;
        let state = created["state"].as_str().and_then(State::parse).unwrap_or(State::Created);
        let row = Element {
            id: 0,
            topology: t.id,
            kind: kind.name.to_string(),
            parent: parent.map(|p| p.id),
            state,
            attrs,
            host: Some(host.name.clone()),
            host_id: Some(hid),
        };
        match self.b.store.create_element(&row).await {
            Ok(e) => self.element_info_value(&e, Some(&created)).await,
            Err(store_error) => {
                if let Err(e) = self.b.hosts.call(&host, "element_remove", vec![json!(hid)]).await {
                    tracing::error!("element {hid} on host {} is left over: {}", host.name, e.message);
                }
                Err(fail(store_error))
            }
        }
    }

    async fn element_modify(&self, id: i64, attrs: Map<String, Value>) -> Outcome {
        let op = if client_data(&attrs) { ComponentOp::ModifyClientData } else { ComponentOp::Modify };
        let (mut e, _) = self.element_checked(id, op).await?;
        let for_host: Map<String, Value> =
            attrs.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut host_info = None;
        if !for_host.is_empty() {
            let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {id}")).await?;
            host_info =
                Some(self.b.hosts.call(&host, "element_modify", vec![json!(hid), Value::Object(for_host)]).await?);
        }
        for (k, v) in attrs {
            if k.starts_with('_') && v.is_null() {
                e.attrs.remove(&k);
            } else {
                e.attrs.insert(k, v);
            }
        }
        self.b.store.update_element(&e).await.map_err(fail)?;
        self.element_info_value(&e, host_info.as_ref()).await
    }

    async fn element_info(&self, id: i64, fetch: bool) -> Outcome {
        let (mut e, _) = self.element_checked(id, ComponentOp::View).await?;
        let host_info = if fetch { Some(self.refresh_element(&mut e).await?) } else { None };
        self.element_info_value(&e, host_info.as_ref()).await
    }

    async fn element_remove(&self, id: i64) -> Outcome {
        let (e, _) = self.element_checked(id, ComponentOp::Remove).await?;
        self.remove_element_everywhere(&e).await?;
        Ok(Value::Null)
    }

    async fn element_action(&self, id: i64, action: &str, params: Map<String, Value>) -> Outcome {
        let (e, t) = self.element_checked(id, ComponentOp::Action(action)).await?;
        t.timeout.check_action(now(), action).map_err(fail)?;
        let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {id}")).await?;
        let outcome =
            self.b.hosts.call(&host, "element_action", vec![json!(hid), json!(action), Value::Object(params)]).await;
        // Whatever the host did (also when it failed part-way), the store
        // follows its states.
        let refreshed = self.refresh_family(id).await;
        let result = outcome?;
        refreshed?;
        Ok(result)
    }

    // ---- connections ------------------------------------------------------

    async fn connection_checked(&self, id: i64, op: ComponentOp<'_>) -> Result<(Connection, Topology), RpcError> {
        let me = self.me()?;
        let c = self.b.store.connection(id).await.map_err(fail)?;
        let members = self.b.store.members(c.topology).await.map_err(fail)?;
        check_connection(&subject(me), &members, op).map_err(fail)?;
        let t = self.b.store.topology(c.topology).await.map_err(fail)?;
        Ok((c, t))
    }

    async fn connection_create(&self, bound: &Bound) -> Outcome {
        let ends = [id(bound, "el1")?, id(bound, "el2")?];
        let e1 = self.b.store.element(ends[0]).await.map_err(fail)?;
        let e2 = self.b.store.element(ends[1]).await.map_err(fail)?;
        if e1.topology != e2.topology {
            return Err(RpcError::invalid_value(format!(
                "connection_create: element {} is in topology {}, element {} in topology {}; allowed: two elements of one topology",
                e1.id, e1.topology, e2.id, e2.topology
            ))
            .with_data(json!({"field": "el2"})));
        }
        let (t, _) = self.topology(e1.topology, TopologyOp::CreateComponent).await?;
        let mut attrs: Attrs = match bound.value("attrs") {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Attrs::new(),
        };
        let type_name = match attrs.remove("type") {
            None | Some(Value::Null) => "bridge".to_string(),
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(RpcError::invalid_value("connection_create: attrs.type must be a connection type's name")
                    .with_data(json!({"field": "type"})));
            }
        };
        let kind = model::registry().lookup(&type_name, Class::Connection).map_err(|m| {
            RpcError::invalid_value(format!("connection_create: attrs.type: {m}")).with_data(json!({"field": "type"}))
        })?;
        let (h1, hid1) = self.host_of(&e1.host, e1.host_id, &format!("element {}", e1.id)).await?;
        let (h2, hid2) = self.host_of(&e2.host, e2.host_id, &format!("element {}", e2.id)).await?;
        if h1.name != h2.name {
            return Err(RpcError::invalid_value(format!(
                "connection_create: element {} is on host {}, element {} on host {}; allowed: two elements on one host",
                e1.id, h1.name, e2.id, h2.name
            ))
            .with_data(json!({"field": "el2"})));
        }
        let created = self
            .b
            .hosts
            .call(
                &h1,
                "connection_create",
                vec![json!(hid1), json!(hid2), json!(kind.name), Value::Object(without_client_data(&attrs))],
            )
            .await?;
        let hid = created["id"]
            .as_i64()
            .ok_or_else(|| RpcError::internal(format!("host {}: connection_create answered no id", h1.name)))?;
        let row = Connection {
            id: 0,
            topology: t.id,
            kind: kind.name.to_string(),
            ends,
            state: created["state"].as_str().and_then(State::parse).unwrap_or(State::Created),
            attrs,
            host: Some(h1.name.clone()),
            host_id: Some(hid),
        };
        match self.b.store.create_connection(&row).await {
            Ok(c) => Ok(with_host_attrs(connection_value(&c), &created)),
            Err(store_error) => {
                if let Err(e) = self.b.hosts.call(&h1, "connection_remove", vec![json!(hid)]).await {
                    tracing::error!("connection {hid} on host {} is left over: {}", h1.name, e.message);
                }
                Err(fail(store_error))
            }
        }
    }

    async fn connection_modify(&self, id: i64, attrs: Map<String, Value>) -> Outcome {
        let op = if client_data(&attrs) { ComponentOp::ModifyClientData } else { ComponentOp::Modify };
        let (mut c, _) = self.connection_checked(id, op).await?;
        let for_host: Map<String, Value> =
            attrs.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut host_info = None;
        if !for_host.is_empty() {
            let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {id}")).await?;
            host_info =
                Some(self.b.hosts.call(&host, "connection_modify", vec![json!(hid), Value::Object(for_host)]).await?);
        }
        for (k, v) in attrs {
            if k.starts_with('_') && v.is_null() {
                c.attrs.remove(&k);
            } else {
                c.attrs.insert(k, v);
            }
        }
        self.b.store.update_connection(&c).await.map_err(fail)?;
        let info = connection_value(&c);
        Ok(match host_info {
            Some(h) => with_host_attrs(info, &h),
            None => info,
        })
    }

    async fn connection_info(&self, id: i64, fetch: bool) -> Outcome {
        let (mut c, _) = self.connection_checked(id, ComponentOp::View).await?;
        if fetch {
            let host_info = self.refresh_connection(&mut c).await?;
            return Ok(with_host_attrs(connection_value(&c), &host_info));
        }
        Ok(connection_value(&c))
    }

    async fn connection_remove(&self, id: i64) -> Outcome {
        let (c, _) = self.connection_checked(id, ComponentOp::Remove).await?;
        self.remove_connection_everywhere(&c).await?;
        Ok(Value::Null)
    }

    async fn connection_action(&self, id: i64, action: &str, params: Map<String, Value>) -> Outcome {
        let (mut c, t) = self.connection_checked(id, ComponentOp::Action(action)).await?;
        t.timeout.check_action(now(), action).map_err(fail)?;
        let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {id}")).await?;
        let outcome =
            self.b.hosts.call(&host, "connection_action", vec![json!(hid), json!(action), Value::Object(params)]).await;
        let refreshed = self.refresh_connection(&mut c).await;
        let result = outcome?;
        refreshed?;
        Ok(result)
    }

    // ---- topology actions -------------------------------------------------

    async fn topology_action(&self, id: i64, action: &str, params: Map<String, Value>) -> Outcome {
        let op = TopologyOp::action(action).map_err(fail)?;
        let (mut t, members) = self.topology(id, op).await?;
        let me = self.me()?;
        if action == "renew" {
            let timeout = params.get("timeout").and_then(Value::as_i64).ok_or_else(|| {
                RpcError::invalid_value("topology_action renew: params.timeout (seconds, an integer) is missing")
                    .with_data(json!({"field": "timeout"}))
            })?;
            let role = permissions::effective_role(&subject(me), &members);
            t.timeout = t
                .timeout
                .renew(now(), timeout, role, me.flags.has(Flag::GlobalAdmin), &self.b.timeouts)
                .map_err(fail)?;
            self.b.store.update_topology(&t).await.map_err(fail)?;
            return self.topology_value(&t, false).await;
        }
        t.timeout.check_action(now(), action).map_err(fail)?;
        let plan_action = TopologyAction::parse(action)
            .ok_or_else(|| RpcError::invalid_value(format!("topology_action: unknown action `{action}`")))?;
        let elements = self.b.store.elements(t.id).await.map_err(fail)?;
        let connections = self.b.store.connections(t.id).await.map_err(fail)?;
        let (model_topology, states, ids) = model_view(&elements, &connections)?;
        let steps = model::plan(&model_topology, &states, plan_action);
        let mut done = Vec::new();
        for step in steps {
            let Some(&(is_element, cid)) = ids.get(&step.component) else { continue };
            let what = if is_element { "element" } else { "connection" };
            let outcome = if is_element {
                self.element_step(cid, step.action).await
            } else {
                self.connection_step(cid, step.action).await
            };
            match outcome {
                Ok(state) => done.push(json!({"type": what, "id": cid, "action": step.action, "state": state})),
                Err(e) => {
                    let failed = json!({"type": what, "id": cid, "action": step.action});
                    return Err(RpcError {
                        message: format!(
                            "topology_action {action}: {what} {cid}: {} failed: {}",
                            step.action, e.message
                        ),
                        data: json!({"done": done, "failed": failed, "error": e.to_wire()}),
                        kind: e.kind,
                    });
                }
            }
        }
        Ok(json!({"steps": done}))
    }

    async fn element_step(&self, id: i64, action: &str) -> Result<&'static str, RpcError> {
        let e = self.b.store.element(id).await.map_err(fail)?;
        let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {id}")).await?;
        let outcome = self.b.hosts.call(&host, "element_action", vec![json!(hid), json!(action), json!({})]).await;
        let refreshed = self.refresh_family(id).await;
        outcome?;
        refreshed?;
        Ok(self.b.store.element(id).await.map_err(fail)?.state.as_str())
    }

    async fn connection_step(&self, id: i64, action: &str) -> Result<&'static str, RpcError> {
        let mut c = self.b.store.connection(id).await.map_err(fail)?;
        let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {id}")).await?;
        let outcome = self.b.hosts.call(&host, "connection_action", vec![json!(hid), json!(action), json!({})]).await;
        let refreshed = self.refresh_connection(&mut c).await;
        outcome?;
        refreshed?;
        Ok(c.state.as_str())
    }
}

type ModelView = (model::Topology, model::States, HashMap<ComponentId, (bool, i64)>);

/// The stored components as the model's topology (elements named `e<id>`)
/// with their states, for the model's planner; and the store id of each
/// component the plan may name.
fn model_view(elements: &[Element], connections: &[Connection]) -> Result<ModelView, RpcError> {
    let kind = |name: &str| {
        model::registry()
            .get(name)
            .map(KindRef)
            .ok_or_else(|| RpcError::internal(format!("the store holds an unknown kind `{name}`")))
    };
    let name = |id: i64| format!("e{id}");
    let by_id: HashMap<i64, &Element> = elements.iter().map(|e| (e.id, e)).collect();
    let path = |e: &Element| match e.parent {
        None => ElementPath::top(name(e.id)),
        Some(p) => ElementPath::child(name(p), name(e.id)),
    };
    let mut topology = model::Topology::default();
    let mut states = model::States::new();
    let mut ids = HashMap::new();
    for e in elements {
        states.insert(ComponentId::Element(path(e)), e.state);
        ids.insert(ComponentId::Element(path(e)), (true, e.id));
        if e.parent.is_some() {
            continue;
        }
        let mut children = Vec::new();
        for c in elements.iter().filter(|c| c.parent == Some(e.id)) {
            children.push(model::Element {
                name: name(c.id),
                kind: kind(&c.kind)?,
                attrs: Attrs::new(),
                children: Vec::new(),
            });
        }
        topology.elements.push(model::Element {
            name: name(e.id),
            kind: kind(&e.kind)?,
            attrs: Attrs::new(),
            children,
        });
    }
    for c in connections {
        let end = |id: i64| {
            by_id
                .get(&id)
                .map(|e| path(e))
                .ok_or_else(|| RpcError::internal(format!("connection {} ends at a missing element {id}", c.id)))
        };
        let ends = [end(c.ends[0])?, end(c.ends[1])?];
        let cid = ComponentId::Connection(ends.clone());
        states.insert(cid.clone(), c.state);
        ids.insert(cid, (false, c.id));
        topology.connections.push(model::Connection { kind: kind(&c.kind)?, ends, attrs: Attrs::new() });
    }
    Ok((topology, states, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_method_is_in_the_table() {
        assert_eq!(served().methods().len(), SERVED.len());
        served().check().expect("a valid table");
    }
}
