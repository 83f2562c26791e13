//! The frame probe: raw Ethernet frames sent with an AF_PACKET socket in
//! one namespace and received with another in a second namespace, stamped
//! by the kernel on arrival (`SO_TIMESTAMPNS`). Both ends read the same
//! host clock (`CLOCK_REALTIME`, the clock of those stamps), so the
//! difference is the one-way delay through whatever joins the two
//! interfaces, measured where a wire would be: at the Ethernet level.
//!
//! A probe frame is broadcast, of ethertype [`ETHERTYPE`] (IEEE's local
//! experimental one, which no kernel stack answers), and carries a magic
//! word, a run id (so late frames of an earlier run are not counted), a
//! sequence number and the send time. Its length is what netem and
//! wirefilter count for their rate (no FCS, preamble or gap).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// IEEE 802 local experimental ethertype 1.
pub const ETHERTYPE: u16 = 0x88b5;
/// "TMTB".
const MAGIC: u32 = 0x544d_5442;
/// Bytes of header the receiver reads: Ethernet header + our fields.
const HEADER: usize = 14 + 4 + 4 + 8 + 8;
/// Frames per `sendmmsg`.
const SEND_BATCH: usize = 32;

static NEXT_RUN: AtomicU32 = AtomicU32::new(1);

fn check(ret: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(ret)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, opt: libc::c_int, value: &T, what: &str) -> io::Result<()> {
    // SAFETY: passes a pointer to a live `T` with its exact size.
    let ret =
        unsafe { libc::setsockopt(fd, level, opt, (value as *const T).cast(), size_of::<T>() as libc::socklen_t) };
    check(ret, what).map(|_| ())
}

/// Nanoseconds on `CLOCK_REALTIME`, the clock of `SO_TIMESTAMPNS`.
pub fn realtime_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Opens an AF_PACKET socket on interface `ifname` of namespace `ns` that
/// receives frames of `protocol` (0: none, for a sender).
fn open_socket(ns: &str, ifname: &str, protocol: u16) -> io::Result<OwnedFd> {
    let ifname = ifname.to_string();
    dataplane::sys::in_netns(&format!("/run/netns/{ns}"), move || -> io::Result<OwnedFd> {
        let ifindex = dataplane::sys::ifindex(&ifname)?;
        // SAFETY: plain syscall with integer arguments.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(protocol.to_be())) };
        let raw = check(raw, "socket(AF_PACKET)")?;
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length is its size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(ret, &format!("bind to {ifname}"))?;
        Ok(fd)
    })?
}

/// Sends numbered probe frames on one interface.
#[derive(Debug)]
pub struct Sender {
    fd: OwnedFd,
    frames: Vec<Vec<u8>>,
    run: u32,
}

/// What a paced send did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendReport {
    /// Frames handed to the interface (sequence numbers `0..sent`).
    pub sent: u64,
    /// Frames the interface refused (ENOBUFS) and that were skipped.
    pub refused: u64,
    /// `CLOCK_REALTIME` of the first and the last send, in ns.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
}

/// How to pace a send.
#[derive(Debug, Clone, Copy)]
pub struct SendPlan {
    /// Frames to send.
    pub frames: u64,
    /// Frames per second.
    pub fps: f64,
    /// Frame length in bytes (at least 64).
    pub len: usize,
    /// Whether a refused frame is sent again (keeps the sequence the link
    /// sees identical, for the same-seed loss check) or skipped (a
    /// saturating sender, where excess is expected).
    pub retry_refused: bool,
}

impl Sender {
    /// A sender on `ifname` in namespace `ns` for frames of `len` bytes,
    /// tagged with the id of a receiver's run.
    pub fn open(ns: &str, ifname: &str, len: usize, run: u32) -> io::Result<Sender> {
        let fd = open_socket(ns, ifname, 0)?;
        let sndbuf: libc::c_int = 4 << 20;
        setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &sndbuf, "SO_SNDBUFFORCE")?;
        let mut frame = vec![0u8; len.max(64)];
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&[0x02, 0x74, 0x6d, 0x74, 0x00, 0x01]);
        frame[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        frame[14..18].copy_from_slice(&MAGIC.to_be_bytes());
        frame[18..22].copy_from_slice(&run.to_be_bytes());
        Ok(Sender { fd, frames: vec![frame; SEND_BATCH], run })
    }

    /// Sends frames `first..first + n` (n ≤ 32) stamped with the current
    /// time; returns how many the interface took (0 when it refused).
    fn send(&mut self, first: u64, n: usize) -> io::Result<usize> {
        let n = n.min(SEND_BATCH);
        let now = realtime_nanos();
        for (k, f) in self.frames[..n].iter_mut().enumerate() {
            f[22..30].copy_from_slice(&(first + k as u64).to_be_bytes());
            f[30..38].copy_from_slice(&now.to_be_bytes());
        }
        let mut iovs: Vec<libc::iovec> = self.frames[..n]
            .iter_mut()
            .map(|f| libc::iovec { iov_base: f.as_mut_ptr().cast(), iov_len: f.len() })
            .collect();
        // SAFETY: mmsghdr is plain old data; all-zero is valid.
        let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each header points at one live iovec over a live frame
        // buffer; the kernel only reads them. The socket is bound, so no
        // address is needed.
        let ret = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => Ok(0),
                _ => Err(io::Error::new(e.kind(), format!("sendmmsg: {e}"))),
            };
        }
        Ok(ret as usize)
    }

    /// Sends `plan.frames` frames at `plan.fps`, evenly spaced, in small
    /// batches when the rate needs them.
    pub fn run(&mut self, plan: &SendPlan) -> io::Result<SendReport> {
        dataplane::sys::set_timer_slack_ns(1);
        let start = Instant::now();
        let mut report = SendReport { first_ns: realtime_nanos(), ..SendReport::default() };
        let mut seq = 0u64;
        let mut skipped = 0u64;
        while seq + skipped < plan.frames {
            let elapsed = start.elapsed().as_secs_f64();
            let due = ((elapsed * plan.fps) as u64 + 1).min(plan.frames);
            while seq + skipped < due {
                let n = (due - seq - skipped).min(SEND_BATCH as u64) as usize;
                let sent = self.send(seq, n)?;
                if sent == 0 {
                    report.refused += n as u64;
                    if plan.retry_refused {
                        std::thread::sleep(Duration::from_micros(50));
                    } else {
                        skipped += n as u64;
                    }
                }
                seq += sent as u64;
            }
            // Sleep until the next frame is due; short gaps are slept too,
            // since the timer slack is 1 ns.
            let next = (seq + skipped) as f64 / plan.fps;
            let wait = next - start.elapsed().as_secs_f64();
            if wait > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(wait.min(0.001)));
            }
        }
        report.sent = seq;
        report.last_ns = realtime_nanos();
        Ok(report)
    }

    /// The run id the frames carry.
    pub fn run_id(&self) -> u32 {
        self.run
    }
}

/// One received probe frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rx {
    /// Its sequence number.
    pub seq: u64,
    /// When it was sent (`CLOCK_REALTIME`, ns).
    pub tx_ns: u64,
    /// When the kernel received it (`CLOCK_REALTIME`, ns).
    pub rx_ns: u64,
    /// Its length in bytes.
    pub len: u32,
}

/// A receiving thread; [`Receiver::finish`] stops it and returns what it
/// got.
#[derive(Debug)]
pub struct Receiver {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<Vec<Rx>>>,
    run: u32,
}

impl Receiver {
    /// Starts receiving probe frames of a fresh run id on `ifname` in
    /// namespace `ns`, with room for `expected` frames.
    pub fn start(ns: &str, ifname: &str, expected: usize) -> io::Result<Receiver> {
        let fd = open_socket(ns, ifname, ETHERTYPE)?;
        let s = fd.as_raw_fd();
        let on: libc::c_int = 1;
        setsockopt(s, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on, "SO_TIMESTAMPNS")?;
        let rcvbuf: libc::c_int = 64 << 20;
        setsockopt(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &rcvbuf, "SO_RCVBUFFORCE")?;
        let timeout = libc::timeval { tv_sec: 0, tv_usec: 20_000 };
        setsockopt(s, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout, "SO_RCVTIMEO")?;
        let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread =
            std::thread::Builder::new().name("probe-rx".into()).spawn(move || receive(&fd, run, &flag, expected))?;
        Ok(Receiver { stop, thread, run })
    }

    /// The run id senders must use.
    pub fn run_id(&self) -> u32 {
        self.run
    }

    /// Waits `linger` for frames still in flight, stops and returns the
    /// frames in arrival order.
    pub fn finish(self, linger: Duration) -> io::Result<Vec<Rx>> {
        std::thread::sleep(linger);
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| io::Error::other("probe receiver panicked"))?
    }
}

fn receive(fd: &OwnedFd, run: u32, stop: &AtomicBool, expected: usize) -> io::Result<Vec<Rx>> {
    dataplane::sys::set_timer_slack_ns(1);
    let mut out = Vec::with_capacity(expected);
    let mut buf = [0u8; HEADER];
    // Room for one SCM_TIMESTAMPNS control message, u64-aligned.
    let mut control = [0u64; 8];
    while !stop.load(Ordering::Relaxed) {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control);
        // SAFETY: `msg` points at live buffers of the sizes it states; with
        // MSG_TRUNC the kernel writes at most `buf.len()` bytes and returns
        // the frame's full length.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                _ => return Err(io::Error::new(e.kind(), format!("recvmsg: {e}"))),
            }
        }
        let len = n as usize;
        if len < HEADER || buf[14..18] != MAGIC.to_be_bytes() || buf[18..22] != run.to_be_bytes() {
            continue;
        }
        let Some(rx_ns) = timestamp(&msg) else { continue };
        let seq = u64::from_be_bytes(buf[22..30].try_into().expect("8 bytes"));
        let tx_ns = u64::from_be_bytes(buf[30..38].try_into().expect("8 bytes"));
        out.push(Rx { seq, tx_ns, rx_ns, len: len as u32 });
    }
    Ok(out)
}

/// The `SCM_TIMESTAMPNS` stamp of a received message, in ns.
fn timestamp(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` was filled by recvmsg, so its control pointer and
    // length describe valid control messages; CMSG_* walk within them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// Sends `plan` from (`tx_ns`, `tx_if`) to (`rx_ns`, `rx_if`) and returns
/// the send report and the frames received, waiting `linger` after the
/// last send for frames still in flight.
pub fn run(tx: (&str, &str), rx: (&str, &str), plan: &SendPlan, linger: Duration) -> io::Result<(SendReport, Vec<Rx>)> {
    let receiver = Receiver::start(rx.0, rx.1, plan.frames as usize)?;
    let mut sender = Sender::open(tx.0, tx.1, plan.len, receiver.run_id())?;
    debug_assert_eq!(sender.run_id(), receiver.run_id());
    let report = sender.run(plan)?;
    let frames = receiver.finish(linger)?;
    Ok((report, frames))
}
