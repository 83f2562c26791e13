//! The host core through its method table, without TLS: ownership,
//! lifecycle rules, errors and restart. Needs root (the hostmanager makes
//! its own network namespace); skipped otherwise.

use hostmanager::methods::dispatch;
use hostmanager::{Host, HostConfig};
use serde_json::{Map, Value, json};

/// A hostmanager in a temp dir whose namespace is removed on drop.
struct TestHost {
    dir: tempfile::TempDir,
    instance: String,
}

impl TestHost {
    fn new(tag: &str) -> Option<TestHost> {
        if !dataplane::lab::is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        let instance = format!("t{}{tag}", std::process::id());
        Some(TestHost { dir: tempfile::tempdir().ok()?, instance })
    }

    fn config(&self) -> HostConfig {
        HostConfig {
            data_dir: self.dir.path().to_path_buf(),
            instance: self.instance.clone(),
            address: "127.0.0.1".into(),
            fileserver_port: 0,
            capture_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            rextfv_max_size: hostmanager::nlxtp::DEFAULT_MAX_SIZE,
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = hostmanager::netns::remove(&format!("tomato-{}", self.instance));
    }
}

async fn call(host: &Host, owner: &str, method: &str, args: Value) -> Result<Value, hostmanager::HostError> {
    let args = args.as_array().cloned().unwrap_or_default();
    dispatch(host, owner, method, args, Map::new()).await
}

#[tokio::test]
async fn backends_see_only_their_own_entities() {
    let Some(t) = TestHost::new("own") else { return };
    let (host, _) = Host::open(t.config()).await.unwrap();
    let sw = call(&host, "alice", "element_create", json!(["switch"])).await.unwrap();
    let id = sw["id"].as_i64().unwrap();
    assert_eq!(sw["state"], "created");
    assert_eq!(sw["attrs"]["mode"], "switch");
    let ep = call(&host, "alice", "element_create", json!(["switch_endpoint", id, {"vlan": 5}])).await.unwrap();
    assert_eq!(ep["parent"], id);

    // Bob sees nothing and cannot touch Alice's switch: same answer as a
    // missing id.
    assert_eq!(call(&host, "bob", "element_list", json!([])).await.unwrap(), json!([]));
    for (method, args) in [
        ("element_info", json!([id])),
        ("element_modify", json!([id, {"mode": "hub"}])),
        ("element_action", json!([id, "prepare"])),
        ("element_remove", json!([id])),
        ("element_create", json!(["switch_endpoint", id])),
    ] {
        let e = call(&host, "bob", method, args).await.unwrap_err();
        assert_eq!(e.kind.name(), "entity_does_not_exist", "{method}: {e}");
        let missing = call(&host, "bob", "element_info", json!([99999])).await.unwrap_err();
        assert_eq!(e.kind, missing.kind);
    }
    assert_eq!(call(&host, "alice", "element_list", json!([])).await.unwrap().as_array().unwrap().len(), 2);
    let stats = call(&host, "bob", "accounting_statistics", json!([])).await.unwrap();
    assert_eq!(stats, json!({"elements": {}, "connections": {}}));
}

#[tokio::test]
async fn the_model_decides_what_is_allowed() {
    let Some(t) = TestHost::new("rules") else { return };
    let (host, _) = Host::open(t.config()).await.unwrap();
    let e = call(&host, "a", "element_create", json!(["kvmqm"])).await.unwrap_err();
    assert_eq!(e.kind.name(), "unsupported_type");
    assert!(e.message.contains("offers"), "{e}");
    let e = call(&host, "a", "element_create", json!(["switch", null, {"mode": "router"}])).await.unwrap_err();
    assert!(e.message.contains("mode") && e.message.contains("hub"), "{e}");
    let e = call(&host, "a", "element_create", json!(["switch", null, {"colour": 1}])).await.unwrap_err();
    assert_eq!(e.kind.name(), "unsupported_attribute");
    let sw = call(&host, "a", "element_create", json!(["tinc_vpn"])).await.unwrap();
    let id = sw["id"].as_i64().unwrap();
    assert_eq!(sw["type"], "switch");
    let e = call(&host, "a", "element_action", json!([id, "stop"])).await.unwrap_err();
    assert_eq!(e.kind.name(), "invalid_state");
    assert!(e.message.contains("started"), "{e}");
    let e = call(&host, "a", "element_action", json!([id, "fly"])).await.unwrap_err();
    assert_eq!(e.kind.name(), "unsupported_action");
    assert!(e.message.contains("prepare"), "{e}");
    for (action, state) in [("prepare", "prepared"), ("start", "started")] {
        call(&host, "a", "element_action", json!([id, action])).await.unwrap();
        assert_eq!(call(&host, "a", "element_info", json!([id])).await.unwrap()["state"], state);
    }
    let e = call(&host, "a", "element_modify", json!([id, {"mode": "hub"}])).await.unwrap_err();
    assert_eq!(e.kind.name(), "invalid_state");
    let e = call(&host, "a", "element_remove", json!([id])).await.unwrap_err();
    assert_eq!(e.kind.name(), "invalid_state");
    // Endpoints follow the switch's state; a connection joins two of them.
    let p1 = call(&host, "a", "element_create", json!(["switch", null])).await.unwrap()["id"].as_i64().unwrap();
    let e1 = call(&host, "a", "element_create", json!(["switch_endpoint", p1])).await.unwrap()["id"].as_i64().unwrap();
    let e2 = call(&host, "a", "element_create", json!(["switch_endpoint", p1])).await.unwrap()["id"].as_i64().unwrap();
    let e = call(&host, "a", "connection_create", json!([p1, e1])).await.unwrap_err();
    assert!(e.message.contains("cannot be connected"), "{e}");
    let c = call(&host, "a", "connection_create", json!([e1, e2, null, {"delay_to": 5}])).await.unwrap();
    assert_eq!(c["elements"], json!([e1, e2]));
    let e = call(&host, "a", "connection_create", json!([e1, e2])).await.unwrap_err();
    assert!(e.message.contains("already connected"), "{e}");
    let e = call(&host, "a", "connection_modify", json!([c["id"], {"lossratio_to": 200}])).await.unwrap_err();
    assert!(e.message.contains("lossratio_to"), "{e}");
    // Removing the switch removes its endpoints and the connection.
    call(&host, "a", "element_remove", json!([p1])).await.unwrap();
    assert_eq!(call(&host, "a", "connection_list", json!([])).await.unwrap(), json!([]));
    let caps = call(&host, "a", "host_capabilities", json!([])).await.unwrap();
    assert!(caps["elements"]["switch"]["actions"]["start"].is_object());
    assert!(caps["connections"]["bridge"]["attributes"]["delay_to"].is_object());
    let info = call(&host, "a", "host_info", json!([])).await.unwrap();
    assert!(info["resources"]["memory"]["total"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn an_interrupted_action_is_finished_after_a_restart() {
    let Some(t) = TestHost::new("restart") else { return };
    let id = {
        let (host, _) = Host::open(t.config()).await.unwrap();
        let id = call(&host, "a", "element_create", json!(["switch"])).await.unwrap()["id"].as_i64().unwrap();
        call(&host, "a", "element_action", json!([id, "prepare"])).await.unwrap();
        host.shutdown().await;
        id
    };
    // Simulate a crash between "pending written" and "state written".
    {
        let store = hostmanager::store::Store::open(&t.dir.path().join("store.sqlite")).await.unwrap();
        let mut e = store.entities().await.unwrap().into_iter().find(|e| e.id == id).unwrap();
        e.pending = Some("start".into());
        store.update(&e).await.unwrap();
    }
    let (host, recovery) = Host::open(t.config()).await.unwrap();
    assert_eq!(recovery.finished, vec![(id, "start".to_string())]);
    let info = call(&host, "a", "element_info", json!([id])).await.unwrap();
    assert_eq!(info["state"], "started");
}
