//! Pure decision logic for ToMaTo-rs link emulation and virtual switches.
//!
//! This crate decides; it does not act. A [`LinkDirection`] models one
//! direction of an emulated link (rate, queue, delay and jitter, loss and
//! burst loss, duplication, corruption, noise, MTU, reordering), with the
//! semantics of ToMaTo's tc/netem attributes and VDE's wirefilter. A
//! [`Switch`] is a learning (or hub) Ethernet switch with 802.1Q VLANs,
//! ageing and MAC-flap protection. Both are sans-IO: time is passed in as a
//! value ([`Instant`]), randomness comes from a seed with a fixed output
//! stream, the caller owns every frame buffer, and nothing here touches a
//! socket, a thread or the OS clock. A run is therefore reproducible from
//! its seed and inputs, and tests run on a virtual clock.
//!
//! Architecture invariant: no dependency on tokio, sockets, `std::time` or OS
//! randomness; the driver that moves bytes lives elsewhere.

mod dist;
mod link;
mod mld;
mod params;
mod queue;
mod rng;
mod switch;
mod time;
pub mod wire;

pub use dist::Distribution;
pub use link::{
    BitFlips, Corruption, Count, Counters, DecisionLog, Departure, DropCause, Duplicate, Fate, LinkDirection,
    Scheduled, Token, Verdict,
};
pub use params::{DirectionParams, MAX_DELAY_MS, ParamsError, ParamsUpdate};
pub use switch::{
    Egress, FlapGuard, Forwarding, MacTableEntry, PortCounters, PortIdx, PortVlan, Switch, SwitchConfig,
    SwitchCounters, SwitchDrop, SwitchError, SwitchMode, VlanSet,
};
pub use time::{Duration, Instant};
pub use wire::{EthernetFrame, Mac, Tagging, VlanId, WireError, rewrite_frame};
