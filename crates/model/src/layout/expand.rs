//! Region expansion: each region is replaced by a renamed copy of its
//! fragment until none is left.
//!
//! A region of level 0 vanishes with its interfaces; a region of level n > 0
//! is replaced by its fragment, whose own regions get level n - 1 (whatever
//! the fragment says), so every chain of expansions ends. The region's
//! interfaces move to the fragment elements its fragment's `ifmap` names;
//! interfaces it does not map are dropped. Names come from the user's name
//! map for the region's path (`/r1/r2`: region names from the top, each
//! local to its fragment); otherwise the testbed assigns a provisional one
//! (`<region>_<local>`, made unique), which never takes a name any user
//! name map gives. Copied substrates and elements get a `path` attribute
//! (`/r1/`), moved interfaces an `interface_path` (`/r1/uplink`), and a name
//! map of the names actually given is recorded for every path. Substrates
//! that lost interfaces on the way and are left with fewer than two are
//! removed, with the interfaces still naming them.
//!
//! Expansion walks regions depth first in document order with an explicit
//! stack and ordered maps only, so the same input always gives the same
//! output; the number of elements and substrates it may create is bounded by
//! [`ExpandConfig::max_vertices`].

use std::collections::{BTreeMap, BTreeSet};

use crate::file::topdl::{Attribute, Class, Element, Fragment, NameMap, NameMapEntry, Substrate, Topdl, Version};
use crate::problem::{Place, Problem};

/// Limits of an expansion.
#[derive(Clone, Copy, Debug)]
pub struct ExpandConfig {
    /// Most elements plus substrates the expanded layout may have (regions
    /// expanded count too).
    pub max_vertices: usize,
}

/// The default bound: a million elements and substrates.
pub const DEFAULT_MAX_VERTICES: usize = 1_000_000;

impl Default for ExpandConfig {
    fn default() -> Self {
        ExpandConfig { max_vertices: DEFAULT_MAX_VERTICES }
    }
}

/// An expanded layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    /// The layout without regions; its name maps record the names given.
    pub layout: Topdl,
    /// Names the testbed assigned (not from a user's name map, not top-level).
    pub provisional: BTreeSet<String>,
    /// What was dropped or ignored, one line each.
    pub notes: Vec<String>,
}

/// Every fragment of a document, its fragments' fragments included; the first
/// definition of a name wins (duplicates within one list are read errors).
pub fn fragments(doc: &Topdl) -> BTreeMap<&str, &Fragment> {
    let mut out = BTreeMap::new();
    let mut stack = vec![doc];
    while let Some(t) = stack.pop() {
        for f in &t.fragments {
            if !out.contains_key(f.name.as_str()) {
                out.insert(f.name.as_str(), f);
                stack.push(&f.topology);
            }
        }
    }
    out
}

/// Expands every region of `doc`.
pub fn expand(doc: &Topdl, config: &ExpandConfig) -> Result<Expansion, Vec<Problem>> {
    let mut x = Expander::new(doc, config);
    for s in &doc.substrates {
        x.used.insert(s.name.clone());
        x.substrates.push(s.clone());
    }
    for e in &doc.elements {
        x.used.insert(e.name.clone());
    }
    x.vertices = doc.substrates.len() + doc.elements.len();
    let mut stack: Vec<Work> = doc
        .elements
        .iter()
        .rev()
        .map(|e| Work { element: e.clone(), parent: String::new(), local: e.name.clone() })
        .collect();
    while let Some(work) = stack.pop() {
        if !x.problems.is_empty() && x.over_budget {
            break;
        }
        x.step(work, &mut stack);
    }
    if !x.problems.is_empty() {
        return Err(x.problems);
    }
    let used_paths: BTreeSet<&str> = x.namemaps.iter().map(|m| m.pathname.as_str()).collect();
    for path in x.user_maps.keys() {
        if !used_paths.contains(path) {
            x.notes.push(format!("namemap {path}: no region was expanded at this path; ignored"));
        }
    }
    x.remove_lonely_substrates();
    let layout = Topdl {
        version: Version::V2,
        substrates: x.substrates,
        elements: x.elements,
        attributes: doc.attributes.clone(),
        fragments: Vec::new(),
        namemaps: x.namemaps,
        extra: doc.extra.clone(),
    };
    Ok(Expansion { layout, provisional: x.provisional, notes: x.notes })
}

/// An element waiting to be placed: already renamed, with its substrate
/// references global; `local` is its name inside its fragment.
struct Work {
    element: Element,
    parent: String,
    local: String,
}

struct Expander<'a> {
    config: &'a ExpandConfig,
    fragments: BTreeMap<&'a str, &'a Fragment>,
    user_maps: BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
    reserved: BTreeSet<&'a str>,
    used: BTreeSet<String>,
    provisional: BTreeSet<String>,
    substrates: Vec<Substrate>,
    elements: Vec<Element>,
    namemaps: Vec<NameMap>,
    lost: BTreeSet<String>,
    vertices: usize,
    over_budget: bool,
    problems: Vec<Problem>,
    notes: Vec<String>,
}

fn set_attribute(attributes: &mut Vec<Attribute>, key: &str, value: String) {
    match attributes.iter_mut().find(|a| a.key == key) {
        Some(a) => a.value = value,
        None => attributes.push(Attribute { key: key.to_string(), value }),
    }
}

impl<'a> Expander<'a> {
    fn new(doc: &'a Topdl, config: &'a ExpandConfig) -> Expander<'a> {
        let mut user_maps: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        for m in &doc.namemaps {
            let map = user_maps.entry(m.pathname.as_str()).or_default();
            for e in &m.entries {
                map.entry(e.local.as_str()).or_insert(e.global.as_str());
            }
        }
        let reserved = user_maps.values().flat_map(|m| m.values().copied()).collect();
        Expander {
            config,
            fragments: fragments(doc),
            user_maps,
            reserved,
            used: BTreeSet::new(),
            provisional: BTreeSet::new(),
            substrates: Vec::new(),
            elements: Vec::new(),
            namemaps: Vec::new(),
            lost: BTreeSet::new(),
            vertices: 0,
            over_budget: false,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn drop_interfaces(&mut self, element: &Element) {
        for i in &element.interfaces {
            self.lost.extend(i.substrates.iter().cloned());
        }
    }

    fn step(&mut self, work: Work, stack: &mut Vec<Work>) {
        let Work { element, parent, local } = work;
        let Some(region) = element.region.clone() else {
            self.elements.push(element);
            return;
        };
        let path = format!("{parent}/{local}");
        let place = Place::Xml(element.line.0, format!("region {} ({path})", element.name));
        if region.level == 0 {
            self.drop_interfaces(&element);
            return;
        }
        let Some(fragment) = self.fragments.get(region.fragname.as_str()).copied() else {
            let known: Vec<&str> = self.fragments.keys().copied().collect();
            self.problems.push(Problem::new(
                place,
                "fragname",
                format!(
                    "`{}` is not a fragment of the layout; fragments: {}",
                    region.fragname,
                    if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                ),
            ));
            self.drop_interfaces(&element);
            return;
        };
        let body = &fragment.topology;
        self.vertices += body.substrates.len() + body.elements.len();
        if self.vertices > self.config.max_vertices {
            self.over_budget = true;
            self.problems.push(Problem::new(
                place,
                "level",
                format!(
                    "expanding it would make more than {} elements and substrates; lower the region levels",
                    self.config.max_vertices
                ),
            ));
            return;
        }

        // Names: the user's for this path, else provisional ones.
        let user = self.user_maps.get(path.as_str()).cloned().unwrap_or_default();
        let mut rename: BTreeMap<&str, String> = BTreeMap::new();
        let mut entries = Vec::new();
        let locals =
            body.substrates.iter().map(|s| s.name.as_str()).chain(body.elements.iter().map(|e| e.name.as_str()));
        for local_name in locals {
            let global = match user.get(local_name) {
                Some(global) => {
                    if !self.used.insert(global.to_string()) {
                        self.problems.push(Problem::new(
                            place.clone(),
                            "namemap",
                            format!(
                                "`{local_name}` is mapped to `{global}`, which another element or substrate already has"
                            ),
                        ));
                    }
                    global.to_string()
                }
                None => {
                    let base = format!("{}_{local_name}", element.name);
                    let free = |n: &String| !self.used.contains(n) && !self.reserved.contains(n.as_str());
                    let name = std::iter::once(base.clone())
                        .chain((2..).map(|k| format!("{base}-{k}")))
                        .find(free)
                        .expect("a free name exists");
                    self.used.insert(name.clone());
                    self.provisional.insert(name.clone());
                    name
                }
            };
            entries.push(NameMapEntry { local: local_name.to_string(), global: global.clone() });
            rename.insert(local_name, global);
        }
        for local_name in user.keys() {
            if !rename.contains_key(local_name) {
                self.notes
                    .push(format!("namemap {path}: `{local_name}` is not in fragment {}; ignored", fragment.name));
            }
        }
        self.namemaps.push(NameMap { pathname: path.clone(), entries, extra: Vec::new(), line: Default::default() });

        let path_attr = format!("{path}/");
        for s in &body.substrates {
            let mut s = s.clone();
            s.name = rename[s.name.as_str()].clone();
            set_attribute(&mut s.attributes, "path", path_attr.clone());
            self.substrates.push(s);
        }
        let mut copies: Vec<Work> = Vec::with_capacity(body.elements.len());
        for e in &body.elements {
            let mut copy = e.clone();
            copy.name = rename[e.name.as_str()].clone();
            for i in &mut copy.interfaces {
                for s in &mut i.substrates {
                    if let Some(global) = rename.get(s.as_str()) {
                        *s = global.clone();
                    }
                }
            }
            set_attribute(&mut copy.attributes, "path", path_attr.clone());
            if let Some(r) = &mut copy.region {
                r.level = region.level - 1;
            }
            copies.push(Work { element: copy, parent: path.clone(), local: e.name.clone() });
        }

        // The region's interfaces move to the elements its fragment maps them to.
        for iface in &element.interfaces {
            let target = fragment
                .ifmap
                .iter()
                .find(|m| m.outer == iface.name)
                .and_then(|m| copies.iter_mut().find(|w| w.local == m.inner));
            let Some(target) = target else {
                self.notes.push(format!(
                    "region {} ({path}): interface {} is not mapped by fragment {}; dropped",
                    element.name, iface.name, fragment.name
                ));
                self.lost.extend(iface.substrates.iter().cloned());
                continue;
            };
            let mut moved = iface.clone();
            let taken = |n: &str| target.element.interfaces.iter().any(|i| i.name == n);
            if taken(&moved.name) {
                let n = target.element.interfaces.len();
                moved.name = (n..).map(|k| format!("inf{k:03}")).find(|k| !taken(k)).expect("a free name exists");
            }
            set_attribute(&mut moved.attributes, "interface_path", format!("{path}/{}", iface.name));
            target.element.interfaces.push(moved);
        }
        stack.extend(copies.into_iter().rev());
    }

    fn remove_lonely_substrates(&mut self) {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &self.elements {
            for i in &e.interfaces {
                for s in &i.substrates {
                    *count.entry(s.as_str()).or_default() += 1;
                }
            }
        }
        let removed: BTreeSet<String> = self
            .substrates
            .iter()
            .filter(|s| self.lost.contains(&s.name) && count.get(s.name.as_str()).copied().unwrap_or(0) < 2)
            .map(|s| s.name.clone())
            .collect();
        if removed.is_empty() {
            return;
        }
        for name in &removed {
            self.notes.push(format!("substrate {name}: fewer than two interfaces left after expansion; removed"));
        }
        self.substrates.retain(|s| !removed.contains(&s.name));
        for e in &mut self.elements {
            for i in &mut e.interfaces {
                i.substrates.retain(|s| !removed.contains(s));
            }
            e.interfaces.retain(|i| !i.substrates.is_empty());
        }
    }
}

/// Whether a layout still has regions.
pub fn has_regions(doc: &Topdl) -> bool {
    doc.elements.iter().any(|e| e.class == Class::Region)
}
