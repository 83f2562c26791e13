//! Executable archives (nlXTP) through the hostmanager's API and its
//! `nlxtp` functions: the paper's experiment 4.3.1 on a running and on a
//! stopped container, the two-way probe of `examples/archives/probe`,
//! hostile archives refused with nothing changed, status files and
//! downloads that never follow the guest's symlinks, and the archive
//! directory removed with its element or swept after a crash. Needs root;
//! skipped otherwise.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Daemon, call, is_root};
use hostmanager::nlxtp::{self, ArchiveError, Layout, Limits};
use serde_json::{Value, json};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/archives").join(name)
}

/// A tar.gz of `dir`'s contents, paths relative to it (as `tar -C dir .`).
fn pack_dir(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast()));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    out
}

/// One raw tar entry: name, type, link target, contents.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// A tar.gz written header by header, so the builder's own checks cannot
/// refuse hostile names.
fn raw_archive(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(&mut out, flate2::Compression::best()));
    for (name, kind, target, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if !target.is_empty() {
            let t = target.as_bytes();
            h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
        }
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    out
}

/// Every entry of a tar.gz: name -> contents (a symlink as `-> target`).
fn listing(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string().trim_end_matches('/').to_string();
        let mut data = Vec::new();
        match entry.header().entry_type() {
            tar::EntryType::Symlink => {
                data = format!("-> {}", entry.link_name().unwrap().unwrap().display()).into_bytes();
            }
            _ => {
                entry.read_to_end(&mut data).unwrap();
            }
        }
        out.insert(name, data);
    }
    out
}

/// Every file under `dir`: relative path -> contents (directories empty,
/// symlinks as `-> target`).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = path.symlink_metadata().unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&path).unwrap().display()).into_bytes());
            } else if meta.is_dir() {
                out.insert(rel, Vec::new());
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

async fn upload(d: &Daemon, c: &rpc::Client, id: i64, archive: Vec<u8>) -> Result<Value, rpc::RpcError> {
    let grant = call(c, "element_action", json!([id, "rextfv_upload_grant"])).await.unwrap();
    c.post_bytes(&d.grant_url(grant.as_str().unwrap(), "upload"), archive).await.unwrap();
    call(c, "element_action", json!([id, "rextfv_upload_use"])).await
}

async fn download(d: &Daemon, c: &rpc::Client, id: i64) -> BTreeMap<String, Vec<u8>> {
    let grant = call(c, "element_action", json!([id, "rextfv_download_grant"])).await.unwrap();
    listing(&c.get_bytes(&d.grant_url(grant.as_str().unwrap(), "download")).await.unwrap())
}

async fn run_status(c: &rpc::Client, id: i64) -> Value {
    call(c, "element_info", json!([id])).await.unwrap()["attrs"]["rextfv_run_status"].clone()
}

/// Polls the run status until done; returns how long `isAlive` was seen
/// true (first to last sighting; zero if a fast script was never caught
/// running) and the final status.
async fn watch_run(c: &rpc::Client, id: i64) -> (Duration, Value) {
    let start = Instant::now();
    let (mut first_alive, mut last_alive) = (None, None);
    loop {
        let status = run_status(c, id).await;
        if status["isAlive"] == true {
            assert_eq!(status["done"], false, "{status}");
            first_alive.get_or_insert(start.elapsed());
            last_alive = Some(start.elapsed());
        }
        if status["done"] == true {
            assert_eq!(status["isAlive"], false, "{status}");
            let alive = match (first_alive, last_alive) {
                (Some(a), Some(b)) => b - a,
                _ => Duration::ZERO,
            };
            return (alive, status);
        }
        assert!(start.elapsed() < Duration::from_secs(20), "not done after 20 s: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the paper's 4.3.1 download must hold.
fn check_basic_download(files: &BTreeMap<String, Vec<u8>>) {
    let text = |name: &str| String::from_utf8(files.get(name).cloned().unwrap_or_default()).unwrap();
    assert!(text("auto_exec.sh").contains("archive_setstatus"), "{:?}", files.keys());
    assert_eq!(text("exec_status/out"), "hello from the executable archive\n");
    assert_eq!(text("written.txt"), "written by the archive\n");
    assert_eq!(guest::status::decode(&files["exec_status/done"]), guest::status::Decoded::Valid(b"0"));
    let custom = &files["exec_status/custom"];
    assert_eq!(guest::status::decode(custom), guest::status::Decoded::Valid(b"basic archive: custom status set"));
    assert!(!files.contains_key("exec_status/running"), "{:?}", files.keys());
}

#[tokio::test(flavor = "multi_thread")]
async fn paper_4_3_1_on_a_running_and_on_a_stopped_container() {
    if !is_root() {
        return;
    }
    let d = Daemon::start("arch").await;
    let c = d.backend("backend", true);
    let create = || call(&c, "element_create", json!(["container", null, {}]));
    let running = create().await.unwrap()["id"].as_i64().unwrap();
    let stopped = create().await.unwrap()["id"].as_i64().unwrap();
    let info = call(&c, "element_info", json!([running])).await.unwrap();
    assert_eq!(info["attrs"]["rextfv_supported"], true);
    assert_eq!(info["attrs"]["rextfv_max_size"], nlxtp::DEFAULT_MAX_SIZE);
    assert_eq!(info["attrs"]["rextfv_run_status"], json!({"readable": false}));
    call(&c, "element_action", json!([running, "start"])).await.unwrap();
    call(&c, "element_action", json!([stopped, "prepare"])).await.unwrap();
    let basic = pack_dir(&example("basic"));

    // (1) A running container: the host starts the monitor right away.
    let t0 = Instant::now();
    assert_eq!(upload(&d, &c, running, basic.clone()).await.unwrap(), Value::Null);
    let (alive, status) = watch_run(&c, running).await;
    let took = t0.elapsed();
    eprintln!("running container: isAlive seen for {alive:?}, done {took:?} after rextfv_upload_use");
    assert_eq!(
        status,
        json!({
            "readable": true,
            "done": true,
            "isAlive": false,
            "custom": "basic archive: custom status set",
            "exit_code": 0
        })
    );
    assert!(alive >= Duration::from_millis(600) && alive <= Duration::from_secs(3), "isAlive for {alive:?}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "done after {took:?}");
    let files = download(&d, &c, running).await;
    check_basic_download(&files);
    // The console's view (the paper checked it): the same files.
    let out = call(&c, "element_action", json!([running, "execute", {"cmd": "cd /mnt/nlXTP && ls -R"}])).await.unwrap();
    let listed = out["output"].as_str().unwrap();
    for name in ["auto_exec.sh", "written.txt", "exec_status:", "custom", "done", "out"] {
        assert!(listed.contains(name), "{name} not in {listed}");
    }

    // (2) A stopped container: nothing runs until it starts, then at boot.
    upload(&d, &c, stopped, basic.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(run_status(&c, stopped).await, json!({"readable": false}));
    let t0 = Instant::now();
    call(&c, "element_action", json!([stopped, "start"])).await.unwrap();
    let (alive, status) = watch_run(&c, stopped).await;
    eprintln!("stopped container: isAlive seen for {alive:?}, done {:?} after start", t0.elapsed());
    assert_eq!(status["custom"], "basic archive: custom status set");
    assert!(alive >= Duration::from_millis(600) && alive <= Duration::from_secs(3), "isAlive for {alive:?}");
    check_basic_download(&download(&d, &c, stopped).await);

    // A restart does not run a finished archive again.
    call(&c, "element_action", json!([stopped, "stop"])).await.unwrap();
    call(&c, "element_action", json!([stopped, "start"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    check_basic_download(&download(&d, &c, stopped).await);

    // The directory is the element's: gone with it.
    let layout = Layout::new(&d.data_dir(), stopped);
    assert!(layout.dir().join("written.txt").exists());
    call(&c, "element_action", json!([stopped, "stop"])).await.unwrap();
    call(&c, "element_action", json!([stopped, "destroy"])).await.unwrap();
    assert!(layout.dir().join("written.txt").exists(), "destroy keeps the archive directory");
    call(&c, "element_remove", json!([stopped])).await.unwrap();
    assert!(!layout.root().exists(), "{} outlived its element", layout.root().display());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_two_way_probe_asks_and_the_guest_answers() {
    if !is_root() {
        return;
    }
    let d = Daemon::start("probe").await;
    let c = d.backend("backend", true);
    let id = call(&c, "element_create", json!(["container", null, {}])).await.unwrap()["id"].as_i64().unwrap();
    call(&c, "element_action", json!([id, "start"])).await.unwrap();

    // First round: the probe as shipped.
    upload(&d, &c, id, pack_dir(&example("probe"))).await.unwrap();
    let (_, status) = watch_run(&c, id).await;
    let custom = status["custom"].as_str().unwrap().to_string();
    let fields: BTreeMap<&str, &str> = custom.split(' ').filter_map(|f| f.split_once('=')).collect();
    assert!(fields["os"].starts_with("busybox-1."), "{custom}");
    assert_eq!(fields["arch"], std::env::consts::ARCH, "{custom}");
    assert_eq!(fields["pm"], "none");
    assert_eq!(fields["missing"], "1", "{custom}");
    let answer = String::from_utf8(download(&d, &c, id).await["answer.txt"].clone()).unwrap();
    assert!(answer.contains("sh found") && answer.contains("hello-nlxtp missing\n"), "{answer}");
    assert!(answer.contains("archive_setstatus found /"), "{answer}");

    // Second round, built from the answer (as 4.3.3's installer archive):
    // install what is missing, then ask again.
    let installer = tempfile::tempdir().unwrap();
    let missing: Vec<&str> = answer.lines().filter_map(|l| l.strip_suffix(" missing")).collect();
    let mut script = String::from("#!/bin/sh\nmkdir -p /usr/local/bin\n");
    for program in &missing {
        script.push_str(&format!("printf '#!/bin/sh\\necho {program} installed by nlXTP\\n' > /usr/local/bin/{program}\nchmod +x /usr/local/bin/{program}\n"));
    }
    script.push_str("archive_setstatus installed $(ls /usr/local/bin | wc -l)\n");
    std::fs::write(installer.path().join("auto_exec.sh"), script).unwrap();
    upload(&d, &c, id, pack_dir(installer.path())).await.unwrap();
    let (_, status) = watch_run(&c, id).await;
    assert_eq!(status["custom"], "installed 1");
    let files = download(&d, &c, id).await;
    assert!(!files.contains_key("answer.txt"), "the new archive replaced the old one: {:?}", files.keys());
    upload(&d, &c, id, pack_dir(&example("probe"))).await.unwrap();
    let (_, status) = watch_run(&c, id).await;
    assert!(status["custom"].as_str().unwrap().ends_with("missing=0"), "{status}");
    let out = call(&c, "element_action", json!([id, "execute", {"cmd": "hello-nlxtp"}])).await.unwrap();
    assert_eq!(out["output"], "hello-nlxtp installed by nlXTP\n");
}

/// The hostile archives: name, archive, what the error must say.
fn hostile(canary_rel: &str) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    use tar::EntryType::{Block, Char, Fifo, Link, Regular, Symlink};
    let ok: RawEntry = ("fine.txt", Regular, "", b"fine");
    // From <data>/nlxtp/<id>/staging, four levels up is the data
    // directory's parent, where the canary lives.
    let traversal = format!("../../../../{canary_rel}");
    let hard_out = format!("../../../../{canary_rel}");
    vec![
        ("traversal", raw_archive(&[ok, (&traversal, Regular, "", b"overwritten")]), "`..`"),
        ("absolute", raw_archive(&[ok, ("/tmp/tomato-nlxtp-absolute", Regular, "", b"x")]), "absolute path"),
        ("symlink out", raw_archive(&[ok, ("up", Symlink, "../../..", b"")]), "leads out"),
        ("absolute symlink", raw_archive(&[ok, ("etc", Symlink, "/etc", b"")]), "absolute path /etc"),
        (
            "write through a symlink",
            raw_archive(&[ok, ("d", Symlink, ".", b""), ("d/x", Regular, "", b"x")]),
            "goes through the symlink d",
        ),
        ("hard link out", raw_archive(&[ok, ("hard", Link, &hard_out, b"")]), "hard link whose target leaves"),
        ("absolute hard link", raw_archive(&[ok, ("passwd", Link, "/etc/passwd", b"")]), "is an absolute path"),
        ("character device", raw_archive(&[ok, ("null", Char, "", b"")]), "device file"),
        ("block device", raw_archive(&[ok, ("disk", Block, "", b"")]), "device file"),
        ("fifo", raw_archive(&[ok, ("pipe", Fifo, "", b"")]), "FIFO"),
        // 8 MiB of zeros: a few KiB compressed, past the 1 MiB limit below.
        ("bomb", raw_archive(&[ok, ("zeros", Regular, "", &vec![0u8; 8 << 20])]), "unpacks to more than 1048576 bytes"),
    ]
}

#[test]
fn hostile_archives_are_refused_by_name_and_change_nothing() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let canary = tmp.path().join("canary");
    std::fs::write(&canary, "canary").unwrap();
    let layout = Layout::new(&data, 7);
    let limits = Limits { max_bytes: 1 << 20, max_entries: 50 };
    nlxtp::install(&layout, &write(tmp.path(), "good", pack_dir(&example("basic"))), limits).unwrap();
    std::fs::create_dir(layout.dir().join("exec_status")).unwrap();
    std::fs::write(layout.dir().join("exec_status/out"), "previous run\n").unwrap();
    let before = snapshot(&layout.dir());
    assert!(before.contains_key("auto_exec.sh"), "{:?}", before.keys());
    let mut cases = hostile("canary");
    let many: Vec<String> = (0..60).map(|i| format!("f{i}")).collect();
    let entries: Vec<RawEntry> =
        many.iter().map(|n| (n.as_str(), tar::EntryType::Regular, "", b"".as_slice())).collect();
    cases.push(("too many entries", raw_archive(&entries), "more than 50 entries"));
    // Incompressible (xorshift) bytes: past the limit while still packed.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let big: Vec<u8> = (0..(3 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    cases.push(("too large compressed", raw_archive(&[("noise", tar::EntryType::Regular, "", &big)]), "compressed"));
    for (name, archive, expected) in cases {
        let path = write(tmp.path(), name, archive);
        let err = nlxtp::install(&layout, &path, limits).expect_err(name);
        let text = err.to_string();
        assert!(text.contains(expected), "{name}: {text}");
        assert!(matches!(err, ArchiveError::Refused { .. } | ArchiveError::TooLarge { .. }), "{name}: {err:?}");
        if let ArchiveError::Refused { entry, .. } = &err {
            assert!(text.contains(&format!("{entry:?}")), "{name}: the error names the entry: {text}");
        }
        assert_eq!(snapshot(&layout.dir()), before, "{name} changed the archive directory");
        assert!(!layout.root().join("staging").exists(), "{name} left its staging directory");
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "canary", "{name} touched the canary");
        assert!(!Path::new("/tmp/tomato-nlxtp-absolute").exists(), "{name} wrote outside");
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        2 + hostile("c").len() + 3,
        "stray files next to the canary"
    );
    // Links inside are fine.
    let inside = raw_archive(&[
        ("a/file", tar::EntryType::Regular, "", b"x"),
        ("a/link", tar::EntryType::Symlink, "file", b""),
        ("b/up", tar::EntryType::Symlink, "../a/file", b""),
        ("hard", tar::EntryType::Link, "a/file", b""),
    ]);
    let got = nlxtp::install(&layout, &write(tmp.path(), "inside", inside), limits).unwrap();
    assert_eq!(got.entries, 4);
    let after = snapshot(&layout.dir());
    assert_eq!(after["b/up"], b"-> ../a/file");
    assert_eq!(after["hard"], b"x");
    assert!(!after.contains_key("auto_exec.sh"), "the old archive was replaced");
}

fn write(dir: &Path, name: &str, bytes: Vec<u8>) -> PathBuf {
    let path = dir.join(format!("{}.tar.gz", name.replace(' ', "-")));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_host_never_follows_the_guests_symlinks() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp.path().join("data"), 3);
    layout.ensure().unwrap();
    let dir = layout.dir();
    // Host files that look like a finished run.
    let host = tmp.path().join("host-secrets");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("custom"), guest::status::encode(b"host secret")).unwrap();
    std::fs::write(host.join("done"), guest::status::encode(b"0")).unwrap();
    std::os::unix::fs::symlink(&host, dir.join("exec_status")).unwrap();
    assert_eq!(nlxtp::run_status(&dir, 0), json!({"readable": false}));
    std::fs::remove_file(dir.join("exec_status")).unwrap();
    std::fs::create_dir(dir.join("exec_status")).unwrap();
    std::os::unix::fs::symlink(host.join("custom"), dir.join("exec_status/custom")).unwrap();
    std::fs::write(dir.join("exec_status/done"), guest::status::encode(b"0")).unwrap();
    assert_eq!(nlxtp::run_status(&dir, 0), json!({"readable": false}));
    std::fs::remove_file(dir.join("exec_status/custom")).unwrap();
    assert_eq!(
        nlxtp::run_status(&dir, 0),
        json!({"readable": true, "done": true, "isAlive": false, "custom": null, "exit_code": 0})
    );
    // A stale `running`: the monitor is gone.
    std::fs::remove_file(dir.join("exec_status/done")).unwrap();
    std::fs::write(dir.join("exec_status/running"), guest::status::encode(b"1000")).unwrap();
    assert_eq!(nlxtp::run_status(&dir, 1000 + 599)["isAlive"], true);
    assert_eq!(nlxtp::run_status(&dir, 1000 + 600)["isAlive"], false);

    // A download packs the links as links, not what they point at.
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    std::os::unix::fs::symlink(&host, dir.join("secrets")).unwrap();
    let out = tmp.path().join("out.tar.gz");
    nlxtp::pack(&dir, &out).unwrap();
    let files = listing(&std::fs::read(&out).unwrap());
    assert_eq!(files["etc"], b"-> /etc");
    assert!(files.keys().all(|k| !k.contains("passwd") && !k.starts_with("secrets/")), "{:?}", files.keys());
    assert!(files.contains_key("exec_status/running"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_reach_the_api_and_leftovers_are_swept() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start("harm").await;
    let c = d.backend("backend", true);
    let id = call(&c, "element_create", json!(["container", null, {}])).await.unwrap()["id"].as_i64().unwrap();
    call(&c, "element_action", json!([id, "start"])).await.unwrap();
    upload(&d, &c, id, pack_dir(&example("basic"))).await.unwrap();
    watch_run(&c, id).await;
    let layout = Layout::new(&d.data_dir(), id);
    let before = snapshot(&layout.dir());
    for (name, archive, expected) in hostile("canary").into_iter().filter(|(n, ..)| *n != "bomb") {
        let err = upload(&d, &c, id, archive).await.expect_err(name);
        assert_eq!(err.kind, "invalid_value", "{name}: {err}");
        assert!(err.message.contains("rextfv_upload_use") && err.message.contains(expected), "{name}: {err}");
        assert_eq!(snapshot(&layout.dir()), before, "{name} changed the archive directory");
    }
    let err = call(&c, "element_action", json!([id, "rextfv_upload_use"])).await.unwrap_err();
    assert!(err.message.contains("rextfv_upload_grant"), "{err}");
    // Past the limit, the fileserver stops the upload while it arrives.
    let grant = call(&c, "element_action", json!([id, "rextfv_upload_grant"])).await.unwrap();
    let too_big = vec![0u8; nlxtp::DEFAULT_MAX_SIZE as usize + 1];
    let err = c.post_bytes(&d.grant_url(grant.as_str().unwrap(), "upload"), too_big).await.unwrap_err();
    eprintln!("oversized upload: {err:?}");
    assert!(err.message.contains("rextfv_max_size"), "{err}");
    let err = call(&c, "element_action", json!([id, "rextfv_upload_use"])).await.unwrap_err();
    assert!(err.message.contains("nothing was uploaded"), "{err}");
    assert!(!d.data_dir().join(format!("uploads/{id}.rextfv")).exists());
    assert!(!d.data_dir().join(format!("uploads/{id}.part")).exists());
    // An interrupted upload's leftovers go at the next start.
    std::fs::create_dir_all(layout.root().join("staging/half")).unwrap();

    // A directory of an element the store does not know (as after a crash
    // between the removal and the store's delete) is swept at start.
    let stray = Layout::new(&d.data_dir(), 4242);
    stray.ensure().unwrap();
    d.restart().await;
    // The listener answers before recovery ends; a call waits for it.
    call(&c, "element_info", json!([id])).await.unwrap();
    assert!(!stray.root().exists(), "a stray archive directory survived the restart");
    assert!(layout.dir().join("written.txt").exists(), "a live element's directory was swept");
    assert!(!layout.root().join("staging").exists(), "an interrupted upload's staging survived");
    call(&c, "element_action", json!([id, "destroy"])).await.unwrap();
    call(&c, "element_remove", json!([id])).await.unwrap();
    assert!(!layout.root().exists());
    assert!(d.leftovers().await.is_empty());
}

/// The busybox template without the guest modules (no `tomato-guest`,
/// `archive_setstatus`, `/etc/nlXTP.conf`, and an rcS that starts no
/// daemon), as an old or foreign template would be.
fn template_without_guest(dir: &Path) -> (PathBuf, String) {
    let full = dir.join("busybox.tar.gz");
    container::build_busybox_template(&full).unwrap();
    let out = dir.join("bare.tar.gz");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::fast(),
    ));
    let mut source = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&full).unwrap()));
    for entry in source.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        if ["usr/sbin/tomato-guest", "usr/bin/archive_setstatus", "etc/nlXTP.conf"].contains(&name.as_str()) {
            continue;
        }
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == "etc/init.d/rcS" {
            let text = String::from_utf8(data).unwrap();
            data = text
                .lines()
                .filter(|l| !l.contains("tomato-guest"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        tar.append(&header, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    let sha = container::sha256_file(&out).unwrap();
    (out, sha)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_without_the_guest_runs_archives_through_the_hosts_copy() {
    if !is_root() {
        return;
    }
    let d = Daemon::start("bare").await;
    let c = d.backend("backend", true);
    let (path, sha) = template_without_guest(d.dir.path());
    call(
        &c,
        "resource_create",
        json!(["template", {"name": "bare", "tech": "container", "sha256": sha, "path": path}]),
    )
    .await
    .unwrap();
    let id = call(&c, "element_create", json!(["container", null, {"template": "bare"}])).await.unwrap()["id"]
        .as_i64()
        .unwrap();
    call(&c, "element_action", json!([id, "prepare"])).await.unwrap();
    // Stopped: the archive runs after the start, the host starting it.
    upload(&d, &c, id, pack_dir(&example("basic"))).await.unwrap();
    call(&c, "element_action", json!([id, "start"])).await.unwrap();
    let out =
        call(&c, "element_action", json!([id, "execute", {"cmd": "ls /usr/sbin/tomato-guest /etc/nlXTP.conf 2>&1"}]))
            .await
            .unwrap();
    assert!(out["output"].as_str().unwrap().contains("No such file"), "{out}");
    let (_, status) = watch_run(&c, id).await;
    assert_eq!(status["custom"], "basic archive: custom status set");
    check_basic_download(&download(&d, &c, id).await);
    // Running: an upload runs at once.
    upload(&d, &c, id, pack_dir(&example("probe"))).await.unwrap();
    let (_, status) = watch_run(&c, id).await;
    // archive_setstatus exists while the archive runs (the monitor's own
    // helper), though the template has none.
    assert!(status["custom"].as_str().unwrap().ends_with("missing=1"), "{status}");
    let answer = String::from_utf8(download(&d, &c, id).await["answer.txt"].clone()).unwrap();
    assert!(answer.contains("archive_setstatus found /dev/shm/nlxtp-"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_run_at_boot_finds_its_interfaces_and_routes() {
    if !is_root() {
        return;
    }
    let d = Daemon::start("boot").await;
    let c = d.backend("backend", true);
    let id = call(&c, "element_create", json!(["container", null, {"gateway4": "10.9.0.254"}])).await.unwrap()["id"]
        .as_i64()
        .unwrap();
    call(&c, "element_create", json!(["container_interface", id, {"ip4address": "10.9.0.1/24"}])).await.unwrap();
    call(&c, "element_action", json!([id, "prepare"])).await.unwrap();
    let archive = tempfile::tempdir().unwrap();
    std::fs::write(
        archive.path().join("auto_exec.sh"),
        "#!/bin/sh\nip -o -4 addr show eth0 > addr.txt 2>&1\nip route > routes.txt 2>&1\n",
    )
    .unwrap();
    upload(&d, &c, id, pack_dir(archive.path())).await.unwrap();
    // The template's guest daemon runs it at boot, racing the host's
    // monitor: either way eth0 and the route exist before init runs.
    call(&c, "element_action", json!([id, "start"])).await.unwrap();
    watch_run(&c, id).await;
    let files = download(&d, &c, id).await;
    let addr = String::from_utf8(files["addr.txt"].clone()).unwrap();
    let routes = String::from_utf8(files["routes.txt"].clone()).unwrap();
    assert!(addr.contains("10.9.0.1/24"), "{addr}");
    assert!(routes.contains("default via 10.9.0.254"), "{routes}");
}
