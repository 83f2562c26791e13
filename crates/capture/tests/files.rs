//! pcapng files written by `PcapngWriter`, judged by tshark: frame count,
//! interface names, nanosecond timestamps, snap length and decoding.

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};

use capture::{Interface, PcapngWriter};
use common::{icmp_echo, tshark_count, tshark_fields, udp};

fn interfaces() -> Vec<Interface> {
    vec![
        Interface::named("pc1.eth0 -> sw.port0"),
        Interface { name: "sw.port0 -> pc1.eth0".into(), description: "direction: switch to pc1".into() },
    ]
}

#[test]
fn tshark_reads_every_frame_with_interface_names_and_nanoseconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("known.pcapng");
    let mut writer =
        PcapngWriter::new(BufWriter::new(File::create(&path).expect("create")), &interfaces(), 65535).expect("header");
    let base = 1_700_000_000_000_000_000u64;
    for i in 0..10u64 {
        let frame = if i % 2 == 0 { icmp_echo(i as u16) } else { udp(5000, 53, b"dns?") };
        writer.write_packet(base + i * 1_000_000_123 + 7, (i % 2) as u32, &frame).expect("write");
    }
    writer.get_mut().flush().expect("flush");
    drop(writer);

    assert_eq!(tshark_count(&path), 10);
    let names = tshark_fields(&path, &["-e", "frame.interface_name"]);
    assert_eq!(names[0], "pc1.eth0 -> sw.port0");
    assert_eq!(names[1], "sw.port0 -> pc1.eth0");
    let descriptions = tshark_fields(&path, &["-e", "frame.interface_description"]);
    assert_eq!(descriptions[1], "direction: switch to pc1");

    // Nanosecond resolution survives: 7 ns past the second must show.
    let times = tshark_fields(&path, &["-e", "frame.time_epoch"]);
    assert_eq!(times[0], "1700000000.000000007");
    assert_eq!(times[1], "1700000001.000000130");
    assert_eq!(times[9], "1700000009.000001114");

    // tshark decodes what we built.
    let protocols = tshark_fields(&path, &["-e", "frame.protocols"]);
    assert_eq!(protocols[0], "eth:ethertype:ip:icmp:data");
    assert!(protocols[1].starts_with("eth:ethertype:ip:udp:dns"), "{}", protocols[1]);
}

#[test]
fn snap_length_cuts_frames_but_keeps_original_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.pcapng");
    let mut writer = PcapngWriter::new(File::create(&path).expect("create"), &interfaces(), 40).expect("header");
    writer.write_packet(1, 0, &udp(1, 2, &[0x55; 1000])).expect("write");
    drop(writer);
    let lengths = tshark_fields(&path, &["-e", "frame.cap_len", "-e", "frame.len"]);
    assert_eq!(lengths, ["40\t1042"]);
}
