//! The `tomato-guest` binary on a plain directory of the test host (no
//! container needed: the monitor runs wherever its archive directory is),
//! and the status reader racing a writer.

#![allow(clippy::unwrap_used)]

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use guest::status::{self, Decoded, Retry};

fn binary(dir: &Path) -> PathBuf {
    let path = dir.join("tomato-guest");
    guest::install(&path).unwrap();
    path
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_status(dir: &Path, name: &str) -> Option<String> {
    status::read_file(&dir.join("exec_status").join(name), Retry::DEFAULT)
        .unwrap()
        .map(|b| String::from_utf8(b).unwrap())
}

#[test]
fn the_binary_is_static() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = binary(tmp.path());
    let file = Command::new("file").arg(&bin).output().unwrap();
    let text = String::from_utf8_lossy(&file.stdout);
    assert!(text.contains("static"), "{text}");
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&ldd.stdout), String::from_utf8_lossy(&ldd.stderr));
    assert!(text.contains("not a dynamic executable") || text.contains("statically linked"), "{text}");
    // Installing the same bytes again leaves the file alone.
    let before = std::fs::metadata(&bin).unwrap().modified().unwrap();
    guest::install(&bin).unwrap();
    assert_eq!(std::fs::metadata(&bin).unwrap().modified().unwrap(), before);
}

#[test]
fn the_monitor_runs_the_paper_4_3_1_script_and_keeps_its_status() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = binary(tmp.path());
    let dir = tmp.path().join("nlXTP");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("auto_exec.sh"),
        "#!/bin/sh\nsleep 1\narchive_setstatus phase one done\ncommand -v archive_setstatus > helper.txt\necho \"$nlxtp_dir|$archive_dir|$archive_version\" > written.txt\necho hello from the archive\necho oops >&2\nexit 3\n",
    )
    .unwrap();
    let started = Instant::now();
    let monitor = std::thread::spawn({
        let (bin, dir) = (bin.clone(), dir.clone());
        move || Command::new(bin).args(["monitor", "--dir"]).arg(dir).status().unwrap()
    });
    wait_for("running", Duration::from_secs(5), || dir.join("exec_status/running").exists());
    let stamp: u64 = read_status(&dir, "running").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(stamp) <= 2, "running holds {stamp}, now is {now}");
    assert_eq!(read_status(&dir, "done"), None);
    assert!(monitor.join().unwrap().success());
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "ran {took:?}");
    assert_eq!(read_status(&dir, "done").as_deref(), Some("3"));
    assert_eq!(read_status(&dir, "running"), None);
    assert_eq!(read_status(&dir, "custom").as_deref(), Some("phase one done"));
    let out = std::fs::read_to_string(dir.join("exec_status/out")).unwrap();
    assert_eq!(out, "hello from the archive\noops\n");
    let d = dir.display();
    assert_eq!(std::fs::read_to_string(dir.join("written.txt")).unwrap(), format!("{d}|{d}|0.3\n"));
    // Its archive_setstatus helper (a directory of the monitor's own) went with it.
    let helper = std::fs::read_to_string(dir.join("helper.txt")).unwrap();
    let helper = Path::new(helper.trim());
    assert!(helper.ends_with("archive_setstatus") && helper.starts_with("/dev/shm"), "{}", helper.display());
    assert!(!helper.parent().unwrap().exists(), "{} left behind", helper.display());
    // A second monitor finds the claim and does nothing.
    std::fs::write(dir.join("written.txt"), "kept").unwrap();
    assert!(Command::new(&bin).args(["monitor", "--dir"]).arg(&dir).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(dir.join("written.txt")).unwrap(), "kept");
}

#[test]
fn the_daemon_starts_a_waiting_archive_once_and_polls_for_new_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = binary(tmp.path());
    let dir = tmp.path().join("nlXTP");
    std::fs::create_dir(&dir).unwrap();
    // No `#!` line: run as a shell script.
    std::fs::write(dir.join("auto_exec.sh"), "echo boot > ran.txt\n").unwrap();
    let conf = tmp.path().join("nlXTP.conf");
    std::fs::write(&conf, format!("nlxtp_dir={}\nnlxtp_mode=1\n", dir.display())).unwrap();
    let status = Command::new(&bin).args(["daemon", "--config"]).arg(&conf).status().unwrap();
    assert!(status.success());
    wait_for("done", Duration::from_secs(5), || dir.join("exec_status/done").exists());
    assert_eq!(read_status(&dir, "done").as_deref(), Some("0"));
    assert_eq!(std::fs::read_to_string(dir.join("ran.txt")).unwrap(), "boot\n");

    // Poll mode: a new archive (old status gone, entry placed last) runs.
    std::fs::write(&conf, format!("nlxtp_dir={}\nnlxtp_mode=2\nnlxtp_daemon_check_interval=1\n", dir.display()))
        .unwrap();
    let mut daemon = Command::new(&bin).args(["daemon", "--config"]).arg(&conf).spawn().unwrap();
    std::fs::remove_dir_all(dir.join("exec_status")).unwrap();
    std::fs::write(dir.join("auto_exec.sh"), "#!/bin/sh\necho polled > ran.txt\n").unwrap();
    wait_for("the polled run", Duration::from_secs(5), || {
        std::fs::read_to_string(dir.join("ran.txt")).is_ok_and(|t| t == "polled\n")
    });
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let bad = tmp.path().join("bad.conf");
    std::fs::write(&bad, "nlxtp_mode=7\n").unwrap();
    let out = Command::new(&bin).args(["daemon", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nlxtp_mode") && err.contains("2 (poll)"), "{err}");
}

#[test]
fn archive_setstatus_outside_a_run_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = binary(tmp.path());
    let out = Command::new(&bin).arg("setstatus").arg("x").env("nlxtp_dir", tmp.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("while an archive runs"));
}

/// A writer rewrites a status file in place (truncate, then the bytes in
/// two pieces, as a guest on a shared disk might), or whole by rename;
/// a reader reads it as fast as it can. Every value read must be one that
/// was written; the test also checks that torn states were really seen.
fn race(in_place: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("custom");
    let values: Vec<String> = (0..16).map(|i| format!("value {i} {}", "x".repeat(i * 37 % 200))).collect();
    status::write_file(tmp.path(), "custom", values[0].as_bytes()).unwrap();
    let stop = AtomicBool::new(false);
    let (torn, reads) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let value = &values[i % values.len()];
                if in_place {
                    let bytes = status::encode(value.as_bytes());
                    file.set_len(0).unwrap();
                    file.rewind().unwrap();
                    let half = bytes.len() / 2;
                    file.write_all(&bytes[..half]).unwrap();
                    std::thread::yield_now();
                    file.write_all(&bytes[half..]).unwrap();
                } else {
                    status::write_file(tmp.path(), "custom", value.as_bytes()).unwrap();
                }
            }
        });
        s.spawn(|| {
            // Stops the writer also when this thread panics; the scope would
            // otherwise wait for it forever and hide the failure.
            let _stop = StopOnDrop(&stop);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline || reads.load(Ordering::Relaxed) < 2000 {
                // A second of retries: on a loaded machine the writer can be
                // descheduled half-way for tens of milliseconds.
                let got =
                    status::read_with("custom", Retry { tries: 20_000, pause: Duration::from_micros(50) }, || {
                        let bytes = std::fs::read(&path)?;
                        if decode_is_incomplete(&bytes) {
                            torn.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Some(bytes))
                    })
                    .unwrap()
                    .unwrap();
                let text = String::from_utf8(got).unwrap();
                assert!(values.contains(&text), "torn value returned: {text:?}");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    let (torn, reads) = (torn.into_inner(), reads.into_inner());
    eprintln!("in_place={in_place}: {reads} reads, {torn} torn states seen and read again");
    if in_place {
        assert!(torn > 0, "the writer never tore the file in {reads} reads: the test proved nothing");
    } else {
        assert_eq!(torn, 0, "renamed files are never seen half written");
    }
}

/// Sets the flag when dropped, unwinding included.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn decode_is_incomplete(bytes: &[u8]) -> bool {
    status::decode(bytes) == Decoded::Incomplete
}

#[test]
fn the_status_reader_never_returns_a_torn_value_of_an_in_place_writer() {
    race(true);
}

#[test]
fn the_status_reader_and_a_renaming_writer_never_meet_half_way() {
    race(false);
}
