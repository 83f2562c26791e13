//! `bridge`: an emulated link between two elements of the testbed.

use super::common::{link_actions, link_attrs};
use crate::registry::{Class, DuplicateKind, Kind, Registry, Role};
use crate::state::State::{Created, Started};

/// Registers `bridge`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    registry.add(Kind {
        name: "bridge",
        tomato_name: "bridge",
        aliases: &[],
        description: "A link between two interfaces or endpoints, with emulation and capture.",
        class: Class::Connection,
        role: Role::Link,
        parent: None,
        children: None,
        connectable: false,
        states: vec![Created, Started],
        attrs: link_attrs(),
        actions: link_actions(),
        name_pattern: None,
    })
}
