//! The net-mode live stream: clients get headers then packets, tshark
//! decodes what a client received (from a file and from a socat pipe), and
//! a slow client loses whole batches without holding back anyone else.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capture::{Interface, LiveStream, LiveStreamConfig};
use common::{icmp_echo, tshark_count, tshark_fields, udp};

fn interfaces() -> Vec<Interface> {
    vec![Interface::named("pc1.eth0 -> pc2.eth0"), Interface::named("pc2.eth0 -> pc1.eth0")]
}

fn bind(client_queue_bytes: usize) -> LiveStream {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    LiveStream::bind(addr, &interfaces(), LiveStreamConfig { client_queue_bytes, snaplen: 65535 }).expect("bind")
}

/// Polls until `n` clients are connected.
fn wait_for_clients(stream: &mut LiveStream, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while stream.stats().clients < n {
        assert!(Instant::now() < deadline, "clients did not connect");
        stream.poll();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Polls until every client queue is empty.
fn drain(stream: &mut LiveStream) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream.poll() {
        assert!(Instant::now() < deadline, "clients did not drain");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_client_gets_headers_then_packets_that_tshark_decodes() {
    let mut stream = bind(1 << 20);
    let mut client = TcpStream::connect(stream.local_addr()).expect("connect");
    wait_for_clients(&mut stream, 1);
    for i in 0..20u64 {
        let frame = if i % 2 == 0 { icmp_echo(i as u16) } else { udp(4000, 53, b"q") };
        stream.write_packet(1_000_000_000 * i + 42, (i % 2) as u32, frame.len() as u32, &frame).expect("write");
        if i % 5 == 4 {
            stream.poll();
        }
    }
    drain(&mut stream);
    drop(stream); // Closes the connection, so the client reads to EOF.
    let mut received = Vec::new();
    client.read_to_end(&mut received).expect("read");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.pcapng");
    std::fs::write(&path, &received).expect("write");
    assert_eq!(tshark_count(&path), 20);
    let fields =
        tshark_fields(&path, &["-e", "frame.interface_name", "-e", "frame.time_epoch", "-e", "frame.protocols"]);
    assert_eq!(fields[0], "pc1.eth0 -> pc2.eth0\t0.000000042\teth:ethertype:ip:icmp:data");
    assert_eq!(fields[3], "pc2.eth0 -> pc1.eth0\t3.000000042\teth:ethertype:ip:udp:dns");
}

#[test]
fn tshark_reads_the_live_stream_through_a_socat_pipe() {
    let mut stream = bind(1 << 20);
    // Like the UI's `wireshark -k -i <(nc host port)`, with socat for nc.
    let mut socat = Command::new("socat")
        .args(["-u", &format!("TCP:{}", stream.local_addr()), "STDOUT"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("socat is installed (scripts/test installs it)");
    let tshark = Command::new("tshark")
        .args(["-n", "-r", "-", "-T", "fields", "-e", "frame.number", "-e", "icmp.seq"])
        .stdin(Stdio::from(socat.stdout.take().expect("piped")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark");
    wait_for_clients(&mut stream, 1);
    for seq in 0..50u16 {
        let frame = icmp_echo(seq);
        stream.write_packet(u64::from(seq) * 1_000_000, 0, frame.len() as u32, &frame).expect("write");
        stream.poll();
    }
    drain(&mut stream);
    drop(stream);
    let output = tshark.wait_with_output().expect("tshark output");
    socat.wait().expect("socat exits at EOF");
    let lines: Vec<String> = String::from_utf8(output.stdout).expect("utf-8").lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 50, "tshark stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(lines[49], "50\t49");
}

#[test]
fn a_slow_client_loses_whole_batches_and_a_fast_one_loses_nothing() {
    let mut stream = bind(256 << 10);
    let slow = TcpStream::connect(stream.local_addr()).expect("connect slow");
    let fast = TcpStream::connect(stream.local_addr()).expect("connect fast");
    let fast_peer = fast.local_addr().expect("fast address");
    wait_for_clients(&mut stream, 2);
    let reader = std::thread::spawn(move || {
        let mut fast = fast;
        let mut received = Vec::new();
        fast.read_to_end(&mut received).expect("read fast");
        received
    });
    let fast_queued = |stream: &LiveStream| {
        stream.clients().iter().find(|c| c.peer == fast_peer).expect("fast client connected").queued_bytes
    };
    let frame = udp(1, 2, &[0x5A; 1000]);
    let n_packets = 20_000u64;
    let mut slowest_poll = Duration::ZERO;
    for i in 0..n_packets {
        stream.write_packet(i, 0, frame.len() as u32, &frame).expect("write");
        if i % 16 == 15 {
            let started = Instant::now();
            stream.poll();
            slowest_poll = slowest_poll.max(started.elapsed());
            // Pace the producer to the fast reader (a real one would simply
            // be fast); the slow one never reads while we produce.
            let deadline = Instant::now() + Duration::from_secs(5);
            while fast_queued(&stream) > 0 && Instant::now() < deadline {
                std::thread::yield_now();
                stream.poll();
            }
        }
    }
    stream.poll();
    let clients = stream.clients();
    let slow_dropped = clients.iter().find(|c| c.peer != fast_peer).expect("slow client").dropped;
    println!("slow client: {slow_dropped} of {n_packets} packets dropped; slowest poll {slowest_poll:?}");
    assert!(slow_dropped > 0, "the slow client must lose packets");
    assert!(slow_dropped < n_packets);
    assert_eq!(clients.iter().find(|c| c.peer == fast_peer).expect("fast").dropped, 0);
    assert_eq!(stream.stats().dropped, slow_dropped);

    // Now the slow client reads; what it got must still be a valid stream.
    let slow_reader = std::thread::spawn(move || {
        let mut slow = slow;
        let mut received = Vec::new();
        slow.read_to_end(&mut received).expect("read slow");
        received
    });
    drain(&mut stream);
    drop(stream);
    let dir = tempfile::tempdir().expect("tempdir");
    let fast_path = dir.path().join("fast.pcapng");
    std::fs::write(&fast_path, reader.join().expect("reader")).expect("write");
    assert_eq!(tshark_count(&fast_path) as u64, n_packets, "the fast client got everything");
    let slow_path = dir.path().join("slow.pcapng");
    std::fs::write(&slow_path, slow_reader.join().expect("slow reader")).expect("write");
    assert_eq!(tshark_count(&slow_path) as u64, n_packets - slow_dropped);
}
