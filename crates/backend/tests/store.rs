//! The store against both databases: every scenario runs on SQLite and on
//! PostgreSQL (see `common` for how the PostgreSQL cluster is made).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};

use accounting::{RecordType, Sample, Usage, UsageStatistics};
use backend::permissions::{Flag, Role};
use backend::placement::{LocationPrefs, Requirements, rank};
use backend::quota::Quota;
use backend::store::{
    Connection, Element, Host, Network, Organization, Profile, Site, Store, StoreError, Template, Topology, UsageClass,
    User,
};
use backend::timeouts::{TimeoutConfig, TopologyTimeout};
use common::TestDb;
use model::{Attrs, State};
use serde_json::json;

const NOW: i64 = 1_780_000_000;
const FINGERPRINT: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

on_both_databases!(
    a_restart_loses_nothing,
    bad_values_name_their_field,
    names_are_unique_and_references_must_exist,
    removals_are_whole_and_refused_while_in_use,
    failed_writes_leave_nothing,
    topologies_keep_an_owner,
    passwords_are_checked,
    placement_sees_what_the_store_holds,
    concurrent_writers_all_land,
);

fn attrs(v: serde_json::Value) -> Attrs {
    serde_json::from_value(v).unwrap()
}

fn org(name: &str) -> Organization {
    Organization {
        name: name.into(),
        label: format!("The {name}"),
        description: "Researchers\nand students".into(),
        homepage_url: "https://example.org".into(),
        image_url: String::new(),
    }
}

fn site(name: &str, organization: &str) -> Site {
    Site {
        name: name.into(),
        organization: organization.into(),
        label: name.to_uppercase(),
        location: "Kaiserslautern".into(),
        description: String::new(),
    }
}

fn host_info(loadavg5: f64, cpus: u64) -> serde_json::Value {
    json!({
        "address": "10.0.0.1",
        "resources": {
            "cpus_present": {"count": cpus, "bogomips_avg": 5000, "model": "x"},
            "memory": {"total": "8000000000", "used": "2000000000"},
            "loadavg": [0.1, loadavg5, 0.3],
            "diskspace": {"root": {"total": 1e11, "used": 1e10}, "data": {"total": 1e12, "used": 1e11}}
        }
    })
}

fn polled_host(name: &str, site: &str, n: u16) -> Host {
    let mut h = Host::new(name, site, &format!("10.0.0.{n}"), &format!("https://{name}:8000"), FINGERPRINT);
    h.last_poll = Some(NOW);
    h.element_types = ["container", "container_interface"].iter().map(|s| s.to_string()).collect();
    h.connection_types = BTreeSet::from(["bridge".to_string()]);
    h.network_kinds = BTreeSet::from(["internet".to_string()]);
    h.host_info = host_info(1.0, 4);
    h
}

fn new_topology(name: &str) -> Topology {
    Topology {
        id: 0,
        name: name.into(),
        site: None,
        timeout: TopologyTimeout::new(NOW, &TimeoutConfig::tomato()),
        client_data: Attrs::new(),
        created: NOW,
        permissions: BTreeMap::new(),
    }
}

fn element(topology: i64, kind: &str, parent: Option<i64>, a: serde_json::Value) -> Element {
    Element {
        id: 0,
        topology,
        kind: kind.into(),
        parent,
        state: State::Created,
        attrs: attrs(a),
        host: None,
        host_id: None,
    }
}

fn connection(topology: i64, ends: [i64; 2]) -> Connection {
    Connection {
        id: 0,
        topology,
        kind: "bridge".into(),
        ends,
        state: State::Created,
        attrs: attrs(json!({"delay_to": 10, "lossratio_from": 0.5, "_color": "red"})),
        host: None,
        host_id: None,
    }
}

/// One organization "uni" with users alice (owner) and bob, site "kl".
async fn basics(s: &Store) {
    s.create_organization(&org("uni")).await.unwrap();
    s.create_site(&site("kl", "uni")).await.unwrap();
    for name in ["alice", "bob"] {
        s.create_user(&User::new(name, "uni", name, &format!("{name}@uni.example"), NOW), "correct horse")
            .await
            .unwrap();
    }
}

/// A container with one interface, a switch with one port, joined.
async fn small_topology(s: &Store, owner: &str) -> (Topology, Vec<Element>, Connection) {
    let t = s.create_topology(&new_topology("lab 1"), owner).await.unwrap();
    let c = s
        .create_element(&element(t.id, "container", None, json!({"name": "web", "_pos": {"x": 10, "y": 20}})))
        .await
        .unwrap();
    let eth0 =
        s.create_element(&element(t.id, "container_interface", Some(c.id), json!({"name": "eth0"}))).await.unwrap();
    let sw = s.create_element(&element(t.id, "tinc_vpn", None, json!({"name": "sw"}))).await.unwrap();
    let port = s.create_element(&element(t.id, "switch_endpoint", Some(sw.id), json!({}))).await.unwrap();
    let con = s.create_connection(&connection(t.id, [eth0.id, port.id])).await.unwrap();
    (t, vec![c, eth0, sw, port], con)
}

fn stats(begin: f64, samples: u32) -> UsageStatistics {
    let mut u = UsageStatistics::new(begin);
    for i in 0..samples {
        let t = begin + 60.0 * f64::from(i);
        u.record(
            t,
            t + 60.0,
            &Sample { cputime: 3.0 * f64::from(i), traffic: 1000.0 * f64::from(i), memory: 5e8, diskspace: 1e9 },
        );
    }
    u
}

async fn a_restart_loses_nothing(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    s.create_organization(&org("other")).await.unwrap();
    let mut alice = s.user("alice").await.unwrap();
    alice.flags.set(Flag::GlobalToplUser, true);
    alice.flags.set(Flag::RestrictedTemplates, true);
    alice.quota = Quota { monthly: Usage { cputime: 1.5e6, memory: 2e9, diskspace: 3e10, traffic: 4e11 } };
    alice.client_data = attrs(json!({"_editor_grid": true, "_recent": [1, 2, {"deep": null}]}));
    alice.last_login = Some(NOW - 5);
    s.update_user(&alice).await.unwrap();

    let mut h = polled_host("h1", "kl", 1);
    h.problems = vec!["Node just booted".into()];
    h.description = "rack 3".into();
    h.component_errors = 2;
    h.availability = 0.75;
    s.create_host(&h).await.unwrap();
    let mut tpl = Template::new("container", "debian12", &["https://templates.example/debian12.tar.zst"]);
    tpl.checksum = Some(format!("sha256:{FINGERPRINT}"));
    tpl.size = Some(123_456_789);
    tpl.kblang = Some("de".into());
    tpl.restricted = true;
    tpl.preference = 10;
    tpl.popularity = 2.5;
    tpl.show_as_common = true;
    tpl.nlxtp_installed = true;
    tpl.hosts = BTreeSet::from(["h1".to_string()]);
    tpl.id = s.create_template(&tpl).await.unwrap();
    let mut prof = Profile {
        id: 0,
        kind: "repy".into(),
        name: "tiny".into(),
        label: "Tiny".into(),
        description: "a quarter CPU".into(),
        ram: 50,
        cpus: 0.25,
        diskspace: 0,
        restricted: false,
        preference: -1,
    };
    prof.id = s.create_profile(&prof).await.unwrap();
    let net = Network {
        kind: "internet/uplink".into(),
        label: "Uplink".into(),
        description: String::new(),
        preference: 5,
        restricted: true,
        show_as_common: true,
    };
    s.create_network(&net).await.unwrap();

    let (mut t, mut elements, mut con) = small_topology(&s, "alice").await;
    s.set_permission(t.id, "bob", Role::Manager).await.unwrap();
    t.permissions.insert("bob".into(), Role::Manager);
    t.client_data = attrs(json!({"_notes": "ping from web to sw", "_safe_mode": false, "_layout": {"zoom": 1.25}}));
    t.site = Some("kl".into());
    t.timeout = t.timeout.renew(NOW, 3 * 86_400, Role::Owner, false, &TimeoutConfig::tomato()).unwrap();
    s.update_topology(&t).await.unwrap();
    elements[0].state = State::Prepared;
    elements[0].host = Some("h1".into());
    elements[0].host_id = Some(4711);
    elements[0].attrs.insert("_notes".into(), json!("keep me"));
    s.update_element(&elements[0]).await.unwrap();
    con.state = State::Started;
    con.host = Some("h1".into());
    con.host_id = Some(4712);
    s.update_connection(&con).await.unwrap();
    let usage = stats(NOW as f64, 20);
    s.save_usage(UsageClass::Element, &elements[0].id.to_string(), &usage).await.unwrap();
    s.save_usages(&[
        (UsageClass::User, "alice".into(), usage.clone()),
        (UsageClass::Topology, t.id.to_string(), usage.clone()),
    ])
    .await
    .unwrap();

    // "Restart": drop every connection and open the database again.
    s.close().await;
    drop(s);
    let s = db.open().await;

    assert_eq!(s.organizations().await.unwrap(), vec![org("other"), org("uni")]);
    assert_eq!(s.user("alice").await.unwrap(), alice);
    assert_eq!(s.users(Some("uni")).await.unwrap().len(), 2);
    assert_eq!(s.sites(None).await.unwrap(), vec![site("kl", "uni")]);
    assert_eq!(s.host("h1").await.unwrap(), h);
    assert_eq!(s.template("container", "debian12").await.unwrap(), tpl);
    assert_eq!(s.profile("repy", "tiny").await.unwrap(), prof);
    assert_eq!(s.template_by_id(tpl.id).await.unwrap(), tpl);
    assert_eq!(s.profile_by_id(prof.id).await.unwrap(), prof);
    assert_eq!(s.profile_by_id(prof.id + 1000).await.unwrap_err().code(), "entity_does_not_exist");
    assert_eq!(s.networks().await.unwrap(), vec![net]);
    assert_eq!(s.topology(t.id).await.unwrap(), t);
    assert_eq!(s.topologies(Some("bob")).await.unwrap(), vec![t.clone()]);
    assert_eq!(s.elements(t.id).await.unwrap(), elements);
    assert_eq!(s.connections(t.id).await.unwrap(), vec![con]);
    let back = s.usage(UsageClass::Element, &elements[0].id.to_string()).await.unwrap().unwrap();
    assert_eq!(back, usage);
    assert_eq!(back.query(RecordType::Single, None, None).len(), 15);
    assert_eq!(s.usage(UsageClass::User, "alice").await.unwrap(), Some(usage));
    assert_eq!(s.usage(UsageClass::User, "nobody").await.unwrap(), None);
    assert!(s.login("alice", "correct horse", NOW).await.unwrap().is_some());
}

fn invalid_field(e: StoreError) -> (String, String) {
    match e {
        StoreError::InvalidValue { field, message } => (field, message),
        other => panic!("expected invalid_value, got {other:?}"),
    }
}

async fn bad_values_name_their_field(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    let e = s.create_organization(&org("no spaces")).await.unwrap_err();
    assert_eq!(e.code(), "invalid_value");
    assert_eq!(
        e.to_string(),
        "`name`: `no spaces` is not a name; allowed: 1 to 64 letters, digits, `_`, `-` and `.`, starting with a letter or digit"
    );
    let mut u = User::new("carol", "uni", "Carol", "not-an-address", NOW);
    assert_eq!(invalid_field(s.create_user(&u, "long enough").await.unwrap_err()).0, "email");
    u.email = "carol@uni.example".into();
    let (field, message) = invalid_field(s.create_user(&u, "short").await.unwrap_err());
    assert_eq!((field.as_str(), message.as_str()), ("password", "too short; allowed: at least 8 characters"));
    u.client_data = attrs(json!({"notes": 1}));
    assert_eq!(invalid_field(s.create_user(&u, "long enough").await.unwrap_err()).0, "client_data.notes");
    u.client_data = Attrs::new();
    u.quota.monthly.traffic = -1.0;
    let (field, message) = invalid_field(s.create_user(&u, "long enough").await.unwrap_err());
    assert_eq!(field, "quota");
    assert!(message.contains("quota.monthly.traffic"), "{message}");

    let mut h = polled_host("h1", "kl", 1);
    h.fingerprint = "abc".into();
    assert_eq!(invalid_field(s.create_host(&h).await.unwrap_err()).0, "fingerprint");
    h.fingerprint = FINGERPRINT.into();
    h.rpcurl = "h1:8000".into();
    let (field, message) = invalid_field(s.create_host(&h).await.unwrap_err());
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("rpcurl", "`h1:8000` is not an API URL; allowed: https://HOST:PORT")
    );

    let (field, message) = invalid_field(s.create_template(&Template::new("vm", "x", &[])).await.unwrap_err());
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("type", "`vm` is not a template type; allowed: full, container, repy")
    );
    let (field, _) = invalid_field(s.create_template(&Template::new("full", "x", &["ftp://x"])).await.unwrap_err());
    assert_eq!(field, "urls[0]");
    let mut t = Template::new("full", "x", &[]);
    t.kblang = Some("xx".into());
    let (_, message) = invalid_field(s.create_template(&t).await.unwrap_err());
    assert_eq!(message, "`xx` is not allowed; allowed: en-us, en-gb, de, fr, ja");
    let p = Profile {
        id: 0,
        kind: "full".into(),
        name: "huge".into(),
        label: String::new(),
        description: String::new(),
        ram: 0,
        cpus: 1.0,
        diskspace: 1,
        restricted: false,
        preference: 0,
    };
    assert_eq!(
        invalid_field(s.create_profile(&p).await.unwrap_err()),
        ("ram".into(), "0 is not allowed; allowed: 1 to 1048576 MB".into())
    );
    let n = Network {
        kind: "a/b/c".into(),
        label: String::new(),
        description: String::new(),
        preference: 0,
        restricted: false,
        show_as_common: false,
    };
    assert_eq!(invalid_field(s.create_network(&n).await.unwrap_err()).0, "kind");

    let mut top = new_topology("  ");
    assert_eq!(invalid_field(s.create_topology(&top, "alice").await.unwrap_err()).0, "name");
    top.name = "ok".into();
    top.client_data = attrs(json!({"_": 1}));
    assert_eq!(invalid_field(s.create_topology(&top, "alice").await.unwrap_err()).0, "client_data._");
    let t = s.create_topology(&new_topology("ok"), "alice").await.unwrap();
    let (field, message) =
        invalid_field(s.create_element(&element(t.id, "toaster", None, json!({}))).await.unwrap_err());
    assert_eq!(field, "type");
    assert!(message.contains("toaster") && message.contains("container"), "{message}");
    // A connection kind is not an element kind, and the other way round.
    assert_eq!(invalid_field(s.create_element(&element(t.id, "bridge", None, json!({}))).await.unwrap_err()).0, "type");
    // ToMaTo's names resolve to ours.
    let vm = s.create_element(&element(t.id, "openvz", None, json!({}))).await.unwrap();
    assert_eq!(vm.kind, "container");
    let a = s.create_element(&element(t.id, "openvz_interface", Some(vm.id), json!({}))).await.unwrap();
    assert_eq!(a.kind, "container_interface");
    let (field, message) = invalid_field(s.create_connection(&connection(t.id, [a.id, a.id])).await.unwrap_err());
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("elements", &*format!("element {} cannot be connected to itself", a.id))
    );
    let mut c = connection(t.id, [a.id, 999_999]);
    assert_eq!(invalid_field(s.create_connection(&c).await.unwrap_err()).0, "element2");
    c.kind = "container".into();
    assert_eq!(invalid_field(s.create_connection(&c).await.unwrap_err()).0, "type");
}

async fn names_are_unique_and_references_must_exist(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    let e = s.create_organization(&org("uni")).await.unwrap_err();
    assert_eq!((e.code(), e.to_string()), ("already_exists", "organization `uni` already exists".into()));
    let e = s.create_user(&User::new("alice", "uni", "A", "", NOW), "another pass").await.unwrap_err();
    assert_eq!(e.to_string(), "user `alice` already exists");
    let e = s.create_user(&User::new("zed", "nowhere", "Z", "", NOW), "zzzzzzzz").await.unwrap_err();
    assert_eq!(invalid_field(e), ("organization".into(), "organization `nowhere` does not exist".into()));
    assert_eq!(invalid_field(s.create_site(&site("x", "nowhere")).await.unwrap_err()).0, "organization");
    assert_eq!(invalid_field(s.create_host(&polled_host("h1", "nowhere", 1)).await.unwrap_err()).0, "site");
    s.create_host(&polled_host("h1", "kl", 1)).await.unwrap();
    let mut same_name = polled_host("h1", "kl", 2);
    same_name.rpcurl = "https://h1b:8000".into();
    assert_eq!(s.create_host(&same_name).await.unwrap_err().to_string(), "host `h1` already exists");
    let mut twin = polled_host("h2", "kl", 2);
    twin.rpcurl = "https://h1:8000".into();
    assert_eq!(invalid_field(s.create_host(&twin).await.unwrap_err()).0, "rpcurl");
    s.create_template(&Template::new("full", "x", &[])).await.unwrap();
    s.create_template(&Template::new("container", "x", &[])).await.unwrap();
    assert_eq!(
        s.create_template(&Template::new("full", "x", &[])).await.unwrap_err().to_string(),
        "template `full/x` already exists"
    );

    for e in [
        s.user("ghost").await.unwrap_err(),
        s.organization("ghost").await.unwrap_err(),
        s.site("ghost").await.unwrap_err(),
        s.host("ghost").await.unwrap_err(),
        s.template("full", "ghost").await.unwrap_err(),
        s.profile("full", "ghost").await.unwrap_err(),
        s.network("ghost").await.unwrap_err(),
        s.topology(424_242).await.unwrap_err(),
        s.element(424_242).await.unwrap_err(),
        s.connection(424_242).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), "entity_does_not_exist", "{e}");
        assert!(e.to_string().ends_with("does not exist"), "{e}");
    }
    assert_eq!(invalid_field(s.create_topology(&new_topology("t"), "ghost").await.unwrap_err()).0, "owner");
    let mut t = new_topology("t");
    t.site = Some("ghost".into());
    assert_eq!(invalid_field(s.create_topology(&t, "alice").await.unwrap_err()).0, "site");
    let t = s.create_topology(&new_topology("t"), "alice").await.unwrap();
    let mut e = element(t.id, "container", None, json!({}));
    e.host = Some("ghost".into());
    assert_eq!(invalid_field(s.create_element(&e).await.unwrap_err()).0, "host");
    // A parent or an end in another topology is refused.
    let other = s.create_topology(&new_topology("other"), "bob").await.unwrap();
    let vm = s.create_element(&element(other.id, "container", None, json!({}))).await.unwrap();
    let (field, message) = invalid_field(
        s.create_element(&element(t.id, "container_interface", Some(vm.id), json!({}))).await.unwrap_err(),
    );
    assert_eq!((field, message), ("parent".into(), format!("element {} belongs to topology {}", vm.id, other.id)));
    let (_, mine, _) = small_topology(&s, "alice").await;
    let foreign = s.create_element(&element(other.id, "container_interface", Some(vm.id), json!({}))).await.unwrap();
    let free =
        s.create_element(&element(mine[0].topology, "container_interface", Some(mine[0].id), json!({}))).await.unwrap();
    assert_eq!(
        invalid_field(s.create_connection(&connection(free.topology, [free.id, foreign.id])).await.unwrap_err()).0,
        "element2"
    );
    // An interface carries one connection.
    let e = s.create_connection(&connection(free.topology, [free.id, mine[1].id])).await.unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        ("already_connected", format!("element {} is already connected", mine[1].id))
    );
}

async fn removals_are_whole_and_refused_while_in_use(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    s.create_host(&polled_host("h1", "kl", 1)).await.unwrap();
    let (t, elements, con) = small_topology(&s, "alice").await;
    let (_, other_elements, other_con) = small_topology(&s, "bob").await;
    let u = stats(NOW as f64, 3);
    for e in &elements {
        s.save_usage(UsageClass::Element, &e.id.to_string(), &u).await.unwrap();
    }
    s.save_usage(UsageClass::Connection, &con.id.to_string(), &u).await.unwrap();
    s.save_usage(UsageClass::Element, &other_elements[0].id.to_string(), &u).await.unwrap();

    // The organization has users and sites, the site a host, the host an element.
    let e = s.remove_organization("uni").await.unwrap_err();
    assert_eq!((e.code(), e.to_string()), ("not_empty", "organization `uni` still has 2 users".into()));
    assert_eq!(s.remove_site("kl").await.unwrap_err().to_string(), "site `kl` still has 1 hosts");
    let mut placed = elements[0].clone();
    placed.host = Some("h1".into());
    s.update_element(&placed).await.unwrap();
    assert_eq!(s.remove_host("h1").await.unwrap_err().to_string(), "host `h1` still has 1 elements");

    // Removing the container takes its interface and that interface's connection.
    let (gone, gone_cons) = s.remove_element(elements[0].id).await.unwrap();
    assert_eq!(gone, vec![elements[0].id, elements[1].id]);
    assert_eq!(gone_cons, vec![con.id]);
    assert_eq!(s.elements(t.id).await.unwrap(), elements[2..].to_vec());
    assert!(s.connections(t.id).await.unwrap().is_empty());
    assert_eq!(s.usage(UsageClass::Element, &elements[0].id.to_string()).await.unwrap(), None);
    assert_eq!(s.usage(UsageClass::Connection, &con.id.to_string()).await.unwrap(), None);
    assert!(s.usage(UsageClass::Element, &elements[2].id.to_string()).await.unwrap().is_some());

    // Removing the topology takes everything of it and nothing else.
    s.remove_topology(t.id).await.unwrap();
    assert_eq!(s.topology(t.id).await.unwrap_err().code(), "entity_does_not_exist");
    assert!(s.elements(t.id).await.unwrap().is_empty());
    assert_eq!(s.usage(UsageClass::Element, &elements[2].id.to_string()).await.unwrap(), None);
    assert_eq!(s.topologies(None).await.unwrap().len(), 1);
    assert_eq!(s.connections(other_con.topology).await.unwrap(), vec![other_con.clone()]);
    assert!(s.usage(UsageClass::Element, &other_elements[0].id.to_string()).await.unwrap().is_some());
    assert_eq!(s.remove_topology(t.id).await.unwrap_err().code(), "entity_does_not_exist");

    s.remove_connection(other_con.id).await.unwrap();
    assert_eq!(s.remove_connection(other_con.id).await.unwrap_err().code(), "entity_does_not_exist");
    s.remove_host("h1").await.unwrap();
    s.remove_site("kl").await.unwrap();
    assert!(s.hosts(None).await.unwrap().is_empty());
}

async fn failed_writes_leave_nothing(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    let (t, elements, _) = small_topology(&s, "alice").await;
    let before_elements = s.elements(t.id).await.unwrap();
    let before_connections = s.connections(t.id).await.unwrap();
    let before_topologies = s.topologies(None).await.unwrap();
    // Each of these fails part way through its checks.
    assert!(s.create_connection(&connection(t.id, [elements[1].id, elements[3].id])).await.is_err());
    assert!(s.create_topology(&new_topology("t2"), "ghost").await.is_err());
    assert!(s.create_user(&User::new("dave", "ghost", "D", "", NOW), "dddddddd").await.is_err());
    // The last owner stays even when asked to go.
    assert!(s.set_permission(t.id, "alice", Role::User).await.is_err());
    assert!(s.remove_user("alice").await.is_err());
    assert_eq!(s.elements(t.id).await.unwrap(), before_elements);
    assert_eq!(s.connections(t.id).await.unwrap(), before_connections);
    assert_eq!(s.topologies(None).await.unwrap(), before_topologies);
    assert_eq!(s.user("dave").await.unwrap_err().code(), "entity_does_not_exist");
    assert_eq!(s.topology(t.id).await.unwrap().permissions, BTreeMap::from([("alice".to_string(), Role::Owner)]));
    assert_eq!(s.users(None).await.unwrap().len(), 2);
    // Updates of missing objects say so and create nothing.
    let mut ghost = elements[0].clone();
    ghost.id = 999_999;
    assert_eq!(s.update_element(&ghost).await.unwrap_err().code(), "entity_does_not_exist");
    let mut ghost_user = User::new("ghost", "uni", "", "", NOW);
    ghost_user.realname = "x".into();
    assert_eq!(s.update_user(&ghost_user).await.unwrap_err().code(), "entity_does_not_exist");
    assert_eq!(s.users(None).await.unwrap().len(), 2);
}

async fn topologies_keep_an_owner(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    s.create_organization(&org("other")).await.unwrap();
    s.create_user(&User::new("carol", "other", "Carol", "", NOW), "cccccccc").await.unwrap();
    let t = s.create_topology(&new_topology("shared"), "alice").await.unwrap();
    s.set_permission(t.id, "bob", Role::User).await.unwrap();
    s.set_permission(t.id, "carol", Role::Manager).await.unwrap();
    let members = s.members(t.id).await.unwrap();
    let got: Vec<(&str, &str, Role)> =
        members.iter().map(|m| (m.user.as_str(), m.organization.as_str(), m.role)).collect();
    assert_eq!(got, [("alice", "uni", Role::Owner), ("bob", "uni", Role::User), ("carol", "other", Role::Manager)]);
    let e = s.set_permission(t.id, "alice", Role::Manager).await.unwrap_err();
    assert_eq!(
        invalid_field(e).1,
        format!("`alice` is the last owner of topology {}; a topology keeps an owner", t.id)
    );
    s.set_permission(t.id, "carol", Role::Owner).await.unwrap();
    s.set_permission(t.id, "alice", Role::Null).await.unwrap();
    assert_eq!(s.topology(t.id).await.unwrap().permissions.get("alice"), None);
    assert!(s.topologies(Some("alice")).await.unwrap().is_empty());
    assert_eq!(invalid_field(s.set_permission(t.id, "ghost", Role::User).await.unwrap_err()).0, "user");
    // Carol alone owns it, so she stays; bob only uses it, so he may go.
    let e = s.remove_user("carol").await.unwrap_err();
    assert_eq!(e.to_string(), format!("user `carol` still has topologies it alone owns: {}", t.id));
    s.remove_user("bob").await.unwrap();
    assert_eq!(s.members(t.id).await.unwrap().len(), 1);
    assert_eq!(s.remove_user("bob").await.unwrap_err().code(), "entity_does_not_exist");
}

async fn passwords_are_checked(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    assert_eq!(s.user("alice").await.unwrap().last_login, None);
    let u = s.login("alice", "correct horse", NOW + 7).await.unwrap().unwrap();
    assert_eq!(u.last_login, Some(NOW + 7));
    assert!(s.login("alice", "correct horsE", NOW).await.unwrap().is_none());
    assert!(s.login("nobody", "correct horse", NOW).await.unwrap().is_none());
    s.set_password("alice", "battery staple").await.unwrap();
    assert!(s.login("alice", "correct horse", NOW).await.unwrap().is_none());
    assert!(s.login("alice", "battery staple", NOW).await.unwrap().is_some());
    // Same password, different account: no shared hash.
    assert!(s.login("bob", "battery staple", NOW).await.unwrap().is_none());
    assert_eq!(s.set_password("ghost", "long enough").await.unwrap_err().code(), "entity_does_not_exist");
    assert_eq!(s.set_password("alice", "short").await.unwrap_err().code(), "invalid_value");
}

async fn placement_sees_what_the_store_holds(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    s.create_site(&site("bs", "uni")).await.unwrap();
    let mut busy = polled_host("busy", "kl", 1);
    busy.host_info = host_info(3.0, 4); // load 0.75
    s.create_host(&busy).await.unwrap();
    s.create_host(&polled_host("idle", "bs", 2)).await.unwrap(); // load 0.25 (memory)
    let mut off = polled_host("off", "kl", 3);
    off.enabled = false;
    s.create_host(&off).await.unwrap();
    s.create_host(&Host::new("fresh", "kl", "10.0.0.4", "https://fresh:8000", FINGERPRINT)).await.unwrap();
    let mut tpl = Template::new("container", "debian12", &[]);
    tpl.hosts = ["busy", "idle", "off", "fresh"].iter().map(|s| s.to_string()).collect();
    s.create_template(&tpl).await.unwrap();
    let (_, elements, con) = small_topology(&s, "alice").await;
    for e in &elements[..2] {
        let mut e = e.clone();
        e.host = Some("idle".into());
        s.update_element(&e).await.unwrap();
    }
    let mut con = con;
    con.host = Some("idle".into());
    s.update_connection(&con).await.unwrap();

    let views = s.placement_hosts().await.unwrap();
    let by_name: BTreeMap<&str, _> = views.iter().map(|v| (v.name.as_str(), v)).collect();
    assert_eq!(by_name["idle"].elements, 2);
    assert_eq!(by_name["idle"].connections, 1);
    assert_eq!(by_name["busy"].elements, 0);
    assert_eq!(by_name["busy"].load.value(), 0.75);
    assert_eq!(by_name["idle"].load.value(), 0.25);
    assert_eq!(by_name["off"].problems, ["Manually disabled"]);
    assert_eq!(by_name["fresh"].problems, ["Never polled"]);
    assert!(by_name["idle"].templates.contains("debian12"));

    let req = Requirements {
        element_types: BTreeSet::from(["container".to_string()]),
        template: Some("debian12".into()),
        ..Requirements::default()
    };
    let ranked = rank(&views, &req, &LocationPrefs::default()).unwrap();
    // idle: -25 load, 2 elements vs average 1: -10, 1 connection vs 0.5: -10;
    // busy: -75 load, +10, +10.
    let got: Vec<(&str, f64)> = ranked.iter().map(|s| (s.host.as_str(), s.total)).collect();
    assert_eq!(got, [("idle", -45.0), ("busy", -55.0)]);
    let mut req = req;
    req.site = Some("bs".into());
    req.template = Some("ubuntu".into());
    let e = rank(&views, &req, &LocationPrefs::default()).unwrap_err();
    assert!(e.to_string().contains("idle does not hold template ubuntu"), "{e}");
    assert!(e.to_string().contains("busy is in site kl"), "{e}");
}

async fn concurrent_writers_all_land(db: TestDb) {
    let s = db.open().await;
    basics(&s).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let owner = if i % 2 == 0 { "alice" } else { "bob" };
            let t = s.create_topology(&new_topology(&format!("t{i}")), owner).await.unwrap();
            let vm =
                s.create_element(&element(t.id, "container", None, json!({"name": format!("vm{i}")}))).await.unwrap();
            s.save_usage(UsageClass::Element, &vm.id.to_string(), &stats(NOW as f64, 2)).await.unwrap();
            t.id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 24);
    assert_eq!(s.topologies(None).await.unwrap().len(), 24);
    assert_eq!(s.topologies(Some("alice")).await.unwrap().len(), 12);
    for id in ids {
        assert_eq!(s.elements(id).await.unwrap().len(), 1);
    }
}
