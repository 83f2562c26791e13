//! One container through the API: console over the WebSocket, disk
//! download and upload through grants, usage records, timeout teardown.
//! Needs root; skipped otherwise.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Daemon, call, is_root};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread")]
async fn console_disk_usage_and_timeout() {
    if !is_root() {
        return;
    }
    let d = Daemon::start_with("life", std::time::Duration::from_millis(500)).await;
    let c = d.backend("backend", true);
    let other = d.backend("other", true);
    let n = call(&c, "element_create", json!(["container", null, {"hostname": "box"}])).await.unwrap()["id"]
        .as_i64()
        .unwrap();
    call(&c, "element_action", json!([n, "prepare"])).await.unwrap();

    // Upload a root file system: the disk of this container, with a file
    // added, goes in as the new root.
    let grant = call(&c, "element_action", json!([n, "download_grant"])).await.unwrap();
    let disk = c.get_bytes(&d.grant_url(grant.as_str().unwrap(), "download")).await.unwrap();
    assert!(disk.len() > 100_000, "disk archive of {} bytes", disk.len());
    let staging = d.dir.path().join("rootfs");
    std::fs::create_dir_all(&staging).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&disk[..])).unpack(&staging).unwrap();
    assert!(staging.join("bin/busybox").exists());
    std::fs::write(staging.join("etc/uploaded"), "yes\n").unwrap();
    let mut archive = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut archive, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        tar.append_dir_all(".", &staging).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let up = call(&c, "element_action", json!([n, "upload_grant"])).await.unwrap();
    c.post_bytes(&d.grant_url(up.as_str().unwrap(), "upload"), archive).await.unwrap();
    call(&c, "element_action", json!([n, "upload_use"])).await.unwrap();
    call(&c, "element_action", json!([n, "start"])).await.unwrap();
    let out = call(&c, "element_action", json!([n, "execute", {"cmd": "cat /etc/uploaded; hostname"}])).await.unwrap();
    assert_eq!(out["output"], "yes\nbox\n", "{out}");

    // The console: a shell inside the container; others cannot open it.
    let mut ws = c.websocket(&format!("/console/{n}")).await.unwrap();
    ws.send(Message::Binary(b"echo console-$((6*7))\n".to_vec().into())).await.unwrap();
    let mut seen = String::new();
    while !seen.contains("console-42") {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(_))) => {}
            other => panic!("console ended: {other:?}, saw {seen:?}"),
        }
    }
    drop(ws);
    let e = other.websocket(&format!("/console/{n}")).await.unwrap_err();
    assert_eq!(e.kind, "entity_does_not_exist", "{e}");

    // Usage: the chores sample CPU time, memory and disk of the container.
    call(&c, "element_action", json!([n, "execute", {"cmd": "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"}]))
        .await
        .unwrap();
    let (mut record, mut singles) = (serde_json::Value::Null, Vec::new());
    for _ in 0..40 {
        let stats = call(&c, "accounting_statistics", json!(["single"])).await.unwrap();
        singles = stats["elements"][n.to_string()].as_array().cloned().unwrap_or_default();
        if let Some(r) = singles.last()
            && singles.len() >= 2
            && r["usage"]["memory"].as_f64().unwrap_or(0.0) > 0.0
        {
            record = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(record["type"], "single", "no usage record: {record}");
    // Each sample covers the time since the previous one.
    assert!(singles.windows(2).all(|w| w[1]["begin"] == w[0]["end"]), "{singles:?}");
    assert!(record["usage"]["diskspace"].as_f64().unwrap() > 0.0, "{record}");
    let others = call(&other, "accounting_statistics", json!(["single"])).await.unwrap();
    assert_eq!(others["elements"], json!({}));

    // Timeout: a past timeout is refused beyond 30 days, and an expired
    // element is torn down by the chores.
    let e = call(&c, "element_modify", json!([n, {"timeout": 4_000_000_000u64}])).await.unwrap_err();
    assert!(e.message.contains("30 days"), "{e}");
    call(&c, "element_modify", json!([n, {"timeout": 1}])).await.unwrap();
    let mut gone = false;
    for _ in 0..60 {
        if let Err(e) = call(&c, "element_info", json!([n])).await {
            assert_eq!(e.kind, "entity_does_not_exist");
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(gone, "the expired container was not torn down");
    let left = d.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
}
