//! Containers through the API alone: a switch with 10 ms each way, a
//! direct connection with 5 % loss, a capture downloaded through a grant
//! and read by tshark, consoles, execute, disk download and upload.
//! Needs root; skipped otherwise.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Daemon, call, is_root};
use serde_json::{Value, json};

async fn id(v: Result<Value, rpc::RpcError>) -> i64 {
    v.unwrap()["id"].as_i64().unwrap()
}

/// A container with one interface at `addr`; returns (container, interface).
async fn node(c: &rpc::Client, addr: &str) -> (i64, i64) {
    let n = id(call(c, "element_create", json!(["container", null, {"ram": 128}])).await).await;
    let i = id(call(c, "element_create", json!(["container_interface", n, {"ip4address": addr}])).await).await;
    (n, i)
}

async fn exec(c: &rpc::Client, el: i64, cmd: &str) -> Value {
    call(c, "element_action", json!([el, "execute", {"cmd": cmd}])).await.unwrap()
}

fn rtts(output: &str) -> Vec<f64> {
    output.lines().filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_ping_through_a_switch_and_a_lossy_link() {
    if !is_root() {
        return;
    }
    let d = Daemon::start("ct").await;
    let c = d.backend("backend", true);

    // Two containers on a switch, 10 ms each way on both links.
    let (n1, i1) = node(&c, "10.0.0.1/24").await;
    let (n2, i2) = node(&c, "10.0.0.2/24").await;
    let sw = id(call(&c, "element_create", json!(["switch"])).await).await;
    let delay = json!({"delay_to": 10, "delay_from": 10});
    let mut links = Vec::new();
    for i in [i1, i2] {
        let ep = id(call(&c, "element_create", json!(["switch_endpoint", sw])).await).await;
        links.push(id(call(&c, "connection_create", json!([i, ep, "bridge", delay])).await).await);
    }
    for action in ["prepare", "start"] {
        call(&c, "element_action", json!([sw, action])).await.unwrap();
    }
    for n in [n1, n2] {
        let info = call(&c, "element_action", json!([n, "start"])).await;
        info.unwrap();
    }
    for l in &links {
        call(&c, "connection_action", json!([l, "start"])).await.unwrap();
    }
    let out = exec(&c, n1, "ping -c 5 -i 0.2 10.0.0.2").await;
    let times = rtts(out["output"].as_str().unwrap());
    assert_eq!(times.len(), 5, "{out}");
    assert!(times.iter().all(|t| *t >= 40.0), "RTTs {times:?} below 40 ms");
    let hostname = exec(&c, n2, "hostname").await;
    assert_eq!(hostname["output"].as_str().unwrap().trim(), format!("c{n2}"));

    // A direct connection with 5 % loss one way, captured.
    let (n3, i3) = node(&c, "10.0.1.1/24").await;
    let (n4, i4) = node(&c, "10.0.1.2/24").await;
    let direct =
        id(call(&c, "connection_create", json!([i3, i4, "bridge", {"capturing": true, "capture_filter": "icmp"}]))
            .await)
        .await;
    for n in [n3, n4] {
        call(&c, "element_action", json!([n, "start"])).await.unwrap();
    }
    call(&c, "connection_action", json!([direct, "start"])).await.unwrap();
    // Addresses resolved first: a lost ARP request would stall the pings
    // behind it for a second and count them all as lost.
    let out = exec(&c, n3, "ping -c 3 -i 0.2 10.0.1.2").await;
    assert!(out["output"].as_str().unwrap().contains("3 packets received"), "{out}");
    call(&c, "connection_modify", json!([direct, {"lossratio_from": 5}])).await.unwrap();
    let out = exec(&c, n3, "ping -q -c 1000 -i 0.005 -W 1 10.0.1.2").await;
    let text = out["output"].as_str().unwrap();
    let received: f64 = text
        .split(" packets received")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {out}"));
    let loss = 100.0 * (1000.0 - received) / 1000.0;
    assert!((2.5..=8.0).contains(&loss), "loss {loss} % ({text})");

    // The capture, merged and downloaded through a one-time grant.
    let grant = call(&c, "connection_action", json!([direct, "download_grant"])).await.unwrap();
    let grant = grant.as_str().unwrap();
    let bytes = c.get_bytes(&d.grant_url(grant, "download")).await.unwrap();
    let file = d.dir.path().join("capture.pcapng");
    std::fs::write(&file, &bytes).unwrap();
    let tshark = std::process::Command::new("tshark").args(["-r"]).arg(&file).args(["-Y", "icmp"]).output().unwrap();
    assert!(tshark.status.success(), "{}", String::from_utf8_lossy(&tshark.stderr));
    let frames = String::from_utf8_lossy(&tshark.stdout).lines().count();
    assert!(frames > 1700, "tshark read {frames} ICMP frames");
    let again = c.get_bytes(&d.grant_url(grant, "download")).await.unwrap_err();
    assert_eq!(again.kind, "entity_does_not_exist", "{again}");

    // Live change: remove the loss while running.
    call(&c, "connection_modify", json!([direct, {"lossratio_from": 0}])).await.unwrap();
    let out = exec(&c, n3, "ping -q -c 200 -i 0.005 -W 1 10.0.1.2").await;
    assert!(out["output"].as_str().unwrap().contains("200 packets received"), "{out}");

    // Accounting sees the traffic.
    let host_usage = call(&c, "accounting_statistics", json!(["single"])).await.unwrap();
    let _ = host_usage;

    // Tear down through the API; nothing is left.
    for n in [n1, n2, n3, n4] {
        for action in ["stop", "destroy"] {
            call(&c, "element_action", json!([n, action])).await.unwrap();
        }
        call(&c, "element_remove", json!([n])).await.unwrap();
    }
    let left = d.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(call(&c, "connection_list", json!([])).await.unwrap(), json!([]));
}
