//! ToMaTo's own topology files (`topology_export` / `topology_import`).
//!
//! ToMaTo 4 writes `{"file_information": {"version": 4}, "topology": {...}}`
//! with attributes flat in each record and string ids; version 3 nests them in
//! `attrs` and uses numeric ids. Its import reads 3 and 4; those are the only
//! versions its code and documents show, so we read both and write 4, which
//! every ToMaTo 4 imports. Runtime fields that ToMaTo's export strips (or that
//! appear in exports of running topologies: `host_info`, `info_next_sync`,
//! `rextfv_run_status`, ...) are dropped on import and reported as notes.
//!
//! Ids in our exports are element paths (`pc1`, `pc1.eth0`), so the files stay
//! readable; connections get `c1`, `c2`, ... and, as in ToMaTo's export, no
//! `type` (it follows from the ends).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::problem::{Place, Problem};
use crate::registry::{Class, Kind, registry};
use crate::schema::ValueSchema;
use crate::topology::{Attrs, Connection, Element, ElementPath, KindRef, Topology};

/// The version this module writes.
pub const WRITE_VERSION: u64 = 4;
/// The versions this module reads.
pub const READ_VERSIONS: &[u64] = &[3, 4];

/// Fields of ToMaTo records that describe a running deployment, not a design.
const RUNTIME_FIELDS: &[&str] = &[
    "usage",
    "debug",
    "bridge",
    "capture_port",
    "websocket_pid",
    "vmid",
    "vncpid",
    "host",
    "websocket_port",
    "vncport",
    "peers",
    "pubkey",
    "path",
    "port",
    "host_fileserver_port",
    "capture_pid",
    "topology",
    "state",
    "vncpassword",
    "host_info",
    "custom_template",
    "timeout",
    "ipspy_pid",
    "ipspy_id",
    "last_sync",
    "rextfv_supported",
    "rextfv_status",
    "rextfv_run_status",
    "rextfv_max_size",
    "info_last_sync",
    "info_next_sync",
    "restricted",
    "state_max",
    "children",
    "connection",
    "host_problems",
    "host_site",
    "used_addresses",
    "num",
    "tech",
    "args_doc",
    "pid",
    "permissions",
    "id",
];

/// A topology read from a ToMaTo file, with problems and dropped fields.
pub struct Imported {
    /// The topology.
    pub topology: Topology,
    /// What could not be imported.
    pub problems: Vec<Problem>,
    /// Runtime fields that were dropped, one line each.
    pub notes: Vec<String>,
}

/// Writes a topology as a ToMaTo 4 export.
pub fn export(topology: &Topology) -> Value {
    let mut top: Map<String, Value> = topology.attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut elements = Vec::new();
    for el in &topology.elements {
        elements.push(record(&ElementPath::top(&el.name), el, None));
        for ch in &el.children {
            elements.push(record(&ElementPath::child(&el.name, &ch.name), ch, Some(&el.name)));
        }
    }
    let connections: Vec<Value> = topology
        .connections
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut rec: Map<String, Value> = c.attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            rec.insert("id".into(), json!(format!("c{}", i + 1)));
            rec.insert("elements".into(), json!([c.ends[0].to_string(), c.ends[1].to_string()]));
            Value::Object(rec)
        })
        .collect();
    top.insert("elements".into(), Value::Array(elements));
    top.insert("connections".into(), Value::Array(connections));
    json!({ "file_information": { "version": WRITE_VERSION }, "topology": top })
}

fn record(path: &ElementPath, el: &Element, parent: Option<&str>) -> Value {
    let mut rec: Map<String, Value> = el.attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    rec.insert("id".into(), json!(path.to_string()));
    rec.insert("type".into(), json!(el.kind.tomato_name));
    rec.insert("parent".into(), json!(parent));
    rec.insert("name".into(), json!(el.name));
    Value::Object(rec)
}

/// Whether a document is a ToMaTo file (it has `file_information`).
pub fn is_tomato(doc: &Value) -> bool {
    doc.get("file_information").is_some()
}

/// Reads a ToMaTo export of version 3 or 4.
pub fn import(doc: &Value) -> Imported {
    let mut out = Imported { topology: Topology::default(), problems: Vec::new(), notes: Vec::new() };
    let version = doc.get("file_information").and_then(|f| f.get("version")).and_then(Value::as_u64);
    let Some(version) = version.filter(|v| READ_VERSIONS.contains(v)) else {
        let given = doc.get("file_information").and_then(|f| f.get("version")).cloned().unwrap_or(Value::Null);
        out.problems.push(Problem::new(
            Place::File,
            "file_information.version",
            format!("{given} is not supported; supported versions: 3, 4"),
        ));
        return out;
    };
    let Some(top) = doc.get("topology").and_then(Value::as_object) else {
        out.problems.push(Problem::new(Place::File, "topology", "is missing or not a map"));
        return out;
    };
    let flat = |rec: &Map<String, Value>| -> Map<String, Value> {
        let mut flat = rec.clone();
        if version == 3
            && let Some(Value::Object(attrs)) = flat.remove("attrs")
        {
            flat.extend(attrs);
        }
        flat
    };
    let top = flat(top);
    for (k, v) in &top {
        match k.as_str() {
            "elements" | "connections" => {}
            _ if RUNTIME_FIELDS.contains(&k.as_str()) => {
                out.notes.push(format!("topology: dropped runtime field `{k}`"))
            }
            _ => {
                out.topology.attrs.insert(k.clone(), v.clone());
            }
        }
    }
    let records: Vec<Map<String, Value>> = top
        .get("elements")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).map(flat).collect())
        .unwrap_or_default();

    // Top-level elements first, then children under their parents' names.
    let mut paths: BTreeMap<String, ElementPath> = BTreeMap::new();
    for rec in records.iter().filter(|r| r.get("parent").is_none_or(Value::is_null)) {
        if let Some((id, el)) = import_element(rec, None, &mut out) {
            paths.insert(id, ElementPath::top(&el.name));
            out.topology.elements.push(el);
        }
    }
    for rec in records.iter().filter(|r| r.get("parent").is_some_and(|p| !p.is_null())) {
        let parent_id = id_text(rec.get("parent"));
        let Some(parent_path) = paths.get(&parent_id).cloned() else {
            out.problems.push(Problem::new(
                Place::Element(ElementPath::top(format!("#{}", id_text(rec.get("id"))))),
                "parent",
                format!("names element {parent_id}, which is not a top-level element of the file"),
            ));
            continue;
        };
        let parent_idx =
            out.topology.elements.iter().position(|e| e.name == parent_path.element).expect("path just built");
        let parent = out.topology.elements[parent_idx].clone();
        if let Some((id, el)) = import_element(rec, Some((parent.kind.0, &parent)), &mut out) {
            paths.insert(id, ElementPath::child(&parent_path.element, &el.name));
            out.topology.elements[parent_idx].children.push(el);
        }
    }

    let connections = top.get("connections").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, con) in connections.iter().enumerate() {
        let Some(rec) = con.as_object().map(flat) else { continue };
        let ids: Vec<String> = rec
            .get("elements")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| id_text(Some(v))).collect())
            .unwrap_or_default();
        let place = Place::Connection(Some(i), ids.join(" -- "));
        if ids.len() != 2 {
            out.problems.push(Problem::new(place, "elements", "must list exactly two element ids"));
            continue;
        }
        let missing: Vec<&str> = ids.iter().filter(|id| !paths.contains_key(*id)).map(String::as_str).collect();
        if !missing.is_empty() {
            out.problems.push(Problem::new(
                place,
                "elements",
                format!("element id {} is not in the file", missing.join(", ")),
            ));
            continue;
        }
        let ends: Vec<ElementPath> = ids.iter().map(|id| paths[id].clone()).collect();
        let external =
            ends.iter().any(|e| out.topology.element(e).is_some_and(|el| el.kind.name == "external_network_endpoint"));
        let kind_name = match rec.get("type").and_then(Value::as_str) {
            Some(t) => t.to_string(),
            None => (if external { "fixed_bridge" } else { "bridge" }).to_string(),
        };
        let kind = match registry().lookup(&kind_name, Class::Connection) {
            Ok(k) => k,
            Err(e) => {
                out.problems.push(Problem::new(place, "type", e));
                continue;
            }
        };
        let attrs = import_attrs(&rec, kind, &["elements", "type"], &place, &mut out.notes);
        out.topology.connections.push(Connection {
            kind: KindRef(kind),
            ends: [ends[0].clone(), ends[1].clone()],
            attrs,
        });
    }
    out
}

fn id_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "?".into(),
    }
}

fn import_element(
    rec: &Map<String, Value>,
    parent: Option<(&Kind, &Element)>,
    out: &mut Imported,
) -> Option<(String, Element)> {
    let id = id_text(rec.get("id"));
    let type_name = rec.get("type").and_then(Value::as_str).unwrap_or_default();
    let place = Place::Element(ElementPath::top(format!("#{id}")));
    let kind = match registry().lookup(type_name, Class::Element) {
        Ok(k) => k,
        Err(e) => {
            out.problems.push(Problem::new(place, "type", e));
            return None;
        }
    };
    let name = match rec.get("name").and_then(Value::as_str) {
        Some(n) => n.to_string(),
        // ToMaTo names unnamed elements after their type and id, and unnamed
        // interfaces `ethN`.
        None => match parent.and_then(|(k, el)| k.children.as_ref().map(|r| (r, el))) {
            Some((rule, el)) => (0..)
                .map(|n| format!("{}{n}", rule.name_prefix))
                .find(|n| el.children.iter().all(|c| &c.name != n))
                .expect("a free name exists"),
            None => format!("{type_name}{id}"),
        },
    };
    let place = Place::Element(match parent {
        Some((_, el)) => ElementPath::child(&el.name, &name),
        None => ElementPath::top(&name),
    });
    let mut skip = vec!["type", "parent", "name"];
    if kind.name == "switch_endpoint" {
        // Endpoints follow their switch's mode.
        skip.push("mode");
    }
    let attrs = import_attrs(rec, kind, &skip, &place, &mut out.notes);
    Some((id, Element { name, kind: KindRef(kind), attrs, children: Vec::new() }))
}

fn import_attrs(rec: &Map<String, Value>, kind: &Kind, skip: &[&str], place: &Place, notes: &mut Vec<String>) -> Attrs {
    let mut attrs = Attrs::new();
    for (k, v) in rec {
        if skip.contains(&k.as_str()) || k == "id" {
            continue;
        }
        if RUNTIME_FIELDS.contains(&k.as_str()) {
            notes.push(format!("{place}: dropped runtime field `{k}`"));
            continue;
        }
        // ToMaTo stores "no address" as an empty string.
        let is_address = kind.attr(k).is_some_and(|s| {
            s.nullable
                && matches!(
                    s.schema,
                    ValueSchema::Ip4
                        | ValueSchema::Ip6
                        | ValueSchema::Ip4Cidr
                        | ValueSchema::Ip6Cidr
                        | ValueSchema::Mac
                        | ValueSchema::HostPort
                )
        });
        let value = if is_address && v.as_str() == Some("") { Value::Null } else { v.clone() };
        attrs.insert(k.clone(), value);
    }
    attrs
}
