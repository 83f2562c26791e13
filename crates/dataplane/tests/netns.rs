//! Root-only integration tests: real traffic (ping, iperf3) between network
//! namespaces joined by the engine through AF_PACKET ports.
//!
//! Each test builds its own namespaces with [`Lab`] (removed on drop, also
//! on panic) and skips with a message when not run as root. The tests share
//! two CPUs with their traffic, so they run one at a time.

use std::sync::Mutex;
use std::time::Duration;

use dataplane::lab::{Lab, iperf3, is_root, ping_counts, ping_rtt};
use dataplane::{
    Direction, EngineConfig, EngineHandle, LinkEnd, LinkId, Port, link_params_from_attrs, parse_assignments,
};
use netem::{ParamsUpdate, SwitchMode};

static SERIAL: Mutex<()> = Mutex::new(());

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (network namespaces, AF_PACKET)");
            return;
        }
    };
}

/// A lab of two hosts joined by one link with these attributes.
fn linked(attrs: &[&str]) -> (Lab, EngineHandle, LinkId) {
    let lab = Lab::new(2).expect("namespaces");
    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let (ab, ba) =
        link_params_from_attrs(&parse_assignments(attrs.iter().copied()).expect("key=value")).expect("valid attrs");
    let a = lab.port(0).expect("port j0");
    let b = lab.port(1).expect("port j1");
    let id = engine.add_link(Box::new(a), Box::new(b), ab, ba).expect("link");
    (lab, engine, id)
}

fn ping(lab: &Lab, from: usize, to: usize, args: &[&str]) -> String {
    let to = lab.addr(to);
    let mut all = args.to_vec();
    all.push(&to);
    let out = lab.command(from, "ping", &all).output().expect("ping runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn delay_10ms_each_way_gives_20ms_rtt() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, engine, _) = linked(&["delay_to=10", "delay_from=10", "bandwidth_to=0", "bandwidth_from=0"]);
    ping(&lab, 0, 1, &["-c", "2", "-i", "0.1"]);
    let out = ping(&lab, 0, 1, &["-c", "30", "-i", "0.05"]);
    let (min, avg, max) = ping_rtt(&out).expect("rtt line");
    eprintln!("delay 10+10 ms: rtt min/avg/max = {min}/{avg}/{max} ms");
    assert!(min >= 20.0, "{out}");
    assert!(avg < 22.0, "{out}");
    eprint!("{}", engine.shutdown().expect("stats"));
}

#[test]
fn five_percent_loss_loses_about_five_percent() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, engine, _) = linked(&["lossratio_from=5", "bandwidth_to=0", "bandwidth_from=0", "seed=42"]);
    ping(&lab, 0, 1, &["-c", "3", "-i", "0.1"]);
    let out = ping(&lab, 0, 1, &["-c", "1000", "-i", "0.01", "-W", "1"]);
    let (sent, received) = ping_counts(&out).expect("counts");
    let loss = f64::from(sent - received) / f64::from(sent) * 100.0;
    eprintln!("5 % loss link: {sent} sent, {received} received, {loss:.1} % lost");
    assert_eq!(sent, 1000);
    assert!((2.5..=8.0).contains(&loss), "{out}");
    eprint!("{}", engine.shutdown().expect("stats"));
}

#[test]
fn ten_mbit_link_gives_ten_mbit_tcp() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, engine, _) = linked(&["bandwidth_to=10000", "bandwidth_from=10000"]);
    ping(&lab, 0, 1, &["-c", "2", "-i", "0.1"]);
    let rate = iperf3(&lab, 0, 1, 5).expect("iperf3");
    eprintln!("10 Mbit/s link: iperf3 TCP {:.2} Mbit/s", rate / 1e6);
    eprint!("{}", engine.shutdown().expect("stats"));
    assert!((9.0e6..=11.0e6).contains(&rate), "rate {rate}");
}

#[test]
fn changing_delay_live_loses_no_ping() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, engine, id) = linked(&["delay_to=10", "delay_from=10", "bandwidth_to=0", "bandwidth_from=0"]);
    ping(&lab, 0, 1, &["-c", "2", "-i", "0.1"]);
    let mut pinger = lab.command(0, "ping", &["-c", "300", "-i", "0.01", "-W", "2", &lab.addr(1)]);
    let pinger = std::thread::spawn(move || pinger.output());
    std::thread::sleep(Duration::from_millis(1000));
    for d in [Direction::AToB, Direction::BToA] {
        engine
            .set_link_params(id, d, ParamsUpdate { delay_ms: Some(50.0), ..ParamsUpdate::default() })
            .expect("update");
    }
    let out = pinger.join().expect("thread").expect("ping runs");
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let (sent, received) = ping_counts(&out).expect("counts");
    let (min, _, max) = ping_rtt(&out).expect("rtt");
    eprintln!("live 10 -> 50 ms: {sent} sent, {received} received, rtt min {min} max {max}");
    assert_eq!(sent, received, "{out}");
    assert!(min >= 20.0 && max >= 100.0, "{out}");
    let last: Vec<f64> =
        out.lines().filter_map(|l| l.split("time=").nth(1)?.split(' ').next()?.parse().ok()).rev().take(10).collect();
    assert!(last.iter().all(|rtt| *rtt >= 100.0), "last RTTs {last:?}");
    let stats = engine.shutdown().expect("stats");
    assert_eq!(stats.links[0].params[0].delay_ms, 50.0);
}

fn switched(mode: SwitchMode) -> (Lab, EngineHandle) {
    let lab = Lab::new(3).expect("namespaces");
    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let ports: Vec<Box<dyn Port>> = (0..3).map(|i| Box::new(lab.port(i).expect("port")) as Box<dyn Port>).collect();
    engine.add_switch(mode, ports).expect("switch");
    (lab, engine)
}

#[test]
fn a_switch_of_three_lets_all_ping_each_other() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, engine) = switched(SwitchMode::Learning);
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                let out = ping(&lab, from, to, &["-c", "3", "-i", "0.05", "-W", "1"]);
                assert_eq!(ping_counts(&out), Some((3, 3)), "h{from} -> h{to}: {out}");
            }
        }
    }
    // Unicast is not flooded once learnt: h2 sees little of h0 <-> h1.
    let before = engine.stats().expect("stats").switches[0].ports[2].1.tx.frames;
    ping(&lab, 0, 1, &["-c", "50", "-i", "0.01"]);
    let after = engine.stats().expect("stats").switches[0].ports[2].1.tx.frames;
    eprint!("{}", engine.shutdown().expect("stats"));
    assert!(after - before < 10, "port 2 got {} frames", after - before);
}

/// Host `i`'s IPv6 link-local address, once duplicate address detection
/// is over.
fn link_local(lab: &Lab, i: usize) -> String {
    let dev = format!("e{i}");
    for _ in 0..50 {
        let out = lab.exec(i, "ip", &["-6", "addr", "show", "dev", &dev, "scope", "link"]).expect("ip runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let addr = text.split_whitespace().skip_while(|w| *w != "inet6").nth(1);
        if let Some(addr) = addr.filter(|_| !text.contains("tentative")) {
            return addr.split('/').next().unwrap_or(addr).to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("h{i} has no IPv6 link-local address out of DAD");
}

#[test]
fn ipv6_neighbour_discovery_reaches_only_the_solicited_host() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, engine) = switched(SwitchMode::Learning);
    let target = link_local(&lab, 2);
    link_local(&lab, 0);
    link_local(&lab, 1);
    // Every host has reported its groups by now (MLD goes out with DAD).
    let before = engine.stats().expect("stats").switches[0].clone();
    let out = lab.exec(0, "ping", &["-6", "-c", "3", "-i", "0.05", "-W", "1", &format!("{target}%e0")]).expect("ping");
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(ping_counts(&out), Some((3, 3)), "h0 -> h2 over IPv6: {out}");
    let after = engine.stats().expect("stats").switches[0].clone();
    eprint!("{}", engine.shutdown().expect("stats"));
    let c = after.counters;
    eprintln!("mld messages {}, frames sent by group {}", c.mld_messages, c.group_forwarded);
    assert!(c.mld_messages >= 3, "each host's MLD reports were snooped: {c:?}");
    assert!(c.group_forwarded > before.counters.group_forwarded, "the solicitation went by group: {c:?}");
    // The neighbour solicitation to h2's group did not reach h1.
    let to_h1 = after.ports[1].1.tx.frames - before.ports[1].1.tx.frames;
    assert_eq!(to_h1, 0, "h1 got {to_h1} frames of h0 <-> h2");
}

#[test]
fn a_hub_floods_unicast() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, engine) = switched(SwitchMode::Hub);
    ping(&lab, 0, 1, &["-c", "2", "-i", "0.05"]);
    let before = engine.stats().expect("stats").switches[0].ports[2].1.tx.frames;
    let out = ping(&lab, 0, 1, &["-c", "50", "-i", "0.01"]);
    assert_eq!(ping_counts(&out), Some((50, 50)), "{out}");
    let after = engine.stats().expect("stats").switches[0].ports[2].1.tx.frames;
    eprint!("{}", engine.shutdown().expect("stats"));
    // Requests and replies both reach the third port.
    assert!(after - before >= 100, "port 2 got {} frames", after - before);
}

#[test]
fn two_hosts_linked_to_a_switch_with_10ms_each_way_ping_at_40ms() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let sw = engine.add_switch(SwitchMode::Learning, Vec::new()).expect("switch");
    let attrs = parse_assignments(["delay_to=10", "delay_from=10", "emulation=true"]).expect("key=value");
    for i in 0..2 {
        let (ab, ba) = link_params_from_attrs(&attrs).expect("valid attrs");
        let port = Box::new(lab.port(i).expect("port"));
        engine.add_link_ends(LinkEnd::Port(port), LinkEnd::Switch(sw), ab, ba).expect("link");
    }
    ping(&lab, 0, 1, &["-c", "2", "-i", "0.1"]);
    let out = ping(&lab, 0, 1, &["-c", "20", "-i", "0.05"]);
    let (min, avg, _) = ping_rtt(&out).expect("rtt line");
    eprintln!("two links of 10 ms each way through a switch: rtt min/avg = {min}/{avg} ms");
    assert!(min >= 40.0 && avg < 43.0, "{out}");
    let stats = engine.shutdown().expect("stats");
    eprint!("{stats}");
    assert_eq!(stats.switches[0].counters.learned, 2);
}
