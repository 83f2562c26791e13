//! Templates: root file systems as tar.gz archives named by their SHA-256.
//!
//! [`build_busybox_template`] builds one offline from Debian's statically
//! linked busybox (package `busybox-static`): the binary, a relative symlink
//! per applet, `/etc` (passwd, group, hosts, hostname, inittab, rcS,
//! profile, the udhcpc script), `/sbin/init` (busybox init) and the empty
//! mount points, and the nlXTP guest modules (`/usr/sbin/tomato-guest`
//! with `/usr/bin/archive_setstatus`, `/etc/nlXTP.conf`, `/mnt/nlXTP`; rcS
//! starts the daemon, which runs a waiting executable archive at boot).
//! It is reproducible: entries sorted, owner root, a fixed
//! mtime and gzip header, so the digest only changes with the binary.
//! `scripts/build-debian-template` builds a Debian one of the same shape.
//!
//! [`unpack_template`] verifies the digest, refuses entries with absolute
//! paths or `..`, hard links leaving the archive and relative symlinks
//! pointing above the root (absolute symlink targets are kept: they resolve
//! inside the container's root), skips device nodes and FIFOs (containers
//! get their own `/dev`), and unpacks into a temporary directory renamed
//! into place, so an existing directory is always complete.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The mtime of every entry of a built template (2024-01-01 UTC).
const MTIME: u64 = 1_704_067_200;

/// An archive's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    /// SHA-256 of the archive file, lower-case hex.
    pub sha256: String,
    /// Size of the archive file in bytes.
    pub size: u64,
}

/// One entry of a template being built.
enum Item {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(String),
}

const INITTAB: &str = "\
# busybox init: run rcS once, reap orphans, run the shutdown actions on
# poweroff/reboot (which end the container).
::sysinit:/etc/init.d/rcS
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
";

const RCS: &str = "\
#!/bin/sh
# Runs once at container start. /proc, /sys, /dev and the hostname are set
# up by the runtime; add your own start-up in /etc/rc.local.
# nlXTP: runs an executable archive waiting in /mnt/nlXTP (/etc/nlXTP.conf).
[ -x /usr/sbin/tomato-guest ] && /usr/sbin/tomato-guest daemon --background
[ -x /etc/rc.local ] && /etc/rc.local
exit 0
";

const UDHCPC_SCRIPT: &str = "\
#!/bin/sh
# udhcpc's hook: apply the lease to $interface.
case \"$1\" in
  deconfig)
    ip -4 addr flush dev \"$interface\"
    ip link set \"$interface\" up
    ;;
  bound|renew)
    ip -4 addr flush dev \"$interface\"
    ip addr add \"$ip/${mask:-24}\" dev \"$interface\"
    if [ -n \"$router\" ]; then
      ip route del default 2>/dev/null
      for r in $router; do ip route add default via \"$r\" dev \"$interface\"; break; done
    fi
    if [ -n \"$dns\" ]; then
      : > /etc/resolv.conf
      for d in $dns; do echo \"nameserver $d\" >> /etc/resolv.conf; done
    fi
    ;;
esac
exit 0
";

/// Builds the busybox template from `/bin/busybox` into `out_archive`.
pub fn build_busybox_template(out_archive: &Path) -> Result<TemplateInfo> {
    build_busybox_template_from(Path::new("/bin/busybox"), out_archive)
}

/// Builds the busybox template from the given (statically linked) busybox
/// binary into `out_archive` (written to a temporary file, then renamed).
pub fn build_busybox_template_from(busybox: &Path, out_archive: &Path) -> Result<TemplateInfo> {
    let binary = std::fs::read(busybox).map_err(|e| {
        Error::Template(format!("{}: {e} (apt-get install --no-install-recommends busybox-static)", busybox.display()))
    })?;
    if !is_static_elf(&binary) {
        return Err(Error::Template(format!(
            "{} is not a statically linked ELF binary (install busybox-static, not busybox)",
            busybox.display()
        )));
    }
    let list = std::process::Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| Error::io("run --list-full", busybox, e))?;
    let mut items = std::collections::BTreeMap::new();
    for dir in ["bin", "dev", "etc", "etc/init.d", "home", "mnt", "proc", "run", "sbin", "sys", "usr", "usr/bin"] {
        items.insert(dir.to_string(), Item::Dir(0o755));
    }
    for dir in ["mnt/nlXTP", "usr/sbin", "usr/share", "usr/share/udhcpc", "var", "var/log", "var/spool"] {
        items.insert(dir.to_string(), Item::Dir(0o755));
    }
    items.insert("root".into(), Item::Dir(0o700));
    items.insert("tmp".into(), Item::Dir(0o1777));
    items.insert("var/tmp".into(), Item::Dir(0o1777));
    items.insert("var/run".into(), Item::Link("../run".into()));
    items.insert("bin/busybox".into(), Item::File(0o755, binary));
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim) {
        // `linuxrc` (an initrd's init at the top) is of no use here.
        if applet.is_empty() || !applet.contains('/') || applet.contains("..") || items.contains_key(applet) {
            continue;
        }
        let depth = applet.matches('/').count();
        items.insert(applet.to_string(), Item::Link(format!("{}bin/busybox", "../".repeat(depth))));
    }
    let text = |s: &str| s.as_bytes().to_vec();
    items.insert(
        "etc/passwd".into(),
        Item::File(0o644, text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
    );
    items.insert("etc/group".into(), Item::File(0o644, text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")));
    items.insert(
        "etc/shadow".into(),
        Item::File(0o600, text("root:*:19723:0:99999:7:::\nnobody:*:19723:0:99999:7:::\n")),
    );
    items.insert("etc/hostname".into(), Item::File(0o644, text("tomato\n")));
    items.insert("etc/hosts".into(), Item::File(0o644, text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")));
    items.insert("etc/profile".into(), Item::File(0o644, text("export PS1='\\h:\\w\\$ '\n")));
    items.insert("etc/inittab".into(), Item::File(0o644, text(INITTAB)));
    items.insert("etc/init.d/rcS".into(), Item::File(0o755, text(RCS)));
    items.insert("usr/share/udhcpc/default.script".into(), Item::File(0o755, text(UDHCPC_SCRIPT)));
    items.insert("usr/sbin/tomato-guest".into(), Item::File(0o755, guest::BINARY.to_vec()));
    items.insert("usr/bin/archive_setstatus".into(), Item::Link("../sbin/tomato-guest".into()));
    items.insert("etc/nlXTP.conf".into(), Item::File(0o644, text(guest::conf::TEMPLATE_CONF)));
    write_archive(&items, out_archive)
}

/// Whether `elf` is an ELF file without a program interpreter.
fn is_static_elf(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize);
    // 64-bit little-endian ELF only (what Debian ships on amd64/arm64).
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else { return false };
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        elf.get(at..at + 4).is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) != 3)
    })
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_archive(items: &std::collections::BTreeMap<String, Item>, out: &Path) -> Result<TemplateInfo> {
    let tmp = out.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let hashing = Hashing { inner: io::BufWriter::new(file), hasher: Sha256::new(), size: 0 };
    let gz = flate2::GzBuilder::new().mtime(0).operating_system(3).write(hashing, flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    let io_err = |e| Error::io("write", &tmp, e);
    for (path, item) in items {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        match item {
            Item::Dir(mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), io::empty()).map_err(io_err)?;
            }
            Item::File(mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, path, data.as_slice()).map_err(io_err)?;
            }
            Item::Link(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, path, target).map_err(io_err)?;
            }
        }
    }
    let gz = tar.into_inner().map_err(io_err)?;
    let mut hashing = gz.finish().map_err(io_err)?;
    hashing.flush().map_err(io_err)?;
    let info = TemplateInfo { sha256: hex(&hashing.hasher.finalize()), size: hashing.size };
    std::fs::rename(&tmp, out).map_err(|e| Error::io("rename to", out, e))?;
    Ok(info)
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A relative path that stays inside the archive root: no root, prefix or
/// `..` component. Returns it without `.` components.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Whether a relative symlink target, resolved from the link's directory,
/// stays inside the root (absolute targets resolve inside the container).
fn symlink_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth = link.components().count().saturating_sub(1) as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Verifies `archive` against `expected_sha256` and unpacks it into
/// `into_dir` (created with its parents). If `into_dir` exists it is taken
/// as complete and left alone (it only ever appears by rename).
pub fn unpack_template(archive: &Path, expected_sha256: &str, into_dir: &Path) -> Result<()> {
    if into_dir.is_dir() {
        return Ok(());
    }
    let actual = sha256_file(archive)?;
    if !actual.eq_ignore_ascii_case(expected_sha256.trim()) {
        return Err(Error::Template(format!("{}: sha256 is {actual}, expected {expected_sha256}", archive.display())));
    }
    let name = into_dir.file_name().ok_or_else(|| Error::Template(format!("{} has no name", into_dir.display())))?;
    let parent = into_dir.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    let tmp = parent.join(format!(".{}.unpack-{}", name.to_string_lossy(), std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let result = unpack_into(archive, &tmp);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, into_dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another unpacker got there first: its directory is complete too.
        if !into_dir.is_dir() {
            return Err(Error::io("rename to", into_dir, e));
        }
    }
    Ok(())
}

fn unpack_into(archive: &Path, dst: &Path) -> Result<()> {
    let file = std::fs::File::open(archive).map_err(|e| Error::io("open", archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    tar.set_preserve_permissions(true);
    tar.set_preserve_ownerships(true);
    tar.set_preserve_mtime(true);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    let bad = |what: &str, path: &Path| Error::Template(format!("{}: {what}: {}", archive.display(), path.display()));
    let read_err = |e| Error::io("read", archive, e);
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let Some(path) = inside(&raw) else { return Err(bad("entry leaves the root", &raw)) };
        if path.as_os_str().is_empty() {
            continue;
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Directory | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(read_err)?.unwrap_or_default().into_owned();
                if !symlink_stays_inside(&path, &target) {
                    return Err(bad("symlink points outside the root", &raw));
                }
            }
            tar::EntryType::Link => {
                let target = entry.link_name().map_err(read_err)?.unwrap_or_default().into_owned();
                if inside(&target).is_none() {
                    return Err(bad("hard link leaves the root", &raw));
                }
            }
            // Devices, FIFOs: containers get their own /dev. Metadata
            // entries (long names, pax) are consumed by the reader.
            _ => continue,
        }
        entry.unpack_in(dst).map_err(|e| {
            let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
            Error::Template(format!("unpacking {}: {e}{cause}", raw.display()))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_links_that_leave_the_root_are_recognised() {
        assert_eq!(inside(Path::new("./etc/passwd")), Some(PathBuf::from("etc/passwd")));
        assert_eq!(inside(Path::new("/etc/passwd")), None);
        assert_eq!(inside(Path::new("etc/../../x")), None);
        assert!(symlink_stays_inside(Path::new("usr/bin/ls"), Path::new("../../bin/busybox")));
        assert!(!symlink_stays_inside(Path::new("usr/bin/ls"), Path::new("../../../etc/shadow")));
        assert!(!symlink_stays_inside(Path::new("x"), Path::new("..")));
        assert!(symlink_stays_inside(Path::new("lib64"), Path::new("/usr/lib64")));
    }

    #[test]
    fn only_static_elf_binaries_count() {
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        let ls = std::fs::read("/bin/ls").expect("coreutils ls");
        assert!(!is_static_elf(&ls), "ls is dynamically linked on Debian");
    }

    fn archive_with(entries: &[(&str, tar::EntryType, &str)]) -> (tempfile::TempDir, PathBuf, String) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t.tar.gz");
        let file = std::fs::File::create(&path).expect("create");
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
        for (name, kind, target) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(MTIME);
            // Written raw, so the builder's own checks cannot refuse them.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if !target.is_empty() {
                h.set_link_name(target).expect("link name");
            }
            h.set_cksum();
            tar.append(&h, io::empty()).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gz");
        let digest = sha256_file(&path).expect("hash");
        (tmp, path, digest)
    }

    #[test]
    fn unsafe_archives_and_wrong_digests_are_refused() {
        let cases: [(&str, tar::EntryType, &str); 4] = [
            ("../evil", tar::EntryType::Regular, ""),
            ("/etc/evil", tar::EntryType::Regular, ""),
            ("up", tar::EntryType::Symlink, "../../etc"),
            ("hard", tar::EntryType::Link, "../../etc/shadow"),
        ];
        for case in cases {
            let (tmp, archive, digest) = archive_with(&[("ok", tar::EntryType::Regular, ""), case]);
            let into = tmp.path().join("root");
            let err = unpack_template(&archive, &digest, &into).expect_err(case.0);
            let text = err.to_string();
            assert!(text.contains("leaves the root") || text.contains("outside the root"), "{case:?}: {text}");
            assert!(!into.exists(), "{case:?} left a directory");
            assert!(!tmp.path().join("evil").exists());
        }
        let (tmp, archive, _) = archive_with(&[("ok", tar::EntryType::Regular, "")]);
        let into = tmp.path().join("root");
        let err = unpack_template(&archive, &"0".repeat(64), &into).expect_err("digest");
        assert!(err.to_string().contains("sha256"), "{err}");
        let (tmp, archive, digest) =
            archive_with(&[("ok", tar::EntryType::Regular, ""), ("abs", tar::EntryType::Symlink, "/bin/sh")]);
        let into = tmp.path().join("root");
        unpack_template(&archive, &digest, &into).expect("safe archive");
        assert!(into.join("ok").is_file());
        assert_eq!(std::fs::read_link(into.join("abs")).expect("link"), PathBuf::from("/bin/sh"));
    }
}
