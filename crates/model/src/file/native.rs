//! Our topology file format (YAML or JSON), written by hand.
//!
//! ```yaml
//! name: Two containers on a switch
//! defaults:
//!   container: {template: busybox}
//!   connection: {delay_to: 10, delay_from: 10}
//! elements:
//!   pc1: {type: container, interfaces: {eth0: {ip4address: 10.0.0.1/24}}}
//!   pc2: {type: container, interfaces: {eth0: {ip4address: 10.0.0.2/24}}}
//!   sw: {type: switch}
//! groups:
//!   hosts: {count: 100, name: "h{i}", type: container, connect: sw}
//! connections:
//!   - between: [pc1.eth0, sw]
//!   - between: [pc2, sw]
//! ```
//!
//! Elements are keyed by name; children (interfaces, endpoints) by name inside
//! their parent. A connection end names a child (`pc1.eth0`) or a parent
//! (`sw`): then the first child not used by another connection is taken, or a
//! new one is added (`port0`, `eth1`, ...). `defaults` give attributes per type
//! (and `connection` for all links); `groups` expand `count` similar elements
//! with `{i}` expressions (see `expr`). Resolution turns the file into a
//! [`Topology`]; writing produces the normalized form: groups and defaults
//! expanded, children and connection types explicit.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::expr;
use super::tree::Tree;
use crate::problem::{Place, Problem};
use crate::registry::{Class, Kind, registry};
use crate::topology::{Attrs, Connection, Element, ElementPath, KindRef, Topology};

/// Top-level keys of the format besides client data.
pub const TOP_KEYS: &[&str] = &["name", "site", "defaults", "groups", "elements", "connections"];
/// Keys under which an element lists its children.
pub const CHILD_KEYS: &[&str] = &["interfaces", "endpoints", "children"];
/// Keys of a group besides the element body.
pub const GROUP_KEYS: &[&str] = &["count", "first", "name", "connect", "link"];
/// The `defaults` key that applies to every connection.
pub const ALL_CONNECTIONS: &str = "connection";
/// Most members a group may have.
pub const MAX_GROUP: i64 = 100_000;

/// Resolves a parsed file into a topology and the problems found on the way.
pub fn resolve(tree: &Tree) -> (Topology, Vec<Problem>) {
    let mut r = Resolver::default();
    let Some(root) = tree.as_map() else {
        r.problem(Place::File, "(root)", format!("must be a map with keys {}, not {tree}", TOP_KEYS.join(", ")));
        return (Topology::default(), r.problems);
    };
    let mut seen = BTreeSet::new();
    for (key, value) in root {
        if !seen.insert(key.as_str()) {
            r.problem(Place::File, key, "appears twice at the top level");
            continue;
        }
        match key.as_str() {
            "name" | "site" => {
                r.topology.attrs.insert(key.clone(), value.to_value());
            }
            k if k.starts_with('_') => {
                r.topology.attrs.insert(key.clone(), value.to_value());
            }
            "defaults" | "groups" | "elements" | "connections" => {}
            _ => r.problem(
                Place::File,
                key,
                format!("is not a top-level key; allowed: {}, or client data starting with `_`", TOP_KEYS.join(", ")),
            ),
        }
    }
    if let Some(d) = tree.get("defaults") {
        r.defaults(d);
    }
    if let Some(els) = tree.get("elements") {
        match els.as_map() {
            Some(entries) => {
                for (name, body) in entries {
                    if let Some(el) = r.element(name, body, &Place::Element(ElementPath::top(name))) {
                        r.topology.elements.push(el);
                    }
                }
            }
            None => {
                r.problem(Place::File, "elements", format!("must be a map from element name to element, not {els}"))
            }
        }
    }
    let mut raw_connections = Vec::new();
    if let Some(cons) = tree.get("connections") {
        match cons {
            Tree::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(c) = r.raw_connection(i, item) {
                        raw_connections.push(c);
                    }
                }
            }
            other => r.problem(Place::File, "connections", format!("must be a list, not {other}")),
        }
    }
    if let Some(groups) = tree.get("groups") {
        match groups.as_map() {
            Some(entries) => {
                for (name, body) in entries {
                    r.group(name, body, &mut raw_connections);
                }
            }
            None => r.problem(Place::File, "groups", format!("must be a map from group name to group, not {groups}")),
        }
    }
    r.connections(raw_connections);
    (r.topology, r.problems)
}

/// A connection as written, before its ends and kind are resolved.
struct RawConnection {
    ends: [String; 2],
    kind: Option<&'static Kind>,
    attrs: Attrs,
}

#[derive(Default)]
struct Resolver {
    topology: Topology,
    problems: Vec<Problem>,
    defaults: BTreeMap<&'static str, Attrs>,
    all_connections: Attrs,
}

impl Resolver {
    fn problem(&mut self, place: Place, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(place, field, message));
    }

    fn defaults(&mut self, tree: &Tree) {
        let Some(entries) = tree.as_map() else {
            self.problem(Place::File, "defaults", format!("must be a map from type to attributes, not {tree}"));
            return;
        };
        for (type_name, body) in entries {
            let place = Place::Defaults(type_name.clone());
            let Some(attrs) = body.as_map() else {
                self.problem(place, type_name, format!("must be a map of attributes, not {body}"));
                continue;
            };
            let attrs: Attrs = attrs
                .iter()
                .filter(|(k, _)| {
                    let reserved = k == "type" || CHILD_KEYS.contains(&k.as_str());
                    if reserved {
                        self.problems.push(Problem::new(place.clone(), k.as_str(), "defaults hold attributes only"));
                    }
                    !reserved
                })
                .map(|(k, v)| (k.clone(), v.to_value()))
                .collect();
            if type_name == ALL_CONNECTIONS {
                self.all_connections = attrs;
                continue;
            }
            match registry().get(type_name) {
                Some(kind) => {
                    self.defaults.insert(kind.name, attrs);
                }
                None => {
                    let mut known: Vec<&str> = registry().kinds().iter().map(|k| k.name).collect();
                    known.push(ALL_CONNECTIONS);
                    self.problem(place, "type", format!("unknown type `{type_name}`; known: {}", known.join(", ")));
                }
            }
        }
    }

    /// Attributes of `kind`: its defaults, overridden by `given`.
    fn with_defaults(&self, kind: &Kind, given: Attrs) -> Attrs {
        let mut attrs = self.defaults.get(kind.name).cloned().unwrap_or_default();
        attrs.extend(given);
        attrs
    }

    fn element(&mut self, name: &str, body: &Tree, place: &Place) -> Option<Element> {
        let empty = Vec::new();
        let entries = match body {
            Tree::Map(entries) => entries,
            Tree::Null => &empty,
            other => {
                self.problem(
                    place.clone(),
                    "(element)",
                    format!("must be a map with `type` and attributes, not {other}"),
                );
                return None;
            }
        };
        let Some(type_tree) = body.get("type") else {
            let known = registry().names(Class::Element).join(", ");
            self.problem(place.clone(), "type", format!("is missing; known types: {known}"));
            return None;
        };
        let kind = self.kind(type_tree, Class::Element, place)?;
        let mut attrs = Attrs::new();
        let mut children = Vec::new();
        let mut child_key_seen: Option<&str> = None;
        for (key, value) in entries {
            match key.as_str() {
                "type" => {}
                "name" => self.problem(place.clone(), "name", "the name is the key of the entry, not an attribute"),
                k if CHILD_KEYS.contains(&k) => {
                    if let Some(first) = child_key_seen {
                        self.problem(place.clone(), k, format!("children are already listed under `{first}`"));
                        continue;
                    }
                    child_key_seen = Some(k);
                    children = self.children(name, kind, k, value);
                }
                _ => {
                    attrs.insert(key.clone(), value.to_value());
                }
            }
        }
        Some(Element { name: name.to_string(), kind: KindRef(kind), attrs: self.with_defaults(kind, attrs), children })
    }

    fn children(&mut self, parent: &str, kind: &'static Kind, key: &str, tree: &Tree) -> Vec<Element> {
        let place = Place::Element(ElementPath::top(parent));
        let Some(rule) = &kind.children else {
            self.problem(place, key, format!("a {} has no interfaces or endpoints", kind.name));
            return Vec::new();
        };
        let Some(entries) = tree.as_map() else {
            self.problem(place, key, format!("must be a map from {} name to attributes, not {tree}", rule.file_key));
            return Vec::new();
        };
        let child_kind = registry().get(rule.kind).expect("child kinds are registered");
        let mut out = Vec::new();
        for (name, body) in entries {
            let place = Place::Element(ElementPath::child(parent, name));
            let empty = Vec::new();
            let fields = match body {
                Tree::Map(fields) => fields,
                Tree::Null => &empty,
                other => {
                    self.problem(place, "(element)", format!("must be a map of attributes, not {other}"));
                    continue;
                }
            };
            let mut kind = child_kind;
            let mut attrs = Attrs::new();
            for (k, v) in fields {
                match k.as_str() {
                    "type" => match self.kind(v, Class::Element, &place) {
                        Some(k) => kind = k,
                        None => continue,
                    },
                    "name" => self.problem(place.clone(), "name", "the name is the key of the entry, not an attribute"),
                    _ => {
                        attrs.insert(k.clone(), v.to_value());
                    }
                }
            }
            out.push(Element {
                name: name.clone(),
                kind: KindRef(kind),
                attrs: self.with_defaults(kind, attrs),
                children: Vec::new(),
            });
        }
        out
    }

    fn kind(&mut self, tree: &Tree, class: Class, place: &Place) -> Option<&'static Kind> {
        let Some(name) = tree.as_str() else {
            self.problem(place.clone(), "type", format!("must be text, not {tree}"));
            return None;
        };
        match registry().lookup(name, class) {
            Ok(kind) => Some(kind),
            Err(e) => {
                self.problem(place.clone(), "type", e);
                None
            }
        }
    }

    fn raw_connection(&mut self, index: usize, tree: &Tree) -> Option<RawConnection> {
        let place = Place::Connection(Some(index), "?".into());
        let Some(entries) = tree.as_map() else {
            self.problem(place, "(connection)", format!("must be a map with `between` and attributes, not {tree}"));
            return None;
        };
        let ends = match tree.get("between") {
            Some(Tree::List(items)) if items.len() == 2 && items.iter().all(|i| i.as_str().is_some()) => {
                [items[0].as_str().unwrap_or_default().to_string(), items[1].as_str().unwrap_or_default().to_string()]
            }
            Some(other) => {
                self.problem(
                    place,
                    "between",
                    format!("must be a list of two element names, like [pc1.eth0, sw]; got {other}"),
                );
                return None;
            }
            None => {
                self.problem(place, "between", "is missing; give the two ends, like [pc1.eth0, sw]");
                return None;
            }
        };
        let place = Place::Connection(Some(index), format!("{} -- {}", ends[0], ends[1]));
        let mut kind = None;
        let mut attrs = Attrs::new();
        for (k, v) in entries {
            match k.as_str() {
                "between" => {}
                "type" => kind = Some(self.kind(v, Class::Connection, &place)?),
                _ => {
                    attrs.insert(k.clone(), v.to_value());
                }
            }
        }
        Some(RawConnection { ends, kind, attrs })
    }

    fn group(&mut self, group: &str, body: &Tree, raw_connections: &mut Vec<RawConnection>) {
        let place = Place::Group(group.to_string());
        let Some(entries) = body.as_map() else {
            self.problem(place, "(group)", format!("must be a map with `count`, `type` and attributes, not {body}"));
            return;
        };
        let int = |key: &str, default: Option<i64>| -> Result<i64, String> {
            match body.get(key) {
                None => default.ok_or_else(|| "is missing; give the number of members".to_string()),
                Some(Tree::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
                Some(other) => Err(format!("must be a whole number, not {other}")),
            }
        };
        let count = match int("count", None) {
            Ok(c) if (1..=MAX_GROUP).contains(&c) => c,
            Ok(c) => return self.problem(place, "count", format!("{c} is out of range; allowed: 1 to {MAX_GROUP}")),
            Err(e) => return self.problem(place, "count", e),
        };
        let first = match int("first", Some(1)) {
            Ok(f) => f,
            Err(e) => return self.problem(place, "first", e),
        };
        let name_template = match body.get("name") {
            None => format!("{group}{{i}}"),
            Some(Tree::Str(s)) => s.clone(),
            Some(other) => {
                return self.problem(place, "name", format!("must be text with `{{i}}`, like \"h{{i}}\"; got {other}"));
            }
        };
        let connect = match body.get("connect") {
            None => None,
            Some(Tree::Str(s)) => Some(s.clone()),
            Some(other) => {
                return self.problem(
                    place,
                    "connect",
                    format!("must be the name of the element to connect each member to; got {other}"),
                );
            }
        };
        let link = body.get("link").cloned().unwrap_or(Tree::Map(Vec::new()));
        let template = Tree::Map(entries.iter().filter(|(k, _)| !GROUP_KEYS.contains(&k.as_str())).cloned().collect());
        for i in first..first.saturating_add(count) {
            let member = (|| -> Result<(String, Tree, Option<String>, Tree), String> {
                let name = expr::substitute(&name_template, i)?;
                let connect = connect.as_deref().map(|c| expr::substitute(c, i)).transpose()?;
                Ok((name, substitute_tree(&template, i)?, connect, substitute_tree(&link, i)?))
            })();
            let (name, body, connect, link) = match member {
                Ok(m) => m,
                Err(e) => return self.problem(place, "(expression)", e),
            };
            let Some(el) = self.element(&name, &body, &Place::Element(ElementPath::top(&name))) else {
                return;
            };
            self.topology.elements.push(el);
            if let Some(target) = connect {
                let Some(attrs) = link.as_map() else {
                    return self.problem(place, "link", format!("must be a map of connection attributes, not {link}"));
                };
                let attrs = attrs.iter().map(|(k, v)| (k.clone(), v.to_value())).collect();
                raw_connections.push(RawConnection { ends: [name, target], kind: None, attrs });
            }
        }
    }

    fn connections(&mut self, raw: Vec<RawConnection>) {
        // Children named explicitly anywhere are not handed out to ends that
        // name only the parent.
        let mut used: BTreeSet<ElementPath> =
            raw.iter().flat_map(|c| c.ends.iter()).filter(|e| e.contains('.')).map(|e| ElementPath::parse(e)).collect();
        for con in raw {
            let ends = [self.end(&con.ends[0], &mut used), self.end(&con.ends[1], &mut used)];
            let kind = match con.kind {
                Some(k) => k,
                None => {
                    let external = ends.iter().any(|e| {
                        self.topology.element(e).is_some_and(|el| el.kind.name == "external_network_endpoint")
                    });
                    registry().get(if external { "fixed_bridge" } else { "bridge" }).expect("link kinds are registered")
                }
            };
            let mut attrs = self.all_connections.clone();
            attrs.extend(self.defaults.get(kind.name).cloned().unwrap_or_default());
            attrs.extend(con.attrs);
            self.topology.connections.push(Connection { kind: KindRef(kind), ends, attrs });
        }
    }

    /// Resolves a connection end; a parent name picks or adds a free child.
    fn end(&mut self, text: &str, used: &mut BTreeSet<ElementPath>) -> ElementPath {
        let path = ElementPath::parse(text);
        if path.child.is_some() {
            return path;
        }
        let Some(parent) = self.topology.elements.iter_mut().find(|e| e.name == path.element) else {
            return path;
        };
        if parent.kind.connectable {
            return path;
        }
        let Some(rule) = parent.kind.children.clone() else {
            return path;
        };
        let free = parent.children.iter().find(|c| !used.contains(&ElementPath::child(&parent.name, &c.name)));
        let child = match free {
            Some(c) => c.name.clone(),
            None => {
                // Skip names of existing children and names other ends refer to.
                let taken = |n: &str| {
                    parent.children.iter().any(|c| c.name == n) || used.contains(&ElementPath::child(&parent.name, n))
                };
                let name =
                    (0..).map(|n| format!("{}{n}", rule.name_prefix)).find(|n| !taken(n)).expect("a free name exists");
                let kind = registry().get(rule.kind).expect("child kinds are registered");
                let attrs = self.defaults.get(kind.name).cloned().unwrap_or_default();
                let parent = self.topology.elements.iter_mut().find(|e| e.name == path.element).expect("found above");
                parent.children.push(Element { name: name.clone(), kind: KindRef(kind), attrs, children: Vec::new() });
                name
            }
        };
        let resolved = ElementPath::child(&path.element, child);
        used.insert(resolved.clone());
        resolved
    }
}

/// Substitutes `{i}` expressions in every text and map key of a tree; a text
/// that is exactly one expression becomes a number.
fn substitute_tree(tree: &Tree, i: i64) -> Result<Tree, String> {
    Ok(match tree {
        Tree::Str(s) => match expr::whole_number(s, i) {
            Some(n) => Tree::Number(n?.into()),
            None => Tree::Str(expr::substitute(s, i)?),
        },
        Tree::List(items) => Tree::List(items.iter().map(|t| substitute_tree(t, i)).collect::<Result<_, _>>()?),
        Tree::Map(entries) => Tree::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((expr::substitute(k, i)?, substitute_tree(v, i)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The normalized file of a topology: defaults and groups expanded, every
/// child and connection end explicit.
pub fn to_tree(topology: &Topology) -> Tree {
    let mut root: Vec<(String, Tree)> = Vec::new();
    for key in ["name", "site"] {
        if let Some(v) = topology.attrs.get(key) {
            root.push((key.to_string(), Tree::from_value(v)));
        }
    }
    for (k, v) in &topology.attrs {
        if k != "name" && k != "site" {
            root.push((k.clone(), Tree::from_value(v)));
        }
    }
    let elements = topology.elements.iter().map(|e| (e.name.clone(), element_tree(e))).collect();
    root.push(("elements".into(), Tree::Map(elements)));
    let connections = topology
        .connections
        .iter()
        .map(|c| {
            let mut entries =
                vec![("between".to_string(), Tree::List(c.ends.iter().map(|e| Tree::Str(e.to_string())).collect()))];
            entries.extend(attrs_tree(&c.attrs));
            Tree::Map(entries)
        })
        .collect();
    root.push(("connections".into(), Tree::List(connections)));
    Tree::Map(root)
}

fn element_tree(element: &Element) -> Tree {
    let mut entries = vec![("type".to_string(), Tree::Str(element.kind.name.to_string()))];
    entries.extend(attrs_tree(&element.attrs));
    if !element.children.is_empty() {
        let key = element.kind.children.as_ref().map(|r| r.file_key).unwrap_or("children");
        let children = element
            .children
            .iter()
            .map(|c| {
                let mut fields = Vec::new();
                let implied = element.kind.children.as_ref().map(|r| r.kind);
                if implied != Some(c.kind.name) {
                    fields.push(("type".to_string(), Tree::Str(c.kind.name.to_string())));
                }
                fields.extend(attrs_tree(&c.attrs));
                (c.name.clone(), Tree::Map(fields))
            })
            .collect();
        entries.push((key.to_string(), Tree::Map(children)));
    }
    Tree::Map(entries)
}

fn attrs_tree(attrs: &Attrs) -> Vec<(String, Tree)> {
    attrs.iter().map(|(k, v): (&String, &Value)| (k.clone(), Tree::from_value(v))).collect()
}
