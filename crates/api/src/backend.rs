//! The backend's public method table: ToMaTo's `backend_api` methods with
//! ToMaTo's names, parameter names, order and defaults (from ToMaTo 4's
//! `backend_api/tomato/api/*.py`), so that scripts written for ToMaTo call
//! ToMaTo-rs unchanged. Both public transports (XML-RPC and JSON) serve
//! exactly this table.
//!
//! Who may call what follows ToMaTo: a method that asks for the current user
//! there ([`Access::User`]) needs a login here; the others are public
//! (server information, capabilities, the lists of organizations, sites,
//! hosts, profiles and networks, self-registration). Left out on purpose:
//! ToMaTo's error-dump, debug and task methods (`errordump_*`,
//! `errorgroup_*`, `debug_*`, `task_*`), which served its own operators'
//! tooling, and `docs`, which `capabilities` replaces.

use crate::method::Access::{Anyone, User};
use crate::method::{Access, Fallback, Kind, Method, Param, Table};

/// The backend's methods.
pub const BACKEND: Table = Table::new(METHODS);

/// Topology roles, strongest first (ToMaTo's `owner > manager > user >
/// null`; `null` removes a user's role).
pub const ROLES: &[&str] = &["owner", "manager", "user", "null"];

/// The actions a whole topology runs, in ToMaTo's words.
pub const TOPOLOGY_ACTIONS: &[&str] = &["prepare", "start", "stop", "destroy", "renew"];

const fn req(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    Param::required(name, kind, doc)
}

const fn opt(name: &'static str, kind: Kind, default: Fallback, doc: &'static str) -> Param {
    Param::optional(name, kind, default, doc)
}

const ATTRS: Param = req("attrs", Kind::Map, "attributes to set; keys starting with `_` are client data");
const ATTRS_OPT: Param = opt("attrs", Kind::Map, Fallback::Null, "initial attributes");
const PARAMS_OPT: Param = opt("params", Kind::Map, Fallback::Null, "the action's parameters");
const TOPOLOGY_ID: Param = req("id", Kind::Id, "the topology's id");
const ELEMENT_ID: Param = req("id", Kind::Id, "the element's id");
const CONNECTION_ID: Param = req("id", Kind::Id, "the connection's id");
const ACTION: Param = req("action", Kind::Str, "the action's name, as `cap_actions` lists it");
const FETCH: Param = opt("fetch", Kind::Bool, Fallback::Bool(false), "refresh the information from the host first");
const ACCOUNT_NAME_OPT: Param =
    opt("name", Kind::Str, Fallback::Null, "the account's name; the caller's own when not given");
const ACCOUNT_NAME: Param = req("name", Kind::Str, "the account's name");
const ORGANIZATION_NAME: Param = req("name", Kind::Str, "the organization's name");
const SITE_NAME: Param = req("name", Kind::Str, "the site's name");
const HOST_NAME: Param = req("name", Kind::Str, "the host's name");
const RESOURCE_ID: Param = req("id", Kind::Id, "the object's id");
const TECH_FILTER: Param = opt("tech", Kind::Str, Fallback::Null, "only this tech (`kvm`, `container`, ...)");
const TECH: Param = req("tech", Kind::Str, "the tech (`kvm`, `container`, `repy`, ...)");
const SUBJECT_GROUP: Param = opt("subject_group", Kind::Str, Fallback::Null, "a free-form group for the message");
const REF: Param = opt("ref", Kind::Any, Fallback::Null, "a reference to an object, `[type, id]`");

const fn method(
    name: &'static str,
    group: &'static str,
    access: Access,
    doc: &'static str,
    params: &'static [Param],
) -> Method {
    Method { name, group, doc, access, params }
}

static METHODS: &[Method] = &[
    // Topologies.
    method(
        "topology_create",
        "topology",
        User,
        "Creates an empty topology owned by the caller and returns its info.",
        &[],
    ),
    method(
        "topology_remove",
        "topology",
        User,
        "Removes a topology that has no elements or connections.",
        &[TOPOLOGY_ID],
    ),
    method(
        "topology_modify",
        "topology",
        User,
        "Sets attributes of a topology and returns its info.",
        &[TOPOLOGY_ID, ATTRS],
    ),
    method(
        "topology_action",
        "topology",
        User,
        "Runs an action on every element and connection of a topology, in ToMaTo's type order.",
        &[TOPOLOGY_ID, req("action", Kind::OneOf(TOPOLOGY_ACTIONS), "the action"), PARAMS_OPT],
    ),
    method(
        "topology_info",
        "topology",
        User,
        "Returns a topology's info: attributes, permissions and its element and connection ids (or infos).",
        &[TOPOLOGY_ID, opt("full", Kind::Bool, Fallback::Bool(false), "list element and connection infos, not ids")],
    ),
    method(
        "topology_list",
        "topology",
        User,
        "Lists the topologies the caller may see.",
        &[
            opt("full", Kind::Bool, Fallback::Bool(false), "list element and connection infos, not ids"),
            opt(
                "showAll",
                Kind::Bool,
                Fallback::Bool(false),
                "all topologies, not only the caller's (needs the right)",
            ),
            opt("organization", Kind::Str, Fallback::Null, "only topologies of this organization"),
        ],
    ),
    method(
        "topology_set_permission",
        "topology",
        User,
        "Gives a user a role on a topology (`null` takes it away).",
        &[TOPOLOGY_ID, req("user", Kind::Str, "the account's name"), req("role", Kind::OneOf(ROLES), "the role")],
    ),
    method("topology_usage", "topology", User, "Returns a topology's resource usage records.", &[TOPOLOGY_ID]),
    method(
        "topology_export",
        "topology",
        User,
        "Returns a topology as a file (ToMaTo's export format) without run-time fields.",
        &[TOPOLOGY_ID],
    ),
    method(
        "topology_import",
        "topology",
        User,
        "Creates a topology from an exported file; returns the new id, the id maps and per-attribute errors.",
        &[req("data", Kind::Map, "the exported file, `{file_information: {version}, topology}`")],
    ),
    method("topology_permissions", "topology", Anyone, "Returns the topology roles with their descriptions.", &[]),
    method("role_list", "topology", Anyone, "Returns the topology roles with titles and descriptions.", &[]),
    // Elements.
    method(
        "element_create",
        "element",
        User,
        "Creates an element in a topology (as a child of `parent` if given) and returns its info.",
        &[
            req("top", Kind::Id, "the topology's id"),
            req("type", Kind::Str, "the element type (`full`, `container`, `external_network`, ...)"),
            opt("parent", Kind::Id, Fallback::Null, "the parent element's id"),
            ATTRS_OPT,
        ],
    ),
    method(
        "element_modify",
        "element",
        User,
        "Sets attributes of an element and returns its info.",
        &[ELEMENT_ID, ATTRS],
    ),
    method(
        "element_action",
        "element",
        User,
        "Runs an action (`prepare`, `start`, `upload_grant`, ...) on an element and returns its result.",
        &[ELEMENT_ID, ACTION, PARAMS_OPT],
    ),
    method("element_remove", "element", User, "Removes an element, its children and its connection.", &[ELEMENT_ID]),
    method("element_info", "element", User, "Returns an element's info.", &[ELEMENT_ID, FETCH]),
    method("element_usage", "element", User, "Returns an element's resource usage records.", &[ELEMENT_ID]),
    // Connections.
    method(
        "connection_create",
        "connection",
        User,
        "Connects two elements and returns the connection's info.",
        &[req("el1", Kind::Id, "one element's id"), req("el2", Kind::Id, "the other element's id"), ATTRS_OPT],
    ),
    method(
        "connection_modify",
        "connection",
        User,
        "Sets attributes of a connection (emulation, capture) and returns its info.",
        &[CONNECTION_ID, ATTRS],
    ),
    method(
        "connection_action",
        "connection",
        User,
        "Runs an action on a connection and returns its result.",
        &[CONNECTION_ID, ACTION, PARAMS_OPT],
    ),
    method("connection_remove", "connection", User, "Removes a connection.", &[CONNECTION_ID]),
    method("connection_info", "connection", User, "Returns a connection's info.", &[CONNECTION_ID, FETCH]),
    method("connection_usage", "connection", User, "Returns a connection's resource usage records.", &[CONNECTION_ID]),
    // Accounts.
    method(
        "account_info",
        "account",
        User,
        "Returns an account's info, as far as the caller may see it.",
        &[ACCOUNT_NAME_OPT],
    ),
    method(
        "account_list",
        "account",
        User,
        "Lists accounts (all, or those of an organization).",
        &[
            opt("organization", Kind::Str, Fallback::Null, "only accounts of this organization"),
            opt("with_flag", Kind::Str, Fallback::Null, "only accounts with this flag"),
        ],
    ),
    method(
        "account_modify",
        "account",
        User,
        "Sets attributes of an account and returns its info.",
        &[
            ACCOUNT_NAME_OPT,
            opt("attrs", Kind::Map, Fallback::Null, "attributes to set; `flags` is a map of flag to true/false"),
            opt(
                "ignore_key_on_unauthorized",
                Kind::Bool,
                Fallback::Bool(false),
                "skip attributes the caller may not set instead of failing",
            ),
            opt(
                "ignore_flag_on_unauthorized",
                Kind::Bool,
                Fallback::Bool(false),
                "skip flags the caller may not set instead of failing",
            ),
        ],
    ),
    method(
        "account_create",
        "account",
        Anyone,
        "Creates an account; without a login this is self-registration with a limited set of attributes.",
        &[
            req("username", Kind::Str, "the new account's name"),
            req("password", Kind::Str, "its password"),
            req("organization", Kind::Str, "its organization"),
            opt("attrs", Kind::Map, Fallback::Null, "further attributes (`realname`, `email`, ...)"),
        ],
    ),
    method("account_remove", "account", User, "Removes an account.", &[ACCOUNT_NAME_OPT]),
    method("account_usage", "account", User, "Returns an account's resource usage records.", &[ACCOUNT_NAME]),
    method("account_flags", "account", Anyone, "Returns every account flag with its description.", &[]),
    method("account_flag_categories", "account", Anyone, "Returns the account flags grouped by category.", &[]),
    method(
        "account_flag_configuration",
        "account",
        Anyone,
        "Returns the account flags and their categories together.",
        &[],
    ),
    // Notifications.
    method(
        "account_notifications",
        "notification",
        User,
        "Lists the caller's notifications.",
        &[opt("include_read", Kind::Bool, Fallback::Bool(false), "also notifications already read")],
    ),
    method(
        "account_notification_set_read",
        "notification",
        User,
        "Marks one of the caller's notifications read or unread.",
        &[req("notification_id", Kind::Id, "the notification's id"), req("read", Kind::Bool, "the new read state")],
    ),
    method(
        "account_send_notification",
        "notification",
        User,
        "Sends a notification (and e-mail) to an account.",
        &[
            ACCOUNT_NAME,
            req("subject", Kind::Str, "the subject"),
            req("message", Kind::Str, "the text"),
            REF,
            opt("from_support", Kind::Bool, Fallback::Bool(false), "send as the support team, not as the caller"),
            SUBJECT_GROUP,
        ],
    ),
    method(
        "broadcast_announcement",
        "notification",
        User,
        "Sends a notification to every account, or to those matching the organization filter.",
        &[
            req("title", Kind::Str, "the subject"),
            req("message", Kind::Str, "the text"),
            REF,
            opt("show_sender", Kind::Bool, Fallback::Bool(true), "name the caller as the sender"),
            SUBJECT_GROUP,
            opt(
                "organization_filter",
                Kind::Any,
                Fallback::Null,
                "a list of `[organization, flag]` pairs; an account matching one gets it",
            ),
        ],
    ),
    method(
        "notifyAdmins",
        "notification",
        User,
        "Asks the administrators (or host contacts) for help.",
        &[
            req("subject", Kind::Str, "the subject"),
            req("text", Kind::Str, "the text"),
            opt("global_contact", Kind::Bool, Fallback::Bool(true), "the global contacts, not the organization's"),
            opt(
                "issue",
                Kind::OneOf(&["admin", "host"]),
                Fallback::Str("admin"),
                "whom to ask: admin or host contacts",
            ),
        ],
    ),
    // Organizations.
    method("organization_list", "organization", Anyone, "Lists the organizations.", &[]),
    method(
        "organization_create",
        "organization",
        User,
        "Creates an organization and returns its info.",
        &[ORGANIZATION_NAME, opt("label", Kind::Str, Fallback::Str(""), "the name shown to people"), ATTRS_OPT],
    ),
    method("organization_info", "organization", Anyone, "Returns an organization's info.", &[ORGANIZATION_NAME]),
    method(
        "organization_modify",
        "organization",
        User,
        "Sets attributes of an organization and returns its info.",
        &[ORGANIZATION_NAME, ATTRS],
    ),
    method("organization_remove", "organization", User, "Removes an organization.", &[ORGANIZATION_NAME]),
    method(
        "organization_usage",
        "organization",
        User,
        "Returns an organization's resource usage records.",
        &[ORGANIZATION_NAME],
    ),
    // Sites.
    method(
        "site_list",
        "site",
        Anyone,
        "Lists the sites (all, or those of an organization).",
        &[opt("organization", Kind::Str, Fallback::Null, "only sites of this organization")],
    ),
    method(
        "site_create",
        "site",
        User,
        "Creates a site of an organization and returns its info.",
        &[
            SITE_NAME,
            req("organization", Kind::Str, "the organization it belongs to"),
            opt("label", Kind::Str, Fallback::Str(""), "the name shown to people"),
            opt("attrs", Kind::Map, Fallback::EmptyMap, "initial attributes (`location`, `geolocation`, ...)"),
        ],
    ),
    method("site_info", "site", Anyone, "Returns a site's info.", &[SITE_NAME]),
    method("site_modify", "site", User, "Sets attributes of a site and returns its info.", &[SITE_NAME, ATTRS]),
    method("site_remove", "site", User, "Removes a site without hosts.", &[SITE_NAME]),
    // Hosts.
    method(
        "host_list",
        "host",
        Anyone,
        "Lists the hosts (of a site, or of an organization).",
        &[
            opt("site", Kind::Str, Fallback::Null, "only hosts of this site"),
            opt("organization", Kind::Str, Fallback::Null, "only hosts of this organization (ignored with `site`)"),
        ],
    ),
    method(
        "host_create",
        "host",
        User,
        "Registers a host at a site and returns its info.",
        &[
            HOST_NAME,
            req("site", Kind::Str, "the site's name"),
            opt("attrs", Kind::Map, Fallback::Null, "at least `address` and `rpcurl`"),
        ],
    ),
    method("host_info", "host", User, "Returns a host's info.", &[HOST_NAME]),
    method("host_modify", "host", User, "Sets attributes of a host and returns its info.", &[HOST_NAME, ATTRS]),
    method(
        "host_action",
        "host",
        User,
        "Runs an action on a host (`forced_update`, ...) and returns its result.",
        &[HOST_NAME, req("action", Kind::Str, "the action's name"), PARAMS_OPT],
    ),
    method("host_remove", "host", User, "Removes a host that holds no elements.", &[HOST_NAME]),
    method("host_users", "host", User, "Lists the accounts with elements on a host.", &[HOST_NAME]),
    method("host_usage", "host", User, "Returns a host's resource usage records.", &[HOST_NAME]),
    // Templates.
    method("template_list", "template", User, "Lists the templates.", &[TECH_FILTER]),
    method(
        "template_create",
        "template",
        User,
        "Creates a template and returns its info.",
        &[TECH, req("name", Kind::Str, "the template's name"), ATTRS_OPT],
    ),
    method(
        "template_modify",
        "template",
        User,
        "Sets attributes of a template and returns its info.",
        &[RESOURCE_ID, ATTRS],
    ),
    method("template_remove", "template", User, "Removes a template.", &[RESOURCE_ID]),
    method(
        "template_info",
        "template",
        User,
        "Returns a template's info.",
        &[
            RESOURCE_ID,
            opt(
                "include_torrent_data",
                Kind::Bool,
                Fallback::Bool(false),
                "include the download data (ToMaTo: torrent)",
            ),
        ],
    ),
    // Profiles.
    method("profile_list", "profile", Anyone, "Lists the profiles (ram, cpus, diskspace presets).", &[TECH_FILTER]),
    method(
        "profile_create",
        "profile",
        User,
        "Creates a profile and returns its info.",
        &[TECH, req("name", Kind::Str, "the profile's name"), ATTRS_OPT],
    ),
    method(
        "profile_modify",
        "profile",
        User,
        "Sets attributes of a profile and returns its info.",
        &[RESOURCE_ID, ATTRS],
    ),
    method("profile_remove", "profile", User, "Removes a profile.", &[RESOURCE_ID]),
    method("profile_info", "profile", User, "Returns a profile's info.", &[RESOURCE_ID]),
    // Networks.
    method("network_list", "network", Anyone, "Lists the external network kinds.", &[]),
    method(
        "network_create",
        "network",
        User,
        "Creates an external network kind and returns its info.",
        &[req("kind", Kind::Str, "the kind (`internet`, `internet/nat`, ...)"), ATTRS_OPT],
    ),
    method(
        "network_modify",
        "network",
        User,
        "Sets attributes of a network and returns its info.",
        &[RESOURCE_ID, ATTRS],
    ),
    method("network_remove", "network", User, "Removes a network.", &[RESOURCE_ID]),
    method("network_info", "network", User, "Returns a network's info.", &[RESOURCE_ID]),
    method(
        "network_instance_list",
        "network",
        User,
        "Lists the network instances (a network's bridge on a host).",
        &[
            opt("network", Kind::Str, Fallback::Null, "only instances of this network kind"),
            opt("host", Kind::Str, Fallback::Null, "only instances on this host"),
        ],
    ),
    method(
        "network_instance_create",
        "network",
        User,
        "Creates a network instance on a host and returns its info.",
        &[
            req("network", Kind::Str, "the network kind"),
            req("host", Kind::Str, "the host's name"),
            opt("attrs", Kind::Map, Fallback::Null, "initial attributes (`bridge`)"),
        ],
    ),
    method(
        "network_instance_modify",
        "network",
        User,
        "Sets attributes of a network instance and returns its info.",
        &[RESOURCE_ID, ATTRS],
    ),
    method("network_instance_remove", "network", User, "Removes a network instance.", &[RESOURCE_ID]),
    method("network_instance_info", "network", User, "Returns a network instance's info.", &[RESOURCE_ID]),
    // Capabilities and the rest.
    method(
        "capabilities",
        "capabilities",
        Anyone,
        "Returns the element and connection types with their attributes and actions.",
        &[],
    ),
    method(
        "capabilities_element",
        "capabilities",
        Anyone,
        "Returns one element type's attributes, actions and children (on a host if given).",
        &[
            req("type", Kind::Str, "the element type"),
            opt("host", Kind::Str, Fallback::Null, "only as this host offers it"),
        ],
    ),
    method(
        "capabilities_connection",
        "capabilities",
        Anyone,
        "Returns one connection type's attributes and actions (on a host if given).",
        &[
            req("type", Kind::Str, "the connection type"),
            opt("host", Kind::Str, Fallback::Null, "only as this host offers it"),
        ],
    ),
    method(
        "server_info",
        "misc",
        Anyone,
        "Returns the server's version, API version, topology timeouts and public key.",
        &[],
    ),
    method(
        "statistics",
        "misc",
        Anyone,
        "Returns counts of users, topologies and elements, and resource figures.",
        &[],
    ),
    method(
        "link_statistics",
        "misc",
        Anyone,
        "Returns the measured loss and delay between two sites.",
        &[req("siteA", Kind::Str, "one site's name"), req("siteB", Kind::Str, "the other site's name")],
    ),
    method(
        "resources_map",
        "misc",
        User,
        "Returns templates, profiles, networks and network instances in one map.",
        &[],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Id;
    use serde_json::{Map, Value, json};

    #[test]
    fn the_table_is_consistent() {
        assert_eq!(BACKEND.check(), Ok(()));
        // README names the count.
        assert_eq!(BACKEND.methods().len(), 84);
        // JSON requests tell an {args, kwargs} envelope from named arguments
        // by these two keys, so no method may have parameters of that name.
        for m in BACKEND.methods() {
            assert!(m.param("args").is_none() && m.param("kwargs").is_none(), "{}", m.name);
        }
    }

    #[test]
    fn tomato_signatures_are_kept() {
        let signature = |name: &str| BACKEND.get(name).expect(name).signature();
        assert_eq!(signature("element_create"), "element_create(top, type, parent=None, attrs=None)");
        assert_eq!(signature("topology_list"), "topology_list(full=False, showAll=False, organization=None)");
        assert_eq!(signature("connection_create"), "connection_create(el1, el2, attrs=None)");
        assert_eq!(
            signature("account_modify"),
            "account_modify(name=None, attrs=None, ignore_key_on_unauthorized=False, ignore_flag_on_unauthorized=False)"
        );
        assert_eq!(signature("site_create"), "site_create(name, organization, label=\"\", attrs={})");
        assert_eq!(signature("notifyAdmins"), "notifyAdmins(subject, text, global_contact=True, issue=\"admin\")");
    }

    #[test]
    fn every_group_of_the_brief_is_there() {
        for prefix in [
            "topology_",
            "element_",
            "connection_",
            "account_",
            "organization_",
            "site_",
            "host_",
            "template_",
            "profile_",
            "network_",
            "network_instance_",
            "capabilities",
        ] {
            assert!(BACKEND.methods().iter().filter(|m| m.name.starts_with(prefix)).count() >= 1, "{prefix}");
        }
        let usage: Vec<&str> = BACKEND.methods().iter().map(|m| m.name).filter(|n| n.ends_with("_usage")).collect();
        assert_eq!(
            usage,
            [
                "topology_usage",
                "element_usage",
                "connection_usage",
                "account_usage",
                "organization_usage",
                "host_usage"
            ]
        );
    }

    #[test]
    fn a_python_style_call_binds() {
        // What `proxy.topology_action(7, "start")` sends once split into
        // args and kwargs.
        let bound = BACKEND.bind("topology_action", vec![json!(7), json!("start")], Map::new()).expect("binds");
        assert_eq!(bound.id("id").expect("id"), Id::Int(7));
        assert_eq!(bound.str("action").expect("action"), "start");
        assert_eq!(bound.map("params").expect("params"), Map::new());
        let error =
            BACKEND.bind("topology_action", vec![json!(7), json!("launch")], Map::new()).expect_err("bad action");
        assert_eq!(
            error.to_string(),
            "topology_action: `action` must be one of `prepare`, `start`, `stop`, `destroy`, `renew`, not a string \"launch\""
        );
        let error = BACKEND.bind("topology_infos", vec![], Map::new()).expect_err("typo");
        assert_eq!(error.to_string(), "no method `topology_infos`; did you mean `topology_info`?");
        let bound = BACKEND.bind("site_create", vec![json!("s"), json!("o")], Map::new()).expect("binds");
        assert_eq!(bound.value("attrs"), Some(&Value::Object(Map::new())));
        assert_eq!(bound.str("label").expect("label"), "");
    }

    #[test]
    fn public_methods_are_the_few_tomato_left_open() {
        let public: Vec<&str> = BACKEND.methods().iter().filter(|m| m.access == Anyone).map(|m| m.name).collect();
        assert!(public.contains(&"server_info") && public.contains(&"account_create"));
        assert!(!public.iter().any(|n| n.starts_with("topology_") && *n != "topology_permissions"));
        assert!(!public.iter().any(|n| n.starts_with("element_") || n.starts_with("connection_")));
    }
}
