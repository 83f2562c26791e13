//! The console server on a real unix socket: driven with `socat` as a VDE
//! user would, plus socket-file handling (stale, in use, not a socket,
//! removal on stop) and the line-length bound. Sockets live in a temporary
//! directory, so the host is left as it was.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use expect_test::expect;
use vde::ManagedSwitch;
use vde::memory::MemoryLink;
use vde::server::{MAX_LINE, Server, ServerError};
use vde::{Direction, LinkTarget};

fn socat_available() -> bool {
    Command::new("socat").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Sends `script` through `socat - UNIX-CONNECT:path` and returns what came
/// back; the script ends with `logout`, so the server closes the session.
fn socat(path: &Path, script: &str) -> String {
    let mut child = Command::new("socat")
        .arg("-")
        .arg(format!("UNIX-CONNECT:{}", path.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("socat starts");
    child.stdin.take().expect("piped stdin").write_all(script.as_bytes()).expect("socat reads its input");
    let output = child.wait_with_output().expect("socat finishes");
    String::from_utf8(output.stdout).expect("the console speaks UTF-8")
}

#[test]
fn socat_drives_link_and_switch_consoles() {
    if !socat_available() {
        eprintln!("skipped: socat is not installed (scripts/test installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let wire = Arc::new(Mutex::new(MemoryLink::ideal()));
    let link_server = Server::start_link(dir.path().join("wire.mgmt"), Arc::clone(&wire)).expect("link console starts");
    let mut sw = ManagedSwitch::new(32, 3);
    sw.add_port(1, "tomato", "element 3 eth0").expect("port 1 is free");
    let switch_server =
        Server::start_switch(dir.path().join("switch.mgmt"), Arc::new(Mutex::new(sw))).expect("switch console starts");

    let transcript = socat(link_server.path(), "showinfo\ndelay 20\nport/print\nlogout\n");
    expect![[r#"

        VDE wirefilter V.2.3.2 (ToMaTo-rs)
        (C) ToMaTo-rs, a VDE-compatible management console - AGPL-3.0-or-later

        VDEwf$ 0000 DATA END WITH '.'
        WireFilter: bidirectional
        Loss   L->R 0+0U   R->L 0+0U
        Lburst L->R 0+0U   R->L 0+0U
        Delay  L->R 0+0U   R->L 0+0U
        Dup    L->R 0+0U   R->L 0+0U
        Bandw  L->R 0+0U   R->L 0+0U
        Speed  L->R 0+0U   R->L 0+0U
        Noise  L->R 0+0U   R->L 0+0U
        MTU    L->R 0     R->L 0   
        Cap.   L->R 0+0U   R->L 0+0U
        Current Delay Queue size:   L->R 0      R->L 0   
        Fifoness TRUE
        Waiting packets in delay queues 0
        .
        1000 Success

        VDEwf$ 1000 Success

        VDEwf$ 1038 Function not implemented

        VDEwf$ 9999 END OF SESSION"#]]
    .assert_eq(&transcript);
    let wire = wire.lock().expect("no panic while locked");
    assert_eq!(wire.params(Direction::LeftRight).delay_ms, 20.0);
    assert_eq!(wire.params(Direction::RightLeft).delay_ms, 20.0);

    let transcript = socat(switch_server.path(), "port/print\nvlan/create 10\nlogout\n");
    expect![[r#"
        VDE switch V.2.3.2 (ToMaTo-rs)
        (C) ToMaTo-rs, a VDE-compatible management console - AGPL-3.0-or-later

        vde$ 0000 DATA END WITH '.'
        Port 0001 untagged_vlan=0000 ACTIVE - Unnamed Allocatable
         Current User: NONE Access Control: (User: NONE - Group: NONE)
         IN:  pkts          0          bytes                    0
         OUT: pkts          0          bytes                    0
          -- endpoint ID 0001 module tomato      : element 3 eth0
        .
        1000 Success

        vde$ 1000 Success

        vde$ 9999 END OF SESSION"#]]
    .assert_eq(&transcript);

    let (link_path, switch_path) = (link_server.path().to_owned(), switch_server.path().to_owned());
    link_server.stop();
    drop(switch_server);
    assert!(!link_path.exists() && !switch_path.exists(), "stopping removes the socket files");
}

/// Reads from `stream` until `needle` has arrived.
fn read_until(stream: &mut UnixStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = stream.read(&mut buf).expect("the console answers");
        assert!(n > 0, "closed before {needle:?}: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(seen).expect("UTF-8")
}

#[test]
fn socket_files_and_long_lines() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("x.mgmt");
    let target = || Arc::new(Mutex::new(MemoryLink::ideal()));

    // A stale socket (bound, nobody listening) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let server = Server::start_link(&path, target()).expect("stale socket replaced");

    // A live one is not.
    assert!(matches!(Server::start_link(&path, target()), Err(ServerError::InUse { .. })));

    // A too long line is refused and skipped; the session goes on.
    let mut client = UnixStream::connect(&path).expect("connect");
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    read_until(&mut client, "VDEwf$ ");
    let mut long = "x".repeat(MAX_LINE * 3);
    long.push_str("\ndelay 5\n");
    client.write_all(long.as_bytes()).expect("send");
    let replies = read_until(&mut client, "1000 Success\n\nVDEwf$ ");
    assert_eq!(replies, "1022 Invalid argument\n\nVDEwf$ 1000 Success\n\nVDEwf$ ");

    // Stopping closes open sessions and removes the file.
    server.stop();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    assert!(!path.exists());

    // A regular file is never removed.
    std::fs::write(&path, "precious").expect("write");
    assert!(matches!(Server::start_link(&path, target()), Err(ServerError::NotASocket { .. })));
    assert_eq!(std::fs::read_to_string(&path).expect("still there"), "precious");
}
