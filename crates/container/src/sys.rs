//! Thin, checked wrappers over the Linux calls the runtime makes outside
//! the start sequence (which lives in `launch.rs`): `/proc` reading,
//! signals, pipes, namespaces, mounts.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Turns a `-1` return into the thread's `errno`.
pub(crate) fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A path as a C string (paths with NUL are refused).
pub(crate) fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidSpec(format!("path {path:?} contains a NUL byte")))
}

/// What `/proc/PID/stat` says about a process that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// The state letter (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// The start time in clock ticks after boot (field 22).
    pub start_time: u64,
}

impl ProcStat {
    /// Whether the process still runs (not a zombie or dead).
    pub fn alive(&self) -> bool {
        !matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses `/proc/PID/stat`: the command may hold spaces and parentheses,
/// so fields are counted after the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // Field 3 was the state; the start time is field 22, 19 further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// The state and start time of process `pid`, or `None` if there is none.
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Sends `sig` to `pid`; a process that is gone is not an error.
pub(crate) fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return Ok(()) };
    if pid <= 0 {
        return Ok(());
    }
    // SAFETY: plain syscall on a positive PID (never a group or -1).
    match check(unsafe { libc::kill(pid, sig) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Reaps `pid` if it is a zombie child of ours (after [`become_subreaper`],
/// container inits are); anything else is left alone.
pub(crate) fn try_reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    let mut status = 0;
    // SAFETY: waits for one specific PID without blocking; ECHILD (not our
    // child) is the expected failure and is ignored.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

/// Makes the calling process the reaper of its orphaned descendants
/// (`PR_SET_CHILD_SUBREAPER`), so container inits, whose starter exits at
/// once, become its children and [`crate::stop`] can reap them instead of
/// leaving zombies to a PID 1 that may not reap (as on the test machines).
/// A hostmanager calls it once at start-up; containers still outlive it.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments; affects only this process.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

/// A pipe whose both ends close on exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub(crate) fn read_full(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the live remainder of `buf`.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    Ok(got)
}

/// Waits for child `pid` and returns its raw wait status.
pub(crate) fn wait_child(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waits for one specific child of ours.
        match check(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(status),
        }
    }
}

/// Opens `/proc/PID/ns/KIND`.
pub(crate) fn open_ns(pid: u32, kind: &str) -> Result<File> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/{kind}"));
    File::open(&path).map_err(|e| Error::io("open namespace", path, e))
}

/// Moves the calling thread into the namespace `fd` of type `nstype`.
pub(crate) fn setns(fd: RawFd, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: setns on a descriptor; only this thread's namespaces change.
    check(unsafe { libc::setns(fd, nstype) }).map(|_| ())
}

/// Runs `f` on a fresh thread inside the network namespace `ns`, so the
/// caller's thread keeps its own. Sockets opened by `f` stay in `ns`.
pub(crate) fn in_netns<T: Send>(ns: &File, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let fd = ns.as_raw_fd();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                setns(fd, libc::CLONE_NEWNET)?;
                f()
            })
            .join()
            .map_err(|_| io::Error::other("netns thread panicked"))?
    })
}

/// Undoes the octal escapes (`\040` for space) of `/proc/*/mountinfo`.
fn unescape_mount_path(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Mount points listed in a mountinfo text (field 5), in table order.
pub(crate) fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo.lines().filter_map(|line| line.split(' ').nth(4)).map(unescape_mount_path).collect()
}

/// Mount points of this process's mount namespace under `dir`, deepest
/// (latest) first.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = mount_points(&text).into_iter().filter(|m| m.starts_with(dir)).collect();
    found.reverse();
    found
}

/// Detaches the mount at `path` (`umount -l`); not mounted is not an error.
pub(crate) fn umount_detach(path: &Path) -> Result<()> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    match check(unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) }) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => Ok(()),
        Err(e) => Err(Error::io("umount", path, e)),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(parse_stat(text), Some(ProcStat { state: b'S', start_time: 987654 }));
        let zombie = "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        let stat = parse_stat(zombie).expect("parses");
        assert!(!stat.alive());
        assert_eq!(parse_stat("7 (sh) S 1"), None);
    }

    #[test]
    fn mount_points_are_unescaped() {
        let info = "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 0:5 / /proc rw - proc proc rw\n";
        assert_eq!(mount_points(info), vec![PathBuf::from("/mnt/with space"), PathBuf::from("/proc")]);
    }
}
