//! The file-mode ring: rotation by size, time-ordered merge, the size
//! limit keeping the newest packets, and cleanup of what the ring created.

mod common;

use capture::{Interface, Ring, RingConfig};
use common::{tshark_count, tshark_fields, udp};

fn interfaces() -> Vec<Interface> {
    vec![Interface::named("a.eth0 -> b.eth0"), Interface::named("b.eth0 -> a.eth0")]
}

fn config(dir: &std::path::Path, n_files: usize, file_size: u64) -> RingConfig {
    RingConfig { dir: dir.to_owned(), n_files, file_size, snaplen: 65535 }
}

/// Timestamp of packet `i`: interface 1's clock runs 1.5 ms behind, so
/// write order is not time order.
fn timestamp(i: u64) -> u64 {
    1_000_000_000_000 + i * 1_000_000 - (i % 2) * 1_500_000
}

fn epoch(ts: u64) -> String {
    format!("{}.{:09}", ts / 1_000_000_000, ts % 1_000_000_000)
}

#[test]
fn rotates_by_size_keeps_n_files_and_merges_in_time_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring_dir = dir.path().join("ring");
    let mut ring = Ring::create(config(&ring_dir, 3, 2000), &interfaces()).expect("ring");
    let frame = udp(1000, 2000, &[0xAA; 100]); // 142 bytes, a 176-byte block
    for i in 0..100u64 {
        ring.write_packet(timestamp(i), (i % 2) as u32, frame.len() as u32, &frame).expect("write");
    }
    ring.flush().expect("flush");
    let files: Vec<_> = ring.files().map(|p| p.to_owned()).collect();
    assert_eq!(files.len(), 3);
    assert_eq!(std::fs::read_dir(&ring_dir).expect("dir").count(), 3, "older files are removed");
    let mut in_ring = 0;
    for file in &files {
        let size = std::fs::metadata(file).expect("file").len();
        assert!(size <= 2000, "{} is {size} bytes", file.display());
        in_ring += tshark_count(file);
    }
    // Header 28 + 2 interfaces x 52; (2000 - 132) / 176 = 10 packets per file.
    assert_eq!(in_ring, 30);

    let merged = dir.path().join("merged.pcapng");
    let summary = ring.merge(None, &merged).expect("merge");
    assert_eq!(summary.packets, 30);
    assert_eq!(summary.left_out, 0);
    assert_eq!(summary.bytes, std::fs::metadata(&merged).expect("merged").len());
    let times = tshark_fields(&merged, &["-e", "frame.time_epoch"]);
    let mut expected: Vec<u64> = (70..100).map(timestamp).collect();
    expected.sort();
    assert_eq!(times, expected.iter().map(|&t| epoch(t)).collect::<Vec<_>>());
    let names = tshark_fields(&merged, &["-e", "frame.interface_name"]);
    assert!(names.iter().all(|n| n == "a.eth0 -> b.eth0" || n == "b.eth0 -> a.eth0"));

    ring.close().expect("close");
    assert!(!ring_dir.exists(), "the ring removes the directory it created");
    assert!(merged.exists(), "the merged file belongs to the caller");
}

#[test]
fn a_size_limit_keeps_the_newest_packets_that_fit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ring = Ring::create(config(dir.path(), 5, 10_000), &interfaces()).expect("ring");
    let frame = udp(1000, 2000, &[0xAA; 100]);
    for i in 0..100u64 {
        ring.write_packet(timestamp(i), (i % 2) as u32, frame.len() as u32, &frame).expect("write");
    }
    let header = capture::PcapngWriter::new(Vec::new(), &interfaces(), 65535).expect("vec").bytes_written();
    assert_eq!(header, 28 + 2 * 52, "section header + two interfaces with name, tsresol, end of options");
    for (limit, kept) in
        [(header + 176 * 7, 7u64), (header + 176 * 7 + 175, 7), (header + 176 * 8, 8), (header, 0), (10, 0)]
    {
        let merged = dir.path().join(format!("limit-{limit}.pcapng"));
        let summary = ring.merge(Some(limit), &merged).expect("merge");
        let size = std::fs::metadata(&merged).expect("merged").len();
        assert_eq!(summary.packets, kept, "limit {limit}");
        assert!(size <= limit.max(header), "limit {limit}: {size} bytes");
        assert_eq!(summary.left_out, 100 - kept);
        let times = tshark_fields(&merged, &["-e", "frame.time_epoch"]);
        let mut newest: Vec<u64> = (0..100).map(timestamp).collect();
        newest.sort();
        let newest: Vec<String> = newest[100 - kept as usize..].iter().map(|&t| epoch(t)).collect();
        assert_eq!(times, newest, "limit {limit}");
    }
    drop(ring);
    assert!(dir.path().exists(), "a directory the ring did not create stays");
    assert_eq!(
        std::fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| { e.as_ref().expect("entry").file_name().to_string_lossy().starts_with("capture-") })
            .count(),
        0,
        "drop removes the ring files"
    );
}

#[test]
fn an_oversized_packet_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ring = Ring::create(config(dir.path(), 5, 300), &interfaces()).expect("ring");
    let big = udp(1, 2, &[0; 1000]);
    for i in 0..3 {
        ring.write_packet(i, 0, big.len() as u32, &big).expect("write");
    }
    let files: Vec<_> = ring.files().map(|p| p.to_owned()).collect();
    assert_eq!(files.len(), 3);
    ring.flush().expect("flush");
    assert!(files.iter().all(|f| tshark_count(f) == 1));
}

#[test]
fn a_zero_file_ring_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = Ring::create(config(dir.path(), 0, 300), &interfaces()).expect_err("no files");
    assert_eq!(error.to_string(), "invalid ring configuration: n_files must be at least 1");
}
