//! The registry of element and connection kinds.
//!
//! Each kind lives in its own module under `kinds/` and registers itself with
//! one line in [`crate::kinds::REGISTRATIONS`]. The registry resolves ToMaTo's
//! names and aliases (`openvz`, `tinc_vpn`, ...) to our kinds, refuses
//! duplicate names, and names the known kinds when asked for an unknown one.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::schema::{ActionSpec, AttrSpec, Pattern};
use crate::state::State;

/// Whether a kind is an element or a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Something a user places in a topology.
    Element,
    /// A link joining exactly two connectable elements.
    Connection,
}

/// Where a kind sits in the fixed order of topology-wide actions.
///
/// ToMaTo runs topology actions over nodes (VMs, containers, devices) and
/// network elements (switches, tunnels, external networks) in a fixed type
/// order; the rank orders kinds inside their group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A node; lower ranks go first inside the node group.
    Node(u8),
    /// A network element; lower ranks go first inside the network group.
    Network(u8),
    /// A child (interface, endpoint): it follows its parent.
    Child,
    /// A connection: it follows its two ends.
    Link,
}

/// How a kind holds children (interfaces or endpoints).
#[derive(Clone, Debug)]
pub struct ChildRule {
    /// The child kind's name.
    pub kind: &'static str,
    /// Prefix of automatic child names: `eth` gives `eth0`, `eth1`, ...
    pub name_prefix: &'static str,
    /// The key under which topology files list the children.
    pub file_key: &'static str,
    /// Parent states in which children may be added or removed.
    pub add_in: Vec<State>,
}

/// One element or connection kind: its names, states, attributes and actions.
#[derive(Clone, Debug)]
pub struct Kind {
    /// Our API name.
    pub name: &'static str,
    /// The name ToMaTo 4 uses in its API and export files.
    pub tomato_name: &'static str,
    /// Other accepted names (ToMaTo techs and older names).
    pub aliases: &'static [&'static str],
    /// One sentence about the kind.
    pub description: &'static str,
    /// Element or connection.
    pub class: Class,
    /// Place in the topology-wide action order.
    pub role: Role,
    /// The kind of the parent, for children.
    pub parent: Option<&'static str>,
    /// How the kind holds children, if it does.
    pub children: Option<ChildRule>,
    /// Whether connections attach to elements of this kind.
    pub connectable: bool,
    /// The states the kind uses; the first is the initial state.
    pub states: Vec<State>,
    /// Attributes.
    pub attrs: Vec<AttrSpec>,
    /// Actions.
    pub actions: Vec<ActionSpec>,
    /// The pattern child names must match, for child kinds (`eth[0-9]+`).
    pub name_pattern: Option<Pattern>,
}

impl Kind {
    /// The attribute named `name`.
    pub fn attr(&self, name: &str) -> Option<&AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The state a new component of this kind starts in.
    pub fn initial_state(&self) -> State {
        self.states.first().copied().unwrap_or(State::Created)
    }

    /// Names of all attributes, for messages.
    pub fn attr_names(&self) -> Vec<&str> {
        self.attrs.iter().map(|a| a.name.as_str()).collect()
    }

    /// Whether this kind is a child of another.
    pub fn is_child(&self) -> bool {
        self.parent.is_some()
    }

    /// The kind in the shape of ToMaTo's `capabilities_element`.
    pub fn capabilities(&self) -> Value {
        let actions: serde_json::Map<String, Value> =
            self.actions.iter().map(|a| (a.name.to_string(), a.describe())).collect();
        let attributes: serde_json::Map<String, Value> =
            self.attrs.iter().map(|a| (a.name.clone(), a.describe())).collect();
        let children: serde_json::Map<String, Value> = self
            .children
            .iter()
            .map(|c| (c.kind.to_string(), json!(c.add_in.iter().map(|s| s.as_str()).collect::<Vec<_>>())))
            .collect();
        let mut caps = json!({
            "name": self.name,
            "tomato_name": self.tomato_name,
            "aliases": self.aliases,
            "description": self.description,
            "states": self.states.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "actions": actions,
            "attributes": attributes,
        });
        let obj = caps.as_object_mut().expect("built as an object");
        if self.class == Class::Element {
            obj.insert("children".into(), Value::Object(children));
            obj.insert("parent".into(), json!([self.parent]));
            obj.insert("connectable".into(), json!(self.connectable));
        } else {
            obj.insert("con_concepts".into(), json!(["interface", "interface"]));
        }
        caps
    }
}

/// The set of known kinds.
#[derive(Debug, Default)]
pub struct Registry {
    kinds: Vec<Kind>,
    by_name: BTreeMap<&'static str, usize>,
}

/// Why a kind could not be registered.
#[derive(Debug, thiserror::Error)]
#[error("kind name `{0}` is registered twice")]
pub struct DuplicateKind(pub &'static str);

impl Registry {
    /// Adds a kind under its name, its ToMaTo name and its aliases.
    pub fn add(&mut self, kind: Kind) -> Result<(), DuplicateKind> {
        let idx = self.kinds.len();
        let mut names = vec![kind.name, kind.tomato_name];
        names.extend_from_slice(kind.aliases);
        names.dedup();
        for name in &names {
            if self.by_name.contains_key(name) {
                return Err(DuplicateKind(name));
            }
        }
        for name in names {
            self.by_name.insert(name, idx);
        }
        self.kinds.push(kind);
        Ok(())
    }

    /// The kind with this name, ToMaTo name or alias.
    pub fn get(&self, name: &str) -> Option<&Kind> {
        self.by_name.get(name).map(|&i| &self.kinds[i])
    }

    /// The kind with this name, or an error naming the known kinds of `class`.
    pub fn lookup(&self, name: &str, class: Class) -> Result<&Kind, String> {
        match self.get(name) {
            Some(k) if k.class == class => Ok(k),
            _ => {
                let known = self.names(class);
                let hint = closest(name, &known).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
                Err(format!("unknown type `{name}`{hint}; known types: {}", known.join(", ")))
            }
        }
    }

    /// All kinds in registration order.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    /// Our names of the kinds of one class.
    pub fn names(&self, class: Class) -> Vec<&'static str> {
        self.kinds.iter().filter(|k| k.class == class).map(|k| k.name).collect()
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough.
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut registry = Registry::default();
    for register in crate::kinds::REGISTRATIONS {
        register(&mut registry).expect("built-in kinds have distinct names");
    }
    registry
});

/// The registry of all built-in kinds.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_our_kinds() {
        let r = registry();
        assert_eq!(r.get("openvz").map(|k| k.name), Some("container"));
        assert_eq!(r.get("kvmqm").map(|k| k.name), Some("full"));
        assert_eq!(r.get("tinc_vpn").map(|k| k.name), Some("switch"));
        assert_eq!(r.get("tinc_endpoint").map(|k| k.name), Some("switch_endpoint"));
        assert_eq!(r.get("openvz_interface").map(|k| k.name), Some("container_interface"));
    }

    #[test]
    fn unknown_kind_names_the_known_ones_and_a_guess() {
        let err = registry().lookup("contaner", Class::Element).expect_err("unknown");
        assert!(err.contains("did you mean `container`?"), "{err}");
        assert!(err.contains("known types: container, container_interface, full"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut r = Registry::default();
        let kind = registry().get("container").expect("registered").clone();
        r.add(kind.clone()).expect("first");
        assert!(r.add(kind).is_err());
    }

    #[test]
    fn every_child_kind_names_an_existing_parent_and_back() {
        let r = registry();
        for k in r.kinds() {
            if let Some(parent) = k.parent {
                let p = r.get(parent).expect("parent registered");
                assert_eq!(p.children.as_ref().map(|c| c.kind), Some(k.name), "{}", k.name);
            }
            if let Some(c) = &k.children {
                assert_eq!(r.get(c.kind).and_then(|ck| ck.parent), Some(k.name));
            }
        }
    }
}
