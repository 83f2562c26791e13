//! Topology files: our YAML/JSON format and ToMaTo's export format.
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
pub mod tree;

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
}

impl Format {
    /// Names accepted on the command line.
    pub const NAMES: &[&str] = &["yaml", "json", "tomato"];

    /// Parses a format name.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "tomato" => Some(Format::Tomato),
            _ => None,
        }
    }

    /// The format a file name suggests: `.yaml`/`.yml` or `.json`.
    pub fn from_path(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
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
    /// Informational notes (runtime fields dropped on import).
    pub notes: Vec<String>,
}

/// Parses, resolves and validates a file. `hint` is the format the file name
/// suggests; JSON with `file_information` is read as ToMaTo's format.
pub fn load(text: &str, hint: Option<Format>) -> Loaded {
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

/// Writes a topology in `format` (normalized; ends with a newline).
pub fn write(topology: &Topology, format: Format) -> String {
    let mut text = match format {
        Format::Yaml => yaml_serde::to_string(&native::to_tree(topology)).expect("a tree always serializes"),
        Format::Json => serde_json::to_string_pretty(&native::to_tree(topology)).expect("a tree always serializes"),
        Format::Tomato => serde_json::to_string_pretty(&tomato::export(topology)).expect("a value always serializes"),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
