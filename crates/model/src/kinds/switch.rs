//! `switch` (ToMaTo's `tinc_vpn` and `vpncloud`) and `switch_endpoint`.
//!
//! A switch is a learning switch or a hub in the data plane; each connection
//! to it attaches to one of its endpoints (ports), which carry a VLAN setting.

use serde_json::json;

use super::common::*;
use crate::registry::{ChildRule, Class, DuplicateKind, Kind, Registry, Role};
use crate::schema::{ActionSpec, AttrSpec, REMOVE, ValueSchema};
use crate::state::State::{Created, Prepared, Started};

/// Registers `switch` and `switch_endpoint`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    registry.add(Kind {
        name: "switch",
        tomato_name: "tinc_vpn",
        aliases: &["vpncloud", "tinc"],
        description: "A learning switch (or a hub) joining its endpoints, also across hosts.",
        class: Class::Element,
        role: Role::Network(0),
        parent: None,
        children: Some(ChildRule {
            kind: "switch_endpoint",
            name_prefix: "port",
            file_key: "endpoints",
            add_in: vec![Created, Prepared],
        }),
        connectable: false,
        states: vec![Created, Prepared, Started],
        attrs: vec![
            AttrSpec::new("mode", "Mode", ValueSchema::Choice(&["switch", "hub"]))
                .default(json!("switch"))
                .writable(BEFORE_START)
                .about("switch: learns addresses and forwards to one port; hub: sends every frame to all ports."),
        ],
        actions: vec![
            ActionSpec::new("prepare", "Prepares the switch and its endpoints.", &[Created], Some(Prepared)),
            ActionSpec::new("start", "Starts forwarding.", &[Prepared], Some(Started)),
            ActionSpec::new("stop", "Stops forwarding.", &[Started], Some(Prepared)),
            ActionSpec::new("destroy", "Removes the switch from its hosts.", &[Prepared], Some(Created)),
            ActionSpec::new(REMOVE, "Removes the switch from the topology.", &[Created], None),
        ],
        name_pattern: None,
    })?;
    let vlan = || ValueSchema::Int { min: 1, max: 4094 };
    registry.add(Kind {
        name: "switch_endpoint",
        tomato_name: "tinc_endpoint",
        aliases: &["vpncloud_endpoint"],
        description: "A port of a switch.",
        class: Class::Element,
        role: Role::Child,
        parent: Some("switch"),
        children: None,
        connectable: true,
        states: vec![Created, Prepared, Started],
        attrs: vec![
            AttrSpec::new("vlan", "VLAN", vlan())
                .default(json!(1))
                .writable(ALWAYS)
                .about("VLAN of untagged frames on this port (access VLAN)."),
            AttrSpec::new("tagged", "Tagged VLANs", ValueSchema::List(Box::new(vlan())))
                .default(json!([]))
                .writable(ALWAYS)
                .about("VLANs carried with an 802.1Q tag on this port (trunk)."),
        ],
        actions: vec![ActionSpec::new(REMOVE, "Removes the port.", BEFORE_START, None)],
        name_pattern: None,
    })
}
