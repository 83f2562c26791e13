//! The capture front: a tap on an engine thread feeding the ring or the
//! live stream, counters, run-time reconfiguration, drops when the queue
//! is full, cleanup, and a printed producer-path throughput figure.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use capture::{Capture, CaptureConfig, CaptureError, CaptureMode, CaptureSetup, Counters, Interface};
use common::{arp_request, icmp_echo, tshark_count, tshark_fields, udp};

fn setup(dir: &Path) -> CaptureSetup {
    CaptureSetup {
        interfaces: vec![Interface::named("pc1.eth0 -> sw.port0"), Interface::named("sw.port0 -> pc1.eth0")],
        dir: dir.join("capture"),
        listen: "127.0.0.1:0".parse().expect("addr"),
        snaplen: 65535,
        queue_bytes: 4 << 20,
        client_queue_bytes: 1 << 20,
    }
}

fn config(filter: &str, mode: CaptureMode) -> CaptureConfig {
    CaptureConfig { enabled: true, filter: filter.into(), mode, ..CaptureConfig::tomato_default() }
}

/// Frame `i` of a fixed mix: icmp, udp/53, arp, udp/5000.
fn mixed(i: u64) -> Vec<u8> {
    match i % 4 {
        0 => icmp_echo(i as u16),
        1 => udp(40000, 53, b"query"),
        2 => arp_request(),
        _ => udp(40000, 5000, &[7; 200]),
    }
}

#[test]
fn file_mode_from_an_engine_thread_with_a_filter_change_at_run_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut capture, tap) = Capture::start(setup(dir.path()), config("icmp", CaptureMode::File)).expect("start");
    let (go_on, wait) = std::sync::mpsc::channel::<()>();
    let (done, phase_done) = std::sync::mpsc::channel::<()>();
    let engine = std::thread::spawn(move || {
        let mut tap = tap;
        for phase in 0..2u64 {
            for i in 0..400u64 {
                tap.handle_frame(phase * 1_000_000_000_000 + i * 1000, (i % 2) as u32, &mixed(i));
            }
            done.send(()).expect("test waits");
            if phase == 0 {
                wait.recv().expect("test reconfigures");
            }
        }
        tap
    });
    phase_done.recv().expect("phase 0");
    assert!(capture.sync(Duration::from_secs(5)));
    assert_eq!(
        capture.counters(),
        Counters { seen: 400, matched: 100, written: 100, ..Counters::default() },
        "phase 0: icmp only"
    );
    // A bad filter changes nothing.
    let error = capture.reconfigure(config("icmp and", CaptureMode::File)).expect_err("bad filter");
    assert!(matches!(error, CaptureError::Filter(_)), "{error}");
    assert_eq!(capture.config().filter, "icmp");
    capture.reconfigure(config("udp port 53 or arp", CaptureMode::File)).expect("reconfigure");
    go_on.send(()).expect("engine waits");
    phase_done.recv().expect("phase 1");
    let tap = engine.join().expect("engine");
    assert_eq!(tap.filter_expression(), "udp port 53 or arp");
    assert!(capture.sync(Duration::from_secs(5)));
    let counters = capture.counters();
    assert_eq!((counters.seen, counters.matched, counters.written, counters.dropped), (800, 300, 300, 0));

    let merged = dir.path().join("download.pcapng");
    let summary = capture.merge(None, &merged).expect("merge");
    assert_eq!(summary.packets, 300);
    assert_eq!(tshark_count(&merged), 300);
    let protocols = tshark_fields(&merged, &["-e", "frame.protocols"]);
    assert!(protocols[..100].iter().all(|p| p.ends_with(":icmp:data")));
    assert!(protocols[100..].iter().all(|p| p.ends_with(":dns") || p.ends_with(":arp")), "{:?}", &protocols[100..]);
    let names = tshark_fields(&merged, &["-e", "frame.interface_name"]);
    assert_eq!(names[0], "pc1.eth0 -> sw.port0");
    assert_eq!(names[100], "sw.port0 -> pc1.eth0");

    let ring_files = capture.ring_files();
    assert!(!ring_files.is_empty());
    capture.close().expect("close");
    assert!(ring_files.iter().all(|f| !f.exists()), "closing removes the ring");
    assert!(!dir.path().join("capture").exists());
}

#[test]
fn switching_to_net_mode_streams_to_a_client_and_back_to_file_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut capture, mut tap) = Capture::start(setup(dir.path()), config("", CaptureMode::File)).expect("start");
    tap.handle_frame(1, 0, &icmp_echo(1));
    assert!(capture.sync(Duration::from_secs(5)));
    assert_eq!(capture.ring_files().len(), 1);
    assert!(matches!(capture.merge(None, &dir.path().join("x")), Ok(s) if s.packets == 1));

    capture.reconfigure(config("not arp", CaptureMode::Net)).expect("net mode");
    assert!(capture.ring_files().is_empty(), "the file ring is closed");
    assert!(matches!(capture.merge(None, &dir.path().join("y")), Err(CaptureError::NotFileMode)));
    let addr = capture.stream_addr().expect("listening");
    let mut client = TcpStream::connect(addr).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(5);
    while capture.counters().stream.expect("net mode").clients == 0 {
        assert!(Instant::now() < deadline, "client not accepted");
        std::thread::sleep(Duration::from_millis(2));
    }
    for i in 0..40u64 {
        tap.handle_frame(1_000_000_000 + i, (i % 2) as u32, &mixed(i));
    }
    assert!(capture.sync(Duration::from_secs(5)));
    // Leaving net mode ends the stream after the client has what was queued.
    capture.reconfigure(config("", CaptureMode::File)).expect("back to file mode");
    let mut received = Vec::new();
    client.read_to_end(&mut received).expect("read");
    let path = dir.path().join("live.pcapng");
    std::fs::write(&path, received).expect("write");
    assert_eq!(tshark_count(&path), 30, "40 frames minus 10 arp");
    let counters = capture.counters();
    assert_eq!((counters.seen, counters.matched, counters.written), (41, 31, 31));

    // A port that is taken: the error names it and capturing is left off.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    capture.close().expect("close");
    let busy = CaptureSetup { listen: taken.local_addr().expect("addr"), ..setup(dir.path()) };
    let (mut capture, _tap) = Capture::start(busy, config("", CaptureMode::File)).expect("start");
    let error = capture.reconfigure(config("", CaptureMode::Net)).expect_err("port taken");
    assert!(error.to_string().starts_with(&format!("listening on {}", taken.local_addr().expect("addr"))), "{error}");
    assert!(!capture.config().enabled);
    assert!(capture.ring_files().is_empty() && capture.stream_addr().is_none());
}

#[test]
fn disabled_capture_sees_nothing_and_unknown_interfaces_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let off = CaptureConfig { enabled: false, ..config("", CaptureMode::File) };
    let (mut capture, mut tap) = Capture::start(setup(dir.path()), off.clone()).expect("start");
    tap.handle_frame(1, 0, &icmp_echo(1));
    assert_eq!(capture.counters(), Counters::default());
    assert!(capture.ring_files().is_empty());
    assert!(!dir.path().join("capture").exists());

    capture.reconfigure(config("", CaptureMode::File)).expect("on");
    tap.handle_frame(2, 7, &icmp_echo(2));
    tap.handle_frame(3, 1, &icmp_echo(3));
    assert!(capture.sync(Duration::from_secs(5)));
    let counters = capture.counters();
    assert_eq!((counters.seen, counters.invalid, counters.matched, counters.written), (2, 1, 1, 1));
    capture.reconfigure(off).expect("off again");
    assert!(!dir.path().join("capture").exists(), "switching off removes the ring");
    assert!(tap.is_enabled(), "the tap notices on its next frame");
    tap.handle_frame(4, 0, &icmp_echo(4));
    assert!(!tap.is_enabled());
    drop(capture);
    assert!(tap.is_closed());
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = CaptureSetup { queue_bytes: 16 << 10, ..setup(dir.path()) };
    let (capture, mut tap) = Capture::start(small, config("", CaptureMode::File)).expect("start");
    let frame = udp(1, 2, &[0; 1400]);
    let started = Instant::now();
    for i in 0..20_000u64 {
        tap.handle_frame(i, 0, &frame);
    }
    let elapsed = started.elapsed();
    assert!(capture.sync(Duration::from_secs(10)));
    let counters = capture.counters();
    println!("small queue: {counters:?} in {elapsed:?}");
    assert_eq!(counters.matched, 20_000);
    assert!(counters.dropped > 0, "a 16 KiB queue cannot hold a burst of 20000 x 1442 bytes");
    assert_eq!(counters.written + counters.dropped, counters.matched);
    let merged = dir.path().join("merged.pcapng");
    capture.merge(None, &merged).expect("merge");
    // The default 5 x 10 MB ring keeps at most about 34,600 of these frames, so all written ones are there.
    assert_eq!(tshark_count(&merged) as u64, counters.written);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).expect("value").parse().expect("number")
}

/// Prints producer-path throughput (`handle_frame` with a filter) and
/// memory; asserts no timing, only that every frame was accounted for.
#[test]
fn producer_path_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames: Vec<Vec<u8>> = (0..4).map(mixed).collect();
    for (filter, mode) in
        [("udp port 53", CaptureMode::File), ("", CaptureMode::File), ("udp port 53", CaptureMode::Net)]
    {
        let rss_before = rss_kib();
        let (capture, mut tap) = Capture::start(setup(dir.path()), config(filter, mode)).expect("start");
        let rss_started = rss_kib();
        let n_frames = 1_000_000u64;
        let started = Instant::now();
        for i in 0..n_frames {
            tap.handle_frame(i, (i % 2) as u32, &frames[(i % 4) as usize]);
        }
        let elapsed = started.elapsed();
        assert!(capture.sync(Duration::from_secs(30)));
        let counters = capture.counters();
        println!(
            "handle_frame, filter {filter:?}, {mode:?} mode: {:.2} M frames/s ({n_frames} frames in {elapsed:?}); \
             matched {}, written {}, dropped {}; RSS +{} KiB at start, +{} KiB after",
            n_frames as f64 / elapsed.as_secs_f64() / 1e6,
            counters.matched,
            counters.written,
            counters.dropped,
            rss_started.saturating_sub(rss_before),
            rss_kib().saturating_sub(rss_before),
        );
        assert_eq!(counters.seen, n_frames);
        assert_eq!(counters.written + counters.dropped, counters.matched);
        capture.close().expect("close");
    }
}
