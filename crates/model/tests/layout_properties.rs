//! Property tests of layouts, over random layouts built from a
//! proptest-chosen seed: expansion is deterministic (and survives writing and
//! reading back), any relabelling of a layout is accepted as a view with a
//! mapping that keeps every interface, and a layout with one interface moved
//! to another substrate is rejected.

use std::collections::BTreeMap;

use proptest::prelude::*;

use model::file::topdl::{
    self, Class, Element, Fragment, IfMap, Interface, Line, NameMap, NameMapEntry, Region, Substrate, Topdl, Version,
    WriteConfig,
};
use model::layout::{Budget, ExpandConfig, ViewCheck, check_view, expand};

/// A small deterministic generator (xorshift64*), seeded by proptest.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn substrate(name: String) -> Substrate {
    Substrate { name, capacity: None, latency: None, attributes: Vec::new(), extra: Vec::new(), line: Line(0) }
}

fn interface(name: String, substrate: String) -> Interface {
    Interface {
        substrates: vec![substrate],
        name,
        capacity: None,
        latency: None,
        attributes: Vec::new(),
        extra: Vec::new(),
        line: Line(0),
    }
}

fn element(class: Class, name: String) -> Element {
    Element {
        class,
        name,
        interfaces: Vec::new(),
        attributes: Vec::new(),
        region: None,
        extra: Vec::new(),
        line: Line(0),
    }
}

/// A flat random layout: `n` elements of mixed classes with one to three
/// interfaces each on `m` substrates.
fn flat(g: &mut Gen, prefix: &str) -> Topdl {
    let mut t = Topdl::new(Version::V2);
    let m = 1 + g.below(12);
    let n = 1 + g.below(25);
    t.substrates = (0..m).map(|k| substrate(format!("{prefix}s{k}"))).collect();
    for k in 0..n {
        let class = [Class::Computer, Class::Computer, Class::Computer, Class::Other][g.below(4)];
        let mut e = element(class, format!("{prefix}e{k}"));
        for i in 0..1 + g.below(3) {
            e.interfaces.push(interface(format!("inf{i:03}"), format!("{prefix}s{}", g.below(m))));
        }
        t.elements.push(e);
    }
    t
}

/// A random layout with regions: a flat top level and fragments (which may
/// name each other and themselves), random levels, ifmaps and name maps.
fn with_regions(g: &mut Gen) -> Topdl {
    let mut t = flat(g, "");
    let n_fragments = 1 + g.below(3);
    for f in 0..n_fragments {
        let mut body = flat(g, "");
        for r in 0..g.below(3) {
            let mut region = element(Class::Region, format!("r{r}"));
            region.region = Some(Region { level: 9, fragname: format!("f{}", g.below(n_fragments)) });
            let s = format!("s{}", g.below(body.substrates.len()));
            region.interfaces.push(interface("up".into(), s));
            body.elements.push(region);
        }
        let inner = format!("e{}", g.below(body.elements.iter().filter(|e| e.region.is_none()).count()));
        t.fragments.push(Fragment {
            name: format!("f{f}"),
            topology: body,
            ifmap: vec![IfMap { inner, outer: "up".into() }],
            extra: Vec::new(),
            line: Line(0),
        });
    }
    for r in 0..1 + g.below(3) {
        let mut region = element(Class::Region, format!("top{r}"));
        region.region = Some(Region { level: g.below(4) as u32, fragname: format!("f{}", g.below(n_fragments)) });
        let s = format!("s{}", g.below(t.substrates.len()));
        region.interfaces.push(interface("up".into(), s));
        t.elements.push(region);
        if g.chance(50) {
            t.namemaps.push(NameMap {
                pathname: format!("/top{r}"),
                entries: vec![NameMapEntry { local: "e0".into(), global: format!("user-name-{r}") }],
                extra: Vec::new(),
                line: Line(0),
            });
        }
    }
    t
}

fn budget() -> Budget<'static> {
    Budget::steps(20_000_000)
}

/// Interfaces as (element, substrate) pairs with their count.
fn edges(t: &Topdl) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in &t.elements {
        for i in &e.interfaces {
            for s in &i.substrates {
                *out.entry((e.name.clone(), s.clone())).or_default() += 1;
            }
        }
    }
    out
}

/// Renames `name` through `map` (unchanged when absent).
fn through<'a>(map: &'a BTreeMap<String, String>, name: &'a str) -> &'a str {
    map.get(name).map(String::as_str).unwrap_or(name)
}

/// A relabelled copy: order of substrates, elements and interfaces shuffled,
/// some names replaced by fresh ones. Returns it and the renaming.
fn relabel(g: &mut Gen, t: &Topdl) -> (Topdl, BTreeMap<String, String>) {
    let mut renames = BTreeMap::new();
    let mut v = t.clone();
    for (k, s) in v.substrates.iter_mut().enumerate() {
        if g.chance(60) {
            renames.insert(s.name.clone(), format!("view-s{k}"));
            s.name = format!("view-s{k}");
        }
    }
    for (k, e) in v.elements.iter_mut().enumerate() {
        if g.chance(60) {
            renames.insert(e.name.clone(), format!("view-e{k}"));
            e.name = format!("view-e{k}");
        }
        for i in &mut e.interfaces {
            for s in &mut i.substrates {
                *s = through(&renames, s).to_string();
            }
        }
        shuffle(g, &mut e.interfaces);
    }
    shuffle(g, &mut v.substrates);
    shuffle(g, &mut v.elements);
    (v, renames)
}

fn shuffle<T>(g: &mut Gen, items: &mut [T]) {
    for k in (1..items.len()).rev() {
        items.swap(k, g.below(k + 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn expansion_is_deterministic_and_survives_writing(seed in any::<u64>()) {
        let doc = with_regions(&mut Gen(seed | 1));
        let config = ExpandConfig { max_vertices: 20_000 };
        let first = expand(&doc, &config);
        let second = expand(&doc, &config);
        prop_assert_eq!(&first, &second);
        let reread = topdl::read(&topdl::write(&doc, &WriteConfig::default())).expect("own output reads");
        prop_assert_eq!(&reread, &doc);
        prop_assert_eq!(&expand(&reread, &config), &first);
        if let Ok(x) = first {
            prop_assert!(x.layout.elements.iter().all(|e| e.region.is_none()));
            prop_assert!(x.layout.substrates.len() + x.layout.elements.len() <= config.max_vertices);
            // Names stay unique, and user names were given where asked.
            let mut names: Vec<&str> = x.layout.elements.iter().map(|e| e.name.as_str()).collect();
            names.extend(x.layout.substrates.iter().map(|s| s.name.as_str()));
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            prop_assert_eq!(names.len(), count);
            for m in &x.layout.namemaps {
                for e in &m.entries {
                    let user = doc.namemaps.iter().find(|n| n.pathname == m.pathname)
                        .and_then(|n| n.entries.iter().find(|u| u.local == e.local));
                    if let Some(u) = user {
                        prop_assert_eq!(&u.global, &e.global);
                    }
                }
            }
            // The expanded layout writes and reads back as itself.
            let text = topdl::write(&x.layout, &WriteConfig::default());
            prop_assert_eq!(&topdl::read(&text).expect("reads"), &x.layout);
        }
    }

    #[test]
    fn any_relabelling_is_accepted_as_a_view(seed in any::<u64>()) {
        let mut g = Gen(seed | 1);
        let doc = if g.chance(50) { flat(&mut g, "") } else { with_regions(&mut g) };
        let Ok(full) = expand(&doc, &ExpandConfig { max_vertices: 5_000 }) else { return Ok(()) };
        let layout = full.layout;
        let (v, renames) = relabel(&mut g, &layout);
        let answer = check_view(&layout, &v, &ExpandConfig::default(), &mut budget()).expect("valid");
        let ViewCheck::Isomorphic(pairs) = answer else {
            return Err(TestCaseError::fail(format!("{answer:?}")));
        };
        let to_layout: BTreeMap<&str, &str> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        // Names the view kept (and that are not provisional) map to themselves.
        for (view_name, layout_name) in &to_layout {
            if !renames.values().any(|n| n == view_name) && !full.provisional.contains(*view_name) {
                prop_assert_eq!(view_name, layout_name);
            }
        }
        // The mapping keeps every interface.
        let mapped: BTreeMap<(String, String), usize> = edges(&v)
            .into_iter()
            .map(|((e, s), n)| ((to_layout[e.as_str()].to_string(), to_layout[s.as_str()].to_string()), n))
            .collect();
        prop_assert_eq!(mapped, edges(&layout));
    }

    #[test]
    fn a_layout_with_one_interface_moved_is_rejected(seed in any::<u64>(), keep_names in any::<bool>()) {
        let mut g = Gen(seed | 1);
        let layout = flat(&mut g, "");
        prop_assume!(layout.substrates.len() >= 2);
        let degree = |t: &Topdl, s: &str| edges(t).iter().filter(|((_, x), _)| x == s).map(|(_, n)| n).sum::<usize>();
        let (mut v, _) = if keep_names { (layout.clone(), BTreeMap::new()) } else { relabel(&mut g, &layout) };
        // Move one interface from s1 to s2. Unless every name is kept, pick
        // s2 so that the substrates' degrees change as a multiset
        // ({d1, d2} -> {d1 - 1, d2 + 1} is the same only if d2 = d1 - 1),
        // which no relabelling can undo.
        let e = g.below(v.elements.len());
        let i = g.below(v.elements[e].interfaces.len());
        let s1 = v.elements[e].interfaces[i].substrates[0].clone();
        let d1 = degree(&v, &s1);
        let targets: Vec<String> = v
            .substrates
            .iter()
            .map(|s| s.name.clone())
            .filter(|s| *s != s1 && (keep_names || degree(&v, s) + 1 != d1))
            .collect();
        prop_assume!(!targets.is_empty());
        let s2 = targets[g.below(targets.len())].clone();
        v.elements[e].interfaces[i].substrates[0] = s2;
        let answer = check_view(&layout, &v, &ExpandConfig::default(), &mut budget()).expect("valid");
        prop_assert!(matches!(answer, ViewCheck::NotIsomorphic(_)), "{:?}", answer);
    }
}
