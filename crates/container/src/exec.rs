//! Running commands inside a running container: [`execute`] (a shell
//! command with its output, bounded by a timeout) and [`spawn_console`]
//! (an interactive shell on a PTY).
//!
//! A command joins the container's cgroups and its IPC, UTS, network and
//! mount namespaces in `pre_exec` (the mount namespace last; entering it
//! also moves the root and working directory to the container's root), and
//! its PID namespace by being forked from a short-lived thread that joined
//! it first (`setns(CLONE_NEWPID)` only affects children). So `/bin/sh` is
//! the container's own, runs as one of its processes and is killed by
//! [`crate::stop`] with the rest. Namespace descriptors are opened and
//! init's start time checked again afterwards, so a PID reused by a host
//! process is never entered.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cgroup::CgroupKind;
use crate::lifecycle::Running;
use crate::{Error, Result, sys};

/// The environment of commands and consoles.
const ENV: [(&str, &str); 3] =
    [("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), ("HOME", "/root"), ("LANG", "C.UTF-8")];

/// How long output is still read after the command exited while a
/// background process keeps its pipes open.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// The shell's exit status (killed by SIGKILL after a timeout).
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Whether the timeout ended it.
    pub timed_out: bool,
}

/// Descriptors for entering a running container.
struct Entry {
    /// IPC, UTS, network and mount namespaces, in the order they are
    /// entered.
    namespaces: Vec<(File, libc::c_int)>,
    pid_ns: File,
    cgroup_procs: Vec<File>,
}

impl Entry {
    fn open(running: &Running) -> Result<Entry> {
        running.check()?;
        let pid = running.pid;
        let mut namespaces = Vec::new();
        for (kind, flag) in [
            ("ipc", libc::CLONE_NEWIPC),
            ("uts", libc::CLONE_NEWUTS),
            ("net", libc::CLONE_NEWNET),
            ("mnt", libc::CLONE_NEWNS),
        ] {
            namespaces.push((sys::open_ns(pid, kind)?, flag));
        }
        let pid_ns = sys::open_ns(pid, "pid")?;
        let cgroup_procs = CgroupKind::host()
            .procs_files_of(pid)
            .iter()
            .map(|f| File::options().write(true).open(f).map_err(|e| Error::io("open", f, e)))
            .collect::<Result<Vec<_>>>()?;
        // Still the same process, so the descriptors above are its own.
        running.check()?;
        Ok(Entry { namespaces, pid_ns, cgroup_procs })
    }

    /// The raw descriptors for `pre_exec`: cgroup files, then namespaces.
    fn raw(&self) -> (Vec<RawFd>, Vec<(RawFd, libc::c_int)>) {
        (
            self.cgroup_procs.iter().map(|f| f.as_raw_fd()).collect(),
            self.namespaces.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect(),
        )
    }

    /// Runs `f` on a fresh thread whose children are born in the
    /// container's PID namespace.
    fn in_pid_ns<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let fd = self.pid_ns.as_raw_fd();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    sys::setns(fd, libc::CLONE_NEWPID).map_err(|e| Error::sys("enter PID namespace", e))?;
                    f()
                })
                .join()
                .map_err(|_| Error::sys("exec thread", io::Error::other("panicked")))?
        })
    }
}

/// The `pre_exec` part of entering: join cgroups, then namespaces. Only
/// raw system calls on descriptors (async-signal-safe).
fn join(cgroup_procs: &[RawFd], namespaces: &[(RawFd, libc::c_int)]) -> io::Result<()> {
    for &fd in cgroup_procs {
        // SAFETY: writes one byte from a static buffer to an open file.
        if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    for &(fd, nstype) in namespaces {
        sys::setns(fd, nstype)?;
    }
    Ok(())
}

/// Runs `/bin/sh -c cmd` inside the container (all its namespaces, root
/// and cgroups; stdin is /dev/null) and returns its output. After
/// `timeout` the command's process group is killed and `timed_out` set.
/// Output still held open by background processes is read for 100 ms
/// after the shell exits, no longer.
pub fn execute(running: &Running, cmd: &str, timeout: Duration) -> Result<ExecOutput> {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(cmd);
    run_inside(&Entry::open(running)?, command, "spawn /bin/sh in the container", timeout)
}

/// Runs the host's executable `program` inside the container with `args`,
/// as [`execute`] runs a shell command: it needs nothing from the
/// container's file system (a static binary, such as the hostmanager's
/// copy of `tomato-guest`, runs in any template). The file is opened on
/// the host and executed as `/proc/self/fd/<n>` after the container's
/// namespaces were entered, so `/proc/self/exe` inside names it too.
pub fn execute_file(
    running: &Running,
    program: &std::path::Path,
    args: &[&str],
    timeout: Duration,
) -> Result<ExecOutput> {
    let file = File::open(program).map_err(|e| Error::io("open", program, e))?;
    let entry = Entry::open(running)?;
    // Close-on-exec is fine: the kernel opens the file before it closes
    // descriptors, for a binary (not a script).
    let mut command = Command::new(format!("/proc/self/fd/{}", file.as_raw_fd()));
    command.arg0(program.file_name().map(|n| n.to_os_string()).unwrap_or_default()).args(args);
    let what = format!("spawn {} in the container", program.display());
    let output = run_inside(&entry, command, &what, timeout);
    drop(file);
    output
}

/// Spawns `command` in the container `entry` opened (its namespaces and
/// cgroups, its own session, our environment, stdin /dev/null) and
/// collects its output.
fn run_inside(entry: &Entry, mut command: Command, what: &str, timeout: Duration) -> Result<ExecOutput> {
    let (cgroup_fds, ns_fds) = entry.raw();
    entry.in_pid_ns(move || {
        command.env_clear().envs(ENV).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: the hook makes only raw system calls on descriptors that
        // `entry` keeps open until after the spawn.
        unsafe {
            command.pre_exec(move || {
                join(&cgroup_fds, &ns_fds)?;
                // Its own process group, so a timeout can end all of it.
                libc::setsid();
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| Error::sys(what, e))?;
        collect(child, timeout)
    })
}

/// Reads a child's stdout and stderr until both close (or the child
/// exited `DRAIN_GRACE` ago) and waits for it, killing its process group
/// at the deadline.
fn collect(mut child: Child, timeout: Duration) -> Result<ExecOutput> {
    let deadline = Instant::now() + timeout;
    let mut pipes: [Option<Box<dyn ReadFd>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
    ];
    for pipe in pipes.iter().flatten() {
        set_nonblocking(pipe.fd());
    }
    let mut bufs = [Vec::new(), Vec::new()];
    let mut status = None;
    let mut exited_at = None;
    let mut timed_out = false;
    loop {
        let open: Vec<usize> = (0..2).filter(|i| pipes[*i].is_some()).collect();
        if open.is_empty() && status.is_some() {
            break;
        }
        if open.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            let mut fds: Vec<libc::pollfd> = open
                .iter()
                .map(|i| libc::pollfd {
                    fd: pipes[*i].as_ref().map_or(-1, |p| p.fd()),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `fds` is a live array of `fds.len()` pollfds.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 10) };
            for (slot, pfd) in open.iter().zip(&fds) {
                if pfd.revents == 0 {
                    continue;
                }
                let mut chunk = [0u8; 8192];
                let pipe = pipes[*slot].as_mut().expect("listed as open");
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => {
                            pipes[*slot] = None;
                            break;
                        }
                        Ok(n) => bufs[*slot].extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            }
        }
        if status.is_none()
            && let Some(s) = child.try_wait().map_err(|e| Error::sys("wait for command", e))?
        {
            status = Some(s);
            exited_at = Some(Instant::now());
        }
        if exited_at.is_some_and(|t| t.elapsed() > DRAIN_GRACE) {
            break;
        }
        if status.is_none() && Instant::now() > deadline {
            let pid = child.id();
            // SAFETY: kill of the process group the child leads (setsid in
            // pre_exec made its PID the group id).
            unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
            let _ = sys::kill(pid, libc::SIGKILL);
            status = Some(child.wait().map_err(|e| Error::sys("wait for command", e))?);
            exited_at = Some(Instant::now());
            timed_out = true;
        }
    }
    let [stdout, stderr] = bufs;
    let status = match status {
        Some(s) => s,
        None => child.wait().map_err(|e| Error::sys("wait for command", e))?,
    };
    Ok(ExecOutput { status, stdout, stderr, timed_out })
}

/// A readable pipe with its descriptor.
trait ReadFd: Read {
    fn fd(&self) -> RawFd;
}

impl<T: Read + AsRawFd> ReadFd for T {
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an open descriptor with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// An interactive shell inside a container, on a PTY.
///
/// Stream `pty` (tokio `AsyncRead` + `AsyncWrite`; `into_split()` gives
/// owned halves, `resize()` changes the window size) over the WebSocket;
/// `child` is the shell (killed when dropped; processes it left in the
/// background stay until the container stops). The PTY is the host's, so
/// `tty` inside names a device the container's `/dev/pts` does not list.
pub struct Console {
    /// The PTY's controlling side.
    pub pty: pty_process::Pty,
    /// The login shell (`/bin/sh -l`) inside the container.
    pub child: tokio::process::Child,
}

/// Starts a login shell (`/bin/sh -l`, `TERM=xterm-256color`) inside the
/// container on a new PTY of `rows` x `cols`. Must be called from within a
/// tokio runtime (the PTY and the child are registered with its reactor).
pub fn spawn_console(running: &Running, rows: u16, cols: u16) -> Result<Console> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| Error::sys("spawn_console needs a tokio runtime", io::Error::other(e)))?;
    let entry = Entry::open(running)?;
    let (cgroup_fds, ns_fds) = entry.raw();
    let pty_error = |e: pty_process::Error| Error::sys("console PTY", io::Error::other(e));
    let (pty, pts) = pty_process::open().map_err(pty_error)?;
    pty.resize(pty_process::Size::new(rows, cols)).map_err(pty_error)?;
    let child = entry.in_pid_ns(move || {
        let _runtime = runtime.enter();
        let command = pty_process::Command::new("/bin/sh")
            .arg("-l")
            .env_clear()
            .envs(ENV)
            .env("TERM", "xterm-256color")
            .kill_on_drop(true);
        // SAFETY: the hook makes only raw system calls on descriptors that
        // `entry` keeps open until after the spawn.
        let command = unsafe { command.pre_exec(move || join(&cgroup_fds, &ns_fds)) };
        command.spawn(pts).map_err(pty_error)
    })?;
    Ok(Console { pty, child })
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").field("pty", &self.pty.as_raw_fd()).field("child", &self.child).finish()
    }
}
