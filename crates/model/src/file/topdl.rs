//! DETER's topdl (v1 and v2): the typed document, its reader and its writer.
//!
//! A topdl topology is a bipartite graph: *elements* (computers, testbeds,
//! segments, others and, in v2, regions) own *interfaces*, each of which joins
//! its element to a *substrate* (a communication medium). Everything is
//! specialised by free-form `attribute`/`value` pairs. v2 adds *fragments*
//! (named sub-topologies that regions stand for) and *name maps* (per region
//! path, fragment-local name to global name).
//!
//! The outer element's name is the caller's (`experiment` by default); its
//! children are `version`, one `substrates` per substrate, one `elements` per
//! element (wrapping `computer`, `testbed`, ...), `attribute`s, `fragments` and
//! `namemaps`. Names are child elements, never XML attributes. Units are fixed
//! by topdl: capacity `rate` in kb/s, latency `time` in ms, storage `amount`
//! in MB. Interfaces may name substrates that are defined later in the file;
//! references are resolved after the whole document is read.
//!
//! Elements this module does not interpret (`cpu`, `os`, `storage`,
//! `localname`, `status`, `service`, unknown ones) are kept as XML [`Node`]s
//! and written back unchanged, as are all attribute pairs, so a document
//! round-trips: `read(write(d)) == d`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use super::xml::Line;
use super::xml::{self, Node};
use crate::problem::{Place, Problem};

/// The outer element written by default (and DETER's default).
pub const DEFAULT_OUTER: &str = "experiment";
/// Allowed values of a capacity's `kind`.
pub const CAPACITY_KINDS: &[&str] = &["max", "average"];
/// Element classes by their XML name.
pub const CLASS_NAMES: &[&str] = &["computer", "testbed", "segment", "other", "region"];

/// topdl's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `1.0` (fedd's Python topdl): an interface may name several substrates.
    V1,
    /// `2.0` (DETER's Java topdl): regions, fragments and name maps.
    V2,
}

impl Version {
    /// The text written in `<version>`.
    pub fn text(self) -> &'static str {
        match self {
            Version::V1 => "1.0",
            Version::V2 => "2.0",
        }
    }

    /// Parses `1.0`/`1` or `2.0`/`2`.
    pub fn parse(text: &str) -> Option<Version> {
        match text {
            "1.0" | "1" => Some(Version::V1),
            "2.0" | "2" => Some(Version::V2),
            _ => None,
        }
    }
}

/// A free-form `attribute`/`value` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute's name (`ip4_address`, `startup`, ...).
    pub key: String,
    /// Its value, as text.
    pub value: String,
}

/// A rate limit: `rate` in kb/s and its `kind` (`max` or `average`).
#[derive(Clone, Debug, PartialEq)]
pub struct Capacity {
    /// kb/s.
    pub rate: f64,
    /// `max` or `average`.
    pub kind: String,
}

/// A latency: `time` in ms and its `kind` (free text, usually `average`).
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    /// Milliseconds.
    pub time: f64,
    /// Free text.
    pub kind: String,
}

/// A communication medium joining the interfaces that name it.
#[derive(Clone, Debug, PartialEq)]
pub struct Substrate {
    /// Unique among the substrates of a topology.
    pub name: String,
    /// Rate limit for all its interfaces (interfaces may override it).
    pub capacity: Option<Capacity>,
    /// Latency for all its interfaces (interfaces may override it).
    pub latency: Option<Latency>,
    /// Attribute pairs (`loss`, ...).
    pub attributes: Vec<Attribute>,
    /// Child elements kept as read (`localname`, `status`, `service`, ...).
    pub extra: Vec<Node>,
    /// Where it was read.
    pub line: Line,
}

/// An element's attachment to a substrate.
#[derive(Clone, Debug, PartialEq)]
pub struct Interface {
    /// The substrates it joins: exactly one in v2, one or more in v1.
    pub substrates: Vec<String>,
    /// Unique within its element (`inf000`, `inf001`, ... when not given).
    pub name: String,
    /// Overrides the substrate's capacity for this interface.
    pub capacity: Option<Capacity>,
    /// Overrides the substrate's latency for this interface.
    pub latency: Option<Latency>,
    /// Attribute pairs (`ip4_address`, `ip4_netmask`, ...).
    pub attributes: Vec<Attribute>,
    /// Child elements kept as read.
    pub extra: Vec<Node>,
    /// Where it was read.
    pub line: Line,
}

/// What an element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A computer (physical, virtual or a process).
    Computer,
    /// A whole testbed in a federation.
    Testbed,
    /// A segment of another testbed.
    Segment,
    /// Anything else.
    Other,
    /// A placeholder for a fragment (v2).
    Region,
}

impl Class {
    /// The XML element name.
    pub fn xml_name(self) -> &'static str {
        match self {
            Class::Computer => "computer",
            Class::Testbed => "testbed",
            Class::Segment => "segment",
            Class::Other => "other",
            Class::Region => "region",
        }
    }

    /// Parses an XML element name.
    pub fn parse(name: &str) -> Option<Class> {
        Some(match name {
            "computer" => Class::Computer,
            "testbed" => Class::Testbed,
            "segment" => Class::Segment,
            "other" => Class::Other,
            "region" => Class::Region,
            _ => return None,
        })
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.xml_name())
    }
}

/// What a region stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Expansions left: 0 vanishes, n > 0 expands and its inner regions get n - 1.
    pub level: u32,
    /// The fragment it expands to.
    pub fragname: String,
}

/// An element of a topology.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    /// What it is.
    pub class: Class,
    /// Unique among the elements of a topology.
    pub name: String,
    /// Its interfaces in order.
    pub interfaces: Vec<Interface>,
    /// Attribute pairs (`type`, `osid`, `startup`, `testbed`, ...).
    pub attributes: Vec<Attribute>,
    /// Level and fragment name, for regions.
    pub region: Option<Region>,
    /// Child elements kept as read (`cpu`, `os`, `storage`, `uri`, ...).
    pub extra: Vec<Node>,
    /// Where it was read.
    pub line: Line,
}

/// Which fragment element takes over a region's interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfMap {
    /// The fragment element.
    pub inner: String,
    /// The region's interface name.
    pub outer: String,
}

/// A named sub-topology that regions expand to.
#[derive(Clone, Debug, PartialEq)]
pub struct Fragment {
    /// The name regions give as `fragname`.
    pub name: String,
    /// Its substrates and elements (and, possibly, regions).
    pub topology: Topdl,
    /// Region interface to fragment element.
    pub ifmap: Vec<IfMap>,
    /// Child elements kept as read.
    pub extra: Vec<Node>,
    /// Where it was read.
    pub line: Line,
}

/// One name of a name map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameMapEntry {
    /// The fragment-local name (written as `<outer>`, as DETER's writer does).
    pub local: String,
    /// The global name in the expanded layout (written as `<inner>`).
    pub global: String,
}

/// The names of one region's expansion, keyed by the region's path.
#[derive(Clone, Debug, PartialEq)]
pub struct NameMap {
    /// `/r1`, `/r1/r2`: region names from the top, each local to its fragment.
    pub pathname: String,
    /// Fragment-local name to global name.
    pub entries: Vec<NameMapEntry>,
    /// Child elements kept as read (`description`, ...).
    pub extra: Vec<Node>,
    /// Where it was read.
    pub line: Line,
}

/// A topdl topology (a whole document, or a fragment's body).
#[derive(Clone, Debug, PartialEq)]
pub struct Topdl {
    /// The version it was read as, and will be written as.
    pub version: Version,
    /// Substrates in document order.
    pub substrates: Vec<Substrate>,
    /// Elements in document order.
    pub elements: Vec<Element>,
    /// The topology's own attribute pairs.
    pub attributes: Vec<Attribute>,
    /// Fragments (v2).
    pub fragments: Vec<Fragment>,
    /// Name maps (v2).
    pub namemaps: Vec<NameMap>,
    /// Child elements kept as read.
    pub extra: Vec<Node>,
}

impl Topdl {
    /// An empty v2 topology.
    pub fn new(version: Version) -> Topdl {
        Topdl {
            version,
            substrates: Vec::new(),
            elements: Vec::new(),
            attributes: Vec::new(),
            fragments: Vec::new(),
            namemaps: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// The substrate named `name`.
    pub fn substrate(&self, name: &str) -> Option<&Substrate> {
        self.substrates.iter().find(|s| s.name == name)
    }

    /// The element named `name`.
    pub fn element(&self, name: &str) -> Option<&Element> {
        self.elements.iter().find(|e| e.name == name)
    }
}

/// The value of the first attribute pair named `key`.
pub fn attribute<'a>(attributes: &'a [Attribute], key: &str) -> Option<&'a str> {
    attributes.iter().find(|a| a.key == key).map(|a| a.value.as_str())
}

/// Reads a topdl document (any outer element name).
pub fn read(text: &str) -> Result<Topdl, Vec<Problem>> {
    let root =
        xml::parse(text).map_err(|e| vec![Problem::new(Place::Xml(e.line, "XML".into()), "(syntax)", e.message)])?;
    let mut r = Reader::default();
    let topdl = r.topology(&root, None);
    if r.problems.is_empty() { Ok(topdl) } else { Err(r.problems) }
}

#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
}

fn place(node: &Node, what: impl fmt::Display) -> Place {
    Place::Xml(node.line.0, what.to_string())
}

impl Reader {
    fn problem(&mut self, place: Place, field: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(place, field, message));
    }

    /// The text of the one child named `field`; a problem if missing or repeated.
    fn required(&mut self, node: &Node, what: &str, field: &str) -> String {
        let mut found = node.children.iter().filter(|c| c.name == field);
        match (found.next(), found.next()) {
            (Some(c), None) => c.value().to_string(),
            (Some(_), Some(second)) => {
                self.problem(place(second, what), field, format!("appears twice in `<{}>`", node.name));
                String::new()
            }
            (None, _) => {
                self.problem(place(node, what), field, format!("is missing; `<{}>` needs a `<{field}>`", node.name));
                String::new()
            }
        }
    }

    fn attribute(&mut self, node: &Node, what: &str) -> Option<Attribute> {
        let key = self.required(node, what, "attribute");
        let value = self.required(node, &format!("{what}, attribute `{key}`"), "value");
        for c in &node.children {
            if c.name != "attribute" && c.name != "value" {
                self.problem(place(c, what), &c.name, "is not part of an attribute; allowed: attribute, value");
            }
        }
        if key.is_empty() { None } else { Some(Attribute { key, value }) }
    }

    fn number(&mut self, node: &Node, what: &str, field: &str, unit: &str) -> f64 {
        let text = self.required(node, what, field);
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            _ => {
                if !text.is_empty() || node.children.iter().any(|c| c.name == field) {
                    self.problem(
                        place(node, what),
                        field,
                        format!("`{text}` is not a number; allowed: a number of {unit} from 0 up, like 100"),
                    );
                }
                0.0
            }
        }
    }

    fn capacity(&mut self, node: &Node, what: &str) -> Capacity {
        let rate = self.number(node, what, "rate", "kb/s");
        let kind = self.required(node, what, "kind");
        if !kind.is_empty() && !CAPACITY_KINDS.contains(&kind.as_str()) {
            self.problem(
                place(node, what),
                "kind",
                format!("`{kind}` is not a capacity kind; allowed: {}", CAPACITY_KINDS.join(", ")),
            );
        }
        Capacity { rate, kind }
    }

    fn latency(&mut self, node: &Node, what: &str) -> Latency {
        let time = self.number(node, what, "time", "ms");
        let kind = self.required(node, what, "kind");
        Latency { time, kind }
    }

    fn topology(&mut self, root: &Node, version_hint: Option<Version>) -> Topdl {
        let mut t = Topdl::new(version_hint.unwrap_or(Version::V1));
        let mut version_seen = false;
        for c in &root.children {
            match c.name.as_str() {
                "version" => {
                    version_seen = true;
                    match Version::parse(c.value()) {
                        Some(v) => t.version = v,
                        None => self.problem(
                            place(c, "topology"),
                            "version",
                            format!("`{}` is not a topdl version; allowed: 1.0, 2.0", c.value()),
                        ),
                    }
                }
                "substrates" => {
                    let s = self.substrate(c);
                    t.substrates.push(s);
                }
                "elements" => {
                    if c.children.is_empty() {
                        self.problem(
                            place(c, "elements"),
                            "elements",
                            format!("is empty; it wraps one of: {}", CLASS_NAMES.join(", ")),
                        );
                    }
                    for e in &c.children {
                        if let Some(e) = self.element(e) {
                            t.elements.push(e);
                        }
                    }
                }
                "attribute" => {
                    if let Some(a) = self.attribute(c, "topology") {
                        t.attributes.push(a);
                    }
                }
                "fragments" => {
                    let f = self.fragment(c);
                    t.fragments.push(f);
                }
                "namemaps" => {
                    let n = self.namemap(c);
                    t.namemaps.push(n);
                }
                _ => t.extra.push(c.clone()),
            }
        }
        if !version_seen && version_hint.is_none() {
            let v2 = !t.fragments.is_empty()
                || !t.namemaps.is_empty()
                || t.elements.iter().any(|e| e.class == Class::Region);
            t.version = if v2 { Version::V2 } else { Version::V1 };
        }
        self.check_topology(&t, root);
        t
    }

    fn substrate(&mut self, node: &Node) -> Substrate {
        let name = self.required(node, "substrate", "name");
        let what = format!("substrate {name}");
        let mut s = Substrate {
            name,
            capacity: None,
            latency: None,
            attributes: Vec::new(),
            extra: Vec::new(),
            line: node.line,
        };
        for c in &node.children {
            match c.name.as_str() {
                "name" => {}
                "capacity" => s.capacity = Some(self.capacity(c, &what)),
                "latency" => s.latency = Some(self.latency(c, &what)),
                "attribute" => s.attributes.extend(self.attribute(c, &what)),
                _ => s.extra.push(c.clone()),
            }
        }
        s
    }

    fn element(&mut self, node: &Node) -> Option<Element> {
        let Some(class) = Class::parse(&node.name) else {
            self.problem(
                place(node, "elements"),
                &node.name,
                format!("is not an element class; allowed: {}", CLASS_NAMES.join(", ")),
            );
            return None;
        };
        let name = self.required(node, &class.to_string(), "name");
        let what = format!("{class} {name}");
        let mut e = Element {
            class,
            name,
            interfaces: Vec::new(),
            attributes: Vec::new(),
            region: None,
            extra: Vec::new(),
            line: node.line,
        };
        let mut level = None;
        let mut fragname = None;
        for c in &node.children {
            match (c.name.as_str(), class) {
                ("name", _) => {}
                ("interface", _) => {
                    let i = self.interface(c, &what, e.interfaces.len());
                    e.interfaces.push(i);
                }
                ("attribute", _) => e.attributes.extend(self.attribute(c, &what)),
                ("level", Class::Region) => match c.value().parse::<u32>() {
                    Ok(l) => level = Some(l),
                    Err(_) => self.problem(
                        place(c, &what),
                        "level",
                        format!("`{}` is not a level; allowed: a whole number from 0 to {}", c.value(), u32::MAX),
                    ),
                },
                ("fragname", Class::Region) => fragname = Some(c.value().to_string()),
                _ => e.extra.push(c.clone()),
            }
        }
        // Interfaces without a name are numbered like DETER's: inf000, inf001, ...
        let mut taken: BTreeSet<String> = e.interfaces.iter().map(|i| i.name.clone()).collect();
        for (n, i) in e.interfaces.iter_mut().enumerate() {
            if i.name.is_empty() {
                let name = (n..).map(|k| format!("inf{k:03}")).find(|k| !taken.contains(k)).expect("a free name");
                taken.insert(name.clone());
                i.name = name;
            }
        }
        let mut names = BTreeSet::new();
        for i in &e.interfaces {
            if !names.insert(i.name.as_str()) {
                self.problem(
                    Place::Xml(i.line.0, what.clone()),
                    "interface",
                    format!("name `{}` is used twice; interface names are unique per element", i.name),
                );
            }
        }
        if class == Class::Region {
            let fragname = fragname.unwrap_or_else(|| {
                self.problem(place(node, &what), "fragname", "is missing; a region names the fragment it stands for");
                String::new()
            });
            e.region = Some(Region { level: level.unwrap_or(1), fragname });
        }
        if e.name.is_empty() { None } else { Some(e) }
    }

    fn interface(&mut self, node: &Node, owner: &str, index: usize) -> Interface {
        let mut i = Interface {
            substrates: Vec::new(),
            name: String::new(),
            capacity: None,
            latency: None,
            attributes: Vec::new(),
            extra: Vec::new(),
            line: node.line,
        };
        let what = format!("{owner}, interface #{}", index + 1);
        for c in &node.children {
            match c.name.as_str() {
                "substrate" => i.substrates.push(c.value().to_string()),
                "name" => i.name = c.value().to_string(),
                "capacity" => i.capacity = Some(self.capacity(c, &what)),
                "latency" => i.latency = Some(self.latency(c, &what)),
                "attribute" => i.attributes.extend(self.attribute(c, &what)),
                _ => i.extra.push(c.clone()),
            }
        }
        if i.substrates.is_empty() {
            self.problem(place(node, &what), "substrate", "is missing; an interface joins its element to a substrate");
        }
        i
    }

    fn fragment(&mut self, node: &Node) -> Fragment {
        let name = self.required(node, "fragment", "name");
        let what = format!("fragment {name}");
        let mut f =
            Fragment { name, topology: Topdl::new(Version::V2), ifmap: Vec::new(), extra: Vec::new(), line: node.line };
        let mut seen_topology = false;
        for c in &node.children {
            match c.name.as_str() {
                "name" => {}
                "topology" => {
                    if seen_topology {
                        self.problem(place(c, &what), "topology", "appears twice in a fragment");
                    }
                    seen_topology = true;
                    f.topology = self.topology(c, Some(Version::V2));
                }
                "ifmap" => {
                    let inner = self.required(c, &what, "inner");
                    let outer = self.required(c, &what, "outer");
                    f.ifmap.push(IfMap { inner, outer });
                }
                _ => f.extra.push(c.clone()),
            }
        }
        if !seen_topology {
            self.problem(place(node, &what), "topology", "is missing; a fragment holds a `<topology>`");
        }
        for m in &f.ifmap {
            if !m.inner.is_empty() && f.topology.element(&m.inner).is_none() && seen_topology {
                let known: Vec<&str> = f.topology.elements.iter().map(|e| e.name.as_str()).collect();
                self.problem(
                    place(node, &what),
                    "ifmap",
                    format!("inner `{}` is not an element of the fragment; elements: {}", m.inner, known.join(", ")),
                );
            }
        }
        f
    }

    fn namemap(&mut self, node: &Node) -> NameMap {
        let pathname = self.required(node, "namemaps", "pathname");
        let what = format!("namemap {pathname}");
        if !pathname.is_empty() && !pathname.starts_with('/') {
            self.problem(place(node, &what), "pathname", format!("`{pathname}` must start with `/`, like /r1/r2"));
        }
        let mut n = NameMap { pathname, entries: Vec::new(), extra: Vec::new(), line: node.line };
        for c in &node.children {
            match c.name.as_str() {
                "pathname" => {}
                "namemap" => {
                    // DETER writes the fragment-local name as <outer>.
                    let local = self.required(c, &what, "outer");
                    let global = self.required(c, &what, "inner");
                    n.entries.push(NameMapEntry { local, global });
                }
                _ => n.extra.push(c.clone()),
            }
        }
        n
    }

    /// Unique names, and interfaces that name substrates of this topology.
    fn check_topology(&mut self, t: &Topdl, root: &Node) {
        let mut substrates = BTreeMap::new();
        for s in &t.substrates {
            if s.name.is_empty() {
                continue;
            }
            if let Some(first) = substrates.insert(s.name.as_str(), s.line.0) {
                self.problem(
                    Place::Xml(s.line.0, format!("substrate {}", s.name)),
                    "name",
                    format!("`{}` is already a substrate (line {first}); substrate names are unique", s.name),
                );
            }
        }
        let mut elements = BTreeMap::new();
        for e in &t.elements {
            if let Some(first) = elements.insert(e.name.as_str(), e.line.0) {
                self.problem(
                    Place::Xml(e.line.0, format!("{} {}", e.class, e.name)),
                    "name",
                    format!("`{}` is already an element (line {first}); element names are unique", e.name),
                );
            }
            for i in &e.interfaces {
                let what = format!("{} {}, interface {}", e.class, e.name, i.name);
                if t.version == Version::V2 && i.substrates.len() > 1 {
                    self.problem(
                        Place::Xml(i.line.0, what.clone()),
                        "substrate",
                        format!(
                            "names {} substrates; topdl 2.0 allows exactly one (1.0 allows several)",
                            i.substrates.len()
                        ),
                    );
                }
                for s in &i.substrates {
                    if !substrates.contains_key(s.as_str()) {
                        let known: Vec<&str> = substrates.keys().copied().collect();
                        self.problem(
                            Place::Xml(i.line.0, what.clone()),
                            "substrate",
                            format!("`{s}` is not a substrate of this topology; substrates: {}", list(&known)),
                        );
                    }
                }
            }
        }
        let mut fragments = BTreeSet::new();
        for f in &t.fragments {
            if !fragments.insert(f.name.as_str()) {
                self.problem(
                    Place::Xml(f.line.0, format!("fragment {}", f.name)),
                    "name",
                    format!("`{}` is already a fragment; fragment names are unique", f.name),
                );
            }
        }
        if t.version == Version::V1 && (!t.fragments.is_empty() || !t.namemaps.is_empty()) {
            self.problem(place(root, "topology"), "version", "1.0 has no fragments or namemaps; write 2.0");
        }
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() { "(none)".to_string() } else { items.join(", ") }
}

/// How to write a document.
#[derive(Clone, Debug)]
pub struct WriteConfig<'a> {
    /// The outer element's name.
    pub outer: &'a str,
}

impl Default for WriteConfig<'_> {
    fn default() -> Self {
        WriteConfig { outer: DEFAULT_OUTER }
    }
}

/// Writes a document: an XML declaration, then the topology under `outer`.
pub fn write(t: &Topdl, config: &WriteConfig<'_>) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml::write_node(&mut out, &topology_node(config.outer, t), 0);
    out
}

/// A number as topdl writes it: whole numbers without a fraction.
pub fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

fn attribute_node(a: &Attribute) -> Node {
    Node::new("attribute").with(Node::leaf("attribute", &a.key)).with(Node::leaf("value", &a.value))
}

fn capacity_node(c: &Capacity) -> Node {
    Node::new("capacity").with(Node::leaf("rate", number_text(c.rate))).with(Node::leaf("kind", &c.kind))
}

fn latency_node(l: &Latency) -> Node {
    Node::new("latency").with(Node::leaf("time", number_text(l.time))).with(Node::leaf("kind", &l.kind))
}

fn topology_node(name: &str, t: &Topdl) -> Node {
    let mut n = Node::new(name).with(Node::leaf("version", t.version.text()));
    for s in &t.substrates {
        let mut sn = Node::new("substrates").with(Node::leaf("name", &s.name));
        sn.children.extend(s.capacity.as_ref().map(capacity_node));
        sn.children.extend(s.latency.as_ref().map(latency_node));
        sn.children.extend(s.attributes.iter().map(attribute_node));
        sn.children.extend(s.extra.iter().cloned());
        n.children.push(sn);
    }
    for e in &t.elements {
        let mut en = Node::new(e.class.xml_name()).with(Node::leaf("name", &e.name));
        en.children.extend(e.extra.iter().cloned());
        for i in &e.interfaces {
            let mut inode = Node::new("interface");
            inode.children.extend(i.substrates.iter().map(|s| Node::leaf("substrate", s)));
            inode.children.push(Node::leaf("name", &i.name));
            inode.children.extend(i.capacity.as_ref().map(capacity_node));
            inode.children.extend(i.latency.as_ref().map(latency_node));
            inode.children.extend(i.attributes.iter().map(attribute_node));
            inode.children.extend(i.extra.iter().cloned());
            en.children.push(inode);
        }
        en.children.extend(e.attributes.iter().map(attribute_node));
        if let Some(r) = &e.region {
            en.children.push(Node::leaf("level", r.level.to_string()));
            en.children.push(Node::leaf("fragname", &r.fragname));
        }
        n.children.push(Node::new("elements").with(en));
    }
    n.children.extend(t.attributes.iter().map(attribute_node));
    for f in &t.fragments {
        let mut fnode = Node::new("fragments").with(Node::leaf("name", &f.name));
        fnode.children.push(topology_node("topology", &f.topology));
        for m in &f.ifmap {
            fnode
                .children
                .push(Node::new("ifmap").with(Node::leaf("inner", &m.inner)).with(Node::leaf("outer", &m.outer)));
        }
        fnode.children.extend(f.extra.iter().cloned());
        n.children.push(fnode);
    }
    for m in &t.namemaps {
        let mut mnode = Node::new("namemaps").with(Node::leaf("pathname", &m.pathname));
        for e in &m.entries {
            mnode
                .children
                .push(Node::new("namemap").with(Node::leaf("inner", &e.global)).with(Node::leaf("outer", &e.local)));
        }
        mnode.children.extend(m.extra.iter().cloned());
        n.children.push(mnode);
    }
    n.children.extend(t.extra.iter().cloned());
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"<experiment>
  <version>1.0</version>
  <elements><computer><name>a</name>
    <cpu count="2"><type>x86</type></cpu>
    <interface><substrate>lan</substrate><substrate>wan</substrate>
      <capacity><rate>100000</rate><kind>max</kind></capacity></interface>
    <interface><substrate>lan</substrate></interface>
    <attribute><attribute>startup</attribute><value>/bin/go &amp; run</value></attribute>
  </computer></elements>
  <substrates><name>lan</name><latency><time>10</time><kind>average</kind></latency>
    <attribute><attribute>loss</attribute><value>0.01</value></attribute></substrates>
  <substrates><name>wan</name><status>active</status></substrates>
  <mystery x="1">kept</mystery>
</experiment>"#;

    #[test]
    fn reads_v1_with_later_substrates_auto_names_and_keeps_unknown_parts() {
        let t = read(V1).expect("valid");
        assert_eq!(t.version, Version::V1);
        let a = &t.elements[0];
        assert_eq!(a.interfaces[0].substrates, ["lan", "wan"]);
        assert_eq!(a.interfaces[0].name, "inf000");
        assert_eq!(a.interfaces[1].name, "inf001");
        assert_eq!(a.interfaces[0].capacity.as_ref().map(|c| c.rate), Some(100000.0));
        assert_eq!(attribute(&a.attributes, "startup"), Some("/bin/go & run"));
        assert_eq!(a.extra[0].name, "cpu");
        assert_eq!(t.substrate("wan").expect("wan").extra[0].name, "status");
        assert_eq!(t.extra[0].name, "mystery");
        let text = write(&t, &WriteConfig { outer: "topology" });
        assert!(text.contains("<topology>\n  <version>1.0</version>"), "{text}");
        assert!(text.contains("<cpu count=\"2\">"), "{text}");
        assert_eq!(read(&text).expect("own output"), t);
    }

    #[test]
    fn every_bad_part_is_named_with_its_line_and_the_allowed_values() {
        let text = "<experiment>\n<version>3.0</version>\n<substrates><name>s</name>\
            <capacity><rate>fast</rate><kind>peak</kind></capacity></substrates>\n\
            <substrates><name>s</name></substrates>\n\
            <elements><computer><name>c</name><interface><substrate>nope</substrate></interface></computer></elements>\n\
            <elements><gadget/></elements>\n\
            <elements><region><name>r</name><level>-1</level></region></elements>\n</experiment>";
        let problems = read(text).expect_err("broken");
        let report = crate::problem::report(&problems);
        for expected in [
            "line 2, topology: `version`: `3.0` is not a topdl version; allowed: 1.0, 2.0",
            "line 3, substrate s: `rate`: `fast` is not a number",
            "`kind`: `peak` is not a capacity kind; allowed: max, average",
            "line 4, substrate s: `name`: `s` is already a substrate (line 3)",
            "line 5, computer c, interface inf000: `substrate`: `nope` is not a substrate of this topology; substrates: s",
            "line 6, elements: `gadget`: is not an element class; allowed: computer, testbed, segment, other, region",
            "line 7, region r: `level`: `-1` is not a level",
            "line 7, region r: `fragname`: is missing",
        ] {
            assert!(report.contains(expected), "missing {expected:?} in\n{report}");
        }
    }

    #[test]
    fn v2_interfaces_name_one_substrate() {
        let text = "<experiment><version>2.0</version><substrates><name>a</name></substrates>\
            <substrates><name>b</name></substrates><elements><computer><name>c</name>\
            <interface><substrate>a</substrate><substrate>b</substrate></interface></computer></elements></experiment>";
        let report = crate::problem::report(&read(text).expect_err("two substrates"));
        assert!(report.contains("topdl 2.0 allows exactly one"), "{report}");
    }
}
