//! Accounting, quotas and timeouts through the server, on a real
//! hostmanager (root only): usage sampled on the host is pulled, rolled up
//! to topology, user, organization and host, and shown by `*_usage`; a
//! user over quota is refused `start` and `prepare` with an error naming
//! the resource; and an expired topology is stopped, destroyed and removed
//! by the timeout pass.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;
mod hostd;

use std::time::Duration;

use backend::server::{accounting, handlers, now};
use backend::store::UsageClass;
use common::TestDb;
use hostd::{HostDaemon, Server, is_root};
use serde_json::{Value, json};

/// A host whose chores run every `chores`, the server on `db` with the host
/// registered, and alice's started topology of one container: its ids.
async fn alice_started(tag: &str, chores: Duration, db: TestDb) -> (HostDaemon, Server, i64, i64) {
    let ca = rpc::Ca::create("test CA").unwrap();
    let host = HostDaemon::start_with_chores(&format!("{tag}{}", &db.kind()[..1]), &ca, chores).await;
    let server = Server::start(&ca, db).await;
    server.register(&host).await;
    server.user("alice", "alice-secret", false).await;
    let t = server.call("alice", "topology_create", vec![]).await.unwrap();
    let tid = t["id"].as_i64().unwrap();
    let e = server.call("alice", "element_create", vec![json!(tid), json!("container")]).await.unwrap();
    server.call("alice", "topology_action", vec![json!(tid), json!("start")]).await.unwrap();
    (host, server, tid, e["id"].as_i64().unwrap())
}

on_both_databases!(
    usage_is_rolled_up_and_a_user_over_quota_cannot_start,
    an_expired_topology_is_stopped_destroyed_and_removed
);

fn singles(answer: &Value) -> Vec<Value> {
    answer["single"].as_array().cloned().unwrap_or_default()
}

async fn usage_is_rolled_up_and_a_user_over_quota_cannot_start(db: TestDb) {
    if !is_root() {
        return;
    }
    // The host samples usage every second.
    let (host, server, tid, eid) = alice_started("usage", Duration::from_secs(1), db).await;

    // A few samples of the running container, pulled twice.
    let backend = &server.backend;
    let mut element = Value::Null;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        accounting::pull_all(backend).await.unwrap();
        element = server.call("alice", "element_usage", vec![json!(eid)]).await.unwrap();
        if singles(&element).iter().filter(|r| r["usage"]["memory"].as_f64().unwrap_or(0.0) > 0.0).count() >= 2 {
            break;
        }
    }
    let records = singles(&element);
    assert!(records.len() >= 2, "{element}");
    // Each sample is charged once, however often the host is pulled.
    let mut ends: Vec<f64> = records.iter().map(|r| r["end"].as_f64().unwrap()).collect();
    let n = ends.len();
    ends.dedup();
    assert_eq!(ends.len(), n, "a sample charged twice: {element}");
    assert!(records.iter().all(|r| r["measurements"] == 1 && r["type"] == "single"));
    for kind in ["5minutes", "hour", "day", "month", "year"] {
        assert!(element[kind].is_array(), "{kind}: {element}");
    }

    // Up the chain: the topology, alice (its only user), her organization
    // and the host all carry the element's memory.
    let memory = |answer: &Value| singles(answer).last().map(|r| r["usage"]["memory"].as_f64().unwrap()).unwrap();
    let topology = server.call("alice", "topology_usage", vec![json!(tid)]).await.unwrap();
    let account = server.call("alice", "account_usage", vec![json!("alice")]).await.unwrap();
    let organization = server.call("alice", "organization_usage", vec![json!("lab")]).await.unwrap();
    let on_host = server.call("root", "host_usage", vec![json!("host1")]).await.unwrap();
    assert!(memory(&topology) > 0.0, "{topology}");
    assert_eq!(memory(&topology), memory(&account), "{account}");
    assert_eq!(memory(&account), memory(&organization));
    assert!(memory(&on_host) >= memory(&topology));
    // Others may not look: bob is no member, and not alice.
    server.user("bob", "bob-secret", false).await;
    let refused = server.call("bob", "topology_usage", vec![json!(tid)]).await.unwrap_err();
    assert_eq!(refused.kind, "denied", "{refused:?}");
    let refused = server.call("bob", "account_usage", vec![json!("alice")]).await.unwrap_err();
    assert_eq!(refused.kind, "denied", "{refused:?}");
    let refused = server.call("bob", "host_usage", vec![json!("host1")]).await.unwrap_err();
    assert_eq!(refused.kind, "denied", "{refused:?}");

    // account_info shows the quota and this month's use.
    let info = server.call("alice", "account_info", vec![]).await.unwrap();
    assert!(info["quota"]["used"]["memory"].as_f64().unwrap() > 0.0, "{info}");
    assert_eq!(info["quota"]["monthly"]["memory"], 1e9);

    // Over quota: a memory quota below what the container used this month.
    let mut alice = backend.store.user("alice").await.unwrap();
    let used = info["quota"]["used"]["memory"].as_f64().unwrap();
    alice.quota.monthly.memory = used / 2.0;
    backend.store.update_user(&alice).await.unwrap();
    server.call("alice", "topology_action", vec![json!(tid), json!("stop")]).await.unwrap();
    let refused = server.call("alice", "topology_action", vec![json!(tid), json!("start")]).await.unwrap_err();
    assert_eq!(refused.kind, "denied", "{refused:?}");
    assert!(refused.message.contains("start is refused: over quota: memory"), "{}", refused.message);
    let refused = server.call("alice", "element_action", vec![json!(eid), json!("start")]).await.unwrap_err();
    assert!(refused.message.contains("over quota"), "{}", refused.message);
    // What is not gated still works, and so does everything again with a
    // higher quota.
    server.call("alice", "topology_action", vec![json!(tid), json!("destroy")]).await.unwrap();
    alice.quota.monthly.memory = 1e9;
    backend.store.update_user(&alice).await.unwrap();
    server.call("alice", "topology_action", vec![json!(tid), json!("prepare")]).await.unwrap();
    server.call("alice", "topology_action", vec![json!(tid), json!("destroy")]).await.unwrap();
    server.call("alice", "topology_remove", vec![json!(tid)]).await.unwrap();

    // The topology's records went with it; alice's and the organization's stay.
    assert!(backend.store.usage(UsageClass::Topology, &tid.to_string()).await.unwrap().is_none());
    assert!(backend.store.usage(UsageClass::User, "alice").await.unwrap().is_some());
    let left = host.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
}

async fn an_expired_topology_is_stopped_destroyed_and_removed(db: TestDb) {
    if !is_root() {
        return;
    }
    let (host, server, tid, eid) = alice_started("timeout", Duration::from_secs(3600), db).await;
    let backend = &server.backend;
    let state = |e: Value| e["state"].as_str().unwrap().to_string();

    // Not yet due: nothing happens.
    let t = backend.store.topology(tid).await.unwrap();
    handlers::carry_out_timeouts(backend, t.timeout.at - 1).await.unwrap();
    assert_eq!(state(server.call("alice", "element_info", vec![json!(eid)]).await.unwrap()), "started");

    // At the deadline it stops, and refuses a new start.
    let at = t.timeout.at;
    handlers::carry_out_timeouts(backend, at).await.unwrap();
    assert_eq!(state(server.call("alice", "element_info", vec![json!(eid)]).await.unwrap()), "prepared");
    assert_eq!(backend.store.topology(tid).await.unwrap().timeout.step.name(), "stopped");

    // Later destroyed, then removed from the store and the host.
    let c = &backend.timeouts;
    handlers::carry_out_timeouts(backend, at + c.destroy_after).await.unwrap();
    assert_eq!(state(server.call("alice", "element_info", vec![json!(eid)]).await.unwrap()), "created");
    handlers::carry_out_timeouts(backend, at + c.remove_after).await.unwrap();
    assert!(backend.store.topology(tid).await.is_err());
    let h = backend.store.host("host1").await.unwrap();
    assert_eq!(backend.hosts.call(&h, "element_list", vec![]).await.unwrap(), json!([]));
    let left = host.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
    // A pass with nothing left to do is quiet.
    handlers::carry_out_timeouts(backend, now()).await.unwrap();
}
