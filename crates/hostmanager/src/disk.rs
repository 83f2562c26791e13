//! A container's disk as a tar.gz: the template with what the container
//! wrote over it, read through a read-only overlay mounted for the copy.

use std::ffi::CString;
use std::path::Path;

use crate::error::{HostError, Result};

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| HostError::invalid(format!("path {s:?} has a NUL byte")))
}

/// Writes `upper` over `lower` (overlay semantics: whiteouts hide, opaque
/// directories replace) as a gzip-compressed tar to `out`.
pub fn archive(upper: &Path, lower: &Path, out: &Path) -> Result<()> {
    let mnt = tempfile::Builder::new().prefix("tomato-disk-").tempdir()?;
    // A read-only overlay of two lower layers needs no work directory.
    let options = format!("lowerdir={}:{}", upper.display(), lower.display());
    let (source, target, fstype, data) =
        (c_string("overlay")?, c_string(&mnt.path().display().to_string())?, c_string("overlay")?, c_string(&options)?);
    // SAFETY: all strings are valid and NUL-terminated for the call.
    let rc = unsafe {
        libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), libc::MS_RDONLY, data.as_ptr().cast())
    };
    if rc != 0 {
        return Err(HostError::host(format!("mounting the disk for download: {}", std::io::Error::last_os_error())));
    }
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(out)?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        tar.append_dir_all(".", mnt.path())?;
        tar.into_inner()?.finish()?.sync_all()
    })();
    // SAFETY: `target` is the mount made above.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    result.map_err(|e| HostError::host(format!("writing the disk archive: {e}")))
}
