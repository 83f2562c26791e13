//! The hostmanager: ToMaTo's per-host agent.
//!
//! It has exclusive control of one host and offers its elements (containers,
//! switches) and connections (emulated links) to one or more backends, each
//! seeing only its own objects. `host.rs` is the core (checks against the
//! model, store, actions, recovery); `drivers/` holds one module per type;
//! `plane.rs` keeps the data plane in step with the entities.

pub mod console;
pub mod crashpoint;
pub mod daemon;
pub mod disk;
pub mod drivers;
pub mod error;
pub mod fileserver;
pub mod host;
pub mod methods;
pub mod netns;
pub mod nlxtp;
pub mod plane;
pub mod resources;
pub mod store;
pub mod sysinfo;

pub use error::{ErrorKind, HostError};
pub use host::{Host, HostConfig, Recovery};
