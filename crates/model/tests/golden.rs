//! Golden tests: each input file is loaded, and its normalized YAML (or its
//! problems) and its start plan are compared with `<input>.expect`.
//!
//! Inputs are `tests/golden/*.{yaml,json}`, the project's `examples/` and the
//! ToMaTo exports in `../shared/data/tomato-topologies/`. Run with
//! `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate change.

use std::path::{Path, PathBuf};

use model::file::{self, Format};
use model::{States, TopologyAction, plan, problem};

fn render(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("input is readable");
    let loaded = file::load(&text, Format::from_path(&path.to_string_lossy()));
    let mut out = String::new();
    for note in &loaded.notes {
        out += &format!("# note: {note}\n");
    }
    if !loaded.problems.is_empty() {
        out += &format!("# {} problem(s)\n{}\n", loaded.problems.len(), problem::report(&loaded.problems));
        return out;
    }
    out += &file::write(&loaded.topology, Format::Yaml);
    out += "# plan: start\n";
    for step in plan(&loaded.topology, &States::new(), TopologyAction::Start) {
        out += &format!("#   {} {} ({} -> {})\n", step.action, step.component, step.from, step.to);
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

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "json")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_inputs() {
    for input in inputs(&golden_dir()) {
        check(
            &input.with_extension(format!("{}.expect", input.extension().and_then(|e| e.to_str()).unwrap_or(""))),
            &render(&input),
        );
    }
}

#[test]
fn examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for input in inputs(&dir) {
        let name = input.file_name().and_then(|n| n.to_str()).expect("file name");
        check(&golden_dir().join(format!("example-{name}.expect")), &render(&input));
    }
}

#[test]
fn tomato_exports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tomato-topologies");
    for input in inputs(&dir) {
        let name = input.file_name().and_then(|n| n.to_str()).expect("file name");
        check(&golden_dir().join(format!("tomato-{name}.expect")), &render(&input));
    }
}
