//! `PacketPort`: a [`Port`] on an existing interface through an AF_PACKET
//! socket, with batched `recvmmsg`/`sendmmsg`.
//!
//! The socket is bound to one interface, sees every frame on it
//! (promiscuous membership), never its own transmissions
//! (`PACKET_IGNORE_OUTGOING`), and bypasses the qdisc on send. It uses
//! `PACKET_VNET_HDR`: each frame comes with the kernel's offload state, so a
//! veth super-frame (TSO/GSO, up to 64 KiB) or a frame whose checksum is
//! still to be filled in is received as such instead of as bytes that look
//! broken, and can be sent on intact or segmented by the engine
//! (`gso.rs`). Nothing on the interface is changed: promiscuous mode is a
//! membership of the socket that the kernel drops when the socket closes, so
//! closing the port (or the process dying) restores the interface.
//!
//! The socket is bound to the network namespace of the thread that opens
//! it; open it inside the right namespace (see [`crate::sys::in_netns`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::port::{FrameMeta, Offload, Port, VNET_HDR_LEN, keep_frame};
use crate::sys::{self, ifindex};

/// Frames per `recvmmsg`/`sendmmsg` call at most.
pub const MAX_BATCH: usize = 64;

/// Socket buffer size asked for in each direction, so a burst of
/// super-frames does not overflow while the engine sleeps in a spin.
const SOCKET_BUFFER_BYTES: libc::c_int = 16 << 20;

/// An AF_PACKET port on one interface.
#[derive(Debug)]
pub struct PacketPort {
    fd: OwnedFd,
    name: String,
    ifindex: u32,
    rx_truncated: u64,
    tx_errors: u64,
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int with its exact size.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

impl PacketPort {
    /// Opens a port on interface `name` in the calling thread's network
    /// namespace.
    pub fn open(name: &str) -> io::Result<PacketPort> {
        let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{name}: {what}: {e}"));
        let ifindex = ifindex(name)?;
        // Protocol 0 receives nothing until `bind`, so no frame of another
        // interface can slip in before the socket is bound.
        // SAFETY: plain syscall with integer arguments.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(ctx("socket(AF_PACKET)", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        setsockopt_int(s, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1).map_err(|e| ctx("PACKET_VNET_HDR", e))?;
        setsockopt_int(s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)
            .map_err(|e| ctx("PACKET_IGNORE_OUTGOING", e))?;
        setsockopt_int(s, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1).map_err(|e| ctx("PACKET_QDISC_BYPASS", e))?;
        // The *FORCE variants need CAP_NET_ADMIN, which opening AF_PACKET
        // implies; fall back to the capped variant anyway.
        for (force, plain) in [(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF), (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)] {
            if setsockopt_int(s, libc::SOL_SOCKET, force, SOCKET_BUFFER_BYTES).is_err() {
                setsockopt_int(s, libc::SOL_SOCKET, plain, SOCKET_BUFFER_BYTES).map_err(|e| ctx("SO_*BUF", e))?;
            }
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length is its size.
        let ret = unsafe {
            libc::bind(s, (&addr as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as libc::socklen_t)
        };
        if ret < 0 {
            return Err(ctx("bind", io::Error::last_os_error()));
        }
        // SAFETY: packet_mreq is plain old data; all-zero is valid.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = ifindex as i32;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        // SAFETY: passes a live packet_mreq with its exact size.
        let ret = unsafe {
            libc::setsockopt(
                s,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&mreq as *const libc::packet_mreq).cast(),
                size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if ret < 0 {
            return Err(ctx("PACKET_ADD_MEMBERSHIP(promisc)", io::Error::last_os_error()));
        }
        Ok(PacketPort { fd, name: name.to_string(), ifindex, rx_truncated: 0, tx_errors: 0 })
    }

    /// The interface index the port is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Frames dropped on receive because they were larger than the buffer.
    pub fn rx_truncated(&self) -> u64 {
        self.rx_truncated
    }

    /// Frames the kernel refused on send (full backlog, interface down).
    pub fn tx_errors(&self) -> u64 {
        self.tx_errors
    }
}

impl Port for PacketPort {
    fn recv_batch(&mut self, bufs: &mut [&mut [u8]], meta: &mut [FrameMeta]) -> io::Result<usize> {
        let want = bufs.len().min(meta.len()).min(MAX_BATCH);
        if want == 0 {
            return Ok(0);
        }
        let mut hdrs = [[0u8; VNET_HDR_LEN]; MAX_BATCH];
        // SAFETY: iovec and mmsghdr are plain old data; zero is valid and
        // every field used is set below.
        let mut iovs: [[libc::iovec; 2]; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..want {
            iovs[i][0] = libc::iovec { iov_base: hdrs[i].as_mut_ptr().cast(), iov_len: VNET_HDR_LEN };
            iovs[i][1] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: bufs[i].len() };
            msgs[i].msg_hdr.msg_iov = iovs[i].as_mut_ptr();
            msgs[i].msg_hdr.msg_iovlen = 2;
        }
        // SAFETY: `msgs[..want]` point at `iovs`, which point at `hdrs` and
        // at the caller's buffers with their true lengths; all outlive the
        // call, and the kernel writes no more than those lengths.
        let n = match unsafe { sys::recv_messages(self.fd.as_raw_fd(), &mut msgs[..want]) } {
            Ok(n) => n,
            // The interface went down or away: nothing to read.
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => 0,
            Err(e) => return Err(e),
        };
        // Compact: drop truncated frames and short reads, keep order.
        let mut kept = 0;
        for i in 0..n {
            let total = msgs[i].msg_len as usize;
            if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || total < VNET_HDR_LEN {
                self.rx_truncated += 1;
                continue;
            }
            let frame = FrameMeta { len: total - VNET_HDR_LEN, offload: Offload::from_bytes(&hdrs[i]) };
            keep_frame(bufs, meta, kept, i, frame);
            kept += 1;
        }
        Ok(kept)
    }

    fn send_batch(&mut self, frames: &[&[u8]], meta: &[FrameMeta]) -> io::Result<usize> {
        let total = frames.len().min(meta.len());
        let mut sent = 0;
        let mut start = 0;
        while start < total {
            let count = (total - start).min(MAX_BATCH);
            let mut hdrs = [[0u8; VNET_HDR_LEN]; MAX_BATCH];
            // SAFETY: plain old data, as in `recv_batch`.
            let mut iovs: [[libc::iovec; 2]; MAX_BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
            for j in 0..count {
                let m = &meta[start + j];
                hdrs[j] = m.offload.to_bytes();
                let len = m.len.min(frames[start + j].len());
                iovs[j][0] = libc::iovec { iov_base: hdrs[j].as_mut_ptr().cast(), iov_len: VNET_HDR_LEN };
                // The kernel only reads through this pointer (sendmmsg).
                iovs[j][1] = libc::iovec { iov_base: frames[start + j].as_ptr() as *mut libc::c_void, iov_len: len };
                msgs[j].msg_hdr.msg_iov = iovs[j].as_mut_ptr();
                msgs[j].msg_hdr.msg_iovlen = 2;
            }
            // SAFETY: the headers point at live iovecs over live buffers of
            // the stated lengths; sendmmsg only reads the frame bytes.
            let n = unsafe {
                libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), count as libc::c_uint, libc::MSG_DONTWAIT)
            };
            if n < 0 {
                // The first frame was refused (full backlog, interface down,
                // bad offload header): count it lost and go on with the rest,
                // as a NIC with a full ring would.
                self.tx_errors += 1;
                start += 1;
            } else {
                sent += n as usize;
                start += n as usize;
            }
        }
        Ok(sent)
    }

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn name(&self) -> &str {
        &self.name
    }
}
