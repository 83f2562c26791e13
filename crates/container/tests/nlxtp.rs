//! Root-only tests of executable archives in containers: a host directory
//! bound at `/mnt/nlXTP`, the busybox template's guest daemon running a
//! waiting archive at boot (the nlXTP paper's experiment 4.3.1 on a
//! stopped container), the host's own copy of the guest started inside by
//! `execute_file` (the running case), and a bind target that cannot be
//! turned towards the host by a symlink in the container's disk.

#![allow(clippy::unwrap_used)]

mod scratch;

use std::path::Path;
use std::time::{Duration, Instant};

use container::{Bind, Limits, Running};
use guest::status::{self, Retry};
use scratch::{Scratch, require_root};

const ARCHIVE_4_3_1: &str = "#!/bin/sh\nsleep 1\narchive_setstatus custom status set\necho written by the script > written.txt\necho printed to stdout\n";

fn status_of(dir: &Path, name: &str) -> Option<String> {
    status::read_file(&dir.join("exec_status").join(name), Retry::DEFAULT)
        .unwrap()
        .map(|b| String::from_utf8(b).unwrap())
}

fn wait_done(dir: &Path) -> Duration {
    let start = Instant::now();
    while !dir.join("exec_status/done").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the archive did not finish: {:?}",
            std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn sh(r: &Running, cmd: &str) -> String {
    let out = container::execute(r, cmd, Duration::from_secs(10)).unwrap();
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_archive_waiting_at_boot_runs_and_an_uploaded_one_runs_through_the_hosts_guest() {
    require_root!();
    let scratch = Scratch::new();
    let nlxtp = scratch.root.join("nlxtp-a");
    std::fs::create_dir(&nlxtp).unwrap();
    std::fs::write(nlxtp.join("auto_exec.sh"), ARCHIVE_4_3_1).unwrap();
    let mut spec = scratch.spec("arch1", Limits::default());
    spec.binds = vec![Bind { source: nlxtp.clone(), target: "/mnt/nlXTP".into() }];
    let r = container::start(&spec).unwrap();
    // Seen from inside: the same directory, without set-uid and devices.
    let mounts = sh(&r, "grep ' /mnt/nlXTP ' /proc/self/mountinfo");
    assert!(mounts.contains("nosuid") && mounts.contains("nodev"), "{mounts}");
    assert!(!scratch::path_is_mounted(&nlxtp), "the bind shows only inside the container");

    let took = wait_done(&nlxtp);
    assert!(took >= Duration::from_millis(500), "ran for {took:?}, the script sleeps 1 s");
    assert_eq!(status_of(&nlxtp, "done").as_deref(), Some("0"));
    assert_eq!(status_of(&nlxtp, "running"), None);
    assert_eq!(status_of(&nlxtp, "custom").as_deref(), Some("custom status set"));
    assert_eq!(std::fs::read_to_string(nlxtp.join("exec_status/out")).unwrap(), "printed to stdout\n");
    assert_eq!(sh(&r, "cat /mnt/nlXTP/written.txt"), "written by the script\n");
    assert_eq!(std::fs::read_to_string(nlxtp.join("written.txt")).unwrap(), "written by the script\n");

    // A new archive while it runs: the host's own guest binary, started
    // inside by file descriptor, runs it (the template's daemon ran once).
    std::fs::remove_dir_all(nlxtp.join("exec_status")).unwrap();
    std::fs::write(nlxtp.join("auto_exec.sh"), "#!/bin/sh\narchive_setstatus second $(hostname)\n").unwrap();
    let host_guest = scratch.root.join("tomato-guest");
    guest::install(&host_guest).unwrap();
    let out = container::execute_file(&r, &host_guest, &["monitor", "--background"], Duration::from_secs(10)).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_done(&nlxtp);
    assert_eq!(status_of(&nlxtp, "custom").as_deref(), Some("second host-arch1"));
    container::stop(&spec).unwrap();
    container::destroy(&spec).unwrap();
    assert!(nlxtp.join("written.txt").exists(), "the host directory is the caller's, not the container's");
}

#[test]
fn a_symlink_in_the_containers_disk_cannot_send_the_bind_to_the_host() {
    require_root!();
    let scratch = Scratch::new();
    let nlxtp = scratch.root.join("nlxtp-b");
    std::fs::create_dir(&nlxtp).unwrap();
    let mut spec = scratch.spec("arch2", Limits::default());
    // The container's disk has /mnt pointing at a path that would, on the
    // host, be outside everything the test owns.
    let escape = format!("/tomato-nlxtp-escape-{}", std::process::id());
    container::prepare(&spec).unwrap();
    std::fs::remove_dir_all(spec.upper_dir().join("mnt")).ok();
    std::os::unix::fs::symlink(&escape, spec.upper_dir().join("mnt")).unwrap();
    // It exists in the container's disk; before pivot_root, the host's
    // /tomato-nlxtp-escape-* would have been the one used.
    std::fs::create_dir(spec.upper_dir().join(&escape[1..])).unwrap();
    spec.binds = vec![Bind { source: nlxtp.clone(), target: "/mnt/nlXTP".into() }];
    std::fs::write(nlxtp.join("canary"), "inside").unwrap();
    let r = container::start(&spec).unwrap();
    assert_eq!(sh(&r, "cat /mnt/nlXTP/canary"), "inside");
    assert_eq!(sh(&r, &format!("cat {escape}/nlXTP/canary")), "inside");
    assert!(!Path::new(&escape).exists(), "{escape} was created on the host");
    container::destroy(&spec).unwrap();
}

#[test]
fn an_archive_at_boot_finds_the_interfaces_added_before_init() {
    require_root!();
    let scratch = Scratch::new();
    let nlxtp = scratch.root.join("nlxtp-c");
    std::fs::create_dir(&nlxtp).unwrap();
    std::fs::write(nlxtp.join("auto_exec.sh"), "#!/bin/sh\nip -o link show > links.txt\n").unwrap();
    let mut spec = scratch.spec("arch3", Limits::default());
    spec.binds = vec![Bind { source: nlxtp.clone(), target: "/mnt/nlXTP".into() }];
    let iface = container::InterfaceSpec {
        name: "eth0".into(),
        mac: [0x02, 0, 0, 0, 0, 0x31],
        host_name: container::host_end_name("arch3", 0),
        ip4: None,
        ip6: None,
        dhcp: false,
    };
    let rt = scratch::runtime();
    let mut seen_before_init = String::new();
    let r = container::start_with(&spec, &mut |r: &Running| {
        // Not yet init: the starter's copy of this test binary.
        seen_before_init = std::fs::read_to_string(format!("/proc/{}/comm", r.pid)).unwrap();
        rt.block_on(container::add_interface(r, &iface, &scratch.netns_path()))
    })
    .unwrap();
    assert_ne!(seen_before_init.trim(), "init");
    wait_done(&nlxtp);
    let links = std::fs::read_to_string(nlxtp.join("links.txt")).unwrap();
    assert!(links.contains("eth0"), "the archive ran before its interface existed: {links}");
    assert_eq!(std::fs::read_to_string(format!("/proc/{}/comm", r.pid)).unwrap().trim(), "init");
    container::destroy(&spec).unwrap();

    // A failing hook: no init, nothing left running.
    let spec = scratch.spec("arch4", Limits::default());
    let err = container::start_with(&spec, &mut |_| Err(container::Error::Template("refused by the test".into())))
        .expect_err("the hook failed");
    assert!(err.to_string().contains("refused by the test"), "{err}");
    assert_eq!(container::find_running(&spec).unwrap(), None);
    container::destroy(&spec).unwrap();
    assert!(scratch.leftovers().is_empty(), "{:?}", scratch.leftovers());
}
