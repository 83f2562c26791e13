//! `TapPort`: a [`Port`] that is a tap interface the engine creates and
//! owns.
//!
//! The port opens `/dev/net/tun` with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`,
//! so every frame read or written carries a 10-byte `virtio_net_hdr`, and
//! turns on `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`: the stack behind the tap
//! then hands us TCP super-frames with the checksum left open, exactly as
//! `PacketPort` receives them from veth with `PACKET_VNET_HDR`, and takes
//! them back the same way. The engine segments them only where a link
//! shapes (see the crate docs).
//!
//! The tap has no `IFF_PERSIST`: the kernel deletes it when the port's
//! descriptor closes, so nothing outlives the port, not even after a crash.
//! [`TapPort::create_in`] creates it inside another network namespace by
//! opening `/dev/net/tun` on a helper thread that has entered it; the tap
//! lives there while the descriptor stays with us. The port sets the
//! interface up itself (`SIOCSIFFLAGS`, in the tap's namespace), because an
//! engine port that is down would only refuse frames; addresses, MTU and
//! routes are the caller's business.
//!
//! Taps have no `recvmmsg`: a batch is one `readv`/`writev` per frame,
//! bounded by the batch size.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::packet::MAX_BATCH;
use crate::port::{FrameMeta, Offload, Port, VNET_HDR_LEN};

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// A tap interface created by, and deleted with, this port.
#[derive(Debug)]
pub struct TapPort {
    fd: OwnedFd,
    name: String,
    rx_short: u64,
    tx_errors: u64,
}

/// An `ifreq` carrying `name`.
fn ifreq_named(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty()
        || name.len() > MAX_IFNAME
        || name.bytes().any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tap name {name:?}: must be 1 to {MAX_IFNAME} bytes without '/', NUL or spaces"),
        ));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(ifr)
}

/// Sets interface `ifr.ifr_name` up in the calling thread's namespace.
fn set_up(ifr: &mut libc::ifreq) -> io::Result<()> {
    // Interface ioctls go through any socket of the namespace.
    // SAFETY: plain syscall with integer arguments.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `ifr` is a valid ifreq with a NUL-terminated name; the kernel
    // writes the flags member of the union.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, ifr as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just filled the flags member, so reading it is
    // reading initialised data of the union's active member.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above; the kernel only reads the ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, ifr as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl TapPort {
    /// Creates tap `name` in the calling thread's network namespace and sets
    /// it up. Fails if an interface of that name exists already.
    pub fn create(name: &str) -> io::Result<TapPort> {
        let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("tap {name}: {what}: {e}"));
        let mut ifr = ifreq_named(name)?;
        // TUNSETIFF would attach to an existing persistent tap of that name;
        // the engine only touches interfaces it creates, so refuse instead.
        if crate::sys::ifindex(name).is_ok() {
            return Err(ctx(
                "create",
                io::Error::new(io::ErrorKind::AlreadyExists, "an interface of that name exists"),
            ));
        }
        // SAFETY: the path is a NUL-terminated literal.
        let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(ctx("open /dev/net/tun", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
        // SAFETY: `ifr` is a valid ifreq; TUNSETIFF reads the name and flags
        // and writes back the name.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr as *mut libc::ifreq) } < 0 {
            return Err(ctx("TUNSETIFF", io::Error::last_os_error()));
        }
        // The kernel may have filled in a `%d` pattern: keep its real name.
        let real_name: String = ifr.ifr_name.iter().take_while(|c| **c != 0).map(|c| char::from(*c as u8)).collect();
        let hdr_len = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_len as *const libc::c_int) } < 0 {
            return Err(ctx("TUNSETVNETHDRSZ", io::Error::last_os_error()));
        }
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
        // SAFETY: TUNSETOFFLOAD takes its flags as the integer argument.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, offloads as libc::c_ulong) } < 0 {
            return Err(ctx("TUNSETOFFLOAD", io::Error::last_os_error()));
        }
        set_up(&mut ifr).map_err(|e| ctx("SIOCSIFFLAGS up", e))?;
        Ok(TapPort { fd, name: real_name, rx_short: 0, tx_errors: 0 })
    }

    /// Creates tap `name` inside the network namespace at `netns_path`
    /// (e.g. `/run/netns/NAME`); the calling thread keeps its namespace.
    pub fn create_in(name: &str, netns_path: &str) -> io::Result<TapPort> {
        let name = name.to_string();
        crate::sys::in_netns(netns_path, move || TapPort::create(&name))?
    }

    /// Reads that were too short to hold a vnet header (never expected).
    pub fn rx_short(&self) -> u64 {
        self.rx_short
    }

    /// Frames the tap refused on send (interface down, queue full).
    pub fn tx_errors(&self) -> u64 {
        self.tx_errors
    }
}

impl Port for TapPort {
    fn recv_batch(&mut self, bufs: &mut [&mut [u8]], meta: &mut [FrameMeta]) -> io::Result<usize> {
        let want = bufs.len().min(meta.len()).min(MAX_BATCH);
        let mut n = 0;
        while n < want {
            let mut hdr = [0u8; VNET_HDR_LEN];
            let iov = [
                libc::iovec { iov_base: hdr.as_mut_ptr().cast(), iov_len: VNET_HDR_LEN },
                libc::iovec { iov_base: bufs[n].as_mut_ptr().cast(), iov_len: bufs[n].len() },
            ];
            // SAFETY: both iovecs point at live, writable buffers of the
            // stated lengths, which outlive the call.
            let got = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
            if got < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(n),
                    _ => Err(e),
                };
            }
            let got = got as usize;
            if got < VNET_HDR_LEN {
                self.rx_short += 1;
                continue;
            }
            meta[n] = FrameMeta { len: got - VNET_HDR_LEN, offload: Offload::from_bytes(&hdr) };
            n += 1;
        }
        Ok(n)
    }

    fn send_batch(&mut self, frames: &[&[u8]], meta: &[FrameMeta]) -> io::Result<usize> {
        let mut sent = 0;
        for (frame, m) in frames.iter().zip(meta) {
            let hdr = m.offload.to_bytes();
            let len = m.len.min(frame.len());
            let iov = [
                libc::iovec { iov_base: hdr.as_ptr() as *mut libc::c_void, iov_len: VNET_HDR_LEN },
                // The kernel only reads through these pointers (writev).
                libc::iovec { iov_base: frame.as_ptr() as *mut libc::c_void, iov_len: len },
            ];
            // SAFETY: the iovecs cover live buffers of the stated lengths;
            // writev only reads them.
            let ret = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
            if ret < 0 {
                // Interface down (EIO), bad offload header (EINVAL) or a
                // full queue: the frame is lost, as on a wire.
                self.tx_errors += 1;
            } else {
                sent += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        for bad in ["", "a-name-far-too-long", "a/b", "a b"] {
            let e = ifreq_named(bad).expect_err(bad);
            assert!(e.to_string().contains("1 to 15 bytes"), "{e}");
        }
        assert!(ifreq_named("tap0").is_ok());
    }
}
