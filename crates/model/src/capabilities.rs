//! Capabilities in the shape of ToMaTo's `capabilities_element` and
//! `capabilities_connection`, and a plain-text rendering for people.
//!
//! Both come from the registry, the same data validation uses.

use serde_json::{Value, json};

use crate::registry::{Class, Kind, registry};
use crate::state::list_states;

/// Every kind's capabilities, keyed by class and name.
pub fn all() -> Value {
    let mut elements = serde_json::Map::new();
    let mut connections = serde_json::Map::new();
    for k in registry().kinds() {
        match k.class {
            Class::Element => elements.insert(k.name.into(), k.capabilities()),
            Class::Connection => connections.insert(k.name.into(), k.capabilities()),
        };
    }
    json!({ "element": elements, "connection": connections })
}

/// A table of one kind's attributes and actions for a terminal.
pub fn describe(kind: &Kind) -> String {
    let mut out = format!("{} ({}): {}\n", kind.name, class_name(kind.class), kind.description);
    let mut names = vec![format!("ToMaTo: {}", kind.tomato_name)];
    if !kind.aliases.is_empty() {
        names.push(format!("aliases: {}", kind.aliases.join(", ")));
    }
    out += &format!("  {}\n  states: {}\n", names.join("; "), list_states(&kind.states));
    if let Some(parent) = kind.parent {
        out += &format!("  child of: {parent}\n");
    }
    if let Some(c) = &kind.children {
        out += &format!("  {}: {} ({}N), added while {}\n", c.file_key, c.kind, c.name_prefix, list_states(&c.add_in));
    }
    if !kind.attrs.is_empty() {
        out += "\n  attribute              default        writable in                 allowed\n";
        for a in &kind.attrs {
            out += &format!(
                "  {:<22} {:<14} {:<27} {}\n",
                a.name,
                render_default(&a.default),
                if a.read_only() { "read-only".to_string() } else { list_states(&a.writable_in) },
                a.allowed()
            );
        }
    }
    if !kind.actions.is_empty() {
        out += "\n  action                 allowed in                  leads to\n";
        for a in &kind.actions {
            out += &format!(
                "  {:<22} {:<27} {}\n",
                a.name,
                a.allowed_states(),
                a.leads_to.map(|s| s.as_str()).unwrap_or("(same state)")
            );
        }
    }
    out
}

/// One line per kind: name, class and description.
pub fn summary() -> String {
    registry()
        .kinds()
        .iter()
        .map(|k| format!("{:<27} {:<10} {}\n", k.name, class_name(k.class), k.description))
        .collect()
}

fn class_name(class: Class) -> &'static str {
    match class {
        Class::Element => "element",
        Class::Connection => "connection",
    }
}

fn render_default(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
