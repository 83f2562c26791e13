//! Built-in element and connection kinds, one module each.
//!
//! To add a kind: write a module with a `register` function (see
//! `udp_endpoint.rs` for the smallest one) and add one line to
//! [`REGISTRATIONS`]. Shared attribute and action sets live in `common.rs`.

use crate::registry::{DuplicateKind, Registry};

mod bridge;
mod common;
mod container;
mod external_network;
mod fixed_bridge;
mod full;
mod repy;
mod switch;
mod udp_endpoint;

pub use common::identifier;

/// A kind module's registration function.
pub type Register = fn(&mut Registry) -> Result<(), DuplicateKind>;

/// One registration function per kind module, in the order kinds are listed.
pub const REGISTRATIONS: &[Register] = &[
    container::register,
    full::register,
    repy::register,
    switch::register,
    external_network::register,
    udp_endpoint::register,
    bridge::register,
    fixed_bridge::register,
];
