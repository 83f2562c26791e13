//! `tomato cert` in a temporary directory: the files it writes, their
//! modes, the accepted list and the errors that name the file.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn tomato(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tomato")).args(args).output().expect("tomato runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = tomato(args);
    assert!(out.status.success(), "tomato {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn fails(args: &[&str]) -> String {
    let out = tomato(args);
    assert_eq!(out.status.code(), Some(1), "tomato {args:?}:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stderr)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn ca_host_backend_accept_list_revoke() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let (ca, host, backend, accepted) = (dir("ca"), dir("host"), dir("backend"), dir("accepted"));

    let out = ok(&["cert", "ca", "--dir", &ca, "--cn", "Test CA"]);
    assert!(out.contains("created the CA `Test CA`"), "{out}");
    assert_eq!(mode(&tmp.path().join("ca/ca.key")), 0o600);
    let err = fails(&["cert", "ca", "--dir", &ca]);
    assert!(err.contains("ca/ca.pem: already exists"), "{err}");

    ok(&[
        "cert",
        "host",
        "--ca-dir",
        &ca,
        "--name",
        "host1",
        "--san",
        "127.0.0.1",
        "--san",
        "host1.example",
        "--out-dir",
        &host,
    ]);
    ok(&["cert", "backend", "--ca-dir", &ca, "--name", "backend-a", "--out-dir", &backend]);
    let ca_pem = read(&tmp.path().join("ca/ca.pem"));
    for (out_dir, name) in [("host", "host1"), ("backend", "backend-a")] {
        let d = tmp.path().join(out_dir);
        assert_eq!(mode(&d.join(format!("{name}.key"))), 0o600, "{name}.key");
        assert_eq!(read(&d.join("ca.pem")), ca_pem, "{out_dir}/ca.pem is the CA's");
        let info = rpc::CertInfo::from_pem(&read(&d.join(format!("{name}.pem"))), name).expect("certificate");
        assert_eq!(info.cn.as_deref(), Some(name));
    }
    // The host's certificate and key make a server configuration that asks for client certificates.
    rpc::server_config(
        &read(&tmp.path().join("host/host1.pem")),
        &read(&tmp.path().join("host/host1.key")),
        &ca_pem,
        rpc::ClientAuth::Required,
    )
    .expect("host files form a TLS configuration");
    let err = fails(&["cert", "backend", "--ca-dir", &ca, "--name", "backend-a", "--out-dir", &backend]);
    assert!(err.contains("backend-a.pem: already exists"), "{err}");
    let err = fails(&["cert", "backend", "--ca-dir", &dir("nowhere"), "--name", "x", "--out-dir", &backend]);
    assert!(err.contains("nowhere/ca.pem: No such file"), "{err}");

    let backend_pem = tmp.path().join("backend/backend-a.pem");
    let fingerprint = rpc::CertInfo::from_pem(&read(&backend_pem), "backend").expect("certificate").fingerprint;
    let out = ok(&["cert", "accept", "--accepted-dir", &accepted, backend_pem.to_str().expect("utf-8")]);
    assert!(out.starts_with(&format!("accepted backend-a sha256 {fingerprint}")), "{out}");
    let out = ok(&["cert", "list", "--accepted-dir", &accepted]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(&format!("backend-a sha256 {fingerprint} (")), "{out}");

    let key = tmp.path().join("backend/backend-a.key");
    let err = fails(&["cert", "accept", "--accepted-dir", &accepted, key.to_str().expect("utf-8")]);
    assert!(err.contains("backend-a.key") && err.contains("no PEM certificate"), "{err}");

    let out = ok(&["cert", "revoke", "--accepted-dir", &accepted, &fingerprint[..]]);
    assert!(out.starts_with("revoked backend-a"), "{out}");
    let out = ok(&["cert", "list", "--accepted-dir", &accepted]);
    assert!(out.starts_with("no accepted certificates in"), "{out}");
    let err = fails(&["cert", "revoke", "--accepted-dir", &accepted, "backend-a"]);
    assert!(err.contains("no accepted certificate has the CN or fingerprint `backend-a`"), "{err}");
}

#[test]
fn a_ca_key_that_does_not_match_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&["cert", "ca", "--dir", a.to_str().expect("utf-8")]);
    ok(&["cert", "ca", "--dir", b.to_str().expect("utf-8")]);
    std::fs::remove_file(a.join("ca.key")).expect("remove");
    std::fs::copy(b.join("ca.key"), a.join("ca.key")).expect("copy");
    let err = fails(&[
        "cert",
        "host",
        "--ca-dir",
        a.to_str().expect("utf-8"),
        "--name",
        "h",
        "--out-dir",
        tmp.path().join("out").to_str().expect("utf-8"),
    ]);
    assert!(err.contains("a/ca.key: this key does not belong to the certificate"), "{err}");
}
