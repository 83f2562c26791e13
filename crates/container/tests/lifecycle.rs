//! Root-only integration tests of the container lifecycle: start from the
//! busybox template, commands inside, namespaces, cgroup limits, stop and
//! destroy leaving nothing behind, re-adoption after a simulated crash and
//! the sweep of orphans. Each test uses its own [`scratch::Scratch`]
//! (removed on drop, also on panic) and skips when not run as root.

mod scratch;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use container::{CgroupKind, Limits, Running};
use scratch::{Scratch, ns_of, path_is_mounted, require_root};

static SERIAL: Mutex<()> = Mutex::new(());

const SECOND: Duration = Duration::from_secs(1);

fn run(r: &Running, cmd: &str) -> (bool, String, String) {
    let out = container::execute(r, cmd, 10 * SECOND).expect("execute");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The cgroup directory of `rel` for `controller` (v1) or the unified one.
fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    match CgroupKind::host() {
        CgroupKind::V1 { .. } => PathBuf::from(format!("/sys/fs/cgroup/{controller}/{rel}")),
        CgroupKind::V2 { root } => root.join(rel),
        CgroupKind::Absent => panic!("these tests need cgroups"),
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + 5 * SECOND;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_busybox_container_starts_runs_commands_is_limited_and_leaves_nothing() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new();
    let limits = Limits { ram_mb: Some(64), cpus: Some(0.5), diskspace_mb: None, pids: Some(20) };
    let spec = scratch.spec("life1", limits);
    container::prepare(&spec).expect("prepare");
    container::prepare(&spec).expect("prepare again");
    let r = container::start(&spec).expect("start");
    assert_eq!(container::start(&spec).expect("start again"), r, "a second start adopts the first");
    assert_eq!(container::find_running(&spec).expect("find"), Some(r));

    let (ok, out, err) = run(&r, "hostname; cat /proc/1/cmdline; echo; id; echo $$");
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "host-life1");
    // busybox init renames its argv[0] to "init".
    assert_eq!(lines[1].trim_end_matches('\0'), "init");
    assert_eq!(std::fs::read_link(format!("/proc/{}/exe", r.pid)).expect("exe"), PathBuf::from("/bin/busybox"));
    assert!(lines[2].starts_with("uid=0(root) gid=0(root)"), "{out}");
    let shell_pid: u32 = lines[3].parse().expect("pid");
    assert!(shell_pid > 1 && shell_pid < 100, "the shell runs in the container's PID namespace: {shell_pid}");

    for kind in ["net", "mnt", "pid", "uts", "ipc"] {
        assert_ne!(ns_of("self", kind), ns_of(&r.pid.to_string(), kind), "{kind} namespace is the host's");
    }
    let (_, mounts, _) = run(&r, "cat /proc/mounts");
    assert!(mounts.lines().next().is_some_and(|l| l.starts_with("overlay / overlay")), "{mounts}");
    for dev in ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"] {
        let (ok, _, err) = run(&r, &format!("test -e /dev/{dev}"));
        assert!(ok, "/dev/{dev} missing: {err}");
    }
    let (_, out, _) = run(&r, "head -c 4 /dev/urandom | wc -c; ip -o link show lo; touch /sys/x 2>&1");
    assert!(out.starts_with("4\n"), "{out}");
    assert!(out.contains("lo: <LOOPBACK,UP,LOWER_UP>"), "lo is up: {out}");
    assert!(out.contains("Read-only file system"), "/sys is read-only: {out}");
    assert!(!path_is_mounted(&spec.dir), "the overlay shows in the host's mount table");
    // Nothing of ours leaks into init: only stdio is open.
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", r.pid)).expect("fds").collect();
    assert_eq!(fds.len(), 3, "init has descriptors beyond stdio");

    let (ok, _, err) = run(&r, "echo written > /root/file");
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(spec.upper_dir().join("root/file")).expect("in upper"), "written\n");

    let rel = format!("{}/life1", scratch.cgroup_parent);
    match CgroupKind::host() {
        CgroupKind::V1 { .. } => {
            let mem = std::fs::read_to_string(cgroup_dir("memory", &rel).join("memory.limit_in_bytes")).expect("mem");
            assert_eq!(mem.trim(), "67108864");
            let quota = std::fs::read_to_string(cgroup_dir("cpu", &rel).join("cpu.cfs_quota_us")).expect("cpu");
            assert_eq!(quota.trim(), "50000");
        }
        _ => {
            let mem = std::fs::read_to_string(cgroup_dir("", &rel).join("memory.max")).expect("mem");
            assert_eq!(mem.trim(), "67108864");
        }
    }
    let procs = std::fs::read_to_string(cgroup_dir("pids", &rel).join("cgroup.procs")).expect("procs");
    assert!(procs.lines().any(|l| l == r.pid.to_string()), "init is in the container's cgroup: {procs}");
    // 20 tasks at most: the 40 background sleeps cannot all start.
    let (_, out, err) = run(
        &r,
        "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; cat /sys/fs/cgroup/pids 2>/dev/null; echo done",
    );
    assert!(err.contains("can't fork") || err.contains("Resource temporarily unavailable"), "pids.max: {out} {err}");
    let current = std::fs::read_to_string(cgroup_dir("pids", &rel).join("pids.current")).expect("pids.current");
    assert!(current.trim().parse::<u64>().expect("number") <= 20, "{current}");

    let usage = container::usage(&spec, Some(&r)).expect("usage");
    assert!(usage.cputime_secs > 0.0 && usage.memory_bytes > 0 && usage.diskspace_bytes > 0, "{usage:?}");

    container::stop(&spec).expect("stop");
    assert!(!r.is_alive());
    assert!(std::fs::metadata(format!("/proc/{}", r.pid)).is_err(), "init was reaped");
    for controller in ["memory", "cpu", "cpuacct", "pids"] {
        assert!(!cgroup_dir(controller, &rel).exists(), "{controller} cgroup left");
    }
    assert_eq!(container::find_running(&spec).expect("find"), None);
    assert!(container::execute(&r, "true", SECOND).is_err(), "a stopped container runs nothing");
    container::stop(&spec).expect("stop again");
    assert!(spec.upper_dir().join("root/file").exists(), "stop keeps the disk");
    // A stopped container starts again with its disk.
    let r2 = container::start(&spec).expect("restart");
    assert_ne!(r2, r);
    assert_eq!(run(&r2, "cat /root/file").1, "written\n");
    container::destroy(&spec).expect("destroy");
    assert!(!spec.dir.exists());
    container::destroy(&spec).expect("destroy again");
    assert!(scratch.leftovers().is_empty(), "{:?}", scratch.leftovers());
}

#[test]
fn execute_times_out_and_a_console_runs_a_shell() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new();
    let spec = scratch.spec("exec1", Limits::default());
    let r = container::start(&spec).expect("start");
    let begun = Instant::now();
    let out = container::execute(&r, "echo before; sleep 30; echo after", Duration::from_millis(300)).expect("exec");
    assert!(out.timed_out && !out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before\n");
    assert!(begun.elapsed() < 5 * SECOND);
    let (ok, ps, _) = run(&r, "ps -o comm | grep -c sleep");
    assert!(!ok || ps.trim() == "0", "the timed-out command's sleep was killed: {ps}");
    let out = container::execute(&r, "exit 3", SECOND).expect("exec");
    assert_eq!(out.status.code(), Some(3));

    scratch::runtime().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut console = container::spawn_console(&r, 24, 80).expect("console");
        console.pty.write_all(b"echo con$((40+2)); hostname; stty size; exit\n").await.expect("write");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + 5 * SECOND;
        while !String::from_utf8_lossy(&seen).contains("24 80") {
            match tokio::time::timeout_at(deadline, console.pty.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
                other => panic!("console ended early ({other:?}): {}", String::from_utf8_lossy(&seen)),
            }
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(text.contains("con42") && text.contains("host-exec1"), "{text}");
        let status = tokio::time::timeout(5 * SECOND, console.child.wait()).await.expect("exits").expect("wait");
        assert!(status.success());
    });
    container::destroy(&spec).expect("destroy");
}

#[test]
fn a_container_is_readopted_after_a_crash_and_orphans_are_swept() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new();
    let spec = scratch.spec("crash1", Limits::default());
    let kept = scratch.spec("kept1", Limits::default());
    let first = container::start(&spec).expect("start");
    let kept_running = container::start(&kept).expect("start kept");

    // All in-memory state is gone; the files and the kernel remember.
    let adopted = container::find_running(&spec.clone()).expect("find").expect("running");
    assert_eq!(adopted, first);

    // A crash between starting init and recording it: the next start ends
    // the unrecorded init (through the cgroup) instead of running two.
    std::fs::remove_file(spec.dir.join("init.pid")).expect("forget");
    assert_eq!(container::find_running(&spec).expect("find"), None);
    let second = container::start(&spec).expect("start after a lost record");
    assert_ne!(second.pid, first.pid);
    wait_until("the unrecorded init is gone", || !first.is_alive());

    // kill -9 of init: not running any more, and a recorded PID with
    // another start time is not taken for it.
    assert!(container::find_running(&spec).expect("find").is_some());
    // SAFETY: kill of a PID this test started.
    unsafe { libc::kill(second.pid as i32, libc::SIGKILL) };
    wait_until("init is dead", || container::find_running(&spec).expect("find").is_none());
    std::fs::write(spec.dir.join("init.pid"), format!("{} 1\n", std::process::id())).expect("fake record");
    assert_eq!(container::find_running(&spec).expect("find"), None, "PID reuse fooled find_running");

    // Host end of the kept one and an orphan in the host namespace.
    let rt = scratch::runtime();
    let iface = |id: &str| container::InterfaceSpec {
        name: "eth0".into(),
        mac: [2, 0, 0, 0, 0, 9],
        host_name: container::host_end_name(id, 0),
        ip4: None,
        ip6: None,
        dhcp: false,
    };
    let orphan = container::start(&scratch.spec("orph1", Limits::default())).expect("start orphan");
    rt.block_on(container::add_interface(&orphan, &iface("orph1"), &scratch.netns_path())).expect("orphan veth");
    rt.block_on(container::add_interface(&kept_running, &iface("kept1"), &scratch.netns_path())).expect("kept veth");

    let keep = vec!["kept1".to_string()];
    let found = rt
        .block_on(container::leftovers(&scratch.dir_root(), &scratch.cgroup_parent, Some(&scratch.netns_path()), &keep))
        .expect("leftovers");
    assert_eq!(found.ids, vec!["crash1".to_string(), "orph1".to_string()]);
    assert!(found.processes.contains(&orphan.pid), "{found:?}");
    assert_eq!(found.veths, vec!["corph1-0".to_string()]);
    assert_eq!(found.cgroups.len(), 2 * CgroupKind::host().roots().len());
    let swept = rt
        .block_on(container::sweep(&scratch.dir_root(), &scratch.cgroup_parent, Some(&scratch.netns_path()), &keep))
        .expect("sweep");
    assert_eq!(swept, found);
    let after = rt
        .block_on(container::leftovers(&scratch.dir_root(), &scratch.cgroup_parent, Some(&scratch.netns_path()), &keep))
        .expect("leftovers");
    assert!(after.is_empty(), "{after:?}");
    assert!(!orphan.is_alive() && !spec.dir.exists());
    assert!(kept_running.is_alive(), "the kept container was touched");
    assert!(run(&kept_running, "ip link show eth0").0, "the kept container's interface was touched");
    container::destroy(&kept).expect("destroy kept");
}
