//! Our consoles side by side with the real `vde_switch` and `wirefilter`
//! (vde2), when they are installed: the same lines must get the same
//! framing (data block or not, and the same status line), and the replies
//! that do not depend on the implementation must match byte for byte.
//! The real programs run on temporary paths and are killed by PID.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vde::ManagedSwitch;
use vde::memory::MemoryLink;
use vde::server::Server;

fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A real VDE program, killed by PID and reaped when the test ends.
struct RealChild {
    child: Child,
}

impl Drop for RealChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One reply: the whole text and its framing (data block?, status line).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    text: String,
    framing: (bool, Option<String>),
}

/// Sends each line and waits for the prompt before the next one (VDE reads
/// one command per `read`).
fn converse(path: &Path, prompt: &str, lines: &[&str]) -> Vec<Answer> {
    let mut stream = UnixStream::connect(path).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut pending = String::new();
    read_until(&mut stream, &mut pending, prompt);
    pending.clear();
    let mut answers = Vec::new();
    for line in lines {
        stream.write_all(format!("{line}\n").as_bytes()).expect("send");
        let text = read_until(&mut stream, &mut pending, prompt);
        let data = text.lines().next() == Some("0000 DATA END WITH '.'");
        let status = text.lines().rfind(|l| l.len() > 5 && l.as_bytes()[0] == b'1').map(str::to_owned);
        answers.push(Answer { text, framing: (data, status) });
    }
    answers
}

/// The text up to the next prompt; `pending` keeps what came after it.
fn read_until(stream: &mut UnixStream, pending: &mut String, prompt: &str) -> String {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(at) = pending.find(prompt) {
            let text = pending[..at].to_owned();
            pending.replace_range(..at + prompt.len(), "");
            return text;
        }
        let n = stream.read(&mut buf).expect("the console answers");
        assert!(n > 0, "closed before the prompt: {pending:?}");
        pending.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn compare(ours: &[Answer], theirs: &[Answer], lines: &[&str], exact: &[&str]) {
    for ((line, ours), theirs) in lines.iter().zip(ours).zip(theirs) {
        assert_eq!(
            ours.framing, theirs.framing,
            "framing of {line:?}:\nours:\n{}\ntheirs:\n{}",
            ours.text, theirs.text
        );
        if exact.contains(line) {
            assert_eq!(ours.text, theirs.text, "reply to {line:?}");
        }
    }
}

#[test]
fn switch_console_frames_like_vde_switch() {
    if !installed("vde_switch") {
        eprintln!("skipped: vde_switch is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let (ctl, mgmt) = (dir.path().join("sw"), dir.path().join("real.mgmt"));
    // In the foreground (no -d) the switch is our child, so we can kill it
    // by PID and reap it; its stdin console stays open through the pipe.
    let child = Command::new("vde_switch")
        .args(["-n", "32", "-s"])
        .arg(&ctl)
        .arg("-M")
        .arg(&mgmt)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vde_switch runs");
    let _real = RealChild { child };
    wait_for(&mgmt);

    let ours_path: PathBuf = dir.path().join("ours.mgmt");
    let _server = Server::start_switch(&ours_path, Arc::new(Mutex::new(ManagedSwitch::new(32, 1)))).expect("starts");

    let lines = [
        "help",
        "showinfo",
        "port/print",
        "port/print 3",
        "port/print 40",
        "port/allprint",
        "vlan/print",
        "vlan/create 10",
        "vlan/create 10",
        "vlan/create 0",
        "vlan/create 4094",
        "vlan/addport 11 1",
        "vlan/print 10",
        "vlan/print 11",
        "port/setvlan 3 0",
        "port/setvlan 40 0",
        "vlan/remove 10",
        "vlan/remove 10",
        "hash/showinfo",
        "hash/print",
        "port/sethub 1",
        "port/sethub 0",
        "port/showinfo",
        "foo",
        "",
        "# comment",
        "vlan/create 12",
        "vlan/allprint",
    ];
    let ours = converse(&ours_path, "\nvde$ ", &lines);
    let theirs = converse(&mgmt, "\nvde$ ", &lines);
    let exact =
        ["port/print", "vlan/print", "vlan/print 10", "vlan/allprint", "port/showinfo", "hash/print", "foo", ""];
    compare(&ours, &theirs, &lines, &exact);
}

#[test]
fn link_console_frames_like_wirefilter() {
    if !installed("wirefilter") {
        eprintln!("skipped: wirefilter is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let mgmt = dir.path().join("real.mgmt");
    // With pipes on stdin and stdout wirefilter runs one direction (LR).
    let child = Command::new("wirefilter")
        .arg("-M")
        .arg(&mgmt)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wirefilter runs");
    let _real = RealChild { child };
    wait_for(&mgmt);

    let ours_path = dir.path().join("ours.mgmt");
    let _server = Server::start_link(&ours_path, Arc::new(Mutex::new(MemoryLink::ideal()))).expect("starts");

    let lines = [
        "help",
        "showinfo",
        "delay 20",
        "delay LR 20+5",
        "delay 20+5N",
        "loss 1.5",
        "bandwidth 1M",
        "speed 10K",
        "mtu 1500",
        "chanbufsize 100000",
        "noise 3",
        "dup 2",
        "lostburst 4",
        "foo",
        "showinfo 1",
        "showinfo 0",
        "fifo 1",
        "",
        "# comment",
    ];
    let ours = converse(&ours_path, "\nVDEwf$ ", &lines);
    let theirs = converse(&mgmt, "\nVDEwf$ ", &lines);
    compare(&ours, &theirs, &lines, &["delay 20", "foo", "showinfo 1", ""]);
}
