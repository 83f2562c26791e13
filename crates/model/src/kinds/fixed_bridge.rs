//! `fixed_bridge`: a link from an element to an external network's endpoint.
//!
//! ToMaTo gives it no attributes; our data plane emulates and captures it like
//! any `bridge`, so it has the same attributes.

use super::common::{link_actions, link_attrs};
use crate::registry::{Class, DuplicateKind, Kind, Registry, Role};
use crate::state::State::{Created, Started};

/// Registers `fixed_bridge`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    registry.add(Kind {
        name: "fixed_bridge",
        tomato_name: "fixed_bridge",
        aliases: &[],
        description: "A link to an external network's endpoint, with emulation and capture.",
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
