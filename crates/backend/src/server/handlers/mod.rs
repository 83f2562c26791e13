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

mod accounts;
mod components;
mod topology;

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

/// ToMaTo's `host_info` of a component: where users reach its host's
/// fileserver (grants' uploads and downloads) and live captures.
fn host_info_value(h: &Host) -> Value {
    json!({
        "address": h.address,
        "fileserver_port": h.host_info["fileserver_port"],
        "site": h.site,
        "problems": h.problems,
    })
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
            // Clients check hosts' fileservers (grants' uploads and
            // downloads go there directly) against this CA.
            "host_ca": self.b.hosts.ca(),
        })
    }
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
