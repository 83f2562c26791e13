//! `tomato backend`: bootstrap accounts, serve the API, and refuse a host
//! that does not answer; in a temporary directory, the server stopped by
//! its PID at the end (panics included).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};

fn tomato(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tomato"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("tomato runs")
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = tomato(args, env);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "tomato {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// The server process, killed by its PID when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// POSTs `body` to `path` with Basic credentials; returns status and body.
fn post(addr: &str, path: &str, user: &str, password: &str, body: &str) -> (u16, serde_json::Value) {
    let auth = api::basic_auth::encode_basic(&api::basic_auth::Credentials {
        username: user.into(),
        password: password.into(),
    });
    let mut s = TcpStream::connect(addr).expect("connects");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("writes");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("reads");
    let status = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status");
    let json = answer.split("\r\n\r\n").nth(1).and_then(|b| serde_json::from_str(b).ok()).expect("a JSON body");
    (status, json)
}

#[test]
fn bootstrap_serve_and_refuse_an_unreachable_host() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let db = format!("sqlite://{}", path("backend.sqlite"));
    ok(&["cert", "ca", "--dir", &path("ca")], &[]);
    ok(&["cert", "backend", "--ca-dir", &path("ca"), "--name", "backend", "--out-dir", &path("btls")], &[]);

    let out = ok(&["backend", "user-create", "--db", &db, "root", "--admin"], &[("TOMATO_PASSWORD", "root-secret")]);
    assert_eq!(out.trim(), "root (default): global_admin, global_host_manager");
    // The password from stdin.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tomato"))
        .args(["backend", "user-create", "--db", &db, "bob", "--organization", "lab"])
        .env_remove("TOMATO_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawns");
    child.stdin.take().expect("stdin").write_all(b"bob-secret\n").expect("writes");
    let out = child.wait_with_output().expect("ends");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bob (lab):");
    // Too short a password is refused, naming the field.
    let out = tomato(&["backend", "user-create", "--db", &db, "eve"], &[("TOMATO_PASSWORD", "short")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"), "{out:?}");

    // A host that does not answer is not registered.
    std::fs::write(
        path("host.pem"),
        ok(
            &["cert", "host", "--ca-dir", &path("ca"), "--name", "h", "--san", "127.0.0.1", "--out-dir", &path("htls")],
            &[],
        ),
    )
    .ok();
    let out = tomato(
        &[
            "backend",
            "host-create",
            "--db",
            &db,
            "--tls-dir",
            &path("btls"),
            "h1",
            "--url",
            "https://127.0.0.1:1",
            "--cert",
            &format!("{}/h.pem", path("htls")),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unreachable"), "{out:?}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_tomato"))
        .args(["backend", "run", "--db", &db, "--listen", "127.0.0.1:0", "--tls-dir", &path("btls")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let stderr = child.stderr.take().expect("stderr");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).expect("a first line");
    let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).expect("the address").to_string();

    let (status, answer) = post(&addr, "/api/account_info", "root", "root-secret", "{}");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["flags"], serde_json::json!(["global_admin", "global_host_manager"]));
    let (status, answer) = post(&addr, "/api/host_list", "bob", "bob-secret", "{}");
    assert_eq!((status, answer), (200, serde_json::json!({"result": []})));
    let (status, answer) = post(&addr, "/api/topology_create", "bob", "wrong-secret", "{}");
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "not_logged_in");
    drop(server);
}
