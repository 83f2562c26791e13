//! The busybox template: reproducible, complete, and unpacked once. Needs
//! `/bin/busybox` from busybox-static (skips without it), not root.

use std::path::Path;

#[test]
fn the_busybox_template_is_reproducible_and_complete() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipped: needs /bin/busybox (apt-get install busybox-static)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = container::build_busybox_template(&tmp.path().join("a.tar.gz")).expect("build");
    let second = container::build_busybox_template(&tmp.path().join("b.tar.gz")).expect("build again");
    assert_eq!(first, second, "two builds differ");
    assert_eq!(std::fs::metadata(tmp.path().join("a.tar.gz")).expect("archive").len(), first.size);
    let root = tmp.path().join("tpl/busybox");
    container::unpack_template(&tmp.path().join("a.tar.gz"), &first.sha256, &root).expect("unpack");
    for file in ["bin/sh", "sbin/init", "bin/ping", "sbin/udhcpc", "etc/passwd", "etc/inittab", "etc/init.d/rcS"] {
        assert!(root.join(file).exists(), "{file} missing");
    }
    assert_eq!(std::fs::read_link(root.join("sbin/init")).expect("link"), Path::new("../bin/busybox"));
    for dir in ["proc", "sys", "dev", "tmp", "root"] {
        assert!(root.join(dir).is_dir(), "{dir} missing");
    }
    // Unpacking again is a no-op, even with a wrong digest: the directory
    // only appears complete.
    container::unpack_template(&tmp.path().join("a.tar.gz"), &first.sha256, &root).expect("unpack again");
    let wrong = tmp.path().join("tpl/other");
    assert!(container::unpack_template(&tmp.path().join("a.tar.gz"), &"f".repeat(64), &wrong).is_err());
    assert!(!wrong.exists());
    assert!(
        container::build_busybox_template_from(Path::new("/bin/ls"), &tmp.path().join("c.tar.gz")).is_err(),
        "a dynamically linked binary is refused"
    );
}
