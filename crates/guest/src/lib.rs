//! nlXTP guest modules (issue #6): the `tomato-guest` binary that runs
//! executable archives inside a guest, and the status format the host
//! reads.
//!
//! The binary is statically linked (busybox containers have no libc) and
//! built by `build.rs` with rustc from `src/main_static.rs`, which
//! includes the same modules as this library; the library embeds it as
//! [`BINARY`], so the hostmanager carries its own copy and templates can
//! bake it in. The host side uses [`status`] (file names and the
//! checksummed format) and [`BINARY`]; [`program`] is the guest's logic.
//!
//! Architecture invariant: std only, no dependencies: the static binary is
//! compiled from these files by rustc alone.

pub mod conf;
pub mod program;
pub mod status;

/// The static `tomato-guest` binary (x86-64 or whatever the build target
/// is, linked with `+crt-static`).
pub const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tomato-guest"));

/// Writes [`BINARY`] to `path` (mode 0755) unless it already holds exactly
/// that; written to a temporary file first, then renamed, so a running
/// copy is never changed under its feet. Returns once the file runs
/// (`tomato-guest version`).
pub fn install(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read(path).is_ok_and(|b| b == BINARY) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, BINARY)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    wait_until_runnable(path)
}

/// Waits until `path` can be executed. A child another thread forked while
/// the file was open for writing holds that descriptor until it execs, and
/// executing the file meanwhile fails with ETXTBSY; once one run starts no
/// writer is left (ours is closed), so later runs cannot meet it.
fn wait_until_runnable(path: &std::path::Path) -> std::io::Result<()> {
    for _ in 0..200 {
        match std::process::Command::new(path).arg("version").output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.map(|_| ()),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::ExecutableFileBusy,
        format!("{} stayed busy for 2 s after it was written", path.display()),
    ))
}
