//! Validation of a resolved topology against the registry.
//!
//! Every problem is collected (not just the first), each naming the element or
//! connection, the field, the value given and the allowed values.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde_json::Value;

use crate::problem::{Place, Problem};
use crate::registry::{Class, Kind, closest, registry};
use crate::schema::{AttrSpec, Pattern, ValueSchema};
use crate::state::{State, list_states};
use crate::topology::{Attrs, ElementPath, Topology};

/// Longest element name, in characters.
pub const MAX_NAME_LEN: usize = 64;

static TOPOLOGY_ATTRS: LazyLock<Vec<AttrSpec>> = LazyLock::new(|| {
    vec![
        AttrSpec::new("name", "Name", ValueSchema::Text { max_len: 256, pattern: None })
            .writable(&State::ALL)
            .about("Name of the topology."),
        AttrSpec::new("site", "Site", crate::kinds::identifier())
            .nullable()
            .writable(&State::ALL)
            .about("Preferred site of all elements; null lets the testbed choose."),
    ]
});

/// The attributes of a topology itself (besides client data).
pub fn topology_attrs() -> &'static [AttrSpec] {
    &TOPOLOGY_ATTRS
}

/// Whether a key is client data (`_pos`, `_notes`, ...), stored untouched.
pub fn is_client_data(key: &str) -> bool {
    key.starts_with('_')
}

/// Checks an element name; the error says what is wrong.
pub fn check_name(name: &str, pattern: Option<&Pattern>) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("is longer than {MAX_NAME_LEN} characters"));
    }
    if name.contains('.') {
        return Err("contains a dot, which separates an element from its child".into());
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err("starts or ends with white space or contains control characters".into());
    }
    if let Some(p) = pattern
        && !p.is_match(name)
    {
        return Err(format!("does not match `{}`", p.source()));
    }
    Ok(())
}

/// Checks attributes given when creating a component of `kind`.
pub fn check_attrs(specs: &[AttrSpec], type_name: &str, attrs: &Attrs, place: &Place, problems: &mut Vec<Problem>) {
    let initial = State::Created;
    for (key, value) in attrs {
        if is_client_data(key) {
            continue;
        }
        let Some(spec) = specs.iter().find(|s| &s.name == key) else {
            problems.push(unknown_attr(specs, type_name, key, place));
            continue;
        };
        check_value(spec, value, place, problems);
        if !spec.read_only() && !spec.writable_in.contains(&initial) {
            problems.push(Problem::new(
                place.clone(),
                key,
                format!("cannot be set when creating; writable in: {}", list_states(&spec.writable_in)),
            ));
        }
    }
}

/// Checks one value against its spec.
pub fn check_value(spec: &AttrSpec, value: &Value, place: &Place, problems: &mut Vec<Problem>) {
    if spec.read_only() {
        problems.push(Problem::new(place.clone(), &spec.name, "is read-only; the testbed sets it"));
        return;
    }
    if let Err(what) = spec.check(value) {
        problems.push(Problem::new(place.clone(), &spec.name, format!("{value} {what}; allowed: {}", spec.allowed())));
    }
}

/// The problem for an attribute the kind does not have.
pub fn unknown_attr(specs: &[AttrSpec], type_name: &str, key: &str, place: &Place) -> Problem {
    let known: Vec<&str> = specs.iter().filter(|s| !s.read_only()).map(|s| s.name.as_str()).collect();
    let hint = closest(key, &known).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
    Problem::new(
        place.clone(),
        key,
        format!(
            "is not an attribute of {type_name}{hint}; known: {}; client data keys start with `_`",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ),
    )
}

/// Validates a whole topology; an empty list means it is valid.
pub fn validate(topology: &Topology) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_attrs(topology_attrs(), "a topology", &topology.attrs, &Place::Topology, &mut problems);

    let mut seen = BTreeSet::new();
    for element in &topology.elements {
        let path = ElementPath::top(&element.name);
        let place = Place::Element(path.clone());
        if !seen.insert(element.name.as_str()) {
            problems.push(Problem::new(
                place.clone(),
                "name",
                format!("`{}` is used by another element; names must be unique", element.name),
            ));
        }
        if let Err(e) = check_name(&element.name, None) {
            problems.push(Problem::new(place.clone(), "name", format!("`{}` {e}", element.name)));
        }
        check_element_kind(element.kind.0, None, &place, &mut problems);
        check_attrs(&element.kind.attrs, element.kind.name, &element.attrs, &place, &mut problems);
        check_children(element, &mut problems);
    }

    let mut attached: BTreeMap<ElementPath, &ElementPath> = BTreeMap::new();
    for con in &topology.connections {
        let place = Place::Connection(None, format!("{} -- {}", con.ends[0], con.ends[1]));
        if con.kind.class != Class::Connection {
            problems.push(Problem::new(
                place.clone(),
                "type",
                format!(
                    "`{}` is not a connection type; allowed: {}",
                    con.kind.name,
                    registry().names(Class::Connection).join(", ")
                ),
            ));
        }
        if con.ends[0] == con.ends[1] {
            problems.push(Problem::new(
                place.clone(),
                "between",
                format!("joins `{}` to itself; a connection needs two different elements", con.ends[0]),
            ));
        }
        let mut to_external = false;
        for end in &con.ends {
            match topology.element(end) {
                None => problems.push(Problem::new(place.clone(), "between", dangling(topology, end))),
                Some(el) if !el.kind.connectable => problems.push(Problem::new(
                    place.clone(),
                    "between",
                    format!(
                        "`{end}` is a {} and cannot be connected; connect one of its {} instead",
                        el.kind.name,
                        el.kind.children.as_ref().map(|c| c.file_key).unwrap_or("interfaces")
                    ),
                )),
                Some(el) => {
                    to_external |= el.kind.name == "external_network_endpoint";
                    let other = if end == &con.ends[0] { &con.ends[1] } else { &con.ends[0] };
                    if let Some(first) = attached.insert(end.clone(), other) {
                        problems.push(Problem::new(place.clone(), "between", format!("`{end}` is already connected to `{first}`; each interface or endpoint takes one connection")));
                    }
                }
            }
        }
        let expected = if to_external { "fixed_bridge" } else { "bridge" };
        if con.kind.class == Class::Connection && con.kind.name != expected {
            problems.push(Problem::new(
                place.clone(),
                "type",
                format!(
                    "is `{}`, but a connection {} an external network must be `{expected}`",
                    con.kind.name,
                    if to_external { "to" } else { "not to" }
                ),
            ));
        }
        check_attrs(&con.kind.attrs, con.kind.name, &con.attrs, &place, &mut problems);
    }
    problems
}

fn check_element_kind(kind: &Kind, parent: Option<&Kind>, place: &Place, problems: &mut Vec<Problem>) {
    match (kind.class, kind.parent, parent) {
        (Class::Connection, _, _) => problems.push(Problem::new(
            place.clone(),
            "type",
            format!("`{}` is a connection type, not an element type", kind.name),
        )),
        (_, Some(p), None) => problems.push(Problem::new(
            place.clone(),
            "type",
            format!("`{}` must be inside a `{p}` element", kind.name),
        )),
        (_, None, Some(p)) => problems.push(Problem::new(
            place.clone(),
            "type",
            format!("`{}` cannot be a child of `{}`", kind.name, p.name),
        )),
        (_, Some(want), Some(p)) if want != p.name => problems.push(Problem::new(
            place.clone(),
            "type",
            format!(
                "`{}` cannot be a child of `{}`; allowed: {}",
                kind.name,
                p.name,
                p.children.as_ref().map(|c| c.kind).unwrap_or("no children")
            ),
        )),
        _ => {}
    }
}

fn check_children(parent: &crate::topology::Element, problems: &mut Vec<Problem>) {
    if !parent.children.is_empty() && parent.kind.children.is_none() {
        problems.push(Problem::new(
            Place::Element(ElementPath::top(&parent.name)),
            "children",
            format!("a {} has no interfaces or endpoints", parent.kind.name),
        ));
        return;
    }
    let mut seen = BTreeSet::new();
    for child in &parent.children {
        let place = Place::Element(ElementPath::child(&parent.name, &child.name));
        if !seen.insert(child.name.as_str()) {
            problems.push(Problem::new(
                place.clone(),
                "name",
                format!("`{}` appears twice in `{}`", child.name, parent.name),
            ));
        }
        if let Err(e) = check_name(&child.name, child.kind.name_pattern.as_ref()) {
            problems.push(Problem::new(place.clone(), "name", format!("`{}` {e}", child.name)));
        }
        check_element_kind(child.kind.0, Some(parent.kind.0), &place, problems);
        check_attrs(&child.kind.attrs, child.kind.name, &child.attrs, &place, problems);
        if !child.children.is_empty() {
            problems.push(Problem::new(place, "children", "interfaces and endpoints have no children of their own"));
        }
    }
}

fn dangling(topology: &Topology, end: &ElementPath) -> String {
    let Some(top) = topology.elements.iter().find(|e| e.name == end.element) else {
        let names: Vec<&str> = topology.elements.iter().map(|e| e.name.as_str()).collect();
        let hint = closest(&end.element, &names).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
        return format!("no element `{}`{hint}; elements: {}", end.element, names.join(", "));
    };
    let children: Vec<&str> = top.children.iter().map(|c| c.name.as_str()).collect();
    format!(
        "`{}` has no `{}`; it has: {}",
        end.element,
        end.child.as_deref().unwrap_or_default(),
        if children.is_empty() { "nothing".to_string() } else { children.join(", ") }
    )
}
