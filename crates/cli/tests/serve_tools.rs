//! The user's tools against a real `tomato serve` (see `serve_harness`):
//! executable archives uploaded to two containers at once and waited for,
//! their status and results; an element console through the backend's
//! relay, refused to someone without rights; packet capture on the link,
//! downloaded and streamed live, read by tshark. Needs root; skipped
//! otherwise.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

mod serve_harness;
use serve_harness::{Serve, is_root, write_pair};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The files of a tar.gz with their contents.
fn tar_files(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().trim_start_matches("./").to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.insert(name, data);
    }
    files
}

/// ICMP echo requests tshark finds in a capture file.
fn echo_requests(file: &Path) -> usize {
    let out = Command::new("tshark").arg("-r").arg(file).args(["-Y", "icmp.type == 8"]).output().unwrap();
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("ICMP")).count()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn archives_consoles_and_captures_through_the_backend() {
    if !is_root() {
        return;
    }
    let mut serve = Serve::new();
    // Users reach the host at another address than the API's: the
    // fileserver and live captures follow it, and its certificate names it.
    serve.flags = vec!["--address".into(), "127.0.0.2".into()];
    serve.start();
    serve.login_admin();
    let file = write_pair(serve.dir.path(), "tools", "{}");
    let up = serve.ok(&["up", file.to_str().unwrap()]);
    assert!(up.contains("started"), "{up}");
    let info: Value = serde_json::from_str(&serve.ok(&["element", "info", "tools", "a", "--json"])).unwrap();
    assert_eq!(info["host_info"]["address"], "127.0.0.2", "{info}");
    assert!(info["host_info"]["fileserver_port"].as_u64().is_some(), "{info}");

    // ---- executable archives: the paper's 4.3.1 to both containers at once
    let basic = examples().join("archives/basic");
    let t0 = Instant::now();
    let upload = serve.ok(&["archive", "upload", "tools", "a", "b", basic.to_str().unwrap(), "--wait"]);
    eprintln!("archive upload --wait to two containers: {:?}\n{upload}", t0.elapsed());
    for name in ["a ", "b "] {
        let line = upload.lines().rfind(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{upload}"));
        assert!(
            line.contains("done, exit code 0; custom status: basic archive: custom status set"),
            "{name}: {upload}"
        );
    }
    let status = serve.ok(&["archive", "status", "tools", "a"]);
    assert_eq!(status.trim(), "a: done, exit code 0; custom status: basic archive: custom status set");
    let status: Value = serde_json::from_str(&serve.ok(&["archive", "status", "tools", "b", "--json"])).unwrap();
    assert_eq!(status["done"], true);
    assert_eq!(status["custom"], "basic archive: custom status set");
    assert_eq!(status["exit_code"], 0);
    let results = serve.dir.path().join("b-results.tar.gz");
    let download = serve.ok(&["archive", "download", "tools", "b", results.to_str().unwrap()]);
    assert!(download.contains("b-results.tar.gz"), "{download}");
    let files = tar_files(&results);
    assert!(files.contains_key("auto_exec.sh"), "{:?}", files.keys());
    assert_eq!(files["written.txt"], b"written by the archive\n");
    let out = String::from_utf8_lossy(&files["exec_status/out"]);
    assert!(out.contains("hello from the executable archive"), "{out}");
    for status_file in ["exec_status/done", "exec_status/custom"] {
        assert!(files.contains_key(status_file), "{status_file} missing: {:?}", files.keys());
    }

    // A failing script without a custom status: exit 1, the code named,
    // custom null.
    let failing = serve.dir.path().join("failing");
    std::fs::create_dir(&failing).unwrap();
    std::fs::write(failing.join("auto_exec.sh"), "#!/bin/sh\necho failing on purpose\nexit 3\n").unwrap();
    let out = serve.tomato(&["archive", "upload", "tools", "a", failing.to_str().unwrap(), "--wait"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("FAILED, exit code 3; no custom status"), "{text}{out:?}");
    let status: Value = serde_json::from_str(&serve.ok(&["archive", "status", "tools", "a", "--json"])).unwrap();
    assert_eq!(status["custom"], Value::Null);
    assert_eq!(status["exit_code"], 3);

    // Bad input names the field and what is allowed.
    let out = serve.tomato(&["archive", "upload", "tools", basic.to_str().unwrap()], None);
    assert!(stderr(&out).contains("ELEMENT: no element named before FILE"), "{out:?}");
    let not_gzip = serve.dir.path().join("plain.tar");
    std::fs::write(&not_gzip, "plain").unwrap();
    let out = serve.tomato(&["archive", "upload", "tools", "a", not_gzip.to_str().unwrap()], None);
    assert!(stderr(&out).contains("not gzip-compressed; allowed"), "{out:?}");
    let out = serve.tomato(&["archive", "status", "tools", "nope"], None);
    assert!(stderr(&out).contains("element `nope`") && stderr(&out).contains("allowed: a, "), "{out:?}");

    // ---- consoles: piped input runs, its output comes back
    let marker = format!("hello-{}", std::process::id());
    let out = serve.tomato(&["element", "console", "tools", "a"], Some(&format!("echo {marker}-$((6*7))\n")));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(&format!("{marker}-42")), "{text}\n{out:?}");

    // Someone without rights on the topology is refused at the backend.
    let info: Value = serde_json::from_str(&serve.ok(&["topology", "info", "tools", "--json"])).unwrap();
    let a = info["elements"].as_array().unwrap().iter().find(|e| e["attrs"]["_name"] == "a").unwrap()["id"].clone();
    let db = format!("sqlite://{}", serve.data().join("backend.sqlite").display());
    let made = Command::new(env!("CARGO_BIN_EXE_tomato"))
        .args(["backend", "user-create", "bob", "--db", &db])
        .env("TOMATO_PASSWORD", "bob-secret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let refused = console_status(serve.port, &a, Some(("bob", "bob-secret"))).await;
    assert!(refused.0 == 403 && refused.1.contains("console"), "{refused:?}");
    let anonymous = console_status(serve.port, &a, None).await;
    assert_eq!(anonymous.0, 401, "{anonymous:?}");

    // ---- packet capture on the link: file mode, downloaded
    serve.ok(&["capture", "start", "tools/a.eth0", "--filter", "icmp"]);
    let ping = serve.ok(&["element", "exec", "tools", "a", "ping", "-c", "3", "10.0.0.2"]);
    assert!(ping.contains("3 packets received"), "{ping}");
    let pcap = serve.dir.path().join("capture.pcap");
    let t0 = Instant::now();
    serve.ok(&["capture", "download", "tools/a.eth0", pcap.to_str().unwrap()]);
    eprintln!("capture download: {:?}, {} bytes", t0.elapsed(), std::fs::metadata(&pcap).unwrap().len());
    let requests = echo_requests(&pcap);
    assert!(requests >= 3, "{requests} ICMP echo requests in the capture");
    let out = serve.tomato(&["capture", "start", "tools/a.eth0", "--mode", "wire"], None);
    assert!(!out.status.success() && stderr(&out).contains("possible values: file, net"), "{out:?}");

    // ---- live: pcapng on stdout while pings cross
    let live_file = serve.dir.path().join("live.pcapng");
    let live = Command::new(env!("CARGO_BIN_EXE_tomato"))
        .args(["capture", "live", "tools/a.eth0", "--seconds", "6"])
        .env("XDG_CONFIG_HOME", serve.dir.path().join("config"))
        .stdout(std::fs::File::create(&live_file).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let ping = serve.ok(&["element", "exec", "tools", "b", "ping", "-c", "3", "10.0.0.1"]);
    assert!(ping.contains("3 packets received"), "{ping}");
    let live = live.wait_with_output().unwrap();
    assert!(live.status.success(), "{live:?}");
    let requests = echo_requests(&live_file);
    assert!(requests >= 3, "{requests} ICMP echo requests in the live capture");
    serve.ok(&["capture", "stop", "tools/a.eth0"]);

    serve.ok(&["down", "tools"]);
    serve.stop();
    let left = serve.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
}

/// Opens the backend's console WebSocket of element `id` as `login`; the
/// HTTP status of the refusal (101 when it opened) and its body.
async fn console_status(port: u16, id: &Value, login: Option<(&str, &str)>) -> (u16, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://127.0.0.1:{port}/console/{id}").into_client_request().unwrap();
    if let Some((user, password)) = login {
        let header = api::basic_auth::encode_basic(&api::basic_auth::Credentials {
            username: user.into(),
            password: password.into(),
        });
        request.headers_mut().insert("authorization", header.parse().unwrap());
    }
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok(_) => (101, String::new()),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            (r.status().as_u16(), String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned())
        }
        Err(e) => panic!("console handshake: {e}"),
    }
}
