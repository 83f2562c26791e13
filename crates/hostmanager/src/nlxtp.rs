//! Executable archives (nlXTP) on the host: each element's archive
//! directory, safe extraction of an uploaded archive into it, packing it
//! for download, and reading the run status the guest writes.
//!
//! Layout: `<data>/nlxtp/<id>/` is the element's; its `dir/` is the
//! archive directory the container sees at `/mnt/nlXTP`. An upload is
//! extracted into `staging/` beside it, and only if the whole archive is
//! accepted is it renamed `ready/` (the upload is decided), the old
//! contents moved to `old/`, `ready/` renamed `incoming/` (the old ones are
//! all out) and the new ones moved in, `auto_exec.sh` last, so a guest
//! daemon never starts a half-placed archive and a refused archive leaves
//! `dir/` untouched. `dir/` itself is never replaced: the container's bind
//! mount holds on to its inode. A crash anywhere in the swap is finished
//! at the next start ([`Layout::tidy`]): `dir/` then holds the new archive
//! whole, never a mix of old and new.
//!
//! The guest writes into `dir/` as root, so the host never follows what
//! it finds there: extraction and packing run in a thread of their own
//! that unshared its file-system context and `chroot`ed into the
//! directory (a symlink planted by the guest resolves inside it), and
//! status files are opened with `openat2` refusing symlinks. Extraction
//! also refuses, with the entry's name, absolute paths, `..`, symlinks and
//! hard links leading out (or through a symlink the archive made), device
//! files and FIFOs, and archives past the size or entry limit.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use guest::status::{self, CUSTOM, DONE, ENTRY, RUNNING, Retry, STATUS_DIR};
use serde_json::{Value, json};

/// Where the archive directory appears inside a container.
pub const GUEST_TARGET: &str = guest::status::GUEST_DIR;
/// The default size limit of an archive, compressed and unpacked (ToMaTo's
/// KVM archive disk held about 62 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 64 << 20;
/// The most entries an archive may have.
pub const MAX_ENTRIES: u64 = 100_000;
/// A `running` timestamp older than this means the monitor is gone
/// (ToMaTo: 10 minutes; the monitor renews it every minute).
pub const ALIVE_SECS: u64 = 600;
/// How often packing is tried while the guest changes files (ToMaTo: 3).
const PACK_TRIES: u32 = 3;

/// What an archive may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the compressed archive and of its unpacked file contents.
    pub max_bytes: u64,
    /// Entries (files, directories, links).
    pub max_entries: u64,
}

/// Why an archive was refused or could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry that must not be unpacked.
    #[error("archive entry {entry:?}: {reason}")]
    Refused {
        /// The entry's name as the archive gives it.
        entry: String,
        /// Why, and what is allowed.
        reason: String,
    },
    /// The archive is larger than the limit.
    #[error("the archive {what}; the limit is {limit}")]
    TooLarge {
        /// What exceeded it.
        what: String,
        /// The limit, with its unit.
        limit: String,
    },
    /// Not a readable tar.gz.
    #[error("not a tar.gz archive: {0}")]
    Format(String),
    /// A file system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.into();
    move |source| ArchiveError::Io { what, path, source }
}

/// An element's files on the host.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of element `id` under `data_dir`.
    pub fn new(data_dir: &Path, id: i64) -> Layout {
        Layout { root: data_dir.join("nlxtp").join(id.to_string()) }
    }

    /// The element's own directory (removed with the element).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The archive directory (the container's `/mnt/nlXTP`).
    pub fn dir(&self) -> PathBuf {
        self.root.join("dir")
    }

    fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    fn old(&self) -> PathBuf {
        self.root.join("old")
    }

    fn ready(&self) -> PathBuf {
        self.root.join("ready")
    }

    fn incoming(&self) -> PathBuf {
        self.root.join("incoming")
    }

    /// Creates the archive directory if it is missing.
    pub fn ensure(&self) -> io::Result<()> {
        std::fs::create_dir_all(self.dir())?;
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
    }

    /// Clears what an interrupted upload left beside the archive
    /// directory: an extraction that had not finished is dropped (the
    /// directory was not touched yet), a swap that had begun is finished.
    pub fn tidy(&self) -> Result<Tidied, ArchiveError> {
        let staging = self.staging();
        let dropped = staging.symlink_metadata().is_ok();
        if dropped {
            remove_all(&staging)?;
        }
        if self.ready().symlink_metadata().is_ok() || self.incoming().symlink_metadata().is_ok() {
            finish_swap(self)?;
            return Ok(Tidied::Completed);
        }
        let old = self.old();
        if old.symlink_metadata().is_ok() {
            // Only the old contents' removal was left: the swap was done.
            remove_all(&old)?;
            return Ok(Tidied::Completed);
        }
        Ok(if dropped { Tidied::Dropped } else { Tidied::Clean })
    }

    /// Removes everything of the element. Idempotent.
    pub fn remove(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// What [`Layout::tidy`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tidied {
    /// Nothing was interrupted.
    Clean,
    /// An upload interrupted before the swap: the directory kept the old
    /// archive; the upload can be used again.
    Dropped,
    /// A swap interrupted part-way was finished: the directory holds the
    /// new archive.
    Completed,
}

/// What an accepted archive held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    /// Entries unpacked.
    pub entries: u64,
    /// Bytes of file contents.
    pub bytes: u64,
}

/// Replaces the archive directory's contents with `archive` (tar.gz):
/// extracted into `staging/` first; on any refusal the directory is left
/// as it was. See the module documentation.
pub fn install(layout: &Layout, archive: &Path, limits: Limits) -> Result<Extracted, ArchiveError> {
    let size = std::fs::metadata(archive).map_err(io_err("stat", archive))?.len();
    if size > limits.max_bytes {
        return Err(ArchiveError::TooLarge {
            what: format!("is {size} bytes compressed"),
            limit: format!("{} bytes (rextfv_max_size)", limits.max_bytes),
        });
    }
    layout.ensure().map_err(io_err("create", layout.dir()))?;
    // A swap a crash interrupted is finished first: it was decided.
    layout.tidy()?;
    let staging = layout.staging();
    std::fs::create_dir(&staging).map_err(io_err("create", &staging))?;
    let input = File::open(archive).map_err(io_err("open", archive))?;
    let extracted = confined(&staging, move || extract_here(input, limits));
    let extracted = match extracted {
        Ok(x) => x,
        Err(e) => {
            remove_all(&staging)?;
            return Err(e);
        }
    };
    // Decided: from here on a crash finishes the swap instead of undoing it.
    let ready = layout.ready();
    std::fs::rename(&staging, &ready).map_err(io_err("rename", &staging))?;
    finish_swap(layout)?;
    Ok(extracted)
}

/// Moves the old contents out of the archive directory and the decided
/// ones (`ready/` or, once the old ones are out, `incoming/`) in. Each step
/// is a rename, so it can be resumed from wherever a crash stopped it.
fn finish_swap(layout: &Layout) -> Result<(), ArchiveError> {
    let (dir, old, ready, incoming) = (layout.dir(), layout.old(), layout.ready(), layout.incoming());
    if ready.symlink_metadata().is_ok() {
        if old.symlink_metadata().is_err() {
            std::fs::create_dir(&old).map_err(io_err("create", &old))?;
        }
        // A running guest may write into the directory meanwhile; what it
        // wrote is old contents too. Rounds until the directory is empty.
        for _ in 0..10 {
            let mut names = entries(&dir)?;
            if names.is_empty() {
                break;
            }
            // The entry script first: a polling guest daemon never sees a
            // script whose `exec_status/` has already gone (and runs it again).
            names.sort_by_key(|n| n != ENTRY);
            for name in names {
                // A name moved out before a crash and made again since: both
                // are discarded.
                replace(&dir.join(&name), &old.join(&name), "move away")?;
            }
        }
        crate::crashpoint::hit("rextfv:old-moved-out");
        std::fs::rename(&ready, &incoming).map_err(io_err("rename", &ready))?;
    }
    if incoming.symlink_metadata().is_ok() {
        let mut names = entries(&incoming)?;
        // The entry script last: a guest daemon polling the directory starts
        // only a complete archive.
        names.sort_by_key(|n| n == ENTRY);
        for (i, name) in names.into_iter().enumerate() {
            // What the guest wrote under an archive entry's name loses.
            replace(&incoming.join(&name), &dir.join(&name), "move in")?;
            if i == 0 {
                crate::crashpoint::hit("rextfv:half-moved-in");
            }
        }
        remove_all(&incoming)?;
    }
    remove_all(&old)
}

/// The names in `dir`.
fn entries(dir: &Path) -> Result<Vec<std::ffi::OsString>, ArchiveError> {
    std::fs::read_dir(dir)
        .map_err(io_err("read", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_err("read", dir))
}

/// Renames `from` to `to`, removing whatever is at `to` first (never
/// following a symlink there).
fn replace(from: &Path, to: &Path, what: &'static str) -> Result<(), ArchiveError> {
    match to.symlink_metadata() {
        Ok(m) if m.is_dir() => remove_all(to)?,
        Ok(_) => std::fs::remove_file(to).map_err(io_err("remove", to))?,
        Err(_) => {}
    }
    std::fs::rename(from, to).map_err(io_err(what, to))
}

fn remove_all(path: &Path) -> Result<(), ArchiveError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(ArchiveError::Io { what: "remove", path: path.into(), source: e })
        }
        _ => Ok(()),
    }
}

/// Runs `f` on a new thread whose root and working directory are `root`
/// (its file-system context unshared first, so the rest of the process
/// keeps its own): every path `f` touches resolves inside `root`.
fn confined<T: Send>(root: &Path, f: impl FnOnce() -> Result<T, ArchiveError> + Send) -> Result<T, ArchiveError> {
    let c_root = CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| ArchiveError::Format(format!("{} has a NUL byte", root.display())))?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let fail =
                    |what| ArchiveError::Io { what, path: root.to_path_buf(), source: io::Error::last_os_error() };
                // SAFETY: plain system calls on a NUL-terminated path; the
                // unshare makes chroot and chdir apply to this thread only.
                unsafe {
                    if libc::unshare(libc::CLONE_FS) != 0 {
                        return Err(fail("unshare the file-system context for"));
                    }
                    if libc::chroot(c_root.as_ptr()) != 0 {
                        return Err(fail("chroot into"));
                    }
                    if libc::chdir(c"/".as_ptr()) != 0 {
                        return Err(fail("chdir into"));
                    }
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(ArchiveError::Format("the archive thread panicked".into())))
    })
}

/// Stops a reader after `left` bytes, noting that it did.
struct Limited<R> {
    inner: R,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            self.hit.set(true);
            return Err(io::Error::other("archive expands past its limit"));
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A relative path inside the archive: no root, no `..`; `.` dropped.
fn inside(raw: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("leaves the archive directory (`..`); allowed are paths inside it"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("is an absolute path; allowed are paths relative to the archive directory");
            }
        }
    }
    Ok(out)
}

/// The symlink the archive made that `path` would pass through, if any.
fn through_symlink<'a>(path: &Path, symlinks: &'a HashSet<PathBuf>) -> Option<&'a PathBuf> {
    path.ancestors().skip(1).find_map(|a| symlinks.get(a))
}

/// Whether a relative symlink target, from the link's directory, stays
/// inside the archive directory.
fn symlink_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Creates the directories of `path` (relative to the current root),
/// refusing anything on the way that is not a directory.
fn make_dirs(path: &Path, entry: &str) -> Result<(), ArchiveError> {
    let mut at = PathBuf::from("/");
    for part in path.components() {
        at.push(part);
        match at.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ArchiveError::Refused {
                    entry: entry.into(),
                    reason: format!("needs {} to be a directory, but the archive made it something else", at.display()),
                });
            }
            Err(_) => std::fs::create_dir(&at).map_err(io_err("create", &at))?,
        }
    }
    Ok(())
}

/// Removes what is at `path` unless it is a directory (a later entry of
/// the same name replaces an earlier one, as tar does).
fn clear(path: &Path) -> Result<(), ArchiveError> {
    match path.symlink_metadata() {
        Ok(m) if !m.is_dir() => std::fs::remove_file(path).map_err(io_err("replace", path)),
        _ => Ok(()),
    }
}

/// Unpacks `input` into the current root (see [`confined`]).
fn extract_here(input: File, limits: Limits) -> Result<Extracted, ArchiveError> {
    let hit = Rc::new(Cell::new(false));
    // Headers and padding count too: a stream of empty entries is a bomb
    // as well.
    let stream_limit = limits.max_bytes.saturating_mul(2).saturating_add(limits.max_entries.saturating_mul(1024));
    let reader = Limited {
        inner: flate2::read::GzDecoder::new(io::BufReader::new(input)),
        left: stream_limit,
        hit: hit.clone(),
    };
    let mut archive = tar::Archive::new(reader);
    let too_large = |what: String, limit: String| ArchiveError::TooLarge { what, limit };
    let read_err = |e: io::Error| {
        if hit.get() {
            too_large(
                format!("expands past {stream_limit} bytes of tar stream"),
                format!("{} bytes (rextfv_max_size)", limits.max_bytes),
            )
        } else {
            ArchiveError::Format(e.to_string())
        }
    };
    let mut symlinks = HashSet::new();
    let mut done = Extracted { entries: 0, bytes: 0 };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let name = raw.display().to_string();
        let refuse = |reason: String| ArchiveError::Refused { entry: name.clone(), reason };
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        done.entries += 1;
        if done.entries > limits.max_entries {
            return Err(too_large(
                format!("has more than {} entries", limits.max_entries),
                format!("{} entries", limits.max_entries),
            ));
        }
        let path = inside(&raw).map_err(|r| refuse(r.into()))?;
        if path.as_os_str().is_empty() {
            continue;
        }
        if let Some(link) = through_symlink(&path, &symlinks) {
            return Err(refuse(format!(
                "goes through the symlink {} the archive made; allowed are paths through directories",
                link.display()
            )));
        }
        let at = Path::new("/").join(&path);
        match kind {
            tar::EntryType::Directory => make_dirs(&path, &name)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = path.parent() {
                    make_dirs(parent, &name)?;
                }
                clear(&at)?;
                let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&at)
                    .map_err(io_err("create", &at))?;
                let mut buf = [0u8; 64 * 1024];
                loop {
                    let n = entry.read(&mut buf).map_err(read_err)?;
                    if n == 0 {
                        break;
                    }
                    done.bytes += n as u64;
                    if done.bytes > limits.max_bytes {
                        return Err(too_large(
                            format!("unpacks to more than {} bytes (at entry {name:?})", limits.max_bytes),
                            format!("{} bytes (rextfv_max_size)", limits.max_bytes),
                        ));
                    }
                    file.write_all(&buf[..n]).map_err(io_err("write", &at))?;
                }
                // The mode without set-uid, set-gid and sticky bits.
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(mode)).map_err(io_err("chmod", &at))?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(read_err)?.unwrap_or_default().into_owned();
                if target.is_absolute() {
                    return Err(refuse(format!(
                        "is a symlink to the absolute path {}; allowed are relative links inside the archive",
                        target.display()
                    )));
                }
                if !symlink_stays_inside(&path, &target) {
                    return Err(refuse(format!(
                        "is a symlink to {}, which leads out of the archive directory; allowed are links inside it",
                        target.display()
                    )));
                }
                if let Some(parent) = path.parent() {
                    make_dirs(parent, &name)?;
                }
                clear(&at)?;
                std::os::unix::fs::symlink(&target, &at).map_err(io_err("symlink", &at))?;
                symlinks.insert(path);
            }
            tar::EntryType::Link => {
                let target = entry.link_name().map_err(read_err)?.unwrap_or_default().into_owned();
                let target = inside(&target).map_err(|r| refuse(format!("is a hard link whose target {r}")))?;
                if let Some(link) = through_symlink(&target, &symlinks) {
                    return Err(refuse(format!("is a hard link through the symlink {}", link.display())));
                }
                if let Some(parent) = path.parent() {
                    make_dirs(parent, &name)?;
                }
                clear(&at)?;
                let from = Path::new("/").join(&target);
                std::fs::hard_link(&from, &at).map_err(|e| {
                    refuse(format!(
                        "is a hard link to {}, which is not an earlier entry of the archive ({e})",
                        target.display()
                    ))
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(refuse("is a device file; allowed are files, directories and links".into()));
            }
            tar::EntryType::Fifo => return Err(refuse("is a FIFO; allowed are files, directories and links".into())),
            other => {
                return Err(refuse(format!(
                    "has the unsupported type {other:?}; allowed are files, directories and links"
                )));
            }
        }
    }
    Ok(done)
}

/// Packs the archive directory `dir` into `out` as tar.gz: files,
/// directories and symlinks (as links, never followed); sockets, FIFOs
/// and devices the guest made are left out. Tried again if the guest
/// changes a file while it is read.
pub fn pack(dir: &Path, out: &Path) -> Result<(), ArchiveError> {
    let file = File::create(out).map_err(io_err("create", out))?;
    confined(dir, move || {
        let mut last = None;
        for _ in 0..PACK_TRIES {
            let mut attempt = file.try_clone().map_err(io_err("reopen", "archive output"))?;
            attempt.set_len(0).and_then(|()| attempt.rewind()).map_err(io_err("truncate", "archive output"))?;
            match pack_here(attempt) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(ArchiveError::Io {
            what: "pack",
            path: dir.to_path_buf(),
            source: last.unwrap_or_else(|| io::Error::other("no attempt")),
        })
    })
}

fn pack_here(out: File) -> io::Result<()> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(out, flate2::Compression::fast()));
    tar.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(Path::new("/").join(&rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let at = Path::new("/").join(&rel);
            let Ok(meta) = at.symlink_metadata() else { continue };
            if meta.is_dir() {
                tar.append_dir(&rel, &at)?;
                stack.push(rel);
            } else if meta.is_file() {
                let mut f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(&at)?;
                if f.metadata()?.is_file() {
                    tar.append_file(&rel, &mut f)?;
                }
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&at)?;
                let mut h = tar::Header::new_gnu();
                h.set_metadata(&meta);
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &rel, &target)?;
            }
        }
    }
    tar.into_inner()?.finish()?.sync_all()
}

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// Opens `rel` below the directory `dir` without following any symlink
/// and without leaving it; `None` if it does not exist.
fn open_beneath(dir: &File, rel: &str, flags: libc::c_int) -> io::Result<Option<File>> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    let c_rel = CString::new(rel).map_err(|_| io::Error::other("NUL in a path"))?;
    // SAFETY: openat2 reads `how` (of the size given) and the
    // NUL-terminated path; it returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(libc::SYS_openat2, dir.as_raw_fd(), c_rel.as_ptr(), &how, std::mem::size_of::<OpenHow>())
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::NotFound { Ok(None) } else { Err(e) };
    }
    // SAFETY: `fd` is a descriptor openat2 just returned to us alone.
    Ok(Some(unsafe { File::from_raw_fd(fd as libc::c_int) }))
}

/// The bytes of the regular file `rel` below `dir` (see [`open_beneath`]).
fn read_beneath(dir: &File, rel: &str) -> io::Result<Option<Vec<u8>>> {
    let Some(file) = open_beneath(dir, rel, libc::O_RDONLY | libc::O_NONBLOCK)? else { return Ok(None) };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!("{rel} is not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(status::MAX_STATUS_BYTES as u64 + 65).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// ToMaTo's `rextfv_run_status` of the archive directory `dir` at `now`
/// (epoch seconds): `{readable: false}` when there is no run to report;
/// else `readable`, `done`, `isAlive` (the monitor renewed `running`
/// within 10 minutes) and `custom` (null when the script set none); a
/// finished run adds `exit_code` (the script's, from `done`; null if
/// unreadable), which ToMaTo did not report.
pub fn run_status(dir: &Path, now: u64) -> Value {
    let unreadable = json!({"readable": false});
    let Ok(d) = File::open(dir) else { return unreadable };
    match open_beneath(&d, STATUS_DIR, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(Some(_)) => {}
        _ => return unreadable,
    }
    let read = |name: &str| {
        let rel = format!("{STATUS_DIR}/{name}");
        status::read_with(&rel, Retry::DEFAULT, || read_beneath(&d, &rel))
    };
    let custom = match read(CUSTOM) {
        Ok(Some(b)) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        Ok(None) => Value::Null,
        Err(_) => return unreadable,
    };
    let finished = |done: Option<Vec<u8>>| {
        let code = done.and_then(|b| String::from_utf8_lossy(&b).trim().parse::<i64>().ok());
        json!({"readable": true, "done": true, "isAlive": false, "custom": custom, "exit_code": code})
    };
    match read(DONE) {
        // Present counts, whole or not: the monitor has finished.
        Ok(Some(b)) => return finished(Some(b)),
        Err(_) => return finished(None),
        Ok(None) => {}
    }
    let stamp = match read(RUNNING) {
        Ok(Some(b)) => String::from_utf8_lossy(&b).trim().parse::<u64>().ok(),
        Ok(None) => {
            // `done` is written before `running` goes: look once more.
            if let Ok(Some(b)) = read(DONE) {
                return finished(Some(b));
            }
            return unreadable;
        }
        Err(_) => return unreadable,
    };
    let Some(stamp) = stamp else { return unreadable };
    json!({"readable": true, "done": false, "isAlive": now.saturating_sub(stamp) < ALIVE_SECS, "custom": custom})
}

/// Whether an archive waits to run: `auto_exec.sh` is a file and
/// `exec_status/` does not exist.
pub fn pending(dir: &Path) -> bool {
    dir.join(ENTRY).symlink_metadata().is_ok_and(|m| m.is_file()) && dir.join(STATUS_DIR).symlink_metadata().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_links_are_judged_by_where_they_lead() {
        assert_eq!(inside(Path::new("./a/./b")), Ok(PathBuf::from("a/b")));
        assert!(inside(Path::new("a/../../b")).is_err());
        assert!(inside(Path::new("/etc/passwd")).is_err());
        assert!(symlink_stays_inside(Path::new("a/b/l"), Path::new("../../c")));
        assert!(!symlink_stays_inside(Path::new("a/l"), Path::new("../../c")));
        assert!(!symlink_stays_inside(Path::new("l"), Path::new("..")));
        let links: HashSet<PathBuf> = [PathBuf::from("a/l")].into();
        assert_eq!(through_symlink(Path::new("a/l/x"), &links), Some(&PathBuf::from("a/l")));
        assert_eq!(through_symlink(Path::new("a/l"), &links), None);
    }

    /// Every file under `dir`, by relative path, with its contents.
    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    let rel = path.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    fn fill(dir: &Path, entries: &[(&str, &str)]) {
        for (rel, text) in entries {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    const OLD: [(&str, &str); 3] = [("auto_exec.sh", "old"), ("results/r.txt", "old r"), ("exec_status/done", "1")];
    const NEW: [(&str, &str); 3] = [("auto_exec.sh", "new"), ("data/d.bin", "new d"), ("notes", "n")];

    /// Sorted entries of `dir`.
    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut n: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        n.sort();
        n
    }

    /// A crash after any rename of the swap is finished by `tidy`: the
    /// directory then holds exactly the new archive, and nothing is left
    /// beside it.
    #[test]
    fn a_swap_interrupted_after_any_step_is_finished_whole() {
        let expected: Vec<(String, String)> = {
            let t = tempfile::tempdir().unwrap();
            fill(t.path(), &NEW);
            files(t.path())
        };
        // Phase one: k of the old top-level entries moved out.
        for k in 0..=names_of(&OLD).len() {
            let t = tempfile::tempdir().unwrap();
            let layout = Layout::new(t.path(), 1);
            layout.ensure().unwrap();
            fill(&layout.dir(), &OLD);
            std::fs::create_dir(layout.ready()).unwrap();
            fill(&layout.ready(), &NEW);
            std::fs::create_dir(layout.old()).unwrap();
            let moved: Vec<_> = names(&layout.dir()).into_iter().take(k).collect();
            for name in &moved {
                std::fs::rename(layout.dir().join(name), layout.old().join(name)).unwrap();
            }
            // The guest made a moved name again after the crash.
            if let Some(name) = moved.first() {
                std::fs::write(layout.dir().join(name), "guest").unwrap();
            }
            assert_eq!(layout.tidy().unwrap(), Tidied::Completed, "k={k}");
            assert_eq!(files(&layout.dir()), expected, "phase one, k={k}");
            assert_eq!(names(layout.root()), ["dir"], "phase one, k={k}");
        }
        // Phase two: the old ones out, k of the new ones moved in.
        for k in 0..=names_of(&NEW).len() {
            let t = tempfile::tempdir().unwrap();
            let layout = Layout::new(t.path(), 1);
            layout.ensure().unwrap();
            std::fs::create_dir(layout.old()).unwrap();
            fill(&layout.old(), &OLD);
            std::fs::create_dir(layout.incoming()).unwrap();
            fill(&layout.incoming(), &NEW);
            for name in names(&layout.incoming()).into_iter().take(k) {
                std::fs::rename(layout.incoming().join(&name), layout.dir().join(&name)).unwrap();
            }
            // The guest wrote under a name the archive still brings.
            if let Some(name) = names(&layout.incoming()).first() {
                std::fs::create_dir_all(layout.dir().join(name).join("x")).unwrap();
            }
            assert_eq!(layout.tidy().unwrap(), Tidied::Completed, "k={k}");
            assert_eq!(files(&layout.dir()), expected, "phase two, k={k}");
            assert_eq!(names(layout.root()), ["dir"], "phase two, k={k}");
        }
    }

    /// An extraction a crash interrupted never touched the directory: it is
    /// dropped and the old archive stays.
    #[test]
    fn an_interrupted_extraction_is_dropped_and_the_old_archive_stays() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::new(t.path(), 1);
        layout.ensure().unwrap();
        fill(&layout.dir(), &OLD);
        let before = files(&layout.dir());
        std::fs::create_dir(layout.staging()).unwrap();
        fill(&layout.staging(), &NEW[..1]);
        assert_eq!(layout.tidy().unwrap(), Tidied::Dropped);
        assert_eq!(files(&layout.dir()), before);
        assert_eq!(names(layout.root()), ["dir"]);
        assert_eq!(layout.tidy().unwrap(), Tidied::Clean);
    }

    fn names_of(entries: &[(&str, &str)]) -> HashSet<String> {
        entries.iter().map(|(rel, _)| rel.split('/').next().unwrap().to_string()).collect()
    }
}
