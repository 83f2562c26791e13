//! Prints how fast the XML-RPC codec reads and writes typical bodies: a
//! small call as ToMaTo's client sends it, and a `topology_info(full=True)`
//! answer of a 100-element topology. A figure printer, not a test:
//! `cargo run --release -p api --example xmlrpc_throughput`.

use std::time::{Duration, Instant};

use api::xmlrpc::{self, Limits, XmlValue};
use serde_json::{Map, Value, json};

/// Runs `f` repeatedly for about a second; returns runs per second.
fn rate(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..16 {
            f();
        }
        runs += 16;
    }
    runs as f64 / start.elapsed().as_secs_f64()
}

fn topology(elements: usize) -> Value {
    let element = |i: usize| {
        json!({
            "id": format!("5f0c{i:08x}"), "type": "container", "state": "started", "parent": null,
            "children": [format!("5f0d{i:08x}")], "connection": null, "topology": "5f0a",
            "attrs": {"name": format!("pc{i}"), "template": "debian-12", "profile": "normal", "ram": 512,
                      "cpus": 1.0, "vncport": 6000 + i, "vncpassword": "s3cr3t&<>", "_pos": {"x": 10.5 * i as f64, "y": 80}},
        })
    };
    json!({"id": "5f0a", "attrs": {"name": "lab"}, "permissions": {"alice": "owner"},
           "elements": (0..elements).map(element).collect::<Vec<_>>(), "connections": []})
}

fn main() {
    let mut kwargs = Map::new();
    kwargs.insert("attrs".into(), json!({"name": "pc1", "template": "debian-12", "_pos": {"x": 120.5, "y": 80}}));
    let call = xmlrpc::write_call("element_create", &xmlrpc::join_args(&[json!("5f0a"), json!("container")], &kwargs));
    let answer = xmlrpc::write_response(&Ok(topology(100)));
    let parsed = xmlrpc::parse_response(answer.as_bytes(), &Limits::DEFAULT).expect("reads");
    let xmlrpc::Response::Value(value) = parsed else { panic!("not a value") };
    let json = value.to_json();

    let figures = [
        ("read call", call.len(), rate(|| drop(xmlrpc::parse_call(call.as_bytes(), &Limits::DEFAULT)))),
        ("read answer", answer.len(), rate(|| drop(xmlrpc::parse_response(answer.as_bytes(), &Limits::DEFAULT)))),
        ("answer to JSON", answer.len(), rate(|| drop(value.to_json()))),
        ("write answer", answer.len(), rate(|| drop(xmlrpc::write_response(&Ok(json.clone()))))),
        (
            "write answer (XmlValue)",
            answer.len(),
            rate(|| drop(xmlrpc::write_value_response(&XmlValue::from_json(&json)))),
        ),
    ];
    println!("{:<26} {:>9} {:>12} {:>10}", "operation", "bytes", "per second", "MB/s");
    for (name, bytes, per_second) in figures {
        println!("{name:<26} {bytes:>9} {per_second:>12.0} {:>10.1}", per_second * bytes as f64 / 1e6);
    }
}
