//! `tomato dataplane` end to end, as root: namespaces joined by the command,
//! its VDE consoles driven with `socat`, its captures read by `tshark`.
//!
//! Each test builds its own namespaces ([`Lab`], removed on drop, also on
//! panic), runs the command as a child that is killed by PID if the test
//! fails, and skips with a message when not run as root or when `socat` or
//! `tshark` is missing. Tests run one at a time: they share two CPUs with
//! their traffic.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use dataplane::lab::{Lab, is_root, ping_counts, ping_rtt};

static SERIAL: Mutex<()> = Mutex::new(());

fn has(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

macro_rules! require_root_and {
    ($($tool:literal),* $(,)?) => {
        if !is_root() {
            eprintln!("skipped: needs root (network namespaces, AF_PACKET)");
            return;
        }
        $(if !has($tool) {
            eprintln!("skipped: needs {}", $tool);
            return;
        })*
    };
}

/// A running `tomato dataplane ...`, killed (by PID) if still running when dropped.
struct Running {
    child: Child,
    stderr: Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tomato"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tomato runs");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running { child, stderr }
    }

    /// Waits for a stderr line containing `needle` and returns it.
    fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {needle:?} from tomato"),
            }
        }
    }

    /// Stops it with SIGTERM and returns its stdout and the rest of stderr.
    fn stop(mut self) -> (String, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(status.success());
        let stdout = self.child.stdout.take().expect("piped");
        let out = std::io::read_to_string(stdout).expect("stdout");
        assert!(self.child.wait().expect("waits").success(), "tomato failed");
        let err: Vec<String> = self.stderr.try_iter().collect();
        (out, err.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failing test: SIGTERM first so the command removes its socket
        // and ring, SIGKILL if it does not end. Never signal a reaped PID.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends `script` to a console with socat and returns everything it answered.
fn socat(socket: &Path, script: &str) -> String {
    let mut child = Command::new("socat")
        .args(["-t", "2", "-", &format!("UNIX-CONNECT:{}", socket.display())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("socat runs");
    child.stdin.take().expect("piped").write_all(script.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("socat ends");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ping(lab: &Lab, from: usize, to: usize, count: u32) -> String {
    // Not `exec`: a ping that gets no reply exits 1, and a test expects that.
    let out = lab
        .command(from, "ping", &["-c", &count.to_string(), "-i", "0.02", "-W", "1", &lab.addr(to)])
        .output()
        .expect("ping runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Frames in a capture file matching a display filter, counted by tshark.
fn tshark_count(file: &Path, display_filter: &str) -> usize {
    let out = Command::new("tshark")
        .args(["-r", file.to_str().expect("utf-8"), "-Y", display_filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn a_link_console_changes_the_delay_and_the_capture_file_holds_every_ping() {
    require_root_and!("socat", "tshark");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, file) = (dir.path().join("link.sock"), dir.path().join("link.pcapng"));
    let ns = lab.ns_x();
    let running = Running::start(&[
        "dataplane",
        "link",
        "j0",
        "j1",
        "emulation=false",
        "--netns",
        &ns,
        "--console",
        socket.to_str().expect("utf-8"),
        "--capture",
        file.to_str().expect("utf-8"),
        "--capture-filter",
        "icmp",
    ]);
    running.wait_for_line("running");

    let (sent, received) = ping_counts(&ping(&lab, 0, 1, 10)).expect("ping summary");
    assert_eq!((sent, received), (10, 10));

    let answer = socat(&socket, "showinfo\ndelay 20\nshowinfo\nlogout\n");
    assert!(answer.trim_start().starts_with("VDE wirefilter"), "banner first: {answer}");
    assert!(answer.contains("0000 DATA END WITH '.'\nWireFilter: bidirectional\n"), "{answer}");
    assert!(answer.contains("Delay  L->R 0+0U   R->L 0+0U"), "{answer}");
    assert!(answer.contains("\n1000 Success\n"), "{answer}");
    assert!(answer.contains("Delay  L->R 20+0U   R->L 20+0U"), "the change shows: {answer}");

    let out = ping(&lab, 0, 1, 10);
    let (min, _, _) = ping_rtt(&out).expect("rtt");
    assert!((40.0..45.0).contains(&min), "20 ms each way after `delay 20`: {out}");

    let pid = running.child.id();
    let (stats, stderr) = running.stop();
    assert!(stats.contains("link j0 <-> j1"), "{stats}");
    assert!(stderr.contains("capture: 40 frames written"), "{stderr}");
    assert!(!socket.exists(), "the console socket is removed");
    assert_eq!(tshark_count(&file, "icmp.type == 8"), 20);
    assert_eq!(tshark_count(&file, "icmp.type == 0"), 20);
    assert_eq!(tshark_count(&file, "arp"), 0, "the filter kept ARP out");
    let ring_dirs = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("tomato-capture-{pid}-")))
        .count();
    assert_eq!(ring_dirs, 0, "the ring directory is removed");
}

#[test]
fn a_live_capture_stream_is_read_by_tshark_while_traffic_flows() {
    require_root_and!("tshark");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    let ns = lab.ns_x();
    let mut running = Running::start(&[
        "dataplane",
        "link",
        "j0",
        "j1",
        "emulation=false",
        "--netns",
        &ns,
        "--capture-stream",
        "127.0.0.1:0",
    ]);
    let line = running.wait_for_line("capture stream on ");
    let addr = line.split_whitespace().nth(3).expect("address").trim_end_matches(':').to_string();
    running.wait_for_line("running");
    let stream = TcpStream::connect(&addr).expect("connects");
    // tshark reads the live stream from stdin and stops after 10 ICMP
    // frames, while the link still runs.
    let mut tshark = Command::new("tshark")
        .args(["-i", "-", "-c", "10", "-Y", "icmp", "-T", "fields", "-e", "icmp.type"])
        .stdin(Stdio::from(OwnedFd::from(stream)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tshark runs");
    let pinger = {
        let (h0, addr1) = (lab.ns_host(0), lab.addr(1));
        std::thread::spawn(move || {
            Command::new("ip")
                .args(["netns", "exec", &h0, "ping", "-c", "50", "-i", "0.05", &addr1])
                .output()
                .expect("ping runs")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tshark.try_wait().expect("tshark").is_none() {
        assert!(Instant::now() < deadline, "tshark got no 10 frames");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = std::io::read_to_string(tshark.stdout.take().expect("piped")).expect("stdout");
    let types: Vec<&str> = out.lines().collect();
    assert!(!types.is_empty() && types.iter().all(|t| *t == "8" || *t == "0"), "{out}");
    assert!(matches!(running.child.try_wait(), Ok(None)), "the link still runs");
    let _ = pinger.join();
    running.stop();
}

#[test]
fn a_switch_console_prints_ports_and_the_learnt_addresses() {
    require_root_and!("socat");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("switch.sock");
    let ns = lab.ns_x();
    let running = Running::start(&[
        "dataplane",
        "switch",
        "j0",
        "j1",
        "--netns",
        &ns,
        "--console",
        socket.to_str().expect("utf-8"),
    ]);
    running.wait_for_line("running");
    let (_, received) = ping_counts(&ping(&lab, 0, 1, 3)).expect("ping summary");
    assert_eq!(received, 3);
    let answer = socat(&socket, "port/print\nhash/print\nvlan/create 5\nport/setvlan 2 5\nlogout\n");
    assert!(answer.contains("Port 0001 untagged_vlan=0000 ACTIVE"), "{answer}");
    assert!(answer.contains("module dataplane   : j1"), "{answer}");
    assert_eq!(answer.matches("VLAN 0000 to port: ").count(), 2, "both hosts learnt: {answer}");
    // Port 2 moved to VLAN 5: the hosts no longer reach each other.
    let (_, received) = ping_counts(&ping(&lab, 0, 1, 3)).expect("ping summary");
    assert_eq!(received, 0);
    running.stop();
}

#[test]
fn a_link_joins_an_interface_to_a_tap_the_command_creates_and_removes() {
    require_root_and!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(1).expect("namespaces");
    let ns = lab.ns_x();
    let running = Running::start(&["dataplane", "link", "j0", "tap:tmtap0", "emulation=false", "--netns", &ns]);
    running.wait_for_line("running");
    let ip = |args: &[&str]| Command::new("ip").args(["-n", &ns]).args(args).output().expect("ip runs");
    assert!(ip(&["addr", "add", "10.77.0.9/24", "dev", "tmtap0"]).status.success());
    let out = lab.command(0, "ping", &["-c", "3", "-i", "0.05", "-W", "1", "10.77.0.9"]).output().expect("ping runs");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(ping_counts(&out), Some((3, 3)), "{out}");
    running.stop();
    assert!(!ip(&["link", "show", "tmtap0"]).status.success(), "the tap is gone with the command");
}
