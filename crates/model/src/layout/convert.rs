//! topdl layouts to our topologies and back.
//!
//! Import (of an expanded layout; regions are expanded first):
//! - a computer becomes the node kind its `type` attribute names (`container`,
//!   `openvz`, `full`, `kvm`, `repy`, ...); with any other `type` (DETER's
//!   hardware type) it becomes a full VM, without one a container. Other
//!   element classes become the kind their `type` names, or are dropped with
//!   a note.
//! - `osid` becomes `template`; a `cpu` count becomes `cpus` and a `storage`
//!   amount (MB) `diskspace` when the kind has them; attributes named like
//!   one of the kind's are read by its schema; everything else (`startup`,
//!   `testbed`, `failureaction`, `path`, unknown keys) is kept as client data
//!   in `_topdl` and written back on export.
//! - interfaces become `eth0`, `eth1`, ... in order (the topdl name is kept in
//!   `_topdl.name` unless it is DETER's default `infNNN`); `ip4_address` with `ip4_netmask` (default
//!   255.255.255.0) becomes `ip4address` in prefix form.
//! - a substrate with two interfaces becomes a connection: frames from an
//!   interface get its capacity (kb/s -> `bandwidth` kbit/s) and latency
//!   (ms -> `delay`), the interface's values overriding the substrate's, and
//!   the substrate's `loss` (a probability) becomes `lossratio` (%). A
//!   substrate with more interfaces becomes a switch with one connection per
//!   interface, carrying that interface's rate both ways and half its latency
//!   and about half its loss each way, so any two members see the substrate's
//!   values end to end. A substrate with fewer than two interfaces connects
//!   nothing and is dropped with a note.
//!
//! Export writes nodes as computers (`type` = our kind), switches with plain
//! ports and three or more links, all to node interfaces, as substrates, other elements as `other`, and
//! each remaining connection as a two-interface substrate.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::file::topdl::{self, Attribute, Capacity, Class as TClass, Element as TElement, Interface, Latency};
use crate::file::topdl::{Line, Substrate, Topdl, Version};
use crate::problem::{Place, Problem};
use crate::registry::{Class, Kind, Role, registry};
use crate::schema::ValueSchema;
use crate::topology::{Attrs, Connection, Element, ElementPath, KindRef, Topology};

/// The client-data key that keeps what has no place in our model.
pub const CLIENT_KEY: &str = "_topdl";

/// A topology made from a layout, with problems and notes.
#[derive(Debug, Default)]
pub struct Imported {
    /// The topology.
    pub topology: Topology,
    /// What could not be mapped.
    pub problems: Vec<Problem>,
    /// What was dropped, one line each.
    pub notes: Vec<String>,
}

fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 { json!(v as i64) } else { json!(v) }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An attribute value read by the kind's schema: text stays text, other
/// schemas take JSON (numbers, booleans, lists) and fall back to text.
fn typed(kind: &Kind, key: &str, text: &str) -> Value {
    let textual = kind.attr(key).is_none_or(|spec| {
        matches!(
            spec.schema,
            ValueSchema::Text { .. }
                | ValueSchema::Choice(_)
                | ValueSchema::Ip4
                | ValueSchema::Ip6
                | ValueSchema::Ip4Cidr
                | ValueSchema::Ip6Cidr
                | ValueSchema::Mac
                | ValueSchema::HostPort
        )
    });
    if textual { json!(text) } else { serde_json::from_str(text).unwrap_or_else(|_| json!(text)) }
}

/// Prefix length of a dotted netmask (`255.255.255.0` -> 24).
pub fn prefix_len(netmask: &str) -> Option<u32> {
    let addr: std::net::Ipv4Addr = netmask.parse().ok()?;
    let bits = u32::from(addr);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len)
}

/// Dotted netmask of a prefix length.
pub fn netmask(len: u32) -> String {
    let bits = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
    std::net::Ipv4Addr::from(bits).to_string()
}

fn node_kind(e: &TElement) -> Option<&'static Kind> {
    let given = topdl::attribute(&e.attributes, "type");
    if let Some(k) = given.and_then(|t| registry().lookup(t, Class::Element).ok()).filter(|k| !k.is_child()) {
        return Some(k);
    }
    match (e.class, given) {
        (TClass::Computer, Some(_)) => registry().get("full"),
        (TClass::Computer, None) => registry().get("container"),
        _ => None,
    }
}

fn extra_number(e: &TElement, element: &str, attr: Option<&str>, child: &str) -> Option<f64> {
    let node = e.extra.iter().find(|n| n.name == element)?;
    let from_attr = attr.and_then(|a| node.attrs.iter().find(|(k, _)| k == a)).map(|(_, v)| v.as_str());
    let text = from_attr.or_else(|| node.children.iter().find(|c| c.name == child).map(|c| c.value()))?;
    text.trim().parse().ok()
}

/// Maps an expanded layout to a topology (regions must be expanded first).
pub fn to_topology(layout: &Topdl) -> Imported {
    let mut out = Imported::default();
    let mut client = Map::new();
    for a in &layout.attributes {
        if a.key == "name" || a.key == "site" {
            out.topology.attrs.insert(a.key.clone(), json!(a.value));
        } else if a.key.starts_with('_') {
            out.topology.attrs.insert(a.key.clone(), serde_json::from_str(&a.value).unwrap_or_else(|_| json!(a.value)));
        } else {
            client.insert(a.key.clone(), json!(a.value));
        }
    }
    if !client.is_empty() {
        out.topology.attrs.insert(CLIENT_KEY.into(), Value::Object(client));
    }
    let link_kind = registry().get("bridge").expect("bridge is registered");
    // Members of each substrate: the interface's path and the interface.
    let mut members: BTreeMap<&str, Vec<(ElementPath, &Interface)>> = BTreeMap::new();
    for e in &layout.elements {
        let place = Place::Xml(e.line.0, format!("{} {}", e.class, e.name));
        if e.class == TClass::Region {
            out.problems.push(Problem::new(place, "region", "regions must be expanded before mapping to a topology"));
            continue;
        }
        let Some(kind) = node_kind(e) else {
            out.notes.push(format!(
                "{} {}: a {} without a `type` naming one of our kinds; dropped",
                e.class, e.name, e.class
            ));
            continue;
        };
        let mut attrs = Attrs::new();
        let mut keep = Map::new();
        for a in &e.attributes {
            match a.key.as_str() {
                "type" if registry().lookup(&a.value, Class::Element).is_ok_and(|k| k.name == kind.name) => {}
                "osid" if kind.attr("template").is_some() => {
                    attrs.insert("template".into(), json!(a.value));
                }
                k if k.starts_with('_') => {
                    attrs.insert(k.to_string(), serde_json::from_str(&a.value).unwrap_or_else(|_| json!(a.value)));
                }
                k if kind.attr(k).is_some() => {
                    attrs.insert(k.to_string(), typed(kind, k, &a.value));
                }
                k => {
                    keep.insert(k.to_string(), json!(a.value));
                }
            }
        }
        if kind.attr("cpus").is_some()
            && !attrs.contains_key("cpus")
            && let Some(n) = extra_number(e, "cpu", Some("count"), "count")
        {
            attrs.insert("cpus".into(), number(n));
        }
        if kind.attr("diskspace").is_some()
            && !attrs.contains_key("diskspace")
            && let Some(mb) = extra_number(e, "storage", None, "amount")
        {
            attrs.insert("diskspace".into(), number(mb.round()));
        }
        for x in &e.extra {
            if !(x.name == "cpu" || x.name == "storage") {
                out.notes.push(format!("{} {}: `{}` has no place in a topology; dropped", e.class, e.name, x.name));
            }
        }
        if !keep.is_empty() {
            attrs.insert(CLIENT_KEY.into(), Value::Object(keep));
        }
        let mut element = Element { name: e.name.clone(), kind: KindRef(kind), attrs, children: Vec::new() };
        let child_kind = kind.children.as_ref().and_then(|r| registry().get(r.kind).map(|k| (k, r.name_prefix)));
        for (n, i) in e.interfaces.iter().enumerate() {
            let Some((ck, prefix)) = child_kind else {
                out.notes.push(format!(
                    "{} {}: a {} has no interfaces; interface {} dropped",
                    e.class, e.name, kind.name, i.name
                ));
                continue;
            };
            let default_name = i.name == format!("inf{n:03}");
            // Kinds with free child names (switch ports) keep the topdl name.
            let free_names = ck.name_pattern.is_none() && !default_name;
            let child_name = if free_names { i.name.clone() } else { format!("{prefix}{n}") };
            let mut cattrs = Attrs::new();
            let mut ckeep = Map::new();
            if !default_name && !free_names {
                ckeep.insert("name".into(), json!(i.name));
            }
            let address = topdl::attribute(&i.attributes, "ip4_address");
            let mask = topdl::attribute(&i.attributes, "ip4_netmask");
            let iplace = Place::Xml(i.line.0, format!("{} {}, interface {}", e.class, e.name, i.name));
            if let Some(address) = address.filter(|_| ck.attr("ip4address").is_some()) {
                match prefix_len(mask.unwrap_or("255.255.255.0")) {
                    Some(len) => {
                        cattrs.insert("ip4address".into(), json!(format!("{address}/{len}")));
                    }
                    None => out.problems.push(Problem::new(
                        iplace.clone(),
                        "ip4_netmask",
                        format!(
                            "`{}` is not a netmask; allowed: a dotted netmask like 255.255.255.0",
                            mask.unwrap_or("")
                        ),
                    )),
                }
            }
            for a in &i.attributes {
                match a.key.as_str() {
                    "ip4_address" | "ip4_netmask" if ck.attr("ip4address").is_some() => {}
                    k if link_kind.attr(k).is_some() && ck.attr(k).is_none() => {}
                    k if k.starts_with('_') => {
                        cattrs.insert(k.to_string(), serde_json::from_str(&a.value).unwrap_or_else(|_| json!(a.value)));
                    }
                    k if ck.attr(k).is_some() => {
                        cattrs.insert(k.to_string(), typed(ck, k, &a.value));
                    }
                    k => {
                        ckeep.insert(k.to_string(), json!(a.value));
                    }
                }
            }
            if !ckeep.is_empty() {
                cattrs.insert(CLIENT_KEY.into(), Value::Object(ckeep));
            }
            if i.substrates.len() > 1 {
                out.notes.push(format!(
                    "{} {}, interface {}: joins {} substrates; our interfaces take one link, so only {} is used",
                    e.class,
                    e.name,
                    i.name,
                    i.substrates.len(),
                    i.substrates[0]
                ));
            }
            if let Some(s) = i.substrates.first() {
                members.entry(s.as_str()).or_default().push((ElementPath::child(&e.name, &child_name), i));
            }
            element.children.push(Element { name: child_name, kind: KindRef(ck), attrs: cattrs, children: Vec::new() });
        }
        out.topology.elements.push(element);
    }
    let bridge = registry().get("bridge").expect("bridge is registered");
    let switch = registry().get("switch").expect("switch is registered");
    let endpoint = registry().get("switch_endpoint").expect("switch_endpoint is registered");
    let mut names: BTreeSet<String> = out.topology.elements.iter().map(|e| e.name.clone()).collect();
    for s in &layout.substrates {
        let list = members.get(s.name.as_str()).map(Vec::as_slice).unwrap_or_default();
        let place = Place::Xml(s.line.0, format!("substrate {}", s.name));
        let loss = match topdl::attribute(&s.attributes, "loss").map(|l| (l, l.parse::<f64>())) {
            None => None,
            Some((_, Ok(p))) if (0.0..=1.0).contains(&p) => Some(p),
            Some((l, _)) => {
                out.problems.push(Problem::new(
                    place.clone(),
                    "loss",
                    format!("`{l}` is not a loss probability; allowed: a number from 0 to 1, like 0.01"),
                ));
                None
            }
        };
        let mut keep = Map::new();
        let mut link = Attrs::new();
        for a in &s.attributes {
            match a.key.as_str() {
                "loss" => {}
                k if k.starts_with('_') => {
                    link.insert(k.to_string(), serde_json::from_str(&a.value).unwrap_or_else(|_| json!(a.value)));
                }
                k if bridge.attr(k).is_some() => {
                    link.insert(k.to_string(), typed(bridge, k, &a.value));
                }
                k => {
                    keep.insert(k.to_string(), json!(a.value));
                }
            }
        }
        // Link attributes given on an interface apply to its link.
        let own_link = |i: &Interface| -> Attrs {
            i.attributes
                .iter()
                .filter(|a| bridge.attr(&a.key).is_some())
                .map(|a| (a.key.clone(), typed(bridge, &a.key, &a.value)))
                .collect()
        };
        let rate = |i: &Interface| i.capacity.as_ref().or(s.capacity.as_ref()).map(|c| c.rate);
        let latency = |i: &Interface| i.latency.as_ref().or(s.latency.as_ref()).map(|l| l.time);
        match list.len() {
            0 | 1 => {
                out.notes.push(format!("substrate {}: fewer than two interfaces; nothing to connect, dropped", s.name))
            }
            2 => {
                // Our export names a link's substrate after its ends.
                if s.name != default_substrate_name(&list[0].0, &list[1].0) {
                    keep.insert("substrate".into(), json!(s.name));
                }
                let mut attrs = link.clone();
                attrs.extend(own_link(list[0].1));
                attrs.extend(own_link(list[1].1));
                for (dir, (_, i)) in [("from", &list[0]), ("to", &list[1])] {
                    if let Some(r) = rate(i) {
                        attrs.insert(format!("bandwidth_{dir}"), number(r.round()));
                    }
                    if let Some(l) = latency(i) {
                        attrs.insert(format!("delay_{dir}"), number(l));
                    }
                    if let Some(p) = loss {
                        attrs.insert(format!("lossratio_{dir}"), number(p * 100.0));
                    }
                }
                if !keep.is_empty() {
                    attrs.insert(CLIENT_KEY.into(), Value::Object(keep));
                }
                let ends = [list[0].0.clone(), list[1].0.clone()];
                let external = ends
                    .iter()
                    .any(|p| out.topology.element(p).is_some_and(|el| el.kind.name == "external_network_endpoint"));
                let kind = registry().get(if external { "fixed_bridge" } else { "bridge" }).expect("registered");
                out.topology.connections.push(Connection { kind: KindRef(kind), ends, attrs });
            }
            _ => {
                let mut name = s.name.clone();
                if names.contains(&name) {
                    name = (2..).map(|k| format!("{}-{k}", s.name)).find(|n| !names.contains(n)).expect("a free name");
                    out.notes.push(format!("substrate {}: an element has its name; its switch is {name}", s.name));
                    keep.insert("substrate".into(), json!(s.name));
                }
                names.insert(name.clone());
                let mut attrs = Attrs::new();
                if !keep.is_empty() {
                    attrs.insert(CLIENT_KEY.into(), Value::Object(keep));
                }
                let mut sw = Element { name: name.clone(), kind: KindRef(switch), attrs, children: Vec::new() };
                // Half the loss per hop, so two hops lose p: 1 - (1 - q)^2 = p.
                let hop_loss = loss.map(|p| (1.0 - (1.0 - p).sqrt()) * 100.0);
                for (k, (path, i)) in list.iter().enumerate() {
                    let port = format!("port{k}");
                    sw.children.push(Element {
                        name: port.clone(),
                        kind: KindRef(endpoint),
                        attrs: Attrs::new(),
                        children: Vec::new(),
                    });
                    let mut attrs = link.clone();
                    attrs.extend(own_link(i));
                    for dir in ["from", "to"] {
                        if let Some(r) = rate(i) {
                            attrs.insert(format!("bandwidth_{dir}"), number(r.round()));
                        }
                        if let Some(l) = latency(i) {
                            attrs.insert(format!("delay_{dir}"), number(l / 2.0));
                        }
                        if let Some(q) = hop_loss {
                            attrs.insert(format!("lossratio_{dir}"), number((q * 1e6).round() / 1e6));
                        }
                    }
                    out.topology.connections.push(Connection {
                        kind: KindRef(bridge),
                        ends: [path.clone(), ElementPath::child(&name, port)],
                        attrs,
                    });
                }
                out.topology.elements.push(sw);
            }
        }
    }
    out
}

/// The substrate name export gives a connection: its two ends.
pub fn default_substrate_name(a: &ElementPath, b: &ElementPath) -> String {
    format!("{a}--{b}")
}

fn client_map(attrs: &Attrs) -> Map<String, Value> {
    attrs.get(CLIENT_KEY).and_then(Value::as_object).cloned().unwrap_or_default()
}

fn pairs(attrs: &Attrs, skip: &[&str]) -> Vec<Attribute> {
    let mut out = Vec::new();
    for (k, v) in attrs {
        if skip.contains(&k.as_str()) {
            continue;
        }
        if k == CLIENT_KEY {
            out.extend(
                client_map(attrs)
                    .iter()
                    .filter(|(k, _)| !skip.contains(&k.as_str()))
                    .map(|(k, v)| Attribute { key: k.clone(), value: text_of(v) }),
            );
        } else {
            out.push(Attribute { key: k.clone(), value: text_of(v) });
        }
    }
    out
}

fn attr_f64(attrs: &Attrs, key: &str) -> Option<f64> {
    attrs.get(key).and_then(Value::as_f64)
}

/// The substrate an interface joins, its own capacity and latency, and
/// further attributes of its link.
type Join = (String, Option<Capacity>, Option<Latency>, Vec<Attribute>);

/// Writes a topology as a topdl 2.0 layout.
pub fn to_topdl(topology: &Topology) -> Topdl {
    let mut t = Topdl::new(Version::V2);
    for (k, v) in &topology.attrs {
        if k == CLIENT_KEY {
            t.attributes.extend(
                client_map(&topology.attrs).iter().map(|(k, v)| Attribute { key: k.clone(), value: text_of(v) }),
            );
        } else {
            t.attributes.push(Attribute { key: k.clone(), value: text_of(v) });
        }
    }
    let kinds: BTreeMap<&str, KindRef> = topology.elements.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    let kind_of = |p: &ElementPath| kinds.get(p.element.as_str()).copied();
    let is_node = |p: &ElementPath| kind_of(p).is_some_and(|k| matches!(k.role, Role::Node(_)));
    // Switches all of whose links end at node interfaces become substrates.
    let mut links_of: BTreeMap<&str, Vec<&Connection>> = BTreeMap::new();
    for c in &topology.connections {
        links_of.entry(c.ends[0].element.as_str()).or_default().push(c);
        if c.ends[1].element != c.ends[0].element {
            links_of.entry(c.ends[1].element.as_str()).or_default().push(c);
        }
    }
    let lan_switches: BTreeSet<&str> = topology
        .elements
        .iter()
        .filter(|e| {
            e.kind.name == "switch"
                && e.attrs.keys().all(|k| k == CLIENT_KEY)
                && e.children.iter().all(|c| c.attrs.is_empty())
        })
        .filter(|e| {
            let links = links_of.get(e.name.as_str()).map(Vec::as_slice).unwrap_or_default();
            // Two links would read back as one connection, not a switch.
            links.len() >= 3
                && links.iter().all(|c| {
                    let other = if c.ends[0].element == e.name { &c.ends[1] } else { &c.ends[0] };
                    c.ends[0].element != c.ends[1].element && is_node(other) && other.child.is_some()
                })
        })
        .map(|e| e.name.as_str())
        .collect();
    // Which substrate each interface joins, and the interface's own values.
    let mut joins: BTreeMap<ElementPath, Join> = BTreeMap::new();
    for c in &topology.connections {
        let lan = c.ends.iter().position(|p| lan_switches.contains(p.element.as_str()));
        if let Some(k) = lan {
            let member = &c.ends[1 - k];
            let capacity = attr_f64(&c.attrs, "bandwidth_from").map(|r| Capacity { rate: r, kind: "max".into() });
            let latency = attr_f64(&c.attrs, "delay_from").map(|d| Latency { time: d * 2.0, kind: "average".into() });
            let rest = pairs(&c.attrs, &["bandwidth_from", "bandwidth_to", "delay_from", "delay_to"]);
            joins.insert(member.clone(), (c.ends[k].element.clone(), capacity, latency, rest));
            continue;
        }
        let client = client_map(&c.attrs);
        let name =
            client.get("substrate").map(text_of).unwrap_or_else(|| default_substrate_name(&c.ends[0], &c.ends[1]));
        let mut s = Substrate {
            name: name.clone(),
            capacity: None,
            latency: None,
            attributes: Vec::new(),
            extra: Vec::new(),
            line: Line::default(),
        };
        let same = |base: &str| {
            let (a, b) = (c.attrs.get(&format!("{base}_from")), c.attrs.get(&format!("{base}_to")));
            (a == b).then_some(a).flatten().and_then(Value::as_f64)
        };
        let mut skip = vec!["substrate"];
        if let Some(r) = same("bandwidth") {
            s.capacity = Some(Capacity { rate: r, kind: "max".into() });
            skip.extend(["bandwidth_from", "bandwidth_to"]);
        }
        if let Some(d) = same("delay") {
            s.latency = Some(Latency { time: d, kind: "average".into() });
            skip.extend(["delay_from", "delay_to"]);
        }
        if let Some(p) = same("lossratio") {
            s.attributes.push(Attribute { key: "loss".into(), value: topdl::number_text(p / 100.0) });
            skip.extend(["lossratio_from", "lossratio_to"]);
        }
        let mut per_end: [(Option<Capacity>, Option<Latency>); 2] = Default::default();
        for (k, dir) in ["from", "to"].into_iter().enumerate() {
            if s.capacity.is_none() {
                per_end[k].0 =
                    attr_f64(&c.attrs, &format!("bandwidth_{dir}")).map(|r| Capacity { rate: r, kind: "max".into() });
            }
            if s.latency.is_none() {
                per_end[k].1 =
                    attr_f64(&c.attrs, &format!("delay_{dir}")).map(|d| Latency { time: d, kind: "average".into() });
            }
        }
        if s.capacity.is_none() {
            skip.extend(["bandwidth_from", "bandwidth_to"]);
        }
        if s.latency.is_none() {
            skip.extend(["delay_from", "delay_to"]);
        }
        s.attributes.extend(pairs(&c.attrs, &skip));
        t.substrates.push(s);
        for (k, end) in c.ends.iter().enumerate() {
            let (cap, lat) = per_end[k].clone();
            joins.insert(end.clone(), (name.clone(), cap, lat, Vec::new()));
        }
    }
    for sw in &lan_switches {
        let el = topology.elements.iter().find(|e| e.name == *sw).expect("a switch of the topology");
        let client = client_map(&el.attrs);
        t.substrates.push(Substrate {
            name: client.get("substrate").map(text_of).unwrap_or_else(|| sw.to_string()),
            capacity: None,
            latency: None,
            attributes: pairs(&el.attrs, &["substrate"]),
            extra: Vec::new(),
            line: Line::default(),
        });
        let renamed = t.substrates.last().expect("just pushed").name.clone();
        for v in joins.values_mut().filter(|v| v.0 == *sw) {
            v.0 = renamed.clone();
        }
    }
    for e in &topology.elements {
        if lan_switches.contains(e.name.as_str()) {
            continue;
        }
        let node = matches!(e.kind.role, Role::Node(_));
        let mut te = TElement {
            class: if node { TClass::Computer } else { TClass::Other },
            name: e.name.clone(),
            interfaces: Vec::new(),
            attributes: vec![Attribute { key: "type".into(), value: e.kind.name.to_string() }],
            region: None,
            extra: Vec::new(),
            line: Line::default(),
        };
        for (k, v) in &e.attrs {
            if k == "template" {
                te.attributes.push(Attribute { key: "osid".into(), value: text_of(v) });
            } else if k != CLIENT_KEY {
                te.attributes.push(Attribute { key: k.clone(), value: text_of(v) });
            }
        }
        let client = client_map(&e.attrs);
        if let Some(hw) = client.get("type") {
            te.attributes[0].value = text_of(hw);
        }
        te.attributes.extend(
            client.iter().filter(|(k, _)| *k != "type").map(|(k, v)| Attribute { key: k.clone(), value: text_of(v) }),
        );
        for (n, ch) in e.children.iter().enumerate() {
            let path = ElementPath::child(&e.name, &ch.name);
            let Some((substrate, capacity, latency, rest)) = joins.get(&path).cloned() else {
                continue;
            };
            let cclient = client_map(&ch.attrs);
            let mut attributes = Vec::new();
            for (k, v) in &ch.attrs {
                match (k.as_str(), v.as_str().and_then(|s| s.split_once('/'))) {
                    ("ip4address", Some((addr, len))) => {
                        attributes.push(Attribute { key: "ip4_address".into(), value: addr.to_string() });
                        attributes
                            .push(Attribute { key: "ip4_netmask".into(), value: netmask(len.parse().unwrap_or(32)) });
                    }
                    (CLIENT_KEY, _) => {}
                    _ if v.is_null() => {}
                    _ => attributes.push(Attribute { key: k.clone(), value: text_of(v) }),
                }
            }
            attributes.extend(
                cclient
                    .iter()
                    .filter(|(k, _)| *k != "name")
                    .map(|(k, v)| Attribute { key: k.clone(), value: text_of(v) }),
            );
            attributes.extend(rest);
            te.interfaces.push(Interface {
                substrates: vec![substrate],
                name: cclient.get("name").map(text_of).unwrap_or_else(|| {
                    let prefix = e.kind.children.as_ref().map(|r| r.name_prefix).unwrap_or_default();
                    if ch.name == format!("{prefix}{n}") { format!("inf{n:03}") } else { ch.name.clone() }
                }),
                capacity,
                latency,
                attributes,
                extra: Vec::new(),
                line: Line::default(),
            });
        }
        t.elements.push(te);
    }
    t
}
