//! Root-only integration test of container networking: two busybox
//! containers with `eth0`, their host ends in a test namespace joined by the
//! data plane's engine, ping between them, then a live address change,
//! gateways and removal of an interface. Traffic stays inside namespaces
//! the test made; everything goes with the [`scratch::Scratch`] guard.

mod scratch;

use std::net::Ipv4Addr;
use std::time::Duration;

use container::{InterfaceSpec, Limits, Running};
use dataplane::{EngineConfig, EngineHandle, PacketPort, link_params_from_attrs, parse_assignments};
use scratch::{Scratch, require_root};

fn run(r: &Running, cmd: &str) -> (bool, String) {
    let out = container::execute(r, cmd, Duration::from_secs(20)).expect("execute");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn iface(id: &str, n: u8, ip: Ipv4Addr) -> InterfaceSpec {
    InterfaceSpec {
        name: "eth0".into(),
        mac: [0x02, 0, 0, 0, 0, n],
        host_name: container::host_end_name(id, 0),
        ip4: Some((ip, 24)),
        ip6: Some((format!("fd00::{n}").parse().expect("v6"), 64)),
        dhcp: false,
    }
}

#[test]
fn two_containers_joined_by_the_data_plane_ping_each_other() {
    require_root!();
    let scratch = Scratch::new();
    let rt = scratch::runtime();
    let (a, b) = (scratch.spec("neta", Limits::default()), scratch.spec("netb", Limits::default()));
    let ra = container::start(&a).expect("start a");
    let rb = container::start(&b).expect("start b");
    let (ia, ib) = (iface("neta", 1, Ipv4Addr::new(10, 0, 0, 1)), iface("netb", 2, Ipv4Addr::new(10, 0, 0, 2)));
    let ns = scratch.netns_path();
    rt.block_on(container::add_interface(&ra, &ia, &ns)).expect("eth0 of a");
    rt.block_on(container::add_interface(&rb, &ib, &ns)).expect("eth0 of b");
    // Re-running after a crash keeps the pair.
    rt.block_on(container::add_interface(&rb, &ib, &ns)).expect("eth0 of b again");
    let (_, link) = run(&ra, "ip -o link show eth0; ip -o addr show eth0");
    assert!(
        link.contains("02:00:00:00:00:01") && link.contains("10.0.0.1/24") && link.contains("fd00::1/64"),
        "{link}"
    );
    assert!(link.contains("state UP") || link.contains(",UP"), "{link}");

    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let open = |name: String| {
        dataplane::sys::in_netns(&ns.display().to_string(), move || PacketPort::open(&name))
            .expect("netns")
            .expect("port")
    };
    let (pa, pb) = (open(ia.host_name.clone()), open(ib.host_name.clone()));
    let (ab, ba) =
        link_params_from_attrs(&parse_assignments(["emulation=false"]).expect("attrs")).expect("link params");
    engine.add_link(Box::new(pa), Box::new(pb), ab, ba).expect("link");

    let (ok, out) = run(&ra, "ping -c 3 -W 2 10.0.0.2");
    assert!(ok && out.contains("3 packets received"), "{out}");
    let (ok, out) = run(&rb, "ping -c 2 -W 2 fd00::1");
    assert!(ok && out.contains("2 packets received"), "{out}");

    // A live change replaces the address; gateways come and go.
    let moved = InterfaceSpec { ip4: Some((Ipv4Addr::new(10, 0, 0, 3), 24)), ip6: None, ..ib.clone() };
    rt.block_on(container::configure_interface(&rb, &moved)).expect("configure");
    rt.block_on(container::configure_interface(&rb, &moved)).expect("configure again");
    let (_, addrs) = run(&rb, "ip -o addr show eth0");
    assert!(addrs.contains("10.0.0.3/24") && !addrs.contains("10.0.0.2/") && !addrs.contains("fd00::2"), "{addrs}");
    let (ok, out) = run(&ra, "ping -c 2 -W 2 10.0.0.3");
    assert!(ok, "{out}");
    rt.block_on(container::set_gateways(&ra, Some(Ipv4Addr::new(10, 0, 0, 3)), Some("fd00::2".parse().expect("v6"))))
        .expect("gateways");
    rt.block_on(container::set_gateways(&ra, Some(Ipv4Addr::new(10, 0, 0, 3)), None)).expect("gateways again");
    let (_, routes) = run(&ra, "ip route; ip -6 route");
    assert!(routes.contains("default via 10.0.0.3 dev eth0") && !routes.contains("default via fd00::2"), "{routes}");
    rt.block_on(container::set_gateways(&ra, None, None)).expect("no gateways");
    assert!(!run(&ra, "ip route").1.contains("default"));

    eprint!("{}", engine.shutdown().expect("stats"));
    rt.block_on(container::remove_interface(&ns, &ia.host_name)).expect("remove");
    rt.block_on(container::remove_interface(&ns, &ia.host_name)).expect("remove again");
    assert!(!run(&ra, "ip link show eth0").0, "eth0 went with its host end");
    container::destroy(&a).expect("destroy a");
    container::destroy(&b).expect("destroy b");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !scratch.leftovers().is_empty() {
        assert!(std::time::Instant::now() < deadline, "{:?}", scratch.leftovers());
        std::thread::sleep(Duration::from_millis(20));
    }
}
