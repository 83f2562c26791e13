//! `TunnelPort`: a [`Port`] that carries a link to another host over UDP,
//! each Ethernet frame in one datagram, encrypted and authenticated with
//! ChaCha20-Poly1305 under a pre-shared key.
//!
//! The wire format, the nonce rule and the anti-replay window are in
//! [`wire`] (pure, tested there); this module only moves datagrams. The
//! socket is bound to the caller's address and connected to the peer's, so
//! the kernel delivers only the peer's datagrams; both ends are configured
//! the same way with their addresses swapped and the same key.
//!
//! Frames on the wire are real frames: super-frames are segmented and
//! pending checksums filled in before sealing (`real.rs`), since the far
//! end's port may hand them to anything. A frame that does not fit in one
//! UDP datagram with the [`wire::OVERHEAD`] of 29 bytes (65 507 bytes of
//! UDP payload over IPv4, 65 527 over IPv6) is dropped and counted; in
//! practice frames are at most the sending interface's MTU plus 14 bytes.
//! Datagrams larger than the path MTU to the peer are fragmented by the
//! kernel (Linux's default for UDP), which costs throughput but not
//! correctness: keep the guests' MTU at the path MTU minus 29 + 28 (IPv4 +
//! UDP) + 14 (the Ethernet header inside) for full-sized frames to travel
//! unfragmented, e.g. 1429 on a 1500-byte path.
//!
//! Counters live in a shared [`TunnelCounters`], so a caller can keep a
//! handle ([`TunnelPort::counters`]) after handing the port to the engine.

pub mod wire;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::packet::MAX_BATCH;
use crate::port::{FrameMeta, Offload, Port, keep_frame};
use crate::real::RealFrames;
use crate::sys;
use wire::{HEADER_LEN, OVERHEAD, Opened, Opener, Rejected, Sealer, TAG_LEN, TunnelKey};

/// Bytes per send buffer: the largest UDP payload there is.
const DATAGRAM_MAX: usize = 65_535;

/// Socket buffer size asked for in each direction.
const SOCKET_BUFFER_BYTES: libc::c_int = 16 << 20;

/// Where a tunnel port listens and whom it talks to.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// Local address and port to bind.
    pub bind: SocketAddr,
    /// The peer's address and port.
    pub peer: SocketAddr,
    /// The pre-shared key, the same on both ends.
    pub key: TunnelKey,
}

/// Counters of a [`TunnelPort`], shared with whoever holds a handle.
#[derive(Debug, Default)]
pub struct TunnelCounters {
    rejected: AtomicU64,
    replayed: AtomicU64,
    too_old: AtomicU64,
    malformed: AtomicU64,
    reflected: AtomicU64,
    rx_truncated: AtomicU64,
    tx_too_big: AtomicU64,
    tx_refused: AtomicU64,
    tx_malformed: AtomicU64,
}

/// A snapshot of [`TunnelCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// Datagrams whose tag did not verify (wrong key, damage, forgery).
    pub rejected: u64,
    /// Datagrams with a counter already accepted.
    pub replayed: u64,
    /// Datagrams with a counter below the replay window.
    pub too_old: u64,
    /// Datagrams too short for header and tag, or of another version.
    pub malformed: u64,
    /// Authentic datagrams carrying our own sender id (not accepted).
    pub reflected: u64,
    /// Datagrams larger than the receive buffer.
    pub rx_truncated: u64,
    /// Frames too large for one datagram, dropped.
    pub tx_too_big: u64,
    /// Datagrams the kernel refused to send.
    pub tx_refused: u64,
    /// Super-frames that could not be segmented, dropped.
    pub tx_malformed: u64,
}

impl TunnelCounters {
    /// The current values.
    pub fn snapshot(&self) -> TunnelStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TunnelStats {
            rejected: get(&self.rejected),
            replayed: get(&self.replayed),
            too_old: get(&self.too_old),
            malformed: get(&self.malformed),
            reflected: get(&self.reflected),
            rx_truncated: get(&self.rx_truncated),
            tx_too_big: get(&self.tx_too_big),
            tx_refused: get(&self.tx_refused),
            tx_malformed: get(&self.tx_malformed),
        }
    }
}

fn bump(c: &AtomicU64) {
    // Only the engine thread writes; readers want a recent value, no order.
    c.fetch_add(1, Ordering::Relaxed);
}

/// A random sender id other than `not`.
fn fresh_sender(not: Option<u32>) -> io::Result<u32> {
    loop {
        let mut b = [0u8; 4];
        sys::random_bytes(&mut b)?;
        let id = u32::from_be_bytes(b);
        if Some(id) != not {
            return Ok(id);
        }
    }
}

/// A UDP tunnel port.
#[derive(Debug)]
pub struct TunnelPort {
    fd: OwnedFd,
    name: String,
    sealer: Sealer,
    opener: Opener,
    /// Largest frame that fits in one datagram to the peer.
    max_frame: usize,
    /// `MAX_BATCH` send buffers of `DATAGRAM_MAX` bytes.
    tx: Vec<u8>,
    /// Datagram lengths in `tx` and the input frame each came from.
    tx_pending: Vec<(usize, usize)>,
    counters: Arc<TunnelCounters>,
}

fn set_buffer(fd: RawFd, force: libc::c_int, plain: libc::c_int) {
    let value = SOCKET_BUFFER_BYTES;
    for opt in [force, plain] {
        // SAFETY: passes a pointer to a live c_int with its exact size.
        let ret = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // The forced size needs CAP_NET_ADMIN; the capped one always works.
        if ret == 0 {
            return;
        }
    }
}

impl TunnelPort {
    /// Binds `config.bind`, connects to `config.peer`, in the calling
    /// thread's network namespace.
    pub fn open(config: &TunnelConfig) -> io::Result<TunnelPort> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("udp tunnel {}={}: {what}: {e}", config.bind, config.peer))
        };
        if config.bind.is_ipv4() != config.peer.is_ipv4() {
            return Err(ctx(
                "addresses",
                io::Error::new(io::ErrorKind::InvalidInput, "bind and peer must both be IPv4 or both IPv6"),
            ));
        }
        let sock = UdpSocket::bind(config.bind).map_err(|e| ctx("bind", e))?;
        sock.connect(config.peer).map_err(|e| ctx("connect", e))?;
        sock.set_nonblocking(true).map_err(|e| ctx("non-blocking", e))?;
        let fd = OwnedFd::from(sock);
        set_buffer(fd.as_raw_fd(), libc::SO_SNDBUFFORCE, libc::SO_SNDBUF);
        set_buffer(fd.as_raw_fd(), libc::SO_RCVBUFFORCE, libc::SO_RCVBUF);
        let udp_max = if config.peer.is_ipv4() { 65_507 } else { 65_527 };
        let sender = fresh_sender(None).map_err(|e| ctx("getrandom", e))?;
        Ok(TunnelPort {
            fd,
            name: format!("udp:{}={}", config.bind, config.peer),
            sealer: Sealer::new(&config.key, sender, sys::realtime_nanos()),
            opener: Opener::new(&config.key),
            max_frame: udp_max - OVERHEAD,
            tx: vec![0u8; MAX_BATCH * DATAGRAM_MAX],
            tx_pending: Vec::with_capacity(MAX_BATCH),
            counters: Arc::new(TunnelCounters::default()),
        })
    }

    /// Opens the port inside the network namespace at `netns_path`; the
    /// socket stays in that namespace, the calling thread keeps its own.
    pub fn open_in(config: &TunnelConfig, netns_path: &str) -> io::Result<TunnelPort> {
        let config = config.clone();
        sys::in_netns(netns_path, move || TunnelPort::open(&config))?
    }

    /// The shared counters; clone the `Arc` to keep reading them after the
    /// port went to the engine.
    pub fn counters(&self) -> &Arc<TunnelCounters> {
        &self.counters
    }

    /// The largest frame one datagram carries.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The local address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        // A borrowed view: the descriptor stays ours.
        let sock = UdpSocket::from(self.fd.try_clone()?);
        sock.local_addr()
    }

    /// Sends the sealed datagrams collected so far; counts each input frame
    /// with a refused datagram once in `failed`.
    fn flush(&mut self, failed: &mut (usize, Option<usize>)) {
        if self.tx_pending.is_empty() {
            return;
        }
        let mut bufs: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        for (j, (slot, (len, _))) in bufs.iter_mut().zip(&self.tx_pending).enumerate() {
            *slot = &self.tx[j * DATAGRAM_MAX..j * DATAGRAM_MAX + len];
        }
        let n = self.tx_pending.len();
        let pending = &self.tx_pending;
        let counters = &self.counters;
        sys::send_datagrams(self.fd.as_raw_fd(), &bufs[..n], None, |i| {
            bump(&counters.tx_refused);
            note_failed(failed, pending[i].1);
        });
        self.tx_pending.clear();
    }
}

/// Counts input frame `input` as failed unless it already is (its pieces
/// come in order).
fn note_failed(failed: &mut (usize, Option<usize>), input: usize) {
    if failed.1 != Some(input) {
        failed.0 += 1;
        failed.1 = Some(input);
    }
}

impl Port for TunnelPort {
    fn recv_batch(&mut self, bufs: &mut [&mut [u8]], meta: &mut [FrameMeta]) -> io::Result<usize> {
        let want = bufs.len().min(meta.len()).min(MAX_BATCH);
        if want == 0 {
            return Ok(0);
        }
        // The header goes to its own buffer and the frame straight into the
        // caller's; the tag lands at the frame's end, or partly in `tails`
        // when the caller's buffer is exactly full.
        let mut heads = [[0u8; HEADER_LEN]; MAX_BATCH];
        let mut tails = [[0u8; TAG_LEN]; MAX_BATCH];
        // SAFETY: iovec and mmsghdr are plain old data; zero is valid and
        // every field used is set below.
        let mut iovs: [[libc::iovec; 3]; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..want {
            iovs[i][0] = libc::iovec { iov_base: heads[i].as_mut_ptr().cast(), iov_len: HEADER_LEN };
            iovs[i][1] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: bufs[i].len() };
            iovs[i][2] = libc::iovec { iov_base: tails[i].as_mut_ptr().cast(), iov_len: TAG_LEN };
            msgs[i].msg_hdr.msg_iov = iovs[i].as_mut_ptr();
            msgs[i].msg_hdr.msg_iovlen = 3;
        }
        // SAFETY: `msgs[..want]` point at `iovs`, which point at `heads`,
        // `tails` and the caller's buffers with their true lengths; all
        // outlive the call, and the kernel writes no more than that.
        let n = unsafe { sys::recv_messages(self.fd.as_raw_fd(), &mut msgs[..want]) }?;
        let own = self.sealer.sender();
        let mut kept = 0;
        for i in 0..n {
            if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                bump(&self.counters.rx_truncated);
                continue;
            }
            let total = msgs[i].msg_len as usize;
            let Some(len) = total.checked_sub(OVERHEAD) else {
                bump(&self.counters.malformed);
                continue;
            };
            // Not truncated, so header + frame + tag fit: `len` is within
            // the buffer and the tag starts inside it.
            let in_buf = (bufs[i].len() - len).min(TAG_LEN);
            let mut tag = [0u8; TAG_LEN];
            tag[..in_buf].copy_from_slice(&bufs[i][len..len + in_buf]);
            tag[in_buf..].copy_from_slice(&tails[i][..TAG_LEN - in_buf]);
            match self.opener.open(&heads[i], &mut bufs[i][..len], &tag, own) {
                Ok(Opened::Frame) => {}
                Ok(Opened::Reflected) => {
                    bump(&self.counters.reflected);
                    if let Ok(id) = fresh_sender(Some(own)) {
                        self.sealer.handle_new_sender(id);
                    }
                    continue;
                }
                Err(reason) => {
                    bump(match reason {
                        Rejected::Malformed => &self.counters.malformed,
                        Rejected::BadTag => &self.counters.rejected,
                        Rejected::Replayed => &self.counters.replayed,
                        Rejected::TooOld => &self.counters.too_old,
                    });
                    continue;
                }
            }
            keep_frame(bufs, meta, kept, i, FrameMeta { len, offload: Offload::NONE });
            kept += 1;
        }
        Ok(kept)
    }

    fn send_batch(&mut self, frames: &[&[u8]], meta: &[FrameMeta]) -> io::Result<usize> {
        let total = frames.len().min(meta.len());
        let mut failed = (0usize, None);
        for k in 0..total {
            let frame = &frames[k][..meta[k].len.min(frames[k].len())];
            let Ok(real) = RealFrames::new(frame, meta[k].offload) else {
                bump(&self.counters.tx_malformed);
                note_failed(&mut failed, k);
                continue;
            };
            for i in 0..real.count() {
                let len = real.len(i);
                if len > self.max_frame {
                    bump(&self.counters.tx_too_big);
                    note_failed(&mut failed, k);
                    continue;
                }
                if self.tx_pending.len() == MAX_BATCH {
                    self.flush(&mut failed);
                }
                let j = self.tx_pending.len();
                let datagram = &mut self.tx[j * DATAGRAM_MAX..(j + 1) * DATAGRAM_MAX];
                let written = real.write(i, &mut datagram[HEADER_LEN..]);
                match self.sealer.seal(datagram, written) {
                    Some(dlen) => self.tx_pending.push((dlen, k)),
                    None => {
                        bump(&self.counters.tx_refused);
                        note_failed(&mut failed, k);
                    }
                }
            }
        }
        self.flush(&mut failed);
        Ok(total - failed.0)
    }

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bind: SocketAddr, peer: SocketAddr, key: u8) -> TunnelConfig {
        TunnelConfig { bind, peer, key: TunnelKey::from_bytes([key; 32]) }
    }

    fn recv_all(port: &mut TunnelPort) -> Vec<Vec<u8>> {
        let mut data = vec![vec![0u8; 2048]; 8];
        let mut bufs: Vec<&mut [u8]> = data.iter_mut().map(|b| &mut b[..]).collect();
        let mut meta = [FrameMeta::default(); 8];
        let mut out = Vec::new();
        // Loopback delivery is immediate, but give it a moment.
        for _ in 0..50 {
            let n = port.recv_batch(&mut bufs, &mut meta).expect("recv");
            out.extend((0..n).map(|i| bufs[i][..meta[i].len].to_vec()));
            if n == 0 && !out.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        out
    }

    /// Two ports on loopback (ports chosen by the kernel: bind the sockets
    /// first to learn them).
    fn pair(key_a: u8, key_b: u8) -> (TunnelPort, TunnelPort) {
        let a_sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b_sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (a_addr, b_addr) = (a_sock.local_addr().expect("addr"), b_sock.local_addr().expect("addr"));
        drop((a_sock, b_sock));
        let a = TunnelPort::open(&config(a_addr, b_addr, key_a)).expect("open a");
        let b = TunnelPort::open(&config(b_addr, a_addr, key_b)).expect("open b");
        (a, b)
    }

    #[test]
    fn frames_cross_a_loopback_tunnel_sealed() {
        let (mut a, mut b) = pair(1, 1);
        let frame: Vec<u8> = (0..100u8).collect();
        let m = FrameMeta { len: frame.len(), offload: Offload::NONE };
        assert_eq!(a.send_batch(&[&frame, &frame], &[m, m]).expect("send"), 2);
        assert_eq!(recv_all(&mut b), vec![frame.clone(), frame.clone()]);
        assert_eq!(b.send_batch(&[&frame], &[m]).expect("send"), 1);
        assert_eq!(recv_all(&mut a), vec![frame]);
        assert_eq!(a.counters().snapshot(), TunnelStats::default());
    }

    #[test]
    fn a_wrong_key_is_counted_as_rejected() {
        let (mut a, mut b) = pair(1, 2);
        let frame = vec![7u8; 60];
        let m = FrameMeta { len: 60, offload: Offload::NONE };
        assert_eq!(a.send_batch(&[&frame, &frame, &frame], &[m, m, m]).expect("send"), 3);
        assert!(recv_all(&mut b).is_empty());
        assert_eq!(b.counters().snapshot().rejected, 3);
    }

    #[test]
    fn frames_too_big_for_a_datagram_are_dropped_and_counted() {
        let (mut a, _b) = pair(1, 1);
        let big = vec![0u8; a.max_frame() + 1];
        let m = FrameMeta { len: big.len(), offload: Offload::NONE };
        assert_eq!(a.send_batch(&[&big], &[m]).expect("send"), 0);
        assert_eq!(a.counters().snapshot().tx_too_big, 1);
    }
}
