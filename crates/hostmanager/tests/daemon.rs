//! The hostmanager daemon over mutual TLS: backends are told apart by
//! their certificates, and the fileserver honours one-time grants.
//! Needs root; skipped otherwise.

mod common;

use common::{Daemon, call, is_root};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_second_backend_sees_nothing_of_the_first() {
    if !is_root() {
        return;
    }
    let d = Daemon::start("mtls").await;
    let alice = d.backend("alice", true);
    let bob = d.backend("bob", true);
    let mallory = d.backend("mallory", false);

    let sw = call(&alice, "element_create", json!(["switch"])).await.unwrap();
    let id = sw["id"].as_i64().unwrap();
    let ep = call(&alice, "element_create", json!(["switch_endpoint", id])).await.unwrap();
    call(&alice, "element_action", json!([id, "prepare"])).await.unwrap();

    assert_eq!(call(&bob, "element_list", json!([])).await.unwrap(), json!([]));
    assert_eq!(call(&bob, "connection_list", json!([])).await.unwrap(), json!([]));
    let e = call(&bob, "element_info", json!([id])).await.unwrap_err();
    assert_eq!(e.kind, "entity_does_not_exist");
    let e = call(&bob, "element_action", json!([id, "start"])).await.unwrap_err();
    assert_eq!(e.kind, "entity_does_not_exist");
    let e = call(&bob, "element_create", json!(["switch_endpoint", id])).await.unwrap_err();
    assert_eq!(e.kind, "entity_does_not_exist");
    let e = call(&bob, "element_remove", json!([ep["id"]])).await.unwrap_err();
    assert_eq!(e.kind, "entity_does_not_exist");
    let stats = call(&bob, "accounting_statistics", json!([])).await.unwrap();
    assert_eq!(stats, json!({"elements": {}, "connections": {}}));

    // A certificate of the testbed CA that this host did not accept.
    let e = call(&mallory, "element_list", json!([])).await.unwrap_err();
    assert_eq!(e.kind, "not_accepted");

    // Alice still has everything.
    assert_eq!(call(&alice, "element_list", json!([])).await.unwrap().as_array().unwrap().len(), 2);
    let caps = call(&alice, "host_capabilities", json!([])).await.unwrap();
    assert!(caps["elements"]["switch"].is_object());
    let info = call(&alice, "host_info", json!([])).await.unwrap();
    assert_eq!(info["fileserver_port"], d.fileserver.port());
}
