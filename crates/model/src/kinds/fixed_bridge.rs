//! `fixed_bridge`: a link from an element to an external network's endpoint.
//!
//! ToMaTo gives it no attributes; our data plane emulates and captures it like
//! any `bridge`, so it has the same attributes.

use super::common::link_kind;
use crate::registry::{DuplicateKind, Registry};

/// Registers `fixed_bridge`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    registry.add(link_kind("fixed_bridge", "A link to an external network's endpoint, with emulation and capture."))
}
