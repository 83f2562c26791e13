//! `bridge`: an emulated link between two elements of the testbed.

use super::common::link_kind;
use crate::registry::{DuplicateKind, Registry};

/// Registers `bridge`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    registry.add(link_kind("bridge", "A link between two interfaces or endpoints, with emulation and capture."))
}
