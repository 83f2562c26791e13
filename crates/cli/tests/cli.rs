//! The `tomato` binary on real files: exit codes, messages and outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tomato(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tomato")).args(args).output().expect("tomato runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(name: &str) -> String {
    root().join("examples").join(name).to_string_lossy().into_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_every_example_and_tomato_export() {
    let mut files: Vec<String> =
        ["lan.yaml", "router-chain.yaml", "star100.yaml", "vlans-and-internet.yaml"].map(example).into();
    let data = root().join("../shared/data/tomato-topologies");
    for entry in std::fs::read_dir(&data).expect("shared data is beside the checkout") {
        files.push(entry.expect("entry").path().to_string_lossy().into_owned());
    }
    let args: Vec<&str> = ["topology", "validate"].into_iter().chain(files.iter().map(String::as_str)).collect();
    let out = tomato(&args);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().filter(|l| l.contains(": ok (")).count(), files.len());
    assert!(
        text(&out.stdout)
            .contains("star100.yaml: ok (yaml format, 101 elements with 200 interfaces/endpoints, 100 connections)")
    );
}

#[test]
fn validate_reports_every_problem_with_place_and_allowed_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "elements:\n  a: {type: contaner}\n  b:\n    type: container\n    ram: 1\n    interfaces: {eth0: {}}\n  b: {type: switch}\nconnections:\n  - {between: [b.eth0, c.eth0], delay_to: 10}\n",
    )
    .expect("write");
    let out = tomato(&["topology", "validate", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for expected in [
        "4 problem(s)",
        "element a: `type`: unknown type `contaner` (did you mean `container`?); known types: container,",
        "element b: `ram`: 1 is out of range; allowed: a whole number from 8 to 65536 MB, or null",
        "element b: `name`: `b` is used by another element; names must be unique",
        "connection b.eth0 -- c.eth0: `between`: no element `c`",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in\n{err}");
    }
}

#[test]
fn changes_to_a_running_topology_are_checked_against_writable_states() {
    let dir = tempfile::tempdir().expect("tempdir");
    let changed = dir.path().join("changed.yaml");
    let original = std::fs::read_to_string(example("lan.yaml")).expect("example");
    // A live link change is fine while started...
    std::fs::write(&changed, original.replace("lossratio_from: 1", "lossratio_from: 5")).expect("write");
    let out = tomato(&["topology", "validate", changed.to_str().expect("utf-8"), "--against", &example("lan.yaml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok as a change of"), "{}", text(&out.stdout));
    // ...a template change and removing a running container are not.
    let edited = original
        .replace("template: busybox", "template: debian")
        .replace("  pc2:\n    type: container\n    interfaces:\n      eth0: {ip4address: 10.0.0.2/24}\n", "");
    let edited = edited.replace("  - between: [pc2.eth0, sw]\n", "  - between: [sw, sw]\n");
    std::fs::write(&changed, edited.replace("  - between: [sw, sw]\n    # Loss", "    # Loss")).expect("write");
    let out = tomato(&["topology", "validate", changed.to_str().expect("utf-8"), "--against", &example("lan.yaml")]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("element pc1: `template`: cannot change while started; writable in: created"), "{err}");
    assert!(err.contains("element pc2: `(remove)`: cannot be removed while started; allowed in: created"), "{err}");
    // The same change is fine before the topology is prepared.
    let out = tomato(&[
        "topology",
        "validate",
        changed.to_str().expect("utf-8"),
        "--against",
        &example("lan.yaml"),
        "--state",
        "created",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn convert_round_trips_through_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut current = example("router-chain.yaml");
    let first = text(&tomato(&["topology", "convert", &current, "--to", "yaml"]).stdout);
    for (format, ext) in [("json", "json"), ("tomato", "json"), ("yaml", "yaml")] {
        let out = dir.path().join(format!("step-{format}.{ext}"));
        let res = tomato(&["topology", "convert", &current, "--to", format, "-o", out.to_str().expect("utf-8")]);
        assert!(res.status.success(), "{}", text(&res.stderr));
        current = out.to_string_lossy().into_owned();
    }
    assert_eq!(std::fs::read_to_string(&current).expect("read"), first);
    let tomato_json = text(&tomato(&["topology", "convert", &example("lan.yaml"), "--to", "tomato"]).stdout);
    let v: serde_json::Value = serde_json::from_str(&tomato_json).expect("json");
    assert_eq!(v["file_information"]["version"], 4);
    assert_eq!(v["topology"]["elements"][0]["type"], "container");
}

#[test]
fn convert_refuses_a_broken_file() {
    let out = tomato(&[
        "topology",
        "convert",
        &root().join("crates/model/tests/golden/broken-everything.yaml").to_string_lossy(),
        "--to",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("problem(s)"));
}

#[test]
fn plan_prints_ordered_steps() {
    let out = tomato(&["topology", "plan", &example("lan.yaml"), "start"]);
    let steps = text(&out.stdout);
    assert!(out.status.success());
    let first_connection = steps.find("connection").expect("connections are started");
    assert!(steps.rfind("element").expect("elements") < first_connection, "{steps}");
    assert!(steps.starts_with("   1. prepare   element pc1 (created -> prepared)"), "{steps}");
}

#[test]
fn capabilities_in_tomato_shape() {
    let out = tomato(&["capabilities", "openvz", "--json"]);
    assert!(out.status.success());
    let caps: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(caps["name"], "container");
    assert_eq!(caps["attributes"]["template"]["states_writable"], serde_json::json!(["created"]));
    assert_eq!(caps["actions"]["start"]["state_change"], "started");
    assert_eq!(caps["children"]["container_interface"], serde_json::json!(["created", "prepared"]));
    let out = tomato(&["capabilities", "bridge"]);
    assert!(text(&out.stdout).contains("delay_to"), "{}", text(&out.stdout));
    let out = tomato(&["capabilities", "warp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("known types: container"));
    let all: serde_json::Value = serde_json::from_slice(&tomato(&["capabilities", "--json"]).stdout).expect("json");
    assert!(all["connection"]["fixed_bridge"]["attributes"]["lossratio_from"].is_object());
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(tomato(&["topology", "convert", &example("lan.yaml"), "--to", "xml"]).status.code(), Some(2));
    assert_eq!(tomato(&["topology", "plan", &example("lan.yaml"), "explode"]).status.code(), Some(2));
}

fn layout(name: &str) -> String {
    root().join("examples/layouts").join(name).to_string_lossy().into_owned()
}

#[test]
fn topdl_imports_converts_and_validates() {
    let out = tomato(&["topology", "convert", &layout("simple.xml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(yaml.contains("  computer3:\n    type: full\n"), "{yaml}");
    assert!(yaml.contains("startup: /usr/local/bin/run-client"), "{yaml}");
    assert!(yaml.contains("ip4address: 10.1.0.1/24"), "{yaml}");
    let out = tomato(&["topology", "validate", &layout("enterprise.xml"), &layout("recursive.xml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("enterprise.xml: ok (topdl format, 1216 elements"), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("note: substrate right_lan: fewer than two interfaces"),
        "{}",
        text(&out.stderr)
    );
    // Our topology as topdl and back.
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("lan.xml");
    let res =
        tomato(&["topology", "convert", &example("lan.yaml"), "--to", "topdl", "-o", xml.to_str().expect("utf-8")]);
    assert!(res.status.success(), "{}", text(&res.stderr));
    assert!(std::fs::read_to_string(&xml).expect("written").contains("<substrates>"));
    let back = tomato(&["topology", "convert", xml.to_str().expect("utf-8"), "--to", "yaml"]);
    let direct = tomato(&["topology", "convert", &example("lan.yaml"), "--to", "yaml"]);
    assert_eq!(text(&back.stdout), text(&direct.stdout));
}

#[test]
fn layout_expand_shows_every_view() {
    let full = tomato(&["layout", "expand", &layout("recursive.xml")]);
    assert!(full.status.success(), "{}", text(&full.stderr));
    assert!(text(&full.stdout).contains("<name>edge-7</name>"));
    assert!(!text(&full.stdout).contains("<region>"));
    let minimal = tomato(&["layout", "expand", &layout("recursive.xml"), "--view", "minimal", "--outer", "topology"]);
    assert!(text(&minimal.stdout).contains("<topology>\n  <version>2.0</version>"), "{}", text(&minimal.stdout));
    assert!(text(&minimal.stdout).contains("<region>") && !text(&minimal.stdout).contains("<fragments>"));
    let fragment = tomato(&["layout", "expand", &layout("recursive.xml"), "--view", "fragment/F1"]);
    assert!(text(&fragment.stdout).contains("<name>hub</name>"));
    let names = tomato(&["layout", "expand", &layout("recursive.xml"), "--view", "/left"]);
    assert!(text(&names.stdout).contains("<inner>core-router</inner>"), "{}", text(&names.stdout));
    let views = tomato(&["layout", "views", &layout("recursive.xml")]);
    assert_eq!(
        text(&views.stdout),
        "full_layout\nminimal_layout\nfragment/F1\n/left\n/left/left\n/left/right\n/right\n"
    );
    let missing = tomato(&["layout", "expand", &layout("recursive.xml"), "--view", "fragment/F9"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("`F9` is not a fragment; fragments: F1"), "{}", text(&missing.stderr));
    assert_eq!(tomato(&["layout", "expand", &layout("recursive.xml"), "--view", "all"]).status.code(), Some(2));
}

#[test]
fn layout_check_view_accepts_isomorphic_views_and_says_when_it_cannot_decide() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full.xml");
    let full_text = text(&tomato(&["layout", "expand", &layout("recursive.xml")]).stdout);
    // A view with the testbed's provisional names changed is the same layout.
    std::fs::write(&full, full_text.replace("right_hub", "east")).expect("write");
    let out = tomato(&["layout", "check-view", &layout("recursive.xml"), full.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with("isomorphic (7 elements and substrates"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("  east -> right_hub\n"), "{}", text(&out.stdout));
    // Moving right_hub's interface to the other LAN is another layout.
    let moved = dir.path().join("moved.xml");
    let text_moved = full_text.replacen("<substrate>lan</substrate>\n        <name>up</name>\n        <attribute>\n          <attribute>interface_path</attribute>\n          <value>/right/up</value>", "<substrate>left_lan</substrate>\n        <name>up</name>\n        <attribute>\n          <attribute>interface_path</attribute>\n          <value>/right/up</value>", 1);
    assert_ne!(text_moved, full_text);
    std::fs::write(&moved, text_moved).expect("write");
    let out = tomato(&["layout", "check-view", &layout("recursive.xml"), moved.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("not isomorphic: "), "{}", text(&out.stdout));
    let out =
        tomato(&["layout", "check-view", &layout("enterprise.xml"), &layout("enterprise.xml"), "--max-steps", "100"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).starts_with("could not decide in time"), "{}", text(&out.stdout));
}
