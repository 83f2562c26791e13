//! Resources a backend places on the host: templates (root filesystems of
//! containers, by name, stored by sha256) and networks (external network
//! kinds). This module checks their attributes and shapes their info.

use std::path::Path;

use model::Attrs;
use serde_json::{Value, json};

use crate::error::{HostError, Result};
use crate::store::Resource;

/// Resource types this host keeps.
pub const TYPES: &[&str] = &["template", "network"];

/// Template techs this host runs.
pub const TEMPLATE_TECHS: &[&str] = &["container"];

fn text<'a>(attrs: &'a Attrs, name: &str, kind: &str) -> Result<&'a str> {
    attrs
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| HostError::invalid(format!("{name}: a {kind} resource needs `{name}` (a string)")))
}

/// Whether `s` is a lowercase sha256 hex digest.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a resource's attributes for its type.
pub fn check(kind: &str, attrs: &Attrs, _data_dir: &Path) -> Result<()> {
    match kind {
        "template" => {
            let name = text(attrs, "name", kind)?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(HostError::invalid(format!("name: {name:?} must be letters, digits, '-', '_' or '.'")));
            }
            let tech = text(attrs, "tech", kind)?;
            if !TEMPLATE_TECHS.contains(&tech) {
                return Err(HostError::invalid(format!(
                    "tech: {tech:?} is not offered here; allowed: {}",
                    TEMPLATE_TECHS.join(", ")
                )));
            }
            let sha = text(attrs, "sha256", kind)?;
            if !is_sha256(sha) {
                return Err(HostError::invalid("sha256: 64 lowercase hex digits"));
            }
            let path = text(attrs, "path", kind)?;
            if !Path::new(path).is_file() {
                return Err(HostError::invalid(format!("path: {path} is not a file on this host")));
            }
            Ok(())
        }
        "network" => {
            text(attrs, "kind", kind)?;
            Ok(())
        }
        _ => Err(HostError::invalid(format!("type: {kind:?} is not a resource type; allowed: {}", TYPES.join(", ")))),
    }
}

/// A resource in the API's shape.
pub fn info(r: &Resource) -> Value {
    json!({"id": r.id, "type": r.kind, "attrs": r.attrs})
}
