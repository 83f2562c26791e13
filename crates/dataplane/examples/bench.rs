//! Measures the data plane against Linux and prints the figures (no
//! assertions): iperf3 TCP through an unimpaired link of ours vs a Linux
//! bridge joining the same namespaces, ping RTT through our link vs a direct
//! veth, and memory per idle link and per switch port.
//!
//! Run as root: `cargo run --release -p dataplane --example bench`.

use std::time::Duration;

use dataplane::lab::{Lab, iperf3, is_root, ping_rtt, run};
use dataplane::{EngineConfig, EngineHandle, Port, link_params_from_attrs, parse_assignments};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn ping_avg(lab: &Lab, from: usize, addr: &str) -> f64 {
    let _ = lab.exec(from, "ping", &["-c", "3", "-i", "0.05", addr]);
    let out = lab.exec(from, "ping", &["-c", "200", "-i", "0.01", "-q", addr]).expect("ping");
    ping_rtt(&String::from_utf8_lossy(&out.stdout)).map_or(f64::NAN, |(_, avg, _)| avg)
}

fn main() {
    if !is_root() {
        eprintln!("needs root");
        return;
    }
    let secs = 5;
    let lab = Lab::new(2).expect("namespaces");

    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let (ab, ba) = link_params_from_attrs(&parse_assignments(["emulation=false"]).expect("attrs")).expect("params");
    engine.add_link(Box::new(lab.port(0).expect("port")), Box::new(lab.port(1).expect("port")), ab, ba).expect("link");
    let ours_rtt = ping_avg(&lab, 0, &lab.addr(1));
    let ours = iperf3(&lab, 0, 1, secs).expect("iperf3 through our link");
    let stats = engine.shutdown().expect("stats");
    print!("{stats}");

    lab.linux_bridge().expect("bridge");
    let bridge_rtt = ping_avg(&lab, 0, &lab.addr(1));
    let bridge = iperf3(&lab, 0, 1, secs).expect("iperf3 through a Linux bridge");
    lab.remove_linux_bridge().expect("remove bridge");

    let (h0, h1) = (lab.ns_host(0), lab.ns_host(1));
    run("ip", &["link", "add", "d0", "netns", &h0, "type", "veth", "peer", "name", "d1", "netns", &h1]).expect("veth");
    run("ip", &["-n", &h0, "addr", "add", "10.79.0.1/24", "dev", "d0"]).expect("addr");
    run("ip", &["-n", &h1, "addr", "add", "10.79.0.2/24", "dev", "d1"]).expect("addr");
    run("ip", &["-n", &h0, "link", "set", "d0", "up"]).expect("up");
    run("ip", &["-n", &h1, "link", "set", "d1", "up"]).expect("up");
    std::thread::sleep(Duration::from_millis(200));
    let direct_rtt = ping_avg(&lab, 0, "10.79.0.2");

    println!("iperf3 TCP {secs} s, one stream:");
    println!("  our link (no impairment): {:.2} Gbit/s", ours / 1e9);
    println!("  Linux bridge:             {:.2} Gbit/s", bridge / 1e9);
    println!("  ratio ours/bridge:        {:.2}", ours / bridge);
    println!("ping RTT avg (200 pings, -i 0.01):");
    println!("  our link:     {ours_rtt:.3} ms");
    println!("  Linux bridge: {bridge_rtt:.3} ms");
    println!("  direct veth:  {direct_rtt:.3} ms");
    drop(lab);

    // Memory: idle links and switch ports on real packet ports.
    let n = 50;
    let lab = Lab::new(2 * n).expect("namespaces");
    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let ports: Vec<_> = (0..2 * n).map(|i| lab.port(i).expect("port")).collect();
    let before = rss_kib();
    let mut ports = ports.into_iter();
    while let (Some(a), Some(b)) = (ports.next(), ports.next()) {
        let (ab, ba) = link_params_from_attrs(&parse_assignments(["delay_to=10"]).expect("attrs")).expect("params");
        engine.add_link(Box::new(a), Box::new(b), ab, ba).expect("link");
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib();
    let stats = engine.stats().expect("stats");
    let heap = stats.links.iter().map(|l| l.heap_bytes).sum::<usize>() / n;
    println!(
        "{n} idle links: RSS +{} KiB = {:.1} KiB per link (netem queues {heap} B per link)",
        after - before,
        (after - before) as f64 / n as f64
    );
    drop(engine);

    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let ports: Vec<Box<dyn Port>> = (0..2 * n).map(|i| Box::new(lab.port(i).expect("port")) as Box<dyn Port>).collect();
    let before = rss_kib();
    engine.add_switch(netem::SwitchMode::Learning, ports).expect("switch");
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib();
    let stats = engine.stats().expect("stats");
    println!(
        "switch with {} ports: RSS +{} KiB = {:.2} KiB per port (switch heap {} B)",
        2 * n,
        after - before,
        (after - before) as f64 / (2 * n) as f64,
        stats.switches[0].heap_bytes
    );
}
