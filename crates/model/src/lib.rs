//! The ToMaTo-rs topology model: pure data and functions.
//!
//! Element and connection kinds with their attribute schemas, states and
//! actions live in a [`registry`] (one module per kind under `kinds/`); a
//! [`Topology`] binds user data to those kinds; [`validate`] reports every
//! problem at once; [`plan`] turns a topology action into ordered component
//! actions; [`check_update`] says which changes a running topology allows; and
//! [`file`] reads and writes our YAML/JSON format, ToMaTo's export format
//! and DETER's topdl; [`layout`] expands DETER layouts, gives their views and
//! checks a new view against a layout.
//! Nothing here does I/O, reads a clock or spawns anything.

pub mod capabilities;
pub mod file;
mod kinds;
pub mod layout;
pub mod plan;
pub mod problem;
pub mod registry;
pub mod schema;
pub mod state;
pub mod topology;
pub mod update;
pub mod validate;

pub use plan::{States, Step, TopologyAction, plan};
pub use problem::{Place, Problem};
pub use registry::{Class, Kind, Registry, registry};
pub use state::State;
pub use topology::{Attrs, ComponentId, Connection, Element, ElementPath, Topology};
pub use update::{Change, check_update};
pub use validate::validate;
