//! Starting a container's init: fork, new namespaces, overlay root, `/dev`,
//! `/proc`, `/sys`, hostname, `lo` up, pivot_root, exec.
//!
//! The caller is a multi-threaded hostmanager, so after `fork` only
//! async-signal-safe calls are made: everything (paths, options, argv,
//! descriptors) is prepared in a [`Plan`] before forking, and the children
//! make raw system calls only, reporting a failed step as 8 bytes (step,
//! errno) on a close-on-exec pipe whose end of file means "exec'd".
//!
//! Process shape: the caller forks A; A resets signals, becomes a session
//! leader (no controlling terminal), joins the container's cgroups by
//! writing `0` to their `cgroup.procs` (so everything after is accounted
//! and killable through them), unshares the namespaces and forks B, the
//! container's PID 1, reports B's PID and exits. B is then nobody's child
//! but the host's (or a subreaper's), so it survives the hostmanager. B
//! sets up the mounts in its own mount namespace, pivots into the overlay,
//! points stdin at /dev/null and stdout/stderr at `init.log`, marks every
//! other descriptor close-on-exec (nothing of the hostmanager's leaks) and
//! execs the template's `/sbin/init`. A template without one gets our
//! minimal init: B itself stays as a reaper of orphans (`tomato-init`).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::spec::ContainerSpec;
use crate::{Error, Result, sys};

/// The steps B and A may fail in, named for the error message.
const STEPS: [&str; 23] = [
    "setsid",
    "join cgroup",
    "unshare namespaces",
    "fork",
    "make mounts private",
    "mount overlay",
    "mount /proc",
    "mount /dev",
    "create device node",
    "mount /dev/pts",
    "mount /dev/shm",
    "create /dev link",
    "set hostname",
    "bring lo up",
    "pivot_root",
    "detach old root",
    "redirect stdio",
    "exec init",
    "create mount point",
    "chdir",
    "open bind source",
    "mount bind",
    "wait for the host",
];
const S_SETSID: u32 = 0;
const S_CGROUP: u32 = 1;
const S_UNSHARE: u32 = 2;
const S_FORK: u32 = 3;
const S_PRIVATE: u32 = 4;
const S_OVERLAY: u32 = 5;
const S_PROC: u32 = 6;
const S_DEV: u32 = 7;
const S_NODE: u32 = 8;
const S_PTS: u32 = 9;
const S_SHM: u32 = 10;
const S_LINK: u32 = 11;
const S_HOSTNAME: u32 = 12;
const S_LO: u32 = 13;
const S_PIVOT: u32 = 14;
const S_OLDROOT: u32 = 15;
const S_STDIO: u32 = 16;
const S_EXEC: u32 = 17;
const S_MKDIR: u32 = 18;
const S_CHDIR: u32 = 19;
const S_BIND_OPEN: u32 = 20;
const S_BIND: u32 = 21;
const S_GO: u32 = 22;
/// Not a failure: B is set up and waits for the go (see [`launch`]).
const READY: u32 = u32::MAX;

/// Most binds a container may have (their descriptors live in a fixed
/// array: the child must not allocate).
const MAX_BINDS: usize = 8;
// The new mount API (Linux 5.12+); not all of it is in the libc crate.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_NOSUID: u64 = 2;
const MOUNT_ATTR_NODEV: u64 = 4;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A bind prepared for the child: the host source, the directories to
/// create on the way to the target (in the container), the target.
struct PlannedBind {
    source: CString,
    dirs: Vec<CString>,
    target: CString,
}

/// The devices of the container's `/dev`: name, major, minor.
const DEVICES: [(&str, u32, u32); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// The links of the container's `/dev`: name, target.
const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// The environment init starts with.
const INIT_ENV: [&str; 3] =
    ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "container=tomato"];

/// Everything the children need, prepared before `fork`.
pub(crate) struct Plan {
    id: String,
    merged: CString,
    overlay_opts: CString,
    proc_dir: CString,
    sys_dir: CString,
    dev_dir: CString,
    pts_dir: CString,
    shm_dir: CString,
    nodes: Vec<(CString, libc::dev_t)>,
    links: Vec<(CString, CString)>,
    hostname: Vec<u8>,
    /// Path, argv and envp of init; `None` runs our reaper.
    init: Option<(CString, Vec<CString>, Vec<CString>)>,
    log: OwnedFd,
    null: OwnedFd,
    cgroup_procs: Vec<File>,
    lo: libc::ifreq,
    binds: Vec<PlannedBind>,
}

fn c(s: &str) -> CString {
    CString::new(s).expect("constant strings hold no NUL")
}

impl Plan {
    /// Prepares the start of `spec`'s init, joining the cgroups whose
    /// `cgroup.procs` files are given.
    pub(crate) fn new(spec: &ContainerSpec, cgroup_procs: &[std::path::PathBuf]) -> Result<Plan> {
        let merged = spec.merged_dir();
        let p = |rel: &str| sys::cstring(&merged.join(rel));
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            spec.rootfs.display(),
            spec.upper_dir().display(),
            spec.work_dir().display()
        );
        let overlay_opts = CString::new(opts).map_err(|_| Error::InvalidSpec("NUL in a path".into()))?;
        let nodes = DEVICES
            .iter()
            .map(|(name, major, minor)| Ok((p(&format!("dev/{name}"))?, libc::makedev(*major, *minor))))
            .collect::<Result<Vec<_>>>()?;
        let links = DEV_LINKS
            .iter()
            .map(|(name, target)| Ok((c(target), p(&format!("dev/{name}"))?)))
            .collect::<Result<Vec<_>>>()?;
        let init = has_init(&spec.rootfs, &spec.upper_dir())
            .then(|| (c("/sbin/init"), vec![c("/sbin/init")], INIT_ENV.iter().map(|e| c(e)).collect::<Vec<_>>()));
        let log_path = spec.log_file();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io("open init log", &log_path, e))?;
        let null =
            File::options().read(true).write(true).open("/dev/null").map_err(|e| Error::io("open", "/dev/null", e))?;
        let cgroup_procs = cgroup_procs
            .iter()
            .map(|f| File::options().write(true).open(f).map_err(|e| Error::io("open", f, e)))
            .collect::<Result<Vec<_>>>()?;
        if spec.binds.len() > MAX_BINDS {
            return Err(Error::InvalidSpec(format!("{} binds; at most {MAX_BINDS}", spec.binds.len())));
        }
        let binds = spec
            .binds
            .iter()
            .map(|b| {
                let mut dirs = Vec::new();
                let mut at = std::path::PathBuf::from("/");
                for part in b.target.components().skip(1) {
                    at.push(part);
                    dirs.push(sys::cstring(&at)?);
                }
                Ok(PlannedBind { source: sys::cstring(&b.source)?, dirs, target: sys::cstring(&b.target)? })
            })
            .collect::<Result<Vec<_>>>()?;
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut lo: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in lo.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        Ok(Plan {
            id: spec.id.clone(),
            merged: sys::cstring(&merged)?,
            overlay_opts,
            proc_dir: p("proc")?,
            sys_dir: p("sys")?,
            dev_dir: p("dev")?,
            pts_dir: p("dev/pts")?,
            shm_dir: p("dev/shm")?,
            nodes,
            links,
            hostname: spec.hostname.as_bytes().to_vec(),
            init,
            log: log.into(),
            null: null.into(),
            cgroup_procs,
            lo,
            binds,
        })
    }
}

/// Whether the container will have `/sbin/init`: in the upper layer (the
/// user may have added one) or in the template. A symlink counts as is
/// (busybox's `sbin/init -> ../bin/busybox`); a whiteout does not matter
/// here, as exec would fail and report it.
fn has_init(rootfs: &Path, upper: &Path) -> bool {
    [upper, rootfs].iter().any(|root| root.join("sbin/init").symlink_metadata().is_ok())
}

/// Raw pointers into a [`Plan`], made before `fork` (building them
/// allocates).
struct Ptrs {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

fn ptrs(plan: &Plan) -> Ptrs {
    let list = |v: &[CString]| {
        let mut p: Vec<*const libc::c_char> = v.iter().map(|s| s.as_ptr()).collect();
        p.push(std::ptr::null());
        p
    };
    match &plan.init {
        Some((_, argv, envp)) => Ptrs { argv: list(argv), envp: list(envp) },
        None => Ptrs { argv: Vec::new(), envp: Vec::new() },
    }
}

/// Starts init as planned and returns its PID (in the host's namespace).
///
/// B sets everything up, reports READY on the status pipe and waits for
/// one byte on the go pipe; meanwhile `before_init(pid)` runs here (the
/// caller adds interfaces, so init and its boot scripts find them). Its
/// error, or this process dying, closes the go pipe: B exits and init is
/// never run.
pub(crate) fn launch(plan: Plan, before_init: &mut dyn FnMut(u32) -> Result<()>) -> Result<u32> {
    let (pid_r, pid_w) = sys::pipe().map_err(|e| Error::sys("pipe", e))?;
    let (status_r, status_w) = sys::pipe().map_err(|e| Error::sys("pipe", e))?;
    let (go_r, go_w) = sys::pipe().map_err(|e| Error::sys("pipe", e))?;
    let ptrs = ptrs(&plan);
    // SAFETY: the child only makes async-signal-safe calls (see
    // `child_a`), on data prepared above, and never returns.
    let a = unsafe { libc::fork() };
    if a < 0 {
        return Err(Error::sys("fork", io::Error::last_os_error()));
    }
    if a == 0 {
        let fds = Fds {
            pid_w: pid_w.as_raw_fd(),
            status_w: status_w.as_raw_fd(),
            go_r: go_r.as_raw_fd(),
            go_w: go_w.as_raw_fd(),
        };
        // SAFETY: we are the freshly forked child; see `child_a`.
        unsafe { child_a(&plan, &ptrs, fds) }
    }
    drop(pid_w);
    drop(status_w);
    drop(go_r);
    drop(plan);
    let mut pid_bytes = [0u8; 4];
    let got = sys::read_full(pid_r.as_raw_fd(), &mut pid_bytes).map_err(|e| Error::sys("read init pid", e))?;
    let _ = sys::wait_child(a);
    let pid = (got == 4).then(|| u32::from_ne_bytes(pid_bytes));
    let read_status = || -> Result<Option<(u32, i32)>> {
        let mut status = [0u8; 8];
        let n = sys::read_full(status_r.as_raw_fd(), &mut status).map_err(|e| Error::sys("read start status", e))?;
        Ok((n == 8).then(|| {
            let step = u32::from_ne_bytes([status[0], status[1], status[2], status[3]]);
            (step, i32::from_ne_bytes([status[4], status[5], status[6], status[7]]))
        }))
    };
    let failed = |pid: Option<u32>, step: u32, errno: i32| {
        if let Some(pid) = pid {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        Error::Start {
            id: String::new(),
            step: STEPS.get(step as usize).copied().unwrap_or("unknown step"),
            source: io::Error::from_raw_os_error(errno),
        }
    };
    match read_status()? {
        Some((READY, _)) => {}
        Some((step, errno)) => return Err(failed(pid, step, errno)),
        None => return Err(Error::sys("start init", io::Error::other("the container exited before it was set up"))),
    }
    let pid = pid.ok_or_else(|| Error::sys("start init", io::Error::other("the starter exited without a PID")))?;
    if let Err(e) = before_init(pid) {
        // Closing the go pipe unsent ends B.
        drop(go_w);
        let _ = sys::kill(pid, libc::SIGKILL);
        return Err(e);
    }
    // SAFETY: writes one byte from a static buffer to our pipe end.
    if unsafe { libc::write(go_w.as_raw_fd(), b"g".as_ptr().cast(), 1) } != 1 {
        let _ = sys::kill(pid, libc::SIGKILL);
        return Err(Error::sys("tell init to start", io::Error::last_os_error()));
    }
    drop(go_w);
    match read_status()? {
        Some((step, errno)) => Err(failed(Some(pid), step, errno)),
        None => Ok(pid),
    }
}

/// The pipe ends the children use.
#[derive(Clone, Copy)]
struct Fds {
    pid_w: RawFd,
    status_w: RawFd,
    go_r: RawFd,
    go_w: RawFd,
}

/// Reports `step` with the current errno on `fd` and exits.
///
/// # Safety
/// Only async-signal-safe calls; may be called in a forked child only.
unsafe fn fail(fd: RawFd, step: u32) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&step.to_ne_bytes());
    msg[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: writes 8 bytes from a live buffer, then exits without running
    // the parent's destructors or atexit handlers.
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), 8);
        libc::_exit(1)
    }
}

/// `check` for the children: fail the step on a negative return.
///
/// # Safety
/// As [`fail`].
unsafe fn ok(ret: libc::c_int, fd: RawFd, step: u32) {
    if ret < 0 {
        // SAFETY: as the caller's.
        unsafe { fail(fd, step) }
    }
}

/// Process A: see the module documentation.
///
/// # Safety
/// Must run in a freshly forked child; makes async-signal-safe calls only.
unsafe fn child_a(plan: &Plan, ptrs: &Ptrs, fds: Fds) -> ! {
    let (pid_w, status_w) = (fds.pid_w, fds.status_w);
    // SAFETY: each call below is a raw, async-signal-safe system call on
    // data prepared before the fork.
    unsafe {
        // Default dispositions and an empty mask, whatever the hostmanager
        // set (an inherited blocked SIGTERM would make init deaf to it).
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        ok(libc::setsid(), status_w, S_SETSID);
        for f in &plan.cgroup_procs {
            if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                fail(status_w, S_CGROUP);
            }
        }
        let flags =
            libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET | libc::CLONE_NEWPID;
        ok(libc::unshare(flags), status_w, S_UNSHARE);
        let b = libc::fork();
        if b < 0 {
            fail(status_w, S_FORK);
        }
        if b > 0 {
            let bytes = (b as u32).to_ne_bytes();
            libc::write(pid_w, bytes.as_ptr().cast(), 4);
            libc::_exit(0);
        }
        libc::close(pid_w);
        // Only the parent may hold the go pipe's writing end, so that its
        // death reads as end of file here.
        libc::close(fds.go_w);
        child_b(plan, ptrs, status_w, fds.go_r)
    }
}

/// Process B, the container's PID 1: see the module documentation.
///
/// # Safety
/// As [`child_a`].
unsafe fn child_b(plan: &Plan, ptrs: &Ptrs, st: RawFd, go: RawFd) -> ! {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: raw system calls on NUL-terminated strings and plain data
    // prepared before the fork.
    unsafe {
        let none = c"none".as_ptr();
        ok(libc::mount(none, c"/".as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, null.cast()), st, S_PRIVATE);
        ok(
            libc::mount(
                c"overlay".as_ptr(),
                plan.merged.as_ptr(),
                c"overlay".as_ptr(),
                0,
                plan.overlay_opts.as_ptr().cast(),
            ),
            st,
            S_OVERLAY,
        );
        // Bind sources are cloned as detached mounts now, while host paths
        // resolve, and attached after pivot_root, where the target
        // resolves inside the container (a symlink in the container's
        // disk cannot point it at the host).
        let mut bind_fds = [-1 as libc::c_int; MAX_BINDS];
        for (slot, bind) in bind_fds.iter_mut().zip(&plan.binds) {
            let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
            let fd = libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, bind.source.as_ptr(), flags) as libc::c_int;
            ok(fd, st, S_BIND_OPEN);
            let attr =
                MountAttr { attr_set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, attr_clr: 0, propagation: 0, userns_fd: 0 };
            let size = std::mem::size_of::<MountAttr>();
            let empty = c"".as_ptr();
            ok(
                libc::syscall(libc::SYS_mount_setattr, fd, empty, libc::AT_EMPTY_PATH, &attr, size) as libc::c_int,
                st,
                S_BIND,
            );
            *slot = fd;
        }
        for dir in [&plan.proc_dir, &plan.sys_dir, &plan.dev_dir] {
            if libc::mkdir(dir.as_ptr(), 0o755) < 0 && *libc::__errno_location() != libc::EEXIST {
                fail(st, S_MKDIR);
            }
        }
        let nodev = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        ok(libc::mount(c"proc".as_ptr(), plan.proc_dir.as_ptr(), c"proc".as_ptr(), nodev, null.cast()), st, S_PROC);
        // A read-only /sys showing the container's own interfaces; not
        // fatal where the kernel refuses it.
        libc::mount(c"sysfs".as_ptr(), plan.sys_dir.as_ptr(), c"sysfs".as_ptr(), nodev | libc::MS_RDONLY, null.cast());
        ok(
            libc::mount(
                c"tmpfs".as_ptr(),
                plan.dev_dir.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_STRICTATIME,
                c"mode=755,size=1024k".as_ptr().cast(),
            ),
            st,
            S_DEV,
        );
        for (path, dev) in &plan.nodes {
            ok(libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, *dev), st, S_NODE);
        }
        ok(libc::mkdir(plan.pts_dir.as_ptr(), 0o755), st, S_PTS);
        ok(
            libc::mount(
                c"devpts".as_ptr(),
                plan.pts_dir.as_ptr(),
                c"devpts".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                c"newinstance,ptmxmode=0666,mode=0620".as_ptr().cast(),
            ),
            st,
            S_PTS,
        );
        ok(libc::mkdir(plan.shm_dir.as_ptr(), 0o1777), st, S_SHM);
        ok(
            libc::mount(c"shm".as_ptr(), plan.shm_dir.as_ptr(), c"tmpfs".as_ptr(), nodev, c"mode=1777".as_ptr().cast()),
            st,
            S_SHM,
        );
        for (target, path) in &plan.links {
            ok(libc::symlink(target.as_ptr(), path.as_ptr()), st, S_LINK);
        }
        ok(libc::sethostname(plan.hostname.as_ptr().cast(), plan.hostname.len()), st, S_HOSTNAME);
        // lo up, by ioctl: no netlink needed for the one interface every
        // container has.
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        ok(sock, st, S_LO);
        let mut lo = plan.lo;
        ok(libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut lo), st, S_LO);
        lo.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        ok(libc::ioctl(sock, libc::SIOCSIFFLAGS, &lo), st, S_LO);
        libc::close(sock);
        // pivot_root(".", ".") stacks the old root under the new one; a
        // lazy unmount of "." then drops it, so no directory is needed.
        ok(libc::chdir(plan.merged.as_ptr()), st, S_CHDIR);
        ok(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int, st, S_PIVOT);
        ok(libc::umount2(c".".as_ptr(), libc::MNT_DETACH), st, S_OLDROOT);
        ok(libc::chdir(c"/".as_ptr()), st, S_CHDIR);
        for (fd, bind) in bind_fds.iter().zip(&plan.binds) {
            for dir in &bind.dirs {
                if libc::mkdir(dir.as_ptr(), 0o755) < 0 && *libc::__errno_location() != libc::EEXIST {
                    fail(st, S_MKDIR);
                }
            }
            let empty = c"".as_ptr();
            let moved = libc::syscall(
                libc::SYS_move_mount,
                *fd,
                empty,
                libc::AT_FDCWD,
                bind.target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            );
            ok(moved as libc::c_int, st, S_BIND);
            libc::close(*fd);
        }
        ok(libc::dup2(plan.null.as_raw_fd(), 0), st, S_STDIO);
        ok(libc::dup2(plan.log.as_raw_fd(), 1), st, S_STDIO);
        ok(libc::dup2(plan.log.as_raw_fd(), 2), st, S_STDIO);
        // Set up: tell the parent, and wait until it says go.
        let mut ready = [0u8; 8];
        ready[..4].copy_from_slice(&READY.to_ne_bytes());
        libc::write(st, ready.as_ptr().cast(), 8);
        let mut byte = 0u8;
        loop {
            let n = libc::read(go, (&raw mut byte).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            fail(st, S_GO)
        }
        libc::close(go);
        match &plan.init {
            Some((path, _, _)) => {
                // Nothing but 0, 1 and 2 survives the exec.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
                libc::execve(path.as_ptr(), ptrs.argv.as_ptr(), ptrs.envp.as_ptr());
                fail(st, S_EXEC)
            }
            None => reaper(),
        }
    }
}

/// Our minimal init: closes everything but stdio (which also tells the
/// starter it is up) and reaps orphans until killed.
///
/// # Safety
/// As [`child_a`].
unsafe fn reaper() -> ! {
    // SAFETY: raw, async-signal-safe system calls on local data.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_NAME, c"tomato-init".as_ptr(), 0, 0, 0);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            libc::sigwaitinfo(&set, std::ptr::null_mut());
        }
    }
}

/// The id a failed start is reported for.
pub(crate) fn with_id(e: Error, id: &str) -> Error {
    match e {
        Error::Start { step, source, .. } => Error::Start { id: id.to_string(), step, source },
        other => other,
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("id", &self.id).field("merged", &self.merged).finish_non_exhaustive()
    }
}
