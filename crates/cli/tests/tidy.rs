//! Tidy checks over the workspace: every Rust module opens with a `//!`
//! paragraph, and `docs/kinds.md` is the registry's current description
//! (`UPDATE_EXPECT=1` regenerates it).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_opens_with_a_doc_paragraph() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).expect("readable").trim_start().starts_with("//!"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "modules without a //! paragraph:\n{}", missing.join("\n"));
}

#[test]
fn kinds_reference_is_generated_from_the_registry() {
    let mut doc = String::from(
        "# Element and connection types\n\nGenerated from the registry by `UPDATE_EXPECT=1 cargo test -p cli --test tidy`; \
         `tomato capabilities TYPE` prints the same, `--json` in ToMaTo's shape.\n\n",
    );
    for kind in model::registry().kinds() {
        doc += &format!("## `{}`\n\n```text\n{}```\n\n", kind.name, model::capabilities::describe(kind));
    }
    let path = root().join("docs/kinds.md");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(root().join("docs")).expect("docs dir");
        std::fs::write(&path, &doc).expect("write docs/kinds.md");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(current == doc, "docs/kinds.md is stale; run UPDATE_EXPECT=1 cargo test -p cli --test tidy");
}
