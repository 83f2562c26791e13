//! Packet capture for the ToMaTo-rs data plane.
//!
//! The data plane hands every frame of a captured connection to a [`Tap`]
//! from its engine thread. The tap runs the connection's libpcap filter
//! ([`Filter`], tcpdump syntax compiled by libpcap into classic BPF and run
//! in-process) and copies matching frames into a bounded wait-free queue; it
//! never blocks and drops (and counts) frames when the queue is full. A
//! writer thread owned by [`Capture`] drains the queue into the active sink:
//! a [`Ring`] of pcapng files (ToMaTo's `file` mode, merged on download with
//! [`Ring::merge`]) or a [`LiveStream`] TCP server (ToMaTo's `net` mode, for
//! `wireshark -k -i <(nc host port)`). Files are pcapng with one Interface
//! Description Block per captured interface and nanosecond timestamps
//! ([`PcapngWriter`]).
//!
//! Architecture invariant: this crate knows nothing about elements,
//! topologies or how frames are moved; it receives `(timestamp_ns,
//! interface index, bytes)` and reads no clock on the frame path (the
//! producer passes time in).

mod capture;
mod filter;
mod pcapng;
mod queue;
mod ring;
mod stream;

pub use capture::{Capture, CaptureConfig, CaptureError, CaptureMode, CaptureSetup, Counters, Tap};
pub use filter::{Filter, FilterError};
pub use pcapng::{DEFAULT_SNAPLEN, Interface, PcapngError, PcapngWriter};
pub use ring::{MergeSummary, Ring, RingConfig, RingError};
pub use stream::{ClientStats, LiveStream, LiveStreamConfig, StreamError, StreamStats};
