//! The `tomato-guest` program: ToMaTo's nlXTP guest modules in one binary.
//!
//! - `tomato-guest daemon [--background] [--config FILE]` (`nlXTP_daemon`):
//!   by `nlxtp_mode`, starts the monitor once at boot if an archive waits
//!   (`auto_exec.sh` present, `exec_status/` absent), or keeps looking.
//! - `tomato-guest monitor [--background] [--dir DIR] [--config FILE]`
//!   (`nlXTP_mon`): claims the archive by creating `exec_status/` (an
//!   existing one means it ran or runs: nothing to do), then runs
//!   `auto_exec.sh` in the archive directory with `nlxtp_dir`,
//!   `archive_dir` and `archive_version` set and `archive_setstatus` on
//!   the `PATH`, its stdout and stderr into `exec_status/out`, renews
//!   `exec_status/running` every `nlxtp_mon_check_interval` seconds while
//!   it runs, and writes `exec_status/done` (the exit code, or 128 + the
//!   signal) before removing `running`.
//! - `archive_setstatus TEXT...` (or `tomato-guest setstatus TEXT...`):
//!   the custom status, the words joined by spaces.
//!
//! The monitor writes its status files through `/proc/self/fd/<n>` of the
//! `exec_status/` it claimed, so a monitor of an archive the host has
//! since replaced cannot write into the new archive's status.
//! `archive_setstatus` is a symlink to `/proc/<monitor>/exe` in a
//! directory of its own on a tmpfs (`/dev/shm`, else `/tmp`), so it works
//! whether the binary lives in the guest's file system or was started by
//! the host from outside it.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::conf::{self, Config, Mode};
use crate::status::{self, CUSTOM, DONE, ENTRY, OUT, RUNNING, STATUS_DIR};

const USAGE: &str = "\
usage: tomato-guest daemon [--background] [--config FILE]
       tomato-guest monitor [--background] [--dir DIR] [--config FILE]
       tomato-guest setstatus TEXT...   (also as archive_setstatus TEXT...)
       tomato-guest version
";

/// How often the monitor looks whether the script ended.
const WAIT_STEP: Duration = Duration::from_millis(20);

unsafe extern "C" {
    fn setsid() -> i32;
}

/// Options of `daemon` and `monitor`.
#[derive(Debug, Default)]
struct Options {
    background: bool,
    claimed: bool,
    dir: Option<PathBuf>,
    config: Option<PathBuf>,
}

fn parse_options(args: &[OsString]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--background") => o.background = true,
            Some("--claimed") => o.claimed = true,
            Some("--dir") => o.dir = Some(it.next().ok_or("--dir needs a directory")?.into()),
            Some("--config") => o.config = Some(it.next().ok_or("--config needs a file")?.into()),
            _ => return Err(format!("unknown option {arg:?}; allowed are --background, --dir DIR, --config FILE")),
        }
    }
    Ok(o)
}

/// Runs the program with its whole argument list (`argv[0]` first) and
/// returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let called = args.first().map(|a| Path::new(a).file_name().unwrap_or_default().to_owned()).unwrap_or_default();
    let result = if called == "archive_setstatus" {
        setstatus(&args[1..])
    } else {
        let rest = args.get(2..).unwrap_or_default();
        match args.get(1).and_then(|a| a.to_str()) {
            Some("daemon") => parse_options(rest).and_then(|o| daemon(&o)),
            Some("monitor") => parse_options(rest).and_then(|o| monitor(&o).map(|_| ())),
            Some("setstatus") => setstatus(rest),
            Some("version") => {
                println!("tomato-guest {} (nlXTP guest modules {})", env!("CARGO_PKG_VERSION"), status::VERSION);
                Ok(())
            }
            Some("--help" | "-h" | "help") => {
                print!("{USAGE}");
                Ok(())
            }
            _ => Err(format!("unknown command\n{USAGE}")),
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tomato-guest: {e}");
            1
        }
    }
}

fn load_config(o: &Options) -> Result<Config, String> {
    let mut config = conf::load(o.config.as_deref().unwrap_or(Path::new(conf::PATH)))?;
    if let Some(dir) = &o.dir {
        config.dir = std::path::absolute(dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    }
    Ok(config)
}

/// Starts this program again with `args`, detached (own session, stdio on
/// /dev/null), and returns the child.
fn spawn_detached(args: &[OsString]) -> Result<Child, String> {
    let mut command = Command::new("/proc/self/exe");
    command.arg0("tomato-guest").args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            setsid();
            Ok(())
        });
    }
    command.spawn().map_err(|e| format!("starting tomato-guest {args:?} in the background: {e}"))
}

fn config_args(o: &Options, config: &Config) -> Vec<OsString> {
    let mut args = vec!["--dir".into(), config.dir.clone().into_os_string()];
    if let Some(c) = &o.config {
        args.extend(["--config".into(), c.clone().into_os_string()]);
    }
    args
}

/// `daemon`: see the module documentation.
fn daemon(o: &Options) -> Result<(), String> {
    let config = load_config(o)?;
    if o.background {
        let mut args: Vec<OsString> = vec!["daemon".into()];
        args.extend(config_args(o, &config));
        spawn_detached(&args)?;
        return Ok(());
    }
    let monitor_options =
        Options { background: true, claimed: false, dir: Some(config.dir.clone()), ..Default::default() };
    let monitor_options = Options { config: o.config.clone(), ..monitor_options };
    match config.mode {
        Mode::Off => Ok(()),
        Mode::AtBoot => monitor(&monitor_options).map(|_| ()),
        Mode::Poll => {
            let mut children: Vec<Child> = Vec::new();
            loop {
                match monitor(&monitor_options) {
                    Ok(Some(child)) => children.push(child),
                    Ok(None) => {}
                    Err(e) => eprintln!("tomato-guest daemon: {e}"),
                }
                children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
                std::thread::sleep(config.daemon_check_interval);
            }
        }
    }
}

/// `monitor`: claims and runs the archive, in the background if asked
/// (then returns the background monitor). `Ok(None)`: nothing to run, or
/// it ran here.
fn monitor(o: &Options) -> Result<Option<Child>, String> {
    let config = load_config(o)?;
    let dir = &config.dir;
    let status_dir = dir.join(STATUS_DIR);
    if !o.claimed {
        if !dir.join(ENTRY).is_file() {
            return Ok(None);
        }
        match std::fs::create_dir(&status_dir) {
            Ok(()) => {}
            // Ran or runs already: the directory is the claim.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(format!("creating {}: {e}", status_dir.display())),
        }
    }
    if o.background {
        let mut args: Vec<OsString> = vec!["monitor".into(), "--claimed".into()];
        args.extend(config_args(o, &config));
        return spawn_detached(&args).map(Some);
    }
    supervise(&config).map(|()| None)
}

/// Now in epoch seconds, as text.
fn timestamp() -> String {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).to_string()
}

/// The directory `archive_setstatus` lives in while this monitor runs.
fn make_helper() -> Option<PathBuf> {
    let exe = format!("/proc/{}/exe", std::process::id());
    if !Path::new(&exe).exists() {
        return None;
    }
    ["/dev/shm", "/tmp"].iter().find_map(|base| {
        let dir = Path::new(base).join(format!("nlxtp-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        match std::os::unix::fs::symlink(&exe, dir.join("archive_setstatus")) {
            Ok(()) => Some(dir),
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    })
}

/// Runs the claimed archive's script to its end, keeping the status.
fn supervise(config: &Config) -> Result<(), String> {
    let dir = &config.dir;
    let claimed = dir.join(STATUS_DIR);
    // Held open, so status writes go to this archive's directory even if
    // the host moves it away for a new upload.
    let handle = File::open(&claimed).map_err(|e| format!("opening {}: {e}", claimed.display()))?;
    let via_fd = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle)));
    let status_dir = if via_fd.is_dir() { via_fd } else { claimed.clone() };
    let write = |name: &str, payload: &str| {
        if let Err(e) = status::write_file(&status_dir, name, payload.as_bytes()) {
            eprintln!("tomato-guest monitor: writing {name}: {e}");
        }
    };
    write(RUNNING, &timestamp());
    let out = File::create(status_dir.join(OUT)).map_err(|e| format!("creating {OUT}: {e}"))?;
    let entry = dir.join(ENTRY);
    if let Ok(meta) = entry.metadata() {
        let mut perms = meta.permissions();
        perms.set_mode(perms.mode() | 0o111);
        let _ = std::fs::set_permissions(&entry, perms);
    }
    let helper = make_helper();
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let path = match &helper {
        Some(h) => {
            let mut p = h.clone().into_os_string();
            p.push(":");
            p.push(&path);
            p
        }
        None => path,
    };
    let command = |program: &str, arg: Option<&str>| -> io::Result<Child> {
        let mut c = Command::new(program);
        c.args(arg)
            .current_dir(dir)
            .env("nlxtp_dir", dir)
            .env("archive_dir", dir)
            .env("archive_version", status::VERSION)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out.try_clone()?);
        c.spawn()
    };
    let spawned = match command(&format!("./{ENTRY}"), None) {
        // No `#!` line: a shell script, as a shell would run it.
        Err(e) if e.raw_os_error() == Some(8) => command("/bin/sh", Some(ENTRY)),
        other => other,
    };
    let code = match spawned {
        Ok(mut child) => {
            let mut renewed = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => break status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
                    Ok(None) => {}
                    Err(e) => {
                        eprintln!("tomato-guest monitor: waiting for {ENTRY}: {e}");
                        break 255;
                    }
                }
                if renewed.elapsed() >= config.mon_check_interval {
                    write(RUNNING, &timestamp());
                    renewed = Instant::now();
                }
                std::thread::sleep(WAIT_STEP);
            }
        }
        Err(e) => {
            let _ = writeln!(&out, "tomato-guest monitor: cannot run {ENTRY}: {e}");
            127
        }
    };
    // `done` first: a reader never sees neither file.
    write(DONE, &code.to_string());
    let _ = std::fs::remove_file(status_dir.join(RUNNING));
    if let Some(h) = helper {
        let _ = std::fs::remove_dir_all(h);
    }
    Ok(())
}

/// `archive_setstatus`: the custom status of the running archive.
fn setstatus(words: &[OsString]) -> Result<(), String> {
    let dir = match std::env::var_os("nlxtp_dir") {
        Some(d) => PathBuf::from(d),
        None => conf::load(Path::new(conf::PATH))?.dir,
    };
    let text = words.iter().map(|w| w.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
    let status_dir = dir.join(STATUS_DIR);
    if !status_dir.is_dir() {
        return Err(format!("{} does not exist: archive_setstatus works while an archive runs", status_dir.display()));
    }
    status::write_file(&status_dir, CUSTOM, text.as_bytes()).map_err(|e| format!("writing {CUSTOM}: {e}"))
}
