//! Management consoles that speak VDE's protocol for ToMaTo-rs switches and
//! links.
//!
//! A switch element answers like `vde_switch`'s management socket
//! (`port/print`, `vlan/create`, ...) and a link like `wirefilter`'s
//! (`delay LR 20+5`, `showinfo`, ...), so `vdeterm`, `unixterm`, `socat` and
//! scripts written for VDE keep working. The crate has two halves:
//!
//! - a pure part, with no I/O: [`switch`] and [`link`] parse one command line
//!   into a typed command, check it against VDE's rules and the target's
//!   state, apply it through a [`SwitchTarget`] or [`LinkTarget`], and
//!   format the [`Reply`] in VDE's framing ([`reply`]);
//! - [`server`], a small unix stream socket server with one thread per
//!   client that feeds lines to a [`Console`](server::Console).
//!
//! The data plane implements the target traits; [`memory`] has in-memory
//! targets backed by `netem` for tests. Architecture invariant: this crate
//! does not know the data plane; targets are the only way it acts.

pub mod link;
mod managed;
pub mod memory;
pub mod reply;
pub mod server;
pub mod switch;
mod text;

pub use link::{Direction, LinkCommand, LinkStatus, LinkTarget};
pub use managed::ManagedSwitch;
pub use reply::{Errno, Outcome, Reply, TargetError};
pub use switch::{Endpoint, HashEntry, HashInfo, PortInfo, SwitchChange, SwitchCommand, SwitchInfo, SwitchTarget};
