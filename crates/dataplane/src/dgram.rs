//! `DgramPort`: a [`Port`] on a unix datagram socket that speaks QEMU's
//! `dgram` netdev.
//!
//! One Ethernet frame per datagram, no header, no length prefix: what QEMU
//! (7.2 or later) sends and expects with
//!
//! ```text
//! qemu-system-x86_64 ... \
//!   -netdev dgram,id=n0,local.type=unix,local.path=REMOTE_PATH,remote.type=unix,remote.path=LOCAL_PATH \
//!   -device virtio-net-pci,netdev=n0
//! ```
//!
//! where `LOCAL_PATH` is the path this port binds and `REMOTE_PATH` the
//! path it sends to (QEMU's local is our remote and the other way round).
//! The port binds its path, sends each frame to the peer's path with
//! `sendmmsg`, and receives with `recvmmsg`, keeping only datagrams whose
//! sender is bound at the peer's path (anything else is counted and
//! dropped). Until the peer has bound its path, sends fail and count as
//! refused, like frames on an unplugged cable; either side may start first.
//!
//! The peer takes no offload state, so super-frames are segmented and
//! pending checksums are filled in before sending (`real.rs`); received
//! frames are complete ([`Offload::NONE`]).
//!
//! The socket file is the port's: a stale file at the path (left by a
//! crash, nothing bound to it) is replaced, a live one is an error, and the
//! file is removed when the port is dropped, unless something else has
//! replaced it meanwhile.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::packet::MAX_BATCH;
use crate::port::{FrameMeta, Offload, Port, keep_frame};
use crate::real::RealFrames;
use crate::sys::{self, SockAddr};

/// Bytes of completed frames a `send_batch` collects before each
/// `sendmmsg` (room for a 64 KiB super-frame's segments and more).
const ARENA_BYTES: usize = 256 << 10;

/// Socket buffer size asked for in each direction.
const SOCKET_BUFFER_BYTES: libc::c_int = 4 << 20;

/// Counters of a [`DgramPort`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DgramCounters {
    /// Datagrams dropped on receive because they were larger than the buffer.
    pub rx_truncated: u64,
    /// Datagrams dropped on receive because they came from another sender.
    pub rx_foreign: u64,
    /// Frames the kernel refused on send (peer not bound, queue full).
    pub tx_refused: u64,
    /// Super-frames dropped because they could not be segmented.
    pub tx_malformed: u64,
}

/// Where one datagram of a send batch comes from.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// `frames[k]` as it is.
    Frame(usize),
    /// `arena[offset..offset + len]`, a completed copy.
    Arena { offset: usize, len: usize },
}

/// A unix datagram port bound at a path, sending to a peer's path.
#[derive(Debug)]
pub struct DgramPort {
    fd: OwnedFd,
    name: String,
    local: PathBuf,
    /// Device and inode of the socket file we bound, to remove only ours.
    local_id: (u64, u64),
    remote: SockAddr,
    remote_path: Vec<u8>,
    arena: Vec<u8>,
    /// Pieces of the current batch and the input frame each belongs to.
    pieces: Vec<(Piece, usize)>,
    counters: DgramCounters,
}

/// Binds `path`, replacing a stale socket file nobody is bound to.
fn bind_replacing_stale(path: &Path) -> io::Result<UnixDatagram> {
    let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("dgram local path {path:?}: {what}: {e}"));
    match UnixDatagram::bind(path) {
        Ok(sock) => return Ok(sock),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(ctx("bind", e)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| ctx("stat", e))?;
    if !meta.file_type().is_socket() {
        return Err(ctx("exists", io::Error::new(io::ErrorKind::AlreadyExists, "not a socket; not touching it")));
    }
    // Connecting to a datagram socket file fails with ECONNREFUSED exactly
    // when no socket is bound to it any more.
    let probe = UnixDatagram::unbound().map_err(|e| ctx("probe socket", e))?;
    match probe.connect(path) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|e| ctx("remove stale socket", e))?;
            UnixDatagram::bind(path).map_err(|e| ctx("bind", e))
        }
        Ok(()) => Err(ctx("bind", io::Error::new(io::ErrorKind::AddrInUse, "a live socket is bound there"))),
        Err(e) => Err(ctx("probe", e)),
    }
}

fn set_buffer(fd: RawFd, opt: libc::c_int) {
    let value = SOCKET_BUFFER_BYTES;
    // SAFETY: passes a pointer to a live c_int with its exact size. A
    // failure only leaves the default size, which still works.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

impl DgramPort {
    /// Binds `local` and sends to `remote`; both are socket file paths (at
    /// most 107 bytes).
    pub fn open(local: &Path, remote: &Path) -> io::Result<DgramPort> {
        let remote_addr =
            SockAddr::unix(remote).map_err(|e| io::Error::new(e.kind(), format!("dgram remote path: {e}")))?;
        SockAddr::unix(local).map_err(|e| io::Error::new(e.kind(), format!("dgram local path: {e}")))?;
        let sock = bind_replacing_stale(local)?;
        let meta = std::fs::symlink_metadata(local)?;
        let local_id = (meta.dev(), meta.ino());
        // From here on the file is ours: build the port first so that its
        // drop removes the file on any later error.
        let fd = OwnedFd::from(sock);
        let remote_path = {
            use std::os::unix::ffi::OsStrExt;
            remote.as_os_str().as_bytes().to_vec()
        };
        let port = DgramPort {
            fd,
            name: format!("dgram:{}", local.display()),
            local: local.to_path_buf(),
            local_id,
            remote: remote_addr,
            remote_path,
            arena: vec![0u8; ARENA_BYTES],
            pieces: Vec::with_capacity(MAX_BATCH),
            counters: DgramCounters::default(),
        };
        let s = port.fd.as_raw_fd();
        // SAFETY: F_SETFL with O_NONBLOCK on our own descriptor.
        if unsafe { libc::fcntl(s, libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        set_buffer(s, libc::SO_SNDBUF);
        set_buffer(s, libc::SO_RCVBUF);
        Ok(port)
    }

    /// The path this port is bound at.
    pub fn local_path(&self) -> &Path {
        &self.local
    }

    /// The port's counters.
    pub fn counters(&self) -> &DgramCounters {
        &self.counters
    }

    /// Sends the collected pieces with `sendmmsg` and forgets them; counts
    /// each input frame with a refused piece once in `failed`.
    fn flush(&mut self, frames: &[&[u8]], meta: &[FrameMeta], failed: &mut (usize, Option<usize>)) {
        if self.pieces.is_empty() {
            return;
        }
        let mut bufs: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        for (slot, (piece, _)) in bufs.iter_mut().zip(&self.pieces) {
            *slot = match *piece {
                Piece::Frame(k) => &frames[k][..meta[k].len.min(frames[k].len())],
                Piece::Arena { offset, len } => &self.arena[offset..offset + len],
            };
        }
        let n = self.pieces.len();
        let pieces = &self.pieces;
        let counters = &mut self.counters;
        sys::send_datagrams(self.fd.as_raw_fd(), &bufs[..n], Some(&self.remote), |i| {
            counters.tx_refused += 1;
            let input = pieces[i].1;
            if failed.1 != Some(input) {
                failed.0 += 1;
                failed.1 = Some(input);
            }
        });
        self.pieces.clear();
    }
}

impl Drop for DgramPort {
    fn drop(&mut self) {
        // Remove the socket file only if it is still the one we bound.
        if let Ok(meta) = std::fs::symlink_metadata(&self.local)
            && (meta.dev(), meta.ino()) == self.local_id
        {
            let _ = std::fs::remove_file(&self.local);
        }
    }
}

impl Port for DgramPort {
    fn recv_batch(&mut self, bufs: &mut [&mut [u8]], meta: &mut [FrameMeta]) -> io::Result<usize> {
        let want = bufs.len().min(meta.len()).min(MAX_BATCH);
        if want == 0 {
            return Ok(0);
        }
        let mut names = [SockAddr::empty(); MAX_BATCH];
        // SAFETY: iovec and mmsghdr are plain old data; zero is valid and
        // every field used is set below.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..want {
            iovs[i] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: bufs[i].len() };
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            let (name, cap) = names[i].as_mut_name();
            msgs[i].msg_hdr.msg_name = name;
            msgs[i].msg_hdr.msg_namelen = cap;
        }
        // SAFETY: `msgs[..want]` point at `iovs` over the caller's buffers
        // with their true lengths and at `names` with their capacity; all
        // outlive the call, and the kernel writes no more than that.
        let n = unsafe { sys::recv_messages(self.fd.as_raw_fd(), &mut msgs[..want]) }?;
        let mut kept = 0;
        for i in 0..n {
            names[i].set_len(msgs[i].msg_hdr.msg_namelen);
            if names[i].unix_path_bytes() != Some(&self.remote_path[..]) {
                self.counters.rx_foreign += 1;
                continue;
            }
            if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.counters.rx_truncated += 1;
                continue;
            }
            let len = msgs[i].msg_len as usize;
            keep_frame(bufs, meta, kept, i, FrameMeta { len, offload: Offload::NONE });
            kept += 1;
        }
        Ok(kept)
    }

    fn send_batch(&mut self, frames: &[&[u8]], meta: &[FrameMeta]) -> io::Result<usize> {
        let total = frames.len().min(meta.len());
        // (input frames with a refused piece, the last such input)
        let mut failed = (0usize, None);
        let mut malformed = 0;
        let mut used = 0;
        for k in 0..total {
            let frame = &frames[k][..meta[k].len.min(frames[k].len())];
            let Ok(real) = RealFrames::new(frame, meta[k].offload) else {
                self.counters.tx_malformed += 1;
                malformed += 1;
                continue;
            };
            if real.as_complete().is_some() {
                if self.pieces.len() == MAX_BATCH {
                    self.flush(frames, meta, &mut failed);
                    used = 0;
                }
                self.pieces.push((Piece::Frame(k), k));
                continue;
            }
            for i in 0..real.count() {
                let len = real.len(i);
                if self.pieces.len() == MAX_BATCH || used + len > self.arena.len() {
                    self.flush(frames, meta, &mut failed);
                    used = 0;
                }
                let written = real.write(i, &mut self.arena[used..used + len]);
                self.pieces.push((Piece::Arena { offset: used, len: written }, k));
                used += written;
            }
        }
        self.flush(frames, meta, &mut failed);
        Ok(total - failed.0 - malformed)
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

    fn frame(tag: u8, len: usize) -> Vec<u8> {
        let mut f = vec![tag; len];
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f
    }

    #[test]
    fn frames_cross_as_bare_datagrams_both_ways() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ours, theirs) = (dir.path().join("port.sock"), dir.path().join("qemu.sock"));
        let mut port = DgramPort::open(&ours, &theirs).expect("open");
        let peer = UnixDatagram::bind(&theirs).expect("peer bind");
        let out = frame(1, 60);
        let n = port.send_batch(&[&out], &[FrameMeta { len: 60, offload: Offload::NONE }]).expect("send");
        assert_eq!(n, 1);
        let mut buf = [0u8; 2048];
        let (len, from) = peer.recv_from(&mut buf).expect("peer recv");
        assert_eq!(&buf[..len], &out[..]);
        assert_eq!(from.as_pathname(), Some(ours.as_path()));
        let back = frame(2, 1514);
        peer.send_to(&back, &ours).expect("peer send");
        // A stranger's datagram is dropped, not delivered.
        let stranger = UnixDatagram::unbound().expect("stranger");
        stranger.send_to(&frame(3, 60), &ours).expect("stranger send");
        let mut bufs_data = vec![vec![0u8; 2048]; 4];
        let mut bufs: Vec<&mut [u8]> = bufs_data.iter_mut().map(|b| &mut b[..]).collect();
        let mut meta = [FrameMeta::default(); 4];
        let got = port.recv_batch(&mut bufs, &mut meta).expect("recv");
        assert_eq!(got, 1);
        assert_eq!(meta[0], FrameMeta { len: 1514, offload: Offload::NONE });
        assert_eq!(&bufs[0][..1514], &back[..]);
        assert_eq!(port.counters().rx_foreign, 1);
    }

    #[test]
    fn sends_without_a_peer_are_refused_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut port = DgramPort::open(&dir.path().join("a"), &dir.path().join("b")).expect("open");
        let f = frame(1, 60);
        let m = FrameMeta { len: 60, offload: Offload::NONE };
        assert_eq!(port.send_batch(&[&f, &f], &[m, m]).expect("send"), 0);
        assert_eq!(port.counters().tx_refused, 2);
    }

    #[test]
    fn the_socket_file_is_removed_and_only_stale_ones_are_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("port.sock");
        let remote = dir.path().join("peer.sock");
        let port = DgramPort::open(&path, &remote).expect("open");
        assert!(path.exists());
        let e = DgramPort::open(&path, &remote).expect_err("a live socket is not replaced");
        assert!(e.to_string().contains("live socket"), "{e}");
        drop(port);
        assert!(!path.exists(), "dropping the port removes its socket file");

        // A stale file: bound once, its socket closed without unlinking.
        drop(UnixDatagram::bind(&path).expect("bind"));
        assert!(path.exists());
        let port = DgramPort::open(&path, &remote).expect("stale socket replaced");
        drop(port);
        assert!(!path.exists());

        std::fs::write(&path, b"not a socket").expect("write");
        let e = DgramPort::open(&path, &remote).expect_err("a regular file is not replaced");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).expect("still there"), b"not a socket");
    }

    #[test]
    fn a_super_frame_leaves_as_real_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ours, theirs) = (dir.path().join("p"), dir.path().join("q"));
        let mut port = DgramPort::open(&ours, &theirs).expect("open");
        let peer = UnixDatagram::bind(&theirs).expect("peer bind");
        let mut f = vec![0u8; 54 + 4000];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[46] = 5 << 4;
        let offload = Offload {
            flags: crate::port::NEEDS_CSUM,
            gso_type: 1,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
            ..Offload::NONE
        };
        let n = port.send_batch(&[&f], &[FrameMeta { len: f.len(), offload }]).expect("send");
        assert_eq!(n, 1);
        let mut lens = Vec::new();
        let mut buf = [0u8; 65536];
        for _ in 0..3 {
            lens.push(peer.recv(&mut buf).expect("segment"));
        }
        assert_eq!(lens, [1502, 1502, 54 + 1104]);
    }
}
