//! `udp_endpoint`: one end of a UDP tunnel to a peer outside the testbed.

use super::common::BEFORE_START;
use crate::registry::{Class, DuplicateKind, Kind, Registry, Role};
use crate::schema::{ActionSpec, AttrSpec, REMOVE, ValueSchema};
use crate::state::State::{Created, Prepared, Started};

/// Registers `udp_endpoint`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    registry.add(Kind {
        name: "udp_endpoint",
        tomato_name: "udp_endpoint",
        aliases: &["udp_tunnel"],
        description: "One end of a UDP tunnel carrying Ethernet frames to a peer outside the testbed.",
        class: Class::Element,
        role: Role::Network(1),
        parent: None,
        children: None,
        connectable: true,
        states: vec![Created, Prepared, Started],
        attrs: vec![
            AttrSpec::new("connect", "Connect to", ValueSchema::HostPort)
                .nullable()
                .writable(BEFORE_START)
                .about("The peer's host:port; null waits for the peer to connect."),
        ],
        actions: vec![
            ActionSpec::new("prepare", "Opens the tunnel's port on a host.", &[Created], Some(Prepared)),
            ActionSpec::new("start", "Starts carrying frames.", &[Prepared], Some(Started)),
            ActionSpec::new("stop", "Stops carrying frames.", &[Started], Some(Prepared)),
            ActionSpec::new("destroy", "Closes the port.", &[Prepared], Some(Created)),
            ActionSpec::new(REMOVE, "Removes the endpoint from the topology.", &[Created], None),
        ],
        name_pattern: None,
    })
}
