//! The hostmanager's own network namespace, where the host ends of every
//! container interface live and the data plane opens its ports.
//!
//! Keeping them apart from the host's namespace means the hostmanager never
//! meets interfaces it did not make, and removing the namespace removes
//! every host end at once. It is pinned by a bind mount at
//! `/run/netns/<name>` (as `ip netns add` does), so it outlives a crashed
//! hostmanager together with the containers whose links end there.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where named namespaces are pinned.
const NETNS_DIR: &str = "/run/netns";

fn check(ret: libc::c_int, what: &str) -> io::Result<()> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other(format!("bad path {}", path.display())))
}

/// The pin path of namespace `name`.
pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether `path` is a pinned namespace (a bind mount of an nsfs file),
/// not a leftover empty file.
fn is_pinned(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else { return false };
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statfs is valid; fstatfs fills it for an open fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `file` is open for the call and `st` is writable.
    let ok = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == 0;
    // NSFS_MAGIC
    ok && st.f_type as i64 == 0x6e73_6673
}

/// Returns the path of namespace `name`, creating and pinning it first if
/// it does not exist (a leftover unpinned file is replaced).
pub fn ensure(name: &str) -> io::Result<PathBuf> {
    let path = path_of(name);
    if is_pinned(&path) {
        return Ok(path);
    }
    std::fs::create_dir_all(NETNS_DIR)?;
    let _ = std::fs::remove_file(&path);
    std::fs::File::create(&path)?;
    let target = c_path(&path)?;
    // A fresh thread unshares its own network namespace and pins it; the
    // thread (and the namespace's only task) then ends.
    let pinned = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare affects only this thread, which ends right after.
        check(unsafe { libc::unshare(libc::CLONE_NEWNET) }, "unshare(CLONE_NEWNET)")?;
        let source = CString::new("/proc/thread-self/ns/net").map_err(io::Error::other)?;
        check(
            // SAFETY: both strings are valid and NUL-terminated for the call.
            unsafe { libc::mount(source.as_ptr(), target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) },
            "bind mount of the namespace",
        )?;
        loopback_up()
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?;
    if let Err(e) = pinned {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Brings up `lo` in the calling thread's network namespace (for capture
/// streams and tools that listen there).
fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain datagram socket; closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd, "socket")?;
    // SAFETY: an all-zero ifreq is valid; the name fits with its NUL.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `fd` is open and `req` names an interface; the ioctls read
    // and write only `req`.
    let result = unsafe {
        check(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req), "SIOCGIFFLAGS lo").and_then(|()| {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            check(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req), "SIOCSIFFLAGS lo")
        })
    };
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    result
}

/// Unpins and removes namespace `name`; its interfaces (and their veth
/// peers) go with it once no process is inside. Missing is not an error.
pub fn remove(name: &str) -> io::Result<()> {
    let path = path_of(name);
    if is_pinned(&path) {
        let target = c_path(&path)?;
        // SAFETY: `target` is a valid path string; MNT_DETACH lazily
        // unmounts even if a socket still holds the namespace.
        check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) }, "unmount of the namespace")?;
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_made_once_and_removed() {
        if !dataplane::lab::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = format!("tomato-test-{}", std::process::id());
        let path = ensure(&name).unwrap();
        assert!(is_pinned(&path));
        let again = ensure(&name).unwrap();
        assert_eq!(path, again);
        let host = std::fs::read_link("/proc/self/ns/net").unwrap();
        let inside =
            dataplane::sys::in_netns(path.to_str().unwrap(), || std::fs::read_link("/proc/thread-self/ns/net"))
                .unwrap()
                .unwrap();
        assert_ne!(host, inside);
        remove(&name).unwrap();
        assert!(!path.exists());
        remove(&name).unwrap();
    }
}
