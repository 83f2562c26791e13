//! Golden tests for DETER layouts: each topdl input (the project's
//! `examples/layouts/` and `tests/golden/layouts/`) is read, expanded and
//! mapped to a topology, and the normalized result (or the problems) is
//! compared with `<input>.expect`. `UPDATE_EXPECT=1` rewrites them.
//!
//! The expanded layout is listed one line per substrate and element (a
//! normalized form that stays readable for the 1,000-node example); small
//! layouts also show the topology they import as, in our YAML.

use std::path::{Path, PathBuf};

use model::file::topdl::{self, Topdl, WriteConfig};
use model::file::{self, Format};
use model::layout::{Budget, ExpandConfig, View, ViewCheck, check_view, expand, view};
use model::problem;

/// The listing of an expanded layout: substrates with their values and
/// members, then elements with attributes and interfaces.
fn listing(t: &Topdl) -> String {
    let mut out = String::new();
    let values = |cap: &Option<topdl::Capacity>, lat: &Option<topdl::Latency>| {
        let mut v = String::new();
        if let Some(c) = cap {
            v += &format!(" {}kb/s({})", topdl::number_text(c.rate), c.kind);
        }
        if let Some(l) = lat {
            v += &format!(" {}ms({})", topdl::number_text(l.time), l.kind);
        }
        v
    };
    let attrs = |a: &[topdl::Attribute]| a.iter().map(|a| format!(" {}={}", a.key, a.value)).collect::<String>();
    for s in &t.substrates {
        let members: Vec<String> = t
            .elements
            .iter()
            .flat_map(|e| {
                e.interfaces
                    .iter()
                    .filter(|i| i.substrates.contains(&s.name))
                    .map(move |i| format!("{}.{}", e.name, i.name))
            })
            .collect();
        out += &format!(
            "substrate {}{}{} [{}]\n",
            s.name,
            values(&s.capacity, &s.latency),
            attrs(&s.attributes),
            members.join(" ")
        );
    }
    for e in &t.elements {
        out += &format!("{} {}{}\n", e.class, e.name, attrs(&e.attributes));
        for i in &e.interfaces {
            out += &format!(
                "  {} -> {}{}{}\n",
                i.name,
                i.substrates.join(","),
                values(&i.capacity, &i.latency),
                attrs(&i.attributes)
            );
        }
    }
    for m in &t.namemaps {
        let entries: Vec<String> = m.entries.iter().map(|e| format!("{}={}", e.local, e.global)).collect();
        out += &format!("namemap {}: {}\n", m.pathname, entries.join(" "));
    }
    out
}

fn render(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("input is readable");
    let doc = match topdl::read(&text) {
        Ok(doc) => doc,
        Err(problems) => return format!("# {} problem(s) reading\n{}\n", problems.len(), problem::report(&problems)),
    };
    // The written form reads back as the same document.
    let written = topdl::write(&doc, &WriteConfig::default());
    assert_eq!(topdl::read(&written).as_ref(), Ok(&doc), "{} does not round-trip", path.display());
    let expansion = match expand(&doc, &ExpandConfig::default()) {
        Ok(x) => x,
        Err(problems) => return format!("# {} problem(s) expanding\n{}\n", problems.len(), problem::report(&problems)),
    };
    let full = &expansion.layout;
    let computers = full.elements.iter().filter(|e| e.class == topdl::Class::Computer).count();
    let mut out = format!(
        "# expanded: {} elements ({computers} computers), {} substrates, {} provisional names\n",
        full.elements.len(),
        full.substrates.len(),
        expansion.provisional.len()
    );
    for note in &expansion.notes {
        out += &format!("# note: {note}\n");
    }
    out += &listing(full);
    let loaded = file::load(&text, Some(Format::Topdl));
    out += &format!(
        "# as a topology: {} elements, {} connections\n",
        loaded.topology.elements.len(),
        loaded.topology.connections.len()
    );
    for note in loaded.notes.iter().skip(expansion.notes.len()) {
        out += &format!("# note: {note}\n");
    }
    if !loaded.problems.is_empty() {
        out += &format!("# {} problem(s)\n{}\n", loaded.problems.len(), problem::report(&loaded.problems));
    } else if loaded.topology.elements.len() <= 40 {
        out += &file::write(&loaded.topology, Format::Yaml);
    }
    out
}

/// Compares `actual` with the expectation file, or rewrites it.
fn check(expect_path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(expect_path, actual).expect("expectation is writable");
        return;
    }
    let expected = std::fs::read_to_string(expect_path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_EXPECT=1", expect_path.display()));
    assert!(
        expected == actual,
        "{} differs (UPDATE_EXPECT=1 refreshes it)\n--- expected\n{expected}\n--- actual\n{actual}",
        expect_path.display()
    );
}

fn xml_inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/layouts")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/layouts")
}

#[test]
fn golden_layouts() {
    for input in xml_inputs(&golden_dir()) {
        check(&input.with_extension("xml.expect"), &render(&input));
    }
}

#[test]
fn example_layouts() {
    for input in xml_inputs(&examples_dir()) {
        let name = input.file_name().and_then(|n| n.to_str()).expect("file name");
        check(&golden_dir().join(format!("example-{name}.expect")), &render(&input));
    }
}

fn example(name: &str) -> Topdl {
    topdl::read(&std::fs::read_to_string(examples_dir().join(name)).expect("example")).expect("valid example")
}

#[test]
fn the_enterprise_example_expands_to_more_than_a_thousand_computers() {
    let full = expand(&example("enterprise.xml"), &ExpandConfig::default()).expect("expands").layout;
    let computers = full.elements.iter().filter(|e| e.class == topdl::Class::Computer).count();
    assert!(computers > 1000, "{computers}");
    // The bound on expansion is enforced.
    let problems = expand(&example("enterprise.xml"), &ExpandConfig { max_vertices: 500 }).expect_err("too big");
    assert!(problem::report(&problems).contains("more than 500 elements and substrates"), "{problems:?}");
}

#[test]
fn views_of_the_recursive_example() {
    let doc = example("recursive.xml");
    let config = ExpandConfig::default();
    let minimal = view(&doc, &View::Minimal, &config).expect("minimal");
    assert!(minimal.fragments.is_empty() && minimal.namemaps.is_empty());
    assert_eq!(minimal.elements.len(), 3);
    let fragment = view(&doc, &View::Fragment("F1".into()), &config).expect("fragment");
    assert_eq!(fragment.elements.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["hub", "left", "right"]);
    let names = view(&doc, &View::NameMap("/left/right".into()), &config).expect("namemap");
    assert!(names.elements.is_empty());
    assert_eq!(names.namemaps[0].entries[1].global, "edge-7");
    let err = view(&doc, &View::NameMap("/nowhere".into()), &config).expect_err("no such path");
    assert!(problem::report(&err).contains("region paths: /left, /left/left, /left/right, /right"), "{err:?}");
    let err = view(&doc, &View::Fragment("F2".into()), &config).expect_err("no such fragment");
    assert!(problem::report(&err).contains("`F2` is not a fragment; fragments: F1"), "{err:?}");
    assert!(View::parse("fragment/").is_err() && View::parse("everything").is_err());
}

#[test]
fn a_layout_and_its_full_view_are_the_same_layout() {
    for name in ["recursive.xml", "enterprise.xml", "simple.xml"] {
        let doc = example(name);
        let full = view(&doc, &View::Full, &ExpandConfig::default()).expect("full");
        let answer = check_view(&doc, &full, &ExpandConfig::default(), &mut Budget::steps(50_000_000)).expect("valid");
        let ViewCheck::Isomorphic(pairs) = answer else { panic!("{name}: {answer:?}") };
        assert!(pairs.iter().all(|(v, l)| v == l), "{name}: names both chose map to themselves");
    }
    // The minimal view of the recursive layout is not the layout.
    let doc = example("recursive.xml");
    let mut minimal = view(&doc, &View::Minimal, &ExpandConfig::default()).expect("minimal");
    for e in &mut minimal.elements {
        e.region = None;
        e.class = topdl::Class::Computer;
    }
    let answer = check_view(&doc, &minimal, &ExpandConfig::default(), &mut Budget::steps(1_000_000)).expect("valid");
    assert!(matches!(answer, ViewCheck::NotIsomorphic(_)), "{answer:?}");
}

#[test]
fn our_examples_survive_a_trip_through_topdl() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["lan.yaml", "router-chain.yaml", "star100.yaml", "vlans-and-internet.yaml"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("example");
        let original = file::load(&text, Some(Format::Yaml));
        assert!(original.problems.is_empty());
        let xml = file::write(&original.topology, Format::Topdl);
        let back = file::load(&xml, Some(Format::Topdl));
        assert!(back.problems.is_empty(), "{name}: {}", problem::report(&back.problems));
        // Switches written as substrates come back after the nodes.
        let mut a = original.topology.clone();
        let mut b = back.topology.clone();
        a.elements.sort_by(|x, y| x.name.cmp(&y.name));
        b.elements.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(a, b, "{name}");
    }
}
