//! `repy` programmable devices and `repy_interface`.
//!
//! A programmable device runs a user's script in a sandbox that sees the
//! device's interfaces as raw Ethernet ports (ToMaTo's Repy devices).

use serde_json::json;

use super::common::*;
use crate::registry::{ChildRule, Class, DuplicateKind, Kind, Registry, Role};
use crate::schema::{ActionSpec, AttrSpec, ValueSchema};
use crate::state::State::{Created, Prepared, Started};

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
    registry.add(Kind {
        name: "repy",
        tomato_name: "repy",
        aliases: &[],
        description: "A programmable device: a sandboxed script that handles the frames of its interfaces.",
        class: Class::Element,
        role: Role::Node(2),
        parent: None,
        children: Some(ChildRule {
            kind: "repy_interface",
            name_prefix: "eth",
            file_key: "interfaces",
            add_in: vec![Created, Prepared],
        }),
        connectable: false,
        states: vec![Created, Prepared, Started],
        attrs,
        actions,
        name_pattern: None,
    })?;
    registry.add(Kind {
        name: "repy_interface",
        tomato_name: "repy_interface",
        aliases: &[],
        description: "A port (ethN) of a programmable device.",
        class: Class::Element,
        role: Role::Child,
        parent: Some("repy"),
        children: None,
        connectable: true,
        states: vec![Created, Prepared, Started],
        attrs: Vec::new(),
        actions: interface_actions(),
        name_pattern: Some(interface_name_pattern()),
    })
}
