//! Views of a layout (DETER's layout aspect subtypes) and the check that a
//! new view describes the same layout.
//!
//! - `full_layout`: every region expanded (with the name maps of the names given);
//! - `minimal_layout`: no region expanded, no fragments or name maps;
//! - `fragment/NAME`: one fragment as a layout of its own;
//! - `/PATH` (a namemap view): the names given when the region at PATH expanded.
//!
//! A new view is accepted when its full expansion is isomorphic to the
//! layout's: elements and substrates are vertices labelled by their class,
//! interfaces are edges (with multiplicity). A name both sides chose (not a
//! provisional, testbed-assigned one) pins the match: that element or
//! substrate must map to the one with the same name.

use std::collections::BTreeMap;

use super::expand::{ExpandConfig, Expansion, expand, fragments};
use super::iso::{Budget, Graph, Outcome, isomorphism};
use crate::file::topdl::{Topdl, Version};
use crate::problem::{Place, Problem};

/// A view of a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// All regions expanded.
    Full,
    /// No region expanded, no fragments or name maps.
    Minimal,
    /// A fragment by name.
    Fragment(String),
    /// The name map of a region path (`/r1/r2`).
    NameMap(String),
}

/// View names accepted by [`View::parse`].
pub const VIEW_NAMES: &str = "full (full_layout), minimal (minimal_layout), fragment/NAME, or a region path like /r1";

impl View {
    /// Parses `full`, `full_layout`, `minimal`, `minimal_layout`,
    /// `fragment/NAME` or `/PATH`.
    pub fn parse(text: &str) -> Result<View, String> {
        match text {
            "full" | "full_layout" => Ok(View::Full),
            "minimal" | "minimal_layout" => Ok(View::Minimal),
            _ => {
                if let Some(name) = text.strip_prefix("fragment/").filter(|n| !n.is_empty()) {
                    Ok(View::Fragment(name.to_string()))
                } else if text.starts_with('/') && text.len() > 1 {
                    Ok(View::NameMap(text.to_string()))
                } else {
                    Err(format!("`{text}` is not a view; allowed: {VIEW_NAMES}"))
                }
            }
        }
    }
}

/// The names of every view a layout has.
pub fn views(doc: &Topdl, config: &ExpandConfig) -> Result<Vec<String>, Vec<Problem>> {
    let mut out = vec!["full_layout".to_string(), "minimal_layout".to_string()];
    out.extend(fragments(doc).keys().map(|n| format!("fragment/{n}")));
    out.extend(expand(doc, config)?.layout.namemaps.iter().map(|m| m.pathname.clone()));
    Ok(out)
}

/// One view of a layout.
pub fn view(doc: &Topdl, which: &View, config: &ExpandConfig) -> Result<Topdl, Vec<Problem>> {
    match which {
        View::Full => Ok(expand(doc, config)?.layout),
        View::Minimal => {
            let mut t = doc.clone();
            t.fragments.clear();
            t.namemaps.clear();
            Ok(t)
        }
        View::Fragment(name) => match fragments(doc).get(name.as_str()) {
            Some(f) => {
                let mut t = f.topology.clone();
                t.version = Version::V2;
                Ok(t)
            }
            None => {
                let known: Vec<&str> = fragments(doc).keys().copied().collect();
                Err(vec![Problem::new(
                    Place::Xml(0, "view".into()),
                    "fragment",
                    format!("`{name}` is not a fragment; fragments: {}", or_none(&known)),
                )])
            }
        },
        View::NameMap(path) => {
            let full = expand(doc, config)?.layout;
            match full.namemaps.iter().find(|m| &m.pathname == path) {
                Some(m) => {
                    let mut t = Topdl::new(Version::V2);
                    t.namemaps.push(m.clone());
                    Ok(t)
                }
                None => {
                    let known: Vec<&str> = full.namemaps.iter().map(|m| m.pathname.as_str()).collect();
                    Err(vec![Problem::new(
                        Place::Xml(0, "view".into()),
                        "namemap",
                        format!("no region was expanded at `{path}`; region paths: {}", or_none(&known)),
                    )])
                }
            }
        }
    }
}

fn or_none(items: &[&str]) -> String {
    if items.is_empty() { "(none)".into() } else { items.join(", ") }
}

/// The answer to "is this view the same layout?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewCheck {
    /// Isomorphic: each (view name, layout name) pair, in the view's order
    /// (substrates, then elements).
    Isomorphic(Vec<(String, String)>),
    /// Not isomorphic, and why.
    NotIsomorphic(String),
    /// The budget ran out after this many steps.
    Undecided(u64),
}

/// The graph of an expanded layout: its vertex names and, per vertex, its
/// name if the name pins the match.
fn graph(expansion: &Expansion, pinned: &dyn Fn(&str) -> bool) -> (Graph, Vec<String>) {
    let layout = &expansion.layout;
    let mut g = Graph::default();
    let mut names = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &layout.substrates {
        let anchor = pinned(&s.name).then(|| s.name.clone());
        index.insert(&s.name, g.add_vertex("substrate", anchor));
        names.push(s.name.clone());
    }
    for e in &layout.elements {
        let anchor = pinned(&e.name).then(|| e.name.clone());
        let v = g.add_vertex(e.class.xml_name(), anchor);
        names.push(e.name.clone());
        for i in &e.interfaces {
            for s in &i.substrates {
                if let Some(&sv) = index.get(s.as_str()) {
                    g.add_edge(v, sv);
                }
            }
        }
    }
    (g, names)
}

/// Whether `view` describes the same layout as `layout` (both are expanded
/// fully first), within `budget`.
pub fn check_view(
    layout: &Topdl,
    candidate: &Topdl,
    config: &ExpandConfig,
    budget: &mut Budget<'_>,
) -> Result<ViewCheck, Vec<Problem>> {
    let a = expand(layout, config)?;
    let b = expand(candidate, config)?;
    let names_of = |x: &Expansion| -> BTreeMap<String, bool> {
        let l = &x.layout;
        l.substrates
            .iter()
            .map(|s| (s.name.clone(), true))
            .chain(l.elements.iter().map(|e| (e.name.clone(), false)))
            .filter(|(n, _)| !x.provisional.contains(n))
            .collect()
    };
    let (na, nb) = (names_of(&a), names_of(&b));
    // A name pins the match when both sides chose it for the same sort of vertex.
    let pinned = |n: &str| na.get(n).is_some_and(|sa| nb.get(n) == Some(sa));
    let (ga, names_a) = graph(&a, &pinned);
    let (gb, names_b) = graph(&b, &pinned);
    Ok(match isomorphism(&ga, &gb, budget) {
        Outcome::Isomorphic(map) => ViewCheck::Isomorphic(
            map.iter().enumerate().map(|(vb, va)| (names_b[vb].clone(), names_a[*va].clone())).collect(),
        ),
        Outcome::NotIsomorphic(why) => ViewCheck::NotIsomorphic(why),
        Outcome::Undecided(steps) => ViewCheck::Undecided(steps),
    })
}
