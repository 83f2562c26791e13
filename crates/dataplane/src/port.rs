//! The `Port` trait: where frames enter and leave the engine.
//!
//! A port moves whole Ethernet frames in bounded batches between the engine
//! and something outside it (an interface through AF_PACKET, an in-memory
//! queue in tests; later a tap, a QEMU socket or a UDP tunnel). The engine
//! owns every buffer: [`Port::recv_batch`] writes into buffers the caller
//! lends it and [`Port::send_batch`] reads from them, so a port allocates
//! nothing per frame. Each frame travels with its [`FrameMeta`], which
//! carries the Linux `virtio_net_hdr` offload state (pending checksum, GSO
//! segmentation) so that super-frames and checksum-less frames from veth can
//! be passed on intact or segmented; see the crate docs for why.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

/// Offload state of a frame, the fields of Linux's `struct virtio_net_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offload {
    /// `VIRTIO_NET_HDR_F_*` flags; bit 0 = the L4 checksum is still to be
    /// computed from `csum_start` and stored at `csum_start + csum_offset`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`: 0 none, 1 TCPv4, 3 UDP (UFO), 4 TCPv6,
    /// 5 UDP_L4; bit 7 = ECN.
    pub gso_type: u8,
    /// Length of the headers the kernel reports (a hint only).
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-frame.
    pub gso_size: u16,
    /// Where the checksummed region starts.
    pub csum_start: u16,
    /// Where the checksum field is, relative to `csum_start`.
    pub csum_offset: u16,
}

/// Flag: the L4 checksum is not computed yet.
pub const NEEDS_CSUM: u8 = 1;
/// Size of `struct virtio_net_hdr` on the wire.
pub const VNET_HDR_LEN: usize = 10;

impl Offload {
    /// A complete, ordinary frame.
    pub const NONE: Offload = Offload { flags: 0, gso_type: 0, hdr_len: 0, gso_size: 0, csum_start: 0, csum_offset: 0 };

    /// Whether this is a super-frame the kernel would segment.
    pub fn is_gso(&self) -> bool {
        self.gso_type & 0x7f != 0
    }

    /// Parses the 10-byte little-endian `virtio_net_hdr`.
    pub fn from_bytes(b: &[u8; VNET_HDR_LEN]) -> Offload {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Offload {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// The 10-byte little-endian `virtio_net_hdr`.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

/// Length and offload state of one frame in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// Frame length in bytes (Ethernet header included, no FCS).
    pub len: usize,
    /// Offload state.
    pub offload: Offload,
}

/// Keeps frame `i` of a received batch as frame `kept` (`kept <= i`),
/// moving its bytes down when frames before it were dropped, so a port's
/// `recv_batch` returns its good frames in order at the front.
pub(crate) fn keep_frame(bufs: &mut [&mut [u8]], meta: &mut [FrameMeta], kept: usize, i: usize, frame: FrameMeta) {
    if kept != i {
        let (head, tail) = bufs.split_at_mut(i);
        head[kept][..frame.len].copy_from_slice(&tail[0][..frame.len]);
    }
    meta[kept] = frame;
}

/// A source and sink of Ethernet frames, driven by the engine.
///
/// Call order: wait until [`fd`](Self::fd) is readable (level-triggered),
/// then call [`recv_batch`](Self::recv_batch) until it returns 0; call
/// [`send_batch`](Self::send_batch) whenever frames are due. Both handle at
/// most `bufs.len()` / `frames.len()` frames per call, so one busy port
/// cannot starve the others.
pub trait Port: Send {
    /// Receives up to `bufs.len()` frames into `bufs` (frame `i` starts at
    /// `bufs[i][0]`), fills `meta[i]`, and returns how many arrived; 0 when
    /// none is waiting. A frame longer than its buffer is dropped and
    /// counted by the port, not returned.
    fn recv_batch(&mut self, bufs: &mut [&mut [u8]], meta: &mut [FrameMeta]) -> io::Result<usize>;

    /// Sends `frames[i][..meta[i].len]` for each `i` and returns how many
    /// the kernel took; the caller counts the rest as dropped.
    fn send_batch(&mut self, frames: &[&[u8]], meta: &[FrameMeta]) -> io::Result<usize>;

    /// The descriptor to poll for readability.
    fn fd(&self) -> RawFd;

    /// A short human name, e.g. the interface name.
    fn name(&self) -> &str;
}

/// One end of an in-memory port: what a test injects and what it collects.
#[derive(Debug, Default)]
struct QueueState {
    inbound: VecDeque<(Vec<u8>, Offload)>,
    outbound: VecDeque<(Vec<u8>, Offload)>,
}

/// An in-memory port for tests: frames pushed with [`QueuePortHandle`] come
/// out of `recv_batch`, frames sent are collected for the test to read. Its
/// descriptor is an eventfd that is readable while inbound frames wait.
#[derive(Debug)]
pub struct QueuePort {
    name: String,
    state: Arc<Mutex<QueueState>>,
    event: Arc<OwnedFd>,
}

/// The test's side of a [`QueuePort`].
#[derive(Debug, Clone)]
pub struct QueuePortHandle {
    state: Arc<Mutex<QueueState>>,
    event: Arc<OwnedFd>,
}

impl QueuePort {
    /// A new port and the handle to feed and drain it.
    pub fn new(name: &str) -> io::Result<(QueuePort, QueuePortHandle)> {
        let event = Arc::new(crate::sys::eventfd()?);
        let state = Arc::new(Mutex::new(QueueState::default()));
        let handle = QueuePortHandle { state: Arc::clone(&state), event: Arc::clone(&event) };
        Ok((QueuePort { name: name.to_string(), state, event }, handle))
    }
}

impl QueuePortHandle {
    /// Queues a frame for the engine to receive.
    pub fn inject(&self, frame: &[u8]) {
        self.inject_with(frame, Offload::NONE);
    }

    /// Queues a frame with offload state for the engine to receive.
    pub fn inject_with(&self, frame: &[u8], offload: Offload) {
        self.state.lock().expect("queue port lock is never poisoned").inbound.push_back((frame.to_vec(), offload));
        crate::sys::eventfd_signal(self.event.as_raw_fd());
    }

    /// Takes every frame the engine sent so far.
    pub fn drain_sent(&self) -> Vec<(Vec<u8>, Offload)> {
        self.state.lock().expect("queue port lock is never poisoned").outbound.drain(..).collect()
    }
}

impl Port for QueuePort {
    fn recv_batch(&mut self, bufs: &mut [&mut [u8]], meta: &mut [FrameMeta]) -> io::Result<usize> {
        let mut state = self.state.lock().expect("queue port lock is never poisoned");
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let Some((frame, offload)) = state.inbound.pop_front() else { break };
            if frame.len() > bufs[n].len() {
                continue;
            }
            bufs[n][..frame.len()].copy_from_slice(&frame);
            meta[n] = FrameMeta { len: frame.len(), offload };
            n += 1;
        }
        if state.inbound.is_empty() {
            crate::sys::eventfd_clear(self.event.as_raw_fd());
        }
        Ok(n)
    }

    fn send_batch(&mut self, frames: &[&[u8]], meta: &[FrameMeta]) -> io::Result<usize> {
        let mut state = self.state.lock().expect("queue port lock is never poisoned");
        for (frame, m) in frames.iter().zip(meta) {
            state.outbound.push_back((frame[..m.len].to_vec(), m.offload));
        }
        Ok(frames.len().min(meta.len()))
    }

    fn fd(&self) -> RawFd {
        self.event.as_raw_fd()
    }

    fn name(&self) -> &str {
        &self.name
    }
}
