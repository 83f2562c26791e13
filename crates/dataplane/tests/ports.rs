//! Root-only integration tests of the tap, QEMU-dgram and UDP tunnel ports
//! with real traffic (ping, iperf3, hand-made frames) between network
//! namespaces.
//!
//! Each test builds its own namespaces with [`Lab`] (removed on drop, also
//! on panic); taps vanish with their port, socket files with theirs, and
//! tunnel traffic stays on the loopback of the lab's engine namespace. The
//! tests skip with a message when not run as root, and run one at a time
//! because they share two CPUs with their traffic.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::lab::{Lab, iperf3, is_root, ping_counts, run};
use dataplane::{
    DgramPort, EngineConfig, EngineHandle, Port, TapPort, TunnelConfig, TunnelCounters, TunnelKey, TunnelPort,
    link_params_from_attrs, parse_assignments,
};
use netem::DirectionParams;

static SERIAL: Mutex<()> = Mutex::new(());

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (network namespaces, taps, AF_PACKET)");
            return;
        }
    };
}

/// Parameters of a link that neither delays nor shapes.
fn plain() -> (DirectionParams, DirectionParams) {
    link_params_from_attrs(&parse_assignments(["bandwidth_to=0", "bandwidth_from=0"]).expect("key=value"))
        .expect("valid attrs")
}

fn join(engine: &EngineHandle, a: Box<dyn Port>, b: Box<dyn Port>) {
    let (ab, ba) = plain();
    engine.add_link(a, b, ab, ba).expect("link");
}

fn ping(lab: &Lab, from: usize, to: &str, count: u32) -> String {
    let count = count.to_string();
    let out = lab.command(from, "ping", &["-c", &count, "-i", "0.05", "-W", "1", to]).output().expect("ping runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_tap_in_a_namespace_pings_both_ways_and_carries_tcp_super_frames() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    // Host 1 gets a tap instead of its veth: h0 --veth-- engine --tap-- h1.
    run("ip", &["-n", &lab.ns_host(1), "link", "del", "e1"]).expect("remove h1's veth");
    let tap = TapPort::create_in("tap1", &format!("/run/netns/{}", lab.ns_host(1))).expect("tap in h1");
    assert_eq!(tap.name(), "tap1");
    let twice = TapPort::create_in("tap1", &format!("/run/netns/{}", lab.ns_host(1)));
    assert!(twice.is_err_and(|e| e.to_string().contains("exists")), "an existing interface is not taken over");
    run("ip", &["-n", &lab.ns_host(1), "addr", "add", "10.77.0.2/24", "dev", "tap1"]).expect("address");
    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    join(&engine, Box::new(lab.port(0).expect("port j0")), Box::new(tap));

    assert_eq!(ping_counts(&ping(&lab, 0, &lab.addr(1), 5)), Some((5, 5)), "h0 -> tap");
    assert_eq!(ping_counts(&ping(&lab, 1, &lab.addr(0), 5)), Some((5, 5)), "tap -> h0");

    let to_tap = iperf3(&lab, 0, 1, 3).expect("iperf3 h0 -> tap");
    let before = engine.stats().expect("stats").links[0].ports[1].rx;
    let from_tap = iperf3(&lab, 1, 0, 3).expect("iperf3 tap -> h0");
    let after = engine.stats().expect("stats").links[0].ports[1].rx;
    eprintln!("tap: iperf3 TCP veth->tap {:.0} Mbit/s, tap->veth {:.0} Mbit/s", to_tap / 1e6, from_tap / 1e6);
    // The tap hands us TSO super-frames (TUNSETOFFLOAD): on average far
    // more than one MTU per frame read.
    let frames = after.frames - before.frames;
    let per_frame = (after.bytes - before.bytes) / frames.max(1);
    eprintln!("tap: {frames} frames read during tap->veth, {per_frame} bytes each on average");
    assert!(per_frame > 3000, "no super-frames from the tap: {per_frame} bytes per frame");
    assert!(to_tap > 10e6 && from_tap > 10e6, "rates {to_tap} {from_tap}");
    eprint!("{}", engine.shutdown().expect("stats"));
    let gone = run("ip", &["-n", &lab.ns_host(1), "link", "show", "tap1"]);
    assert!(gone.is_err(), "the tap must vanish with its port");
}

/// An ARP reply from `mac`/`ip` to the request `req`.
fn arp_reply(req: &[u8], mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&req[6..12]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip);
    f[32..38].copy_from_slice(&req[22..28]);
    f[38..42].copy_from_slice(&req[28..32]);
    f
}

/// The ICMP echo reply to the echo request `req` (IPv4, no options).
fn echo_reply(req: &[u8]) -> Vec<u8> {
    let mut f = req.to_vec();
    f[0..6].copy_from_slice(&req[6..12]);
    f[6..12].copy_from_slice(&req[0..6]);
    f[26..30].copy_from_slice(&req[30..34]);
    f[30..34].copy_from_slice(&req[26..30]);
    let ip_len = usize::from(u16::from_be_bytes([req[16], req[17]]));
    let icmp = &mut f[34..14 + ip_len];
    icmp[0] = 0;
    icmp[2..4].fill(0);
    let mut sum: u32 = icmp.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    icmp[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f
}

#[test]
fn a_dgram_port_speaks_qemus_framing_both_ways() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(1).expect("namespaces");
    let dir = tempfile::tempdir().expect("tempdir");
    let (ours, qemu) = (dir.path().join("port.sock"), dir.path().join("qemu.sock"));
    // The test is QEMU: `-netdev dgram,local.path=qemu.sock,remote.path=port.sock`.
    let vm = UnixDatagram::bind(&qemu).expect("bind qemu side");
    vm.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    let port = DgramPort::open(&ours, &qemu).expect("dgram port");
    join(&engine, Box::new(lab.port(0).expect("port j0")), Box::new(port));

    let mut pinger = lab.command(0, "ping", &["-c", "3", "-i", "0.2", "-W", "2", "10.77.0.9"]);
    let pinger = std::thread::spawn(move || pinger.output());
    let vm_mac = [2, 0, 0, 0, 0, 9];
    let (mut arps, mut echoes) = (0, 0);
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    while echoes < 3 && start.elapsed() < Duration::from_secs(5) {
        let Ok((len, from)) = vm.recv_from(&mut buf) else { continue };
        assert_eq!(from.as_pathname(), Some(ours.as_path()), "frames come from the port's socket");
        let f = &buf[..len];
        if f[12..14] == [0x08, 0x06] && f[38..42] == [10, 77, 0, 9] && f[21] == 1 {
            arps += 1;
            vm.send_to(&arp_reply(f, vm_mac, [10, 77, 0, 9]), &ours).expect("inject ARP reply");
        } else if f[12..14] == [0x08, 0x00] && f[23] == 1 && f[34] == 8 {
            assert_eq!(&f[0..6], &vm_mac, "the echo request goes to the MAC we announced");
            echoes += 1;
            vm.send_to(&echo_reply(f), &ours).expect("inject echo reply");
        }
    }
    let out = pinger.join().expect("thread").expect("ping runs");
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("dgram: {arps} ARP requests and {echoes} echo requests answered");
    assert!(arps >= 1 && echoes == 3, "{out}");
    assert_eq!(ping_counts(&out), Some((3, 3)), "injected replies reach the namespace: {out}");
    eprint!("{}", engine.shutdown().expect("stats"));
    assert!(!ours.exists(), "the port's socket file is removed with it");
}

/// Addresses on the engine namespace's loopback.
fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Opens a tunnel port inside the lab's engine namespace.
fn tunnel(lab: &Lab, bind: u16, peer: u16, key: u8) -> (TunnelPort, Arc<TunnelCounters>) {
    let config = TunnelConfig { bind: lo(bind), peer: lo(peer), key: TunnelKey::from_bytes([key; 32]) };
    let port = TunnelPort::open_in(&config, &format!("/run/netns/{}", lab.ns_x())).expect("tunnel port");
    let counters = Arc::clone(port.counters());
    (port, counters)
}

/// h0 -- j0 ==link== tunnel A ~~UDP on x's loopback~~ tunnel B ==link== j1 -- h1.
fn tunnelled(
    lab: &Lab,
    a: (u16, u16, u8),
    b: (u16, u16, u8),
) -> (EngineHandle, Arc<TunnelCounters>, Arc<TunnelCounters>) {
    run("ip", &["-n", &lab.ns_x(), "link", "set", "lo", "up"]).expect("loopback up");
    let (ta, ca) = tunnel(lab, a.0, a.1, a.2);
    let (tb, cb) = tunnel(lab, b.0, b.1, b.2);
    let engine = EngineHandle::spawn(EngineConfig::standard()).expect("engine");
    join(&engine, Box::new(lab.port(0).expect("port j0")), Box::new(ta));
    join(&engine, Box::new(tb), Box::new(lab.port(1).expect("port j1")));
    (engine, ca, cb)
}

#[test]
fn a_tunnel_carries_ping_and_tcp_across_udp() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    let (engine, ca, cb) = tunnelled(&lab, (4701, 4702, 1), (4702, 4701, 1));
    assert_eq!(ping_counts(&ping(&lab, 0, &lab.addr(1), 5)), Some((5, 5)));
    assert_eq!(ping_counts(&ping(&lab, 1, &lab.addr(0), 5)), Some((5, 5)));
    let forward = iperf3(&lab, 0, 1, 3).expect("iperf3 h0 -> h1");
    let backward = iperf3(&lab, 1, 0, 3).expect("iperf3 h1 -> h0");
    eprintln!("tunnel: iperf3 TCP h0->h1 {:.0} Mbit/s, h1->h0 {:.0} Mbit/s", forward / 1e6, backward / 1e6);
    eprintln!("tunnel counters: A {:?}\n                 B {:?}", ca.snapshot(), cb.snapshot());
    assert!(forward > 10e6 && backward > 10e6, "rates {forward} {backward}");
    for c in [ca.snapshot(), cb.snapshot()] {
        assert_eq!((c.rejected, c.replayed, c.malformed, c.tx_too_big, c.tx_malformed), (0, 0, 0, 0, 0), "{c:?}");
    }
    eprint!("{}", engine.shutdown().expect("stats"));
}

#[test]
fn a_tunnel_with_the_wrong_key_passes_nothing_and_counts_rejects() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    let (engine, ca, cb) = tunnelled(&lab, (4711, 4712, 1), (4712, 4711, 2));
    let out = ping(&lab, 0, &lab.addr(1), 3);
    assert_eq!(ping_counts(&out), Some((3, 0)), "{out}");
    let (a, b) = (ca.snapshot(), cb.snapshot());
    eprintln!("wrong key: A {a:?}\n           B {b:?}");
    // h0's ARP requests reach B and fail there; nothing authentic arrives.
    assert!(b.rejected >= 1, "{b:?}");
    let stats = engine.shutdown().expect("stats");
    assert_eq!(stats.links[1].ports[0].rx.frames, 0, "B delivered nothing");
    assert_eq!(stats.links[1].ports[1].tx.frames, 0, "h1 got nothing");
}

/// A UDP relay on `at` in the engine namespace between tunnel ends on
/// `a` and `b`, keeping a copy of every datagram it passes to `b`.
struct Relay {
    socket: UdpSocket,
    to_b: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(lab: &Lab, at: u16, a: u16, b: u16) -> Relay {
        let socket = dataplane::sys::in_netns(&format!("/run/netns/{}", lab.ns_x()), move || UdpSocket::bind(lo(at)))
            .expect("netns")
            .expect("relay bind");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let to_b = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sock, copies, halt) = (socket.try_clone().expect("clone"), Arc::clone(&to_b), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !halt.load(Ordering::Relaxed) {
                let Ok((len, from)) = sock.recv_from(&mut buf) else { continue };
                let dest = if from == lo(a) { lo(b) } else { lo(a) };
                if dest == lo(b) {
                    copies.lock().expect("lock").push(buf[..len].to_vec());
                }
                let _ = sock.send_to(&buf[..len], dest);
            }
        });
        Relay { socket, to_b, stop, thread: Some(thread) }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("relay thread");
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_tunnel_rejects_replayed_datagrams() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(2).expect("namespaces");
    // Both ends talk to the relay on 4723, which forwards and records.
    let mut relay = Relay::start(&lab, 4723, 4721, 4722);
    let (engine, _ca, cb) = tunnelled(&lab, (4721, 4723, 1), (4722, 4723, 1));
    assert_eq!(ping_counts(&ping(&lab, 0, &lab.addr(1), 3)), Some((3, 3)), "through the relay");
    relay.stop();
    let captured = relay.to_b.lock().expect("lock").clone();
    assert!(captured.len() >= 3, "{} datagrams captured", captured.len());
    let delivered = engine.stats().expect("stats").links[1].ports[0].rx.frames;
    let before = cb.snapshot();
    for d in &captured {
        relay.socket.send_to(d, lo(4722)).expect("replay");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while cb.snapshot().replayed - before.replayed < captured.len() as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let after = cb.snapshot();
    eprintln!("replay: {} datagrams re-sent; B {after:?}", captured.len());
    assert_eq!(after.replayed - before.replayed, captured.len() as u64);
    assert_eq!(engine.stats().expect("stats").links[1].ports[0].rx.frames, delivered, "no replay delivered");
    eprint!("{}", engine.shutdown().expect("stats"));
}
