//! The packet engine of a ToMaTo-rs host.
//!
//! Frames enter and leave through [`Port`]s ([`PacketPort`] on an existing
//! interface, [`QueuePort`] in memory, [`TapPort`] on a tap it creates,
//! [`DgramPort`] for QEMU's unix datagram netdev, [`TunnelPort`] over
//! encrypted UDP to another host; [`PortSpec`] names any of them in one
//! word) and cross emulated links (two
//! [`netem::LinkDirection`]s) and switches ([`netem::Switch`]) that one
//! engine thread drives ([`EngineHandle`]). The deciding logic stays in
//! `netem`; this crate only moves bytes, keeps time and owns buffers.
//! [`link_params_from_attrs`] turns a link's model attributes into the two
//! directions' parameters.
//!
//! Offloads: veth hands AF_PACKET TCP super-frames of up to 64 KiB with the
//! checksum left to "the hardware", from the *peer's* TSO, which turning
//! offloads off on the joined end does not change (and the peer is not ours
//! to touch). Ports therefore use `PACKET_VNET_HDR` and keep each frame's
//! offload state: a link that only delays, and a switch, pass super-frames
//! on whole (fast, and the kernel segments later if it must), and a link
//! that shapes, drops or damages frames cuts them into real frames first
//! (`gso.rs`), so rate and MTU see the sizes a wire would carry.
//!
//! Architecture invariant: no decision about a frame's fate is made here;
//! `netem` decides, the engine acts. The engine needs Linux (AF_PACKET,
//! epoll, timerfd) and, for packet ports, CAP_NET_RAW.

mod attrs;
pub mod console;
mod dgram;
mod engine;
pub mod gso;
pub mod lab;
mod packet;
pub mod pool;
mod port;
mod real;
mod spec;
pub mod sys;
mod tap;
pub mod tunnel;

pub use attrs::{fresh_seed, is_ignored, link_params_from_attrs, parse_assignments, reverse_seed};
pub use dgram::{DgramCounters, DgramPort};
pub use engine::{
    Direction, EngineConfig, EngineControl, EngineError, EngineHandle, EngineStats, LinkEnd, LinkId, LinkStats,
    PortStats, SwitchId, SwitchStats,
};
pub use packet::{MAX_BATCH, PacketPort};
pub use port::{FrameMeta, NEEDS_CSUM, Offload, Port, QueuePort, QueuePortHandle, VNET_HDR_LEN};
pub use real::RealFrames;
pub use spec::{KeySource, PortSpec, SpecError};
pub use tap::TapPort;
pub use tunnel::wire::TunnelKey;
pub use tunnel::{TunnelConfig, TunnelCounters, TunnelPort, TunnelStats};
