//! `repy` programmable devices and `repy_interface`.
//!
//! A programmable device runs a user's script in a sandbox that sees the
//! device's interfaces as raw Ethernet ports (ToMaTo's Repy devices).

use serde_json::json;

use super::common::*;
use crate::registry::{DuplicateKind, Registry};
use crate::schema::{ActionSpec, AttrSpec, ValueSchema};
use crate::state::State::{Prepared, Started};

/// Registers `repy` and `repy_interface`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    let mut attrs = vm_attrs();
    attrs.extend([
        AttrSpec::new(
            "args",
            "Arguments",
            ValueSchema::List(Box::new(ValueSchema::Text { max_len: 4096, pattern: None })),
        )
        .default(json!([]))
        .writable(BEFORE_START)
        .about("Arguments passed to the script."),
        AttrSpec::new("bandwidth", "Bandwidth", ValueSchema::Int { min: 1024, max: 10_000_000_000 })
            .unit("bytes/s")
            .nullable()
            .writable(BEFORE_START)
            .about("Limit of the traffic the script may send and receive; null takes it from the profile."),
    ]);
    let mut actions = vm_actions();
    actions.push(ActionSpec::new(
        "download_log_grant",
        "Grants a download of the script's log.",
        &[Prepared, Started],
        None,
    ));
    registry.add(node_kind(
        "repy",
        &[],
        "A programmable device: a sandboxed script that handles the frames of its interfaces.",
        2,
        "repy_interface",
        attrs,
        actions,
    ))?;
    registry.add(interface_kind("repy_interface", &[], "A port (ethN) of a programmable device.", "repy", Vec::new()))
}
