//! The resolved topology: elements (with their children) and connections,
//! each bound to a registered [`Kind`].
//!
//! Topology files parse into raw records (see `file`), which are resolved into
//! these values; everything after that (validation, planning, conversion)
//! works on these values only.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use serde_json::Value;

use crate::registry::Kind;

/// Attribute values by name; `_*` keys are client data, stored untouched.
pub type Attrs = BTreeMap<String, Value>;

/// A reference to a registered kind, compared by name.
#[derive(Clone, Copy)]
pub struct KindRef(pub &'static Kind);

impl Deref for KindRef {
    type Target = Kind;
    fn deref(&self) -> &Kind {
        self.0
    }
}

impl PartialEq for KindRef {
    fn eq(&self, other: &KindRef) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for KindRef {}

impl fmt::Debug for KindRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

/// A topology: its own attributes, its elements and its connections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Topology {
    /// `name`, `site` and client data.
    pub attrs: Attrs,
    /// Top-level elements in file order, each with its children.
    pub elements: Vec<Element>,
    /// Connections in file order.
    pub connections: Vec<Connection>,
}

/// An element and, for nodes, switches and external networks, its children.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    /// Unique among its siblings; `eth0` for interfaces.
    pub name: String,
    /// The element's kind.
    pub kind: KindRef,
    /// Attributes given by the user.
    pub attrs: Attrs,
    /// Interfaces or endpoints, in order.
    pub children: Vec<Element>,
}

/// A link between two connectable elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// `bridge` or `fixed_bridge`.
    pub kind: KindRef,
    /// The two ends; the first is ToMaTo's element A (see `*_from`/`*_to`).
    pub ends: [ElementPath; 2],
    /// Attributes given by the user.
    pub attrs: Attrs,
}

/// The name of an element: `pc1`, or `pc1.eth0` for a child.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ElementPath {
    /// The top-level element.
    pub element: String,
    /// The child, if the path names one.
    pub child: Option<String>,
}

impl ElementPath {
    /// A path to a top-level element.
    pub fn top(element: impl Into<String>) -> ElementPath {
        ElementPath { element: element.into(), child: None }
    }

    /// A path to a child.
    pub fn child(element: impl Into<String>, child: impl Into<String>) -> ElementPath {
        ElementPath { element: element.into(), child: Some(child.into()) }
    }

    /// Parses `a` or `a.b`; element names contain no dots.
    pub fn parse(text: &str) -> ElementPath {
        match text.split_once('.') {
            Some((e, c)) => ElementPath::child(e, c),
            None => ElementPath::top(text),
        }
    }
}

impl fmt::Display for ElementPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.child {
            Some(c) => write!(f, "{}.{}", self.element, c),
            None => f.write_str(&self.element),
        }
    }
}

/// Identifies an element or a connection of a topology.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentId {
    /// An element by path.
    Element(ElementPath),
    /// A connection by its two ends.
    Connection([ElementPath; 2]),
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentId::Element(p) => write!(f, "element {p}"),
            ComponentId::Connection([a, b]) => write!(f, "connection {a} -- {b}"),
        }
    }
}

impl Topology {
    /// The element at `path`, child or not.
    pub fn element(&self, path: &ElementPath) -> Option<&Element> {
        let top = self.elements.iter().find(|e| e.name == path.element)?;
        match &path.child {
            None => Some(top),
            Some(c) => top.children.iter().find(|ch| &ch.name == c),
        }
    }

    /// Every element with its path: each top-level element, then its children.
    pub fn walk(&self) -> impl Iterator<Item = (ElementPath, &Element)> {
        self.elements.iter().flat_map(|e| {
            std::iter::once((ElementPath::top(&e.name), e))
                .chain(e.children.iter().map(|c| (ElementPath::child(&e.name, &c.name), c)))
        })
    }

    /// The connection attached to the element at `path`, if any.
    pub fn connection_of(&self, path: &ElementPath) -> Option<&Connection> {
        self.connections.iter().find(|c| c.ends.contains(path))
    }
}

impl Connection {
    /// The connection's identity.
    pub fn id(&self) -> ComponentId {
        ComponentId::Connection(self.ends.clone())
    }
}
