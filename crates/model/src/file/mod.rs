//! Topology files: our YAML/JSON format, ToMaTo's export format and DETER's
//! topdl.
//!
//! Text is parsed into an order-preserving [`Tree`] (raw), resolved into a
//! [`Topology`] (names bound to kinds, defaults and groups expanded), then
//! validated. Writing goes the other way and always produces the normalized
//! form, so `load(write(t)) == t` for every valid topology `t`.

use std::fmt;

use crate::problem::{Place, Problem};
use crate::topology::Topology;
use crate::validate::validate;

pub mod expr;
pub mod native;
pub mod tomato;
pub mod topdl;
pub mod tree;
pub mod xml;

pub use tree::Tree;

/// A topology file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Our format in YAML.
    Yaml,
    /// Our format in JSON.
    Json,
    /// ToMaTo's export format (JSON).
    Tomato,
    /// DETER's topdl (XML); layouts with regions are expanded on reading.
    Topdl,
}

impl Format {
    /// Names accepted on the command line.
    pub const NAMES: &[&str] = &["yaml", "json", "tomato", "topdl"];

    /// Parses a format name.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "tomato" => Some(Format::Tomato),
            "topdl" => Some(Format::Topdl),
            _ => None,
        }
    }

    /// The format a file name suggests: `.yaml`/`.yml`, `.json` or `.xml` (topdl).
    pub fn from_path(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "xml" => Some(Format::Topdl),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Tomato => "tomato",
            Format::Topdl => "topdl",
        })
    }
}

/// A loaded file: the topology, every problem found, and import notes.
#[derive(Debug)]
pub struct Loaded {
    /// The format the text was in.
    pub format: Format,
    /// The topology (possibly partial when there are problems).
    pub topology: Topology,
    /// Syntax, resolution and validation problems; empty means valid.
    pub problems: Vec<Problem>,
    /// Informational notes (runtime fields dropped on import; what a topdl
    /// expansion or mapping dropped).
    pub notes: Vec<String>,
}

/// Parses, resolves and validates a file. `hint` is the format the file name
/// suggests; JSON with `file_information` is read as ToMaTo's format, and
/// text starting with `<` as topdl (its regions expanded, see [`crate::layout`]).
pub fn load(text: &str, hint: Option<Format>) -> Loaded {
    if hint == Some(Format::Topdl) || text.trim_start().starts_with('<') {
        return load_topdl(text);
    }
    let parsed = match hint {
        Some(Format::Json | Format::Tomato) => serde_json::from_str::<Tree>(text).map_err(|e| e.to_string()),
        _ => yaml_serde::from_str::<Tree>(text).map_err(|e| e.to_string()),
    };
    let tree = match parsed {
        Ok(tree) => tree,
        Err(e) => {
            return Loaded {
                format: hint.unwrap_or(Format::Yaml),
                topology: Topology::default(),
                problems: vec![Problem::new(Place::File, "(syntax)", e)],
                notes: Vec::new(),
            };
        }
    };
    let (format, topology, mut problems, notes) = if tree.get("file_information").is_some() {
        let imported = tomato::import(&tree.to_value());
        (Format::Tomato, imported.topology, imported.problems, imported.notes)
    } else {
        let (topology, problems) = native::resolve(&tree);
        (hint.filter(|f| *f != Format::Tomato).unwrap_or(Format::Yaml), topology, problems, Vec::new())
    };
    problems.extend(validate(&topology));
    Loaded { format, topology, problems, notes }
}

fn load_topdl(text: &str) -> Loaded {
    let failed =
        |problems| Loaded { format: Format::Topdl, topology: Topology::default(), problems, notes: Vec::new() };
    let doc = match topdl::read(text) {
        Ok(doc) => doc,
        Err(problems) => return failed(problems),
    };
    let expansion = match crate::layout::expand(&doc, &crate::layout::ExpandConfig::default()) {
        Ok(x) => x,
        Err(problems) => return failed(problems),
    };
    let imported = crate::layout::convert::to_topology(&expansion.layout);
    let mut problems = imported.problems;
    problems.extend(validate(&imported.topology));
    let mut notes = expansion.notes;
    notes.extend(imported.notes);
    Loaded { format: Format::Topdl, topology: imported.topology, problems, notes }
}

/// Writes a topology in `format` (normalized; ends with a newline).
pub fn write(topology: &Topology, format: Format) -> String {
    let mut text = match format {
        Format::Yaml => yaml_serde::to_string(&native::to_tree(topology)).expect("a tree always serializes"),
        Format::Json => serde_json::to_string_pretty(&native::to_tree(topology)).expect("a tree always serializes"),
        Format::Tomato => serde_json::to_string_pretty(&tomato::export(topology)).expect("a value always serializes"),
        Format::Topdl => topdl::write(&crate::layout::convert::to_topdl(topology), &topdl::WriteConfig::default()),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
