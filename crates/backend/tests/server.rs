//! The backend server end to end, each test on SQLite and on PostgreSQL:
//! Python's `xmlrpc.client` in ToMaTo's style against the server in front
//! of a real hostmanager (root only, as the hostmanager's own tests),
//! permissions through the API (no host needed), and a restart of the
//! backend that loses nothing.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;
mod hostd;

use std::time::Duration;

use backend::server::accounting;
use backend::store::UsageClass;
use common::TestDb;
use hostd::{HostDaemon, Server, is_root};
use serde_json::{Value, json};

on_both_databases!(
    python_client_runs_a_topology_on_a_real_host,
    roles_decide_who_sees_and_changes_a_topology,
    administration_and_topology_files_through_python,
    a_restart_loses_nothing_and_the_topology_still_runs,
);

/// A host instance tag per test and database, so the two databases' runs
/// of a test never share a hostmanager instance.
fn tag(test: &str, db: &TestDb) -> String {
    format!("{test}{}", &db.kind()[..1])
}

fn field<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    let line = out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` in\n{out}"));
    line[prefix.len()..].split_whitespace().collect()
}

async fn python_client_runs_a_topology_on_a_real_host(db: TestDb) {
    if !is_root() {
        return;
    }
    let ca = rpc::Ca::create("test CA").unwrap();
    let host = HostDaemon::start(&tag("e2e", &db), &ca).await;
    let server = Server::start(&ca, db).await;
    let registered = server.register(&host).await;
    assert!(registered.element_types.contains("container"), "{registered:?}");
    server.user("alice", "alice-secret", false).await;

    let out = server.python("topology_e2e.py", &[("TOMATO_USER", "alice"), ("TOMATO_PASSWORD", "alice-secret")]).await;
    println!("{out}");
    assert_eq!(field(&out, "account "), ["alice"]);
    // The host refused the attribute: no element in the store either.
    assert_eq!(field(&out, "refused create: "), ["invalid_value", "4"]);
    assert_eq!(field(&out, "link "), ["bridge", "created"]);
    // ToMaTo's order: nodes prepared, then started, then the link.
    assert_eq!(
        field(&out, "start "),
        ["element/prepare", "element/prepare", "element/start", "element/start", "connection/start"]
    );
    let before = field(&out, "rtt before ");
    assert_eq!(before[0], "3", "{out}");
    assert!(before[1].parse::<f64>().unwrap() < 20.0, "{out}");
    assert_eq!(field(&out, "delay_to "), ["20"]);
    let after = field(&out, "rtt after ");
    assert_eq!(after[0], "3", "{out}");
    assert!(after[1].parse::<f64>().unwrap() >= 20.0, "{out}");
    assert_eq!(field(&out, "element "), ["container", "started", "children", "1", "name", "pc2"]);
    assert_eq!(field(&out, "interface "), ["started", "10.0.0.2/24"]);
    assert_eq!(field(&out, "topology "), ["ping", "test", "made", "by", "the", "test"]);
    assert_eq!(field(&out, "stop "), ["connection/stop", "element/stop", "element/stop"]);
    assert_eq!(field(&out, "remove while prepared: "), ["999", "invalid_state"]);
    assert_eq!(field(&out, "topologies left "), ["0"]);

    // Nothing is left: not in the store, not on the host.
    let store = &server.backend.store;
    assert!(store.topologies(None).await.unwrap().is_empty());
    let h = store.host("host1").await.unwrap();
    assert_eq!(server.backend.hosts.call(&h, "element_list", vec![]).await.unwrap(), serde_json::json!([]));
    assert_eq!(server.backend.hosts.call(&h, "connection_list", vec![]).await.unwrap(), serde_json::json!([]));
    let left = host.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
}

async fn roles_decide_who_sees_and_changes_a_topology(db: TestDb) {
    let ca = rpc::Ca::create("test CA").unwrap();
    let server = Server::start(&ca, db).await;
    server.user("alice", "alice-secret", false).await;
    server.user("bob", "bob-secret1", false).await;
    server.user("carol", "carol-secret", false).await;
    server.site().await;
    let out = server
        .python("permissions_e2e.py", &[("ALICE_PASSWORD", "alice-secret"), ("BOB_PASSWORD", "bob-secret1")])
        .await;
    println!("{out}");
    let expect = [
        ("bob info before ", "denied"),
        ("bob modify before ", "denied"),
        ("bob list before ", "0"),
        ("alice grants user ", "ok"),
        ("bob info after ", "ok"),
        ("bob client data after ", "ok"),
        ("bob rename after ", "denied"),
        ("bob grants himself ", "denied"),
        ("bob grants carol manager ", "denied"),
        ("bob list after ", "1"),
        ("no login ", "http 401"),
        ("wrong password ", "http 403"),
        ("open method ", "[4, 0, 0]"),
        ("bad action ", "invalid_value"),
        ("unknown method ", "26"),
        ("register ", "ok"),
        ("register again ", "already_exists"),
        ("register bad attr ", "invalid_value"),
        ("dave flags ", "new_account"),
        ("bob sees alice ", "created name organization realname"),
        ("bob creates host ", "denied"),
        ("json list ", "1"),
        ("json no login ", "401 not_logged_in"),
        ("openapi ", "True False"),
    ];
    for (prefix, want) in expect {
        assert_eq!(field(&out, prefix).join(" "), want, "{prefix}in\n{out}");
    }
}

async fn administration_and_topology_files_through_python(db: TestDb) {
    if !is_root() {
        return;
    }
    let ca = rpc::Ca::create("test CA").unwrap();
    let host = HostDaemon::start(&tag("adm", &db), &ca).await;
    let server = Server::start(&ca, db).await;
    server.register(&host).await;
    server.user("alice", "alice-secret", false).await;
    let out =
        server.python("admin_e2e.py", &[("ROOT_PASSWORD", "root-secret"), ("ALICE_PASSWORD", "alice-secret")]).await;
    println!("{out}");
    let expect = [
        ("org create ", "University"),
        ("org list ", "lab uni"),
        ("org modify ", "Uni KL"),
        ("org bad attr ", "invalid_value"),
        (
            "org bad attr message ",
            "organization_modify: attrs.colour is not allowed; allowed: `label`, `description`, `homepage_url`, `image_url`",
        ),
        ("alice org create ", "denied"),
        ("alice org create message ", "CreateOrganization needs global_admin or global_host_manager"),
        ("site create ", "uni"),
        ("site list ", "kl"),
        ("site modify ", "the lab"),
        ("site bad value ", "invalid_value"),
        ("site bad value message ", "site_modify: attrs.location must be a string, not 5"),
        ("alice site create ", "denied"),
        ("carol flags ", "orga_admin"),
        ("list uni ", "carol"),
        ("list admins ", "root"),
        ("carol list uni ", "1"),
        ("carol list all ", "denied"),
        ("carol creates dave ", "ok"),
        ("carol grants global ", "denied"),
        ("carol grants herself admin ", "denied"),
        ("carol sets over_quota ", "over_quota"),
        ("carol modifies alice ", "denied"),
        ("alice self ", "Alice A. alice@lab.example True"),
        ("alice self flag ", "denied"),
        (
            "alice self flag message ",
            "you may not change the flag global_admin of this account; you may change: nomails",
        ),
        ("alice ignore flag ", "nomails"),
        ("alice quota ", "denied"),
        ("alice bad key ", "invalid_value"),
        ("alice new password ", "alice"),
        ("alice removes carol ", "denied"),
        (
            "flags ",
            "23 error_management manager_host_global manager_host_orga manager_user_global manager_user_orga user",
        ),
        ("flag configuration ", "6"),
        ("roles ", "manager null owner user Owner"),
        ("template list ", "debian"),
        ("template modify ", "True"),
        ("template info ", "5"),
        ("template bad tech ", "invalid_value"),
        ("template bad tech message ", "`type`: `vm` is not a template type; allowed: full, container, repy"),
        ("template bad value ", "invalid_value"),
        ("template bad value message ", "template_modify: attrs.preference must be an integer, not \"high\""),
        ("alice template create ", "denied"),
        ("alice template create message ", "ManageTemplatesAndProfiles needs global_admin"),
        ("profile ", "256 1.0 2.0"),
        ("profile list ", "small"),
        ("profile bad ram ", "invalid_value"),
        ("alice profile remove ", "denied"),
        ("network ", "internet 10"),
        ("network info ", "Internet"),
        ("alice network create ", "denied"),
        ("after removal ", "0 0 0"),
        ("template gone ", "entity_does_not_exist"),
        ("host info ", "site1"),
        ("host modify ", "host1"),
        ("alice host modify ", "denied"),
        ("host bad attr ", "invalid_value"),
        ("remove uni in use ", "not_empty"),
        ("remove uni in use message ", "organization `uni` still has 2 users"),
        ("remove site1 in use ", "not_empty"),
        ("remove site1 in use message ", "site `site1` still has 1 hosts"),
        ("carol removes dave ", "ok"),
        ("uni removed ", "ok"),
        ("uni gone ", "entity_does_not_exist"),
        ("capabilities ", "True True"),
        ("capabilities container ", "container True"),
        ("capabilities bridge ", "True"),
        ("capabilities unknown ", "unsupported_type"),
        ("capabilities no host ", "entity_does_not_exist"),
        ("export ", "4 4 1 exchange"),
        ("export ids ", "pc1 pc1.eth0 pc2 pc2.eth0"),
        ("import ", "4 1 0 True"),
        ("roundtrip ", "True"),
        ("imported info ", "exchange 4"),
        ("import bad ", "invalid_value"),
        ("import version ", "invalid_value"),
        (
            "import version message ",
            "topology_import: `data` has 1 problem(s): file: `file_information.version`: 9 is not supported; supported versions: 3, 4",
        ),
        ("topologies ", "2"),
        ("root export ", "denied"),
        ("topologies left ", "0"),
    ];
    for (prefix, want) in expect {
        assert_eq!(field(&out, prefix).join(" "), want, "{prefix}in\n{out}");
    }
    // A bad file names every problem at once and creates nothing.
    let bad = field(&out, "import bad message ").join(" ");
    assert!(bad.contains("2 problem(s)") && bad.contains("`ram`") && bad.contains("`delay_to`"), "{bad}");
    assert!(field(&out, "capabilities unknown message ").join(" ").contains("toaster"), "{out}");
    assert!(server.backend.store.topologies(None).await.unwrap().is_empty());
    let h = server.backend.store.host("host1").await.unwrap();
    assert_eq!(server.backend.hosts.call(&h, "element_list", vec![]).await.unwrap(), serde_json::json!([]));
}

/// What the store holds about the test's topology and everything around
/// it, read straight from the store.
#[derive(Debug, PartialEq)]
struct Stored {
    users: Vec<backend::store::User>,
    topology: backend::store::Topology,
    members: Vec<backend::permissions::Member>,
    elements: Vec<backend::store::Element>,
    connections: Vec<backend::store::Connection>,
    host: backend::store::Host,
    usage: Vec<Option<::accounting::UsageStatistics>>,
}

async fn stored(server: &Server, tid: i64, eid: i64) -> Stored {
    let s = &server.backend.store;
    let usage_of = [
        (UsageClass::Element, eid.to_string()),
        (UsageClass::Topology, tid.to_string()),
        (UsageClass::User, "alice".to_string()),
        (UsageClass::Organization, "lab".to_string()),
        (UsageClass::Host, "host1".to_string()),
    ];
    let mut usage = Vec::new();
    for (class, key) in usage_of {
        usage.push(s.usage(class, &key).await.unwrap());
    }
    Stored {
        users: s.users(None).await.unwrap(),
        topology: s.topology(tid).await.unwrap(),
        members: s.members(tid).await.unwrap(),
        elements: s.elements(tid).await.unwrap(),
        connections: s.connections(tid).await.unwrap(),
        host: s.host("host1").await.unwrap(),
        usage,
    }
}

/// What the API answers about the topology: its full info and each
/// component's, as alice and as bob (a manager), and its usage.
async fn answered(server: &Server, tid: i64, elements: &[i64], link: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for user in ["alice", "bob"] {
        out.push(server.call(user, "topology_info", vec![json!(tid), json!(true)]).await.unwrap());
    }
    for id in elements {
        out.push(server.call("alice", "element_info", vec![json!(id)]).await.unwrap());
    }
    out.push(server.call("alice", "connection_info", vec![json!(link)]).await.unwrap());
    out.push(server.call("alice", "topology_usage", vec![json!(tid)]).await.unwrap());
    out.push(server.call("root", "host_info", vec![json!("host1")]).await.unwrap());
    out
}

/// Users, a started topology of two containers on a real host with usage
/// charged; the server stops and a new `Backend` opens the same database:
/// the store and the API show the same, and the topology still pings,
/// stops, is destroyed and removed.
async fn a_restart_loses_nothing_and_the_topology_still_runs(db: TestDb) {
    if !is_root() {
        return;
    }
    let ca = rpc::Ca::create("test CA").unwrap();
    let host = HostDaemon::start_with_chores(&tag("rst", &db), &ca, Duration::from_secs(1)).await;
    let server = Server::start(&ca, db).await;
    server.register(&host).await;
    server.user("alice", "alice-secret", false).await;
    server.user("bob", "bob-secret", false).await;
    let call = |user: &'static str, method: &'static str, args: Vec<Value>| {
        let server = &server;
        async move { server.call(user, method, args).await.unwrap() }
    };
    let tid = call("alice", "topology_create", vec![]).await["id"].as_i64().unwrap();
    call("alice", "topology_modify", vec![json!(tid), json!({"name": "restart", "_notes": "kept"})]).await;
    let mut elements = Vec::new();
    let mut interfaces = Vec::new();
    for addr in ["10.0.0.1/24", "10.0.0.2/24"] {
        let ct = call("alice", "element_create", vec![json!(tid), json!("container")]).await;
        let ct = ct["id"].as_i64().unwrap();
        let attrs = json!({"ip4address": addr, "_label": addr});
        let ifc =
            call("alice", "element_create", vec![json!(tid), json!("container_interface"), json!(ct), attrs]).await;
        elements.extend([ct, ifc["id"].as_i64().unwrap()]);
        interfaces.push(ifc["id"].clone());
    }
    let link =
        call("alice", "connection_create", vec![interfaces[0].clone(), interfaces[1].clone(), json!({"delay_to": 5})])
            .await["id"]
            .as_i64()
            .unwrap();
    call("alice", "topology_set_permission", vec![json!(tid), json!("bob"), json!("manager")]).await;
    call("alice", "topology_action", vec![json!(tid), json!("start")]).await;
    // Usage sampled by the host and charged up the chain.
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        accounting::pull_all(&server.backend).await.unwrap();
        let usage = call("alice", "element_usage", vec![json!(elements[0])]).await;
        if usage["single"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
    }
    // The API's answers first: bob's first login writes his `last_login`.
    let answers = answered(&server, tid, &elements, link).await;
    let before = stored(&server, tid, elements[0]).await;
    assert!(before.usage.iter().all(Option::is_some), "{:?}", before.usage);
    assert_eq!(before.members.len(), 2);

    let server = server.restart(&ca).await;
    // The store first (a login after the restart verifies the password
    // again and writes `last_login`), then the API.
    assert_eq!(stored(&server, tid, elements[0]).await, before);
    let again = answered(&server, tid, &elements, link).await;
    for (was, is) in answers.iter().zip(&again) {
        assert_eq!(was, is);
    }
    assert_eq!(answers.len(), again.len());

    // Still actionable: the host's states agree, the link carries pings
    // (delay 5 ms), and the topology stops, is destroyed and removed.
    let call = |user: &'static str, method: &'static str, args: Vec<Value>| {
        let server = &server;
        async move { server.call(user, method, args).await.unwrap() }
    };
    for id in &elements {
        let info = call("alice", "element_info", vec![json!(id), json!(true)]).await;
        assert_eq!(info["state"], "started", "{info}");
    }
    let ping = call(
        "bob",
        "element_action",
        vec![json!(elements[0]), json!("execute"), json!({"cmd": "ping -c 2 -i 0.2 10.0.0.2"})],
    )
    .await;
    let output = ping["output"].as_str().unwrap_or_default();
    assert!(output.contains("2 packets received"), "{ping}");
    let steps = call("alice", "topology_action", vec![json!(tid), json!("stop")]).await;
    assert_eq!(steps["steps"].as_array().unwrap().len(), 3, "{steps}");
    call("alice", "topology_action", vec![json!(tid), json!("destroy")]).await;
    call("alice", "topology_remove", vec![json!(tid)]).await;
    assert!(server.backend.store.topologies(None).await.unwrap().is_empty());
    let h = server.backend.store.host("host1").await.unwrap();
    assert_eq!(server.backend.hosts.call(&h, "element_list", vec![]).await.unwrap(), json!([]));
    let left = host.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
}
