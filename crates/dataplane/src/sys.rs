//! Thin, checked wrappers over the Linux calls the engine uses besides
//! AF_PACKET: the monotonic clock, epoll, timerfd, eventfd and `setns`, and
//! what the datagram ports share (socket addresses, `sendmmsg`, random
//! bytes).
//!
//! Every `unsafe` block of the crate outside the port modules (`packet.rs`,
//! `tap.rs`, `dgram.rs`, `tunnel.rs`) lives here, each with the reason it is
//! sound, so the engine itself is safe code.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Turns a `-1` return into the thread's `errno`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock timerfds are armed on.
pub fn now_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds to add to [`now_nanos`] for the wall clock (`CLOCK_REALTIME`)
/// as it was at the call; capture stamps use it so that the frame path reads
/// one clock only.
pub fn realtime_offset_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: as in `now_nanos`; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let realtime = (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64;
    realtime.saturating_sub(now_nanos())
}

/// The engine's clock as a netem instant.
pub fn now() -> netem::Instant {
    netem::Instant::from_nanos(now_nanos())
}

/// A non-blocking eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with flag arguments only.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes an eventfd readable.
pub fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64; a failure (counter overflow)
    // still leaves the fd readable, which is all we want.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Resets an eventfd (or drains a timerfd) so it is no longer readable.
pub fn eventfd_clear(fd: RawFd) {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64; EAGAIN when already
    // clear is fine.
    unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
}

/// An epoll instance, level-triggered, keyed by a `u64` per descriptor.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// A new epoll instance.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall with a flag argument.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is fresh and owned by nobody else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Watches `fd` for readability, reporting `key`.
    pub fn add(&self, fd: RawFd, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: key };
        // SAFETY: `ev` is a valid epoll_event; a bad `fd` is reported as an error.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; the event argument is ignored for DEL.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` (-1 = forever, 0 = poll) and returns the
    /// number of entries filled in `events`.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        let max = i32::try_from(events.len()).unwrap_or(i32::MAX);
        // SAFETY: the kernel writes at most `max` entries into `events`.
        match check(unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) }) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// A `CLOCK_MONOTONIC` timerfd armed at absolute times.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// A new, disarmed timer.
    pub fn new() -> io::Result<TimerFd> {
        // SAFETY: plain syscall with flag arguments.
        let fd = check(unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) })?;
        // SAFETY: `fd` is fresh and owned by nobody else.
        Ok(TimerFd { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Fires once at `at_nanos` on the monotonic clock; 0 disarms.
    pub fn arm_at(&self, at_nanos: u64) -> io::Result<()> {
        let ts = libc::timespec { tv_sec: (at_nanos / 1_000_000_000) as _, tv_nsec: (at_nanos % 1_000_000_000) as _ };
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: ts };
        // SAFETY: `spec` is a valid itimerspec; the old value is not requested.
        check(unsafe {
            libc::timerfd_settime(self.fd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
        })?;
        Ok(())
    }

    /// The descriptor to poll.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Asks for precise timer wake-ups on this thread (the default slack of
/// 50 µs would show in sub-millisecond delays).
pub fn set_timer_slack_ns(nanos: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes an integer and affects only this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, nanos as libc::c_ulong, 0, 0, 0) };
}

/// Moves the calling thread into the network namespace at `path` (e.g.
/// `/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn setns_net(path: &str) -> io::Result<()> {
    let file = std::fs::File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    // SAFETY: `file` is an open namespace descriptor for the call's duration;
    // setns only changes this thread's namespace.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })
        .map_err(|e| io::Error::new(e.kind(), format!("setns {path}: {e}")))?;
    Ok(())
}

/// Runs `f` on a fresh thread inside the network namespace at `path`, so
/// the caller's thread keeps its namespace. Sockets opened by `f` stay bound
/// to that namespace when returned.
pub fn in_netns<T: Send + 'static>(path: &str, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let path = path.to_string();
    // A fresh thread, so the namespace switch dies with it.
    std::thread::spawn(move || -> io::Result<T> {
        setns_net(&path)?;
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("netns thread panicked"))?
}

/// The index of interface `name` in the caller's network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::other(format!("bad interface name {name:?}")))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface {name:?}: {}", io::Error::last_os_error())))
    } else {
        Ok(idx)
    }
}

/// The signal set SIGINT + SIGTERM.
fn termination_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it fully and
    // sigaddset only sets bits of valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it
/// starts later, so [`wait_for_termination`] can take them synchronously.
/// Call it before spawning the engine.
pub fn block_termination_signals() -> io::Result<()> {
    let set = termination_signals();
    // SAFETY: `set` is initialised; the old mask is not requested.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 { Err(io::Error::from_raw_os_error(ret)) } else { Ok(()) }
}

/// Waits until SIGINT or SIGTERM arrives and returns its number.
pub fn wait_for_termination() -> io::Result<i32> {
    let set = termination_signals();
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is initialised and `sig` is writable.
    let ret = unsafe { libc::sigwait(&set, &mut sig) };
    if ret != 0 { Err(io::Error::from_raw_os_error(ret)) } else { Ok(sig) }
}

/// A socket address in the form the kernel takes it.
#[derive(Clone, Copy)]
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl std::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockAddr").field("family", &self.storage.ss_family).field("len", &self.len).finish()
    }
}

impl SockAddr {
    /// The address of a unix socket bound at `path` (at most 107 bytes).
    pub fn unix(path: &std::path::Path) -> io::Result<SockAddr> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        // SAFETY: sockaddr_storage and sockaddr_un are plain old data;
        // all-zero is valid for both.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut un: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        if bytes.is_empty() || bytes.len() >= un.sun_path.len() || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unix socket path {path:?}: must be 1 to {} bytes without NUL", un.sun_path.len() - 1),
            ));
        }
        un.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, src) in un.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        // SAFETY: sockaddr_storage is larger than and aligned for any
        // sockaddr, so a sockaddr_un fits at its start.
        unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), un) };
        let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
        Ok(SockAddr { storage, len: len as libc::socklen_t })
    }

    /// The path of a unix socket address, if it is one with a path.
    pub fn unix_path_bytes(&self) -> Option<&[u8]> {
        if i32::from(self.storage.ss_family) != libc::AF_UNIX {
            return None;
        }
        let start = std::mem::offset_of!(libc::sockaddr_un, sun_path);
        let len = (self.len as usize).checked_sub(start)?;
        // SAFETY: the storage holds a sockaddr_un (family checked) of which
        // `len` path bytes are within the storage's size.
        let all: &[u8] = unsafe {
            std::slice::from_raw_parts(
                (&self.storage as *const libc::sockaddr_storage).cast::<u8>().add(start),
                len.min(size_of::<libc::sockaddr_storage>() - start),
            )
        };
        let end = all.iter().position(|b| *b == 0).unwrap_or(all.len());
        Some(&all[..end])
    }

    /// An all-zero address for the kernel to fill in (`recvmmsg`).
    pub fn empty() -> SockAddr {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        SockAddr { storage: unsafe { std::mem::zeroed() }, len: size_of::<libc::sockaddr_storage>() as libc::socklen_t }
    }

    /// Pointer and capacity for a `msghdr`'s `msg_name`.
    pub fn as_mut_name(&mut self) -> (*mut libc::c_void, libc::socklen_t) {
        (
            (&mut self.storage as *mut libc::sockaddr_storage).cast(),
            size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        )
    }

    /// Records the length the kernel reported after filling the address.
    pub fn set_len(&mut self, len: libc::socklen_t) {
        self.len = len.min(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
    }
}

/// Receives into `msgs` (prepared by the caller) without waiting and returns
/// how many arrived: 0 when none is waiting or a signal interrupted the call.
///
/// # Safety
/// Every `msgs[i]` must point at buffers (and address storage) that are
/// valid for writes of the lengths it states and outlive the call.
pub unsafe fn recv_messages(fd: RawFd, msgs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    let count = libc::c_uint::try_from(msgs.len()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: the caller vouches for what `msgs` points at; the kernel
    // writes at most `count` entries of `msgs` itself.
    let n = unsafe { libc::recvmmsg(fd, msgs.as_mut_ptr(), count, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(e),
        };
    }
    Ok(n as usize)
}

/// Sends each of `bufs` as one datagram with `sendmmsg`, to `to` or, when
/// `None`, to the connected peer. A datagram the kernel refuses (peer gone,
/// queue full) is skipped and reported to `refused` with its index, as a
/// NIC with a full ring would drop it. Returns how many were sent.
pub fn send_datagrams(fd: RawFd, bufs: &[&[u8]], to: Option<&SockAddr>, mut refused: impl FnMut(usize)) -> usize {
    const CHUNK: usize = 64;
    let mut sent = 0;
    let mut start = 0;
    while start < bufs.len() {
        let count = (bufs.len() - start).min(CHUNK);
        // SAFETY: iovec and mmsghdr are plain old data; zero is valid and
        // every field used is set below.
        let mut iovs: [libc::iovec; CHUNK] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; CHUNK] = unsafe { std::mem::zeroed() };
        for j in 0..count {
            let buf = bufs[start + j];
            // The kernel only reads through this pointer (sendmmsg).
            iovs[j] = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
            msgs[j].msg_hdr.msg_iov = &mut iovs[j];
            msgs[j].msg_hdr.msg_iovlen = 1;
            if let Some(addr) = to {
                // The kernel only reads the destination address.
                msgs[j].msg_hdr.msg_name = (&addr.storage as *const libc::sockaddr_storage) as *mut libc::c_void;
                msgs[j].msg_hdr.msg_namelen = addr.len;
            }
        }
        // SAFETY: each header points at one live iovec over a live buffer
        // of the stated length and, optionally, at a live address; sendmmsg
        // only reads them.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), count as libc::c_uint, libc::MSG_DONTWAIT) };
        if n <= 0 {
            refused(start);
            start += 1;
        } else {
            sent += n as usize;
            start += n as usize;
        }
    }
    sent
}

/// Fills `buf` from the kernel's random number generator.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: writes at most `buf.len() - filled` bytes into the live
        // remainder of `buf`.
        let n = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(())
}

/// Nanoseconds since the Unix epoch on the wall clock.
pub fn realtime_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME always
    // exists, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec.max(0) as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// The path of a network namespace given by name (`/run/netns/NAME`, as
/// `ip netns` keeps them) or by path (anything with a `/`).
pub fn netns_path(netns: &str) -> String {
    if netns.contains('/') { netns.to_string() } else { format!("/run/netns/{netns}") }
}
