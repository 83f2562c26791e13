//! `external_network` and `external_network_endpoint`.
//!
//! An external network is a network outside the testbed (the internet, a lab
//! network) that administrators offer by kind; each connection to it attaches
//! to one endpoint, placed on the host of the connected element.

use serde_json::json;

use super::common::*;
use crate::registry::{ChildRule, Class, DuplicateKind, Kind, Registry, Role};
use crate::schema::{ActionSpec, AttrSpec, REMOVE, ValueSchema};
use crate::state::State::{Created, Started};

/// Registers `external_network` and `external_network_endpoint`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    registry.add(Kind {
        name: "external_network",
        tomato_name: "external_network",
        aliases: &[],
        description: "A network outside the testbed, offered by the administrators by kind.",
        class: Class::Element,
        role: Role::Network(2),
        parent: None,
        children: Some(ChildRule {
            kind: "external_network_endpoint",
            name_prefix: "port",
            file_key: "endpoints",
            add_in: vec![Created],
        }),
        connectable: false,
        states: vec![Created, Started],
        attrs: vec![
            AttrSpec::new("kind", "Kind", identifier())
                .default(json!("internet"))
                .writable(&[Created])
                .about("Kind of network; picks the host network of this kind (or `kind/...`)."),
            AttrSpec::new("samenet", "Same network", ValueSchema::Bool)
                .default(json!(false))
                .writable(&[Created])
                .about("Whether all endpoints must use the very same network instance."),
        ],
        actions: vec![
            ActionSpec::new("start", "Attaches the endpoints to the host networks.", &[Created], Some(Started)),
            ActionSpec::new("stop", "Detaches the endpoints.", &[Started], Some(Created)),
            ActionSpec::new(REMOVE, "Removes the external network from the topology.", &[Created], None),
        ],
        name_pattern: None,
    })?;
    registry.add(Kind {
        name: "external_network_endpoint",
        tomato_name: "external_network_endpoint",
        aliases: &[],
        description: "An attachment point of an external network.",
        class: Class::Element,
        role: Role::Child,
        parent: Some("external_network"),
        children: None,
        connectable: true,
        states: vec![Created, Started],
        attrs: Vec::new(),
        actions: vec![ActionSpec::new(REMOVE, "Removes the endpoint.", &[Created], None)],
        name_pattern: None,
    })
}
