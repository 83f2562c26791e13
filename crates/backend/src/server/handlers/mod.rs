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
use crate::timeouts::{TimeoutEvent, TopologyTimeout};

/// A [`Field`] that writes the value, read by `parse`, into `$member`.
macro_rules! field {
    ($name:literal, $member:ident, $parse:ident) => {
        Field {
            name: $name,
            set: |target, value| {
                target.$member = $parse(value)?;
                Ok(())
            },
        }
    };
}

mod accounts;
mod admin;
mod capabilities;
mod components;
mod exchange;
mod topology;
mod usage;

pub use topology::carry_out_timeouts;

/// The methods this server answers (all others of ToMaTo's table are
/// unknown here, also to `system.listMethods` and the OpenAPI document).
pub const SERVED: &[&str] = &[
    "server_info",
    "account_info",
    "account_create",
    "account_list",
    "account_modify",
    "account_remove",
    "account_flags",
    "account_flag_categories",
    "account_flag_configuration",
    "organization_create",
    "organization_info",
    "organization_list",
    "organization_modify",
    "organization_remove",
    "site_create",
    "site_info",
    "site_list",
    "site_modify",
    "site_remove",
    "host_create",
    "host_list",
    "host_info",
    "host_modify",
    "host_remove",
    "template_create",
    "template_info",
    "template_list",
    "template_modify",
    "template_remove",
    "profile_create",
    "profile_info",
    "profile_list",
    "profile_modify",
    "profile_remove",
    "network_create",
    "network_info",
    "network_list",
    "network_modify",
    "network_remove",
    "capabilities",
    "capabilities_element",
    "capabilities_connection",
    "topology_create",
    "topology_list",
    "topology_info",
    "topology_modify",
    "topology_set_permission",
    "topology_remove",
    "topology_action",
    "topology_export",
    "topology_import",
    "topology_permissions",
    "role_list",
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
    "element_usage",
    "connection_usage",
    "topology_usage",
    "account_usage",
    "organization_usage",
    "host_usage",
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
        "account_list" => cx.account_list(bound.opt_str("organization")?, bound.opt_str("with_flag")?).await,
        "account_modify" => cx.account_modify(&bound).await,
        "account_remove" => cx.account_remove(bound.opt_str("name")?).await,
        "account_flags" => Ok(accounts::account_flags()),
        "account_flag_categories" => Ok(accounts::account_flag_categories()),
        "account_flag_configuration" => Ok(accounts::account_flag_configuration()),
        "organization_create" => cx.organization_create(&bound).await,
        "organization_info" => cx.organization_info(bound.str("name")?).await,
        "organization_list" => cx.organization_list().await,
        "organization_modify" => cx.organization_modify(&bound).await,
        "organization_remove" => cx.organization_remove(bound.str("name")?).await,
        "site_create" => cx.site_create(&bound).await,
        "site_info" => cx.site_info(bound.str("name")?).await,
        "site_list" => cx.site_list(bound.opt_str("organization")?).await,
        "site_modify" => cx.site_modify(&bound).await,
        "site_remove" => cx.site_remove(bound.str("name")?).await,
        "host_create" => cx.host_create(&bound).await,
        "host_list" => cx.host_list(bound.opt_str("site")?, bound.opt_str("organization")?).await,
        "host_info" => cx.host_info(bound.str("name")?).await,
        "host_modify" => cx.host_modify(&bound).await,
        "host_remove" => cx.host_remove(bound.str("name")?).await,
        "template_create" => cx.template_create(&bound).await,
        "template_info" => cx.template_info(id(&bound, "id")?).await,
        "template_list" => cx.template_list(bound.opt_str("tech")?).await,
        "template_modify" => cx.template_modify(&bound).await,
        "template_remove" => cx.template_remove(id(&bound, "id")?).await,
        "profile_create" => cx.profile_create(&bound).await,
        "profile_info" => cx.profile_info(id(&bound, "id")?).await,
        "profile_list" => cx.profile_list(bound.opt_str("tech")?).await,
        "profile_modify" => cx.profile_modify(&bound).await,
        "profile_remove" => cx.profile_remove(id(&bound, "id")?).await,
        // A network's id is its kind (`internet`, `internet/nat`).
        "network_create" => cx.network_create(&bound).await,
        "network_info" => cx.network_info(&bound.id("id")?.to_string()).await,
        "network_list" => cx.network_list().await,
        "network_modify" => cx.network_modify(&bound).await,
        "network_remove" => cx.network_remove(&bound.id("id")?.to_string()).await,
        "capabilities" => Ok(model::capabilities::all()),
        "capabilities_element" => {
            cx.kind_capabilities(Class::Element, bound.str("type")?, bound.opt_str("host")?).await
        }
        "capabilities_connection" => {
            cx.kind_capabilities(Class::Connection, bound.str("type")?, bound.opt_str("host")?).await
        }
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
        "topology_action" => {
            cx.topology_action(id(&bound, "id")?, bound.str("action")?, opt_map(&bound, "params")).await
        }
        "topology_export" => cx.topology_export(id(&bound, "id")?).await,
        "topology_import" => cx.topology_import(bound.map("data")?).await,
        "topology_permissions" | "role_list" => Ok(exchange::role_descriptions()),
        "element_create" => {
            let parent = match bound.opt_id("parent")? {
                None => None,
                Some(_) => Some(id(&bound, "parent")?),
            };
            cx.element_create(id(&bound, "top")?, bound.str("type")?, parent, attrs_of(&bound)).await
        }
        "element_modify" => cx.element_modify(id(&bound, "id")?, bound.map("attrs")?).await,
        "element_info" => cx.element_info(id(&bound, "id")?, bound.flag("fetch")?).await,
        "element_remove" => cx.element_remove(id(&bound, "id")?).await,
        "element_action" => cx.element_action(id(&bound, "id")?, bound.str("action")?, opt_map(&bound, "params")).await,
        "connection_create" => cx.connection_create([id(&bound, "el1")?, id(&bound, "el2")?], attrs_of(&bound)).await,
        "connection_modify" => cx.connection_modify(id(&bound, "id")?, bound.map("attrs")?).await,
        "connection_info" => cx.connection_info(id(&bound, "id")?, bound.flag("fetch")?).await,
        "connection_remove" => cx.connection_remove(id(&bound, "id")?).await,
        "connection_action" => {
            cx.connection_action(id(&bound, "id")?, bound.str("action")?, opt_map(&bound, "params")).await
        }
        "element_usage" => cx.element_usage(id(&bound, "id")?).await,
        "connection_usage" => cx.connection_usage(id(&bound, "id")?).await,
        "topology_usage" => cx.topology_usage(id(&bound, "id")?).await,
        "account_usage" => cx.account_usage(bound.str("name")?).await,
        "organization_usage" => cx.organization_usage(bound.str("name")?).await,
        "host_usage" => cx.host_usage(bound.str("name")?).await,
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

/// The optional map parameter `name` (`attrs`, `params`); empty when not
/// given (the binder has checked that it is a map or null).
fn opt_map(bound: &Bound, name: &str) -> Map<String, Value> {
    match bound.value(name) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn opt_attrs(bound: &Bound) -> Map<String, Value> {
    opt_map(bound, "attrs")
}

/// The optional `attrs` as the model's attributes.
fn attrs_of(bound: &Bound) -> Attrs {
    opt_attrs(bound).into_iter().collect()
}

/// An `invalid_value` error about `attrs.<key>` of the bound method.
fn invalid_attr(bound: &Bound, key: &str, what: &str) -> RpcError {
    RpcError::invalid_value(format!("{}: attrs.{key} {what}", bound.method().name)).with_data(json!({"field": key}))
}

/// One attribute a `*_create`/`*_modify` accepts: its name and how a value
/// is written into a `T`; the error names the kind of value expected.
struct Field<T> {
    name: &'static str,
    set: fn(&mut T, &Value) -> Result<(), &'static str>,
}

/// Writes every attribute of `attrs` into `target` through `fields`; an
/// unknown key or a value of the wrong kind is refused naming the
/// attribute and what is allowed.
fn apply<T>(bound: &Bound, fields: &[Field<T>], target: &mut T, attrs: &Map<String, Value>) -> Result<(), RpcError> {
    for (key, value) in attrs {
        let Some(field) = fields.iter().find(|f| f.name == key) else {
            let names: Vec<String> = fields.iter().map(|f| format!("`{}`", f.name)).collect();
            return Err(invalid_attr(bound, key, &format!("is not allowed; allowed: {}", names.join(", "))));
        };
        (field.set)(target, value).map_err(|want| invalid_attr(bound, key, &format!("must be {want}, not {value}")))?;
    }
    Ok(())
}

fn text(v: &Value) -> Result<String, &'static str> {
    v.as_str().map(String::from).ok_or("a string")
}

fn opt_text(v: &Value) -> Result<Option<String>, &'static str> {
    if v.is_null() { Ok(None) } else { text(v).map(Some).map_err(|_| "a string or null") }
}

fn int(v: &Value) -> Result<i64, &'static str> {
    v.as_i64().ok_or("an integer")
}

fn opt_int(v: &Value) -> Result<Option<i64>, &'static str> {
    if v.is_null() { Ok(None) } else { int(v).map(Some).map_err(|_| "an integer or null") }
}

fn number(v: &Value) -> Result<f64, &'static str> {
    v.as_f64().ok_or("a number")
}

fn boolean(v: &Value) -> Result<bool, &'static str> {
    v.as_bool().ok_or("true or false")
}

fn strings(v: &Value) -> Result<Vec<String>, &'static str> {
    v.as_array().and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect()).ok_or("a list of strings")
}

fn subject(u: &User) -> Subject<'_> {
    Subject { name: &u.name, organization: &u.organization, flags: &u.flags }
}

fn client_data(attrs: &Map<String, Value>) -> bool {
    attrs.keys().all(|k| k.starts_with('_'))
}

/// The attributes a host gets: neither client data (`_*`) nor `name`, which
/// only the backend keeps (ToMaTo's editor names components; hosts know
/// them by id).
fn without_client_data<'a>(attrs: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Map<String, Value> {
    attrs
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_') && *k != "name")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An element's info: `children` are its children's ids, `connection`
/// the connection it is an end of.
fn element_value(e: &Element, children: Vec<i64>, connection: Option<i64>) -> Value {
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
