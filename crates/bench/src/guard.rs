//! Leaving the host as we found it: every process, namespace and directory
//! the benchmark creates is registered here and removed on a normal end, on
//! a panic (the [`Guard`]'s drop) and on SIGINT/SIGTERM (a thread that waits
//! for the signals, cleans up and exits with 130).
//!
//! Namespaces are found by name: [`dataplane::lab::Lab`] names them
//! `tmt-<pid>-...`, so the ones of this process are exactly those with our
//! pid in the prefix, whichever lab made them. Processes are ended by their
//! own pid, never by name.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dataplane::lab::run;

/// What is still to be removed.
struct Registry {
    pids: Vec<u32>,
    dirs: Vec<PathBuf>,
    /// Set when cleaning up began: nothing new may start after it.
    closed: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { pids: Vec::new(), dirs: Vec::new(), closed: false });

/// Set when SIGINT or SIGTERM arrived.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Whether the run was stopped by SIGINT or SIGTERM.
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::Relaxed)
}

fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted: cleaning up")
}

/// Spawns `command` and registers its pid under the registry's lock, so a
/// concurrent cleanup either sees the process or stops it from starting.
fn spawn_registered(command: &mut Command, what: &str) -> io::Result<Child> {
    let mut r = registry();
    if r.closed {
        return Err(interrupted());
    }
    let child = command.spawn().map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))?;
    r.pids.push(child.id());
    Ok(child)
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while the lock was held leaves plain lists, still usable.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `signal` to `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill has no memory preconditions; a pid that is gone gives
    // ESRCH, which is fine.
    unsafe { libc::kill(pid, signal) };
}

/// Whether `pid` still exists (a zombie counts until it is reaped).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Ends every registered process, removes our namespaces and directories.
/// Safe to call more than once and from any thread.
pub fn cleanup_all() {
    let (pids, dirs) = {
        let mut r = registry();
        r.closed = true;
        (std::mem::take(&mut r.pids), std::mem::take(&mut r.dirs))
    };
    for pid in &pids {
        signal(*pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for pid in &pids {
        signal(*pid, libc::SIGKILL);
    }
    remove_our_namespaces();
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Deletes every namespace named `tmt-<our pid>-...`.
fn remove_our_namespaces() {
    let prefix = format!("tmt-{}-", std::process::id());
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        let mut ours: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        ours.sort();
        for ns in ours.iter().rev() {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Runs [`cleanup_all`] when dropped: hold one in `main`.
#[derive(Debug)]
pub struct Guard(());

impl Guard {
    /// Blocks SIGINT and SIGTERM in this thread and every thread started
    /// after (call it first in `main`), and starts the thread that takes
    /// them: it cleans up and exits with status 130.
    pub fn install() -> io::Result<Guard> {
        dataplane::sys::block_termination_signals()?;
        std::thread::Builder::new().name("signals".into()).spawn(|| {
            if let Ok(sig) = dataplane::sys::wait_for_termination() {
                SIGNALLED.store(true, Ordering::Relaxed);
                eprintln!("\nsignal {sig}: cleaning up");
                cleanup_all();
                // The main thread keeps running until the exit below and
                // may have had an `ip netns add` in flight: sweep again.
                std::thread::sleep(Duration::from_millis(200));
                remove_our_namespaces();
                std::process::exit(130);
            }
        })?;
        Ok(Guard(()))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        cleanup_all();
    }
}

/// A child process we started; ended (SIGTERM, then SIGKILL) by its pid on
/// drop. std resets the signal mask in children, so they take signals.
#[derive(Debug)]
pub struct Proc {
    /// `None` once [`Proc::wait_output`] has taken it.
    child: Option<Child>,
    what: String,
}

impl Proc {
    /// Starts `command` with stdin kept open (vde_switch and wirefilter
    /// read a console there and stop at its end), stdout discarded and
    /// stderr appended to `log`.
    pub fn spawn(mut command: Command, what: &str, log: &Path) -> io::Result<Proc> {
        let err = File::options().create(true).append(true).open(log)?;
        let child = spawn_registered(command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(err), what)?;
        Ok(Proc { child: Some(child), what: what.to_string() })
    }

    /// Starts `command` with stdout captured, for [`Proc::wait_output`].
    pub fn spawn_captured(mut command: Command, what: &str) -> io::Result<Proc> {
        let child = spawn_registered(command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()), what)?;
        Ok(Proc { child: Some(child), what: what.to_string() })
    }

    /// The process id (0 once waited for).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the process has exited already (and reaps it).
    pub fn has_exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Waits for the end and returns stdout, or stderr as the error when
    /// the process failed.
    pub fn wait_output(mut self) -> io::Result<String> {
        let child = self.child.take().ok_or_else(|| io::Error::other("already waited for"))?;
        unregister(child.id());
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(io::Error::other(format!(
                "{} failed ({}): {}{}",
                self.what,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                stdout.trim()
            )))
        }
    }
}

fn unregister(pid: u32) {
    registry().pids.retain(|p| *p != pid);
}

impl Drop for Proc {
    fn drop(&mut self) {
        let Some(pid) = self.child.as_ref().map(Child::id) else { return };
        if !self.has_exited() {
            signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_millis(500);
            while !self.has_exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !self.has_exited()
                && let Some(child) = self.child.as_mut()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        unregister(pid);
    }
}

/// A directory of ours, removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/tmt-bench-<pid>-<name>` (an old one of ours is
    /// replaced).
    pub fn new(name: &str) -> io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("tmt-bench-{}-{name}", std::process::id()));
        let mut r = registry();
        if r.closed {
            return Err(interrupted());
        }
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        r.dirs.push(path.clone());
        Ok(TempDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        registry().dirs.retain(|d| *d != self.path);
    }
}
