//! Shared helpers for the capture tests: hand-built Ethernet frames and
//! tshark as the judge of what we wrote.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Ethernet II frame.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 packet from 10.0.0.1 to 10.0.0.2 with a correct header checksum.
pub fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut header = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    header[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = checksum(&header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    header.extend_from_slice(payload);
    header
}

/// Ethernet/IPv4/ICMP echo request with sequence number `seq`.
pub fn icmp_echo(seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"tomato-rs ping payload");
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ethernet(0x0800, &ipv4(1, &icmp))
}

/// Ethernet/IPv4/UDP datagram (checksum 0, allowed for IPv4).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&src_port.to_be_bytes());
    udp.extend_from_slice(&dst_port.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    ethernet(0x0800, &ipv4(17, &udp))
}

/// Ethernet/ARP who-has 10.0.0.2 tell 10.0.0.1.
pub fn arp_request() -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 1];
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    let mut frame = ethernet(0x0806, &arp);
    frame[0..6].copy_from_slice(&[0xff; 6]);
    frame
}

/// Runs `tshark -r FILE -T fields` with the given extra arguments and
/// returns its output lines; panics with tshark's stderr if it fails.
pub fn tshark_fields(file: &Path, args: &[&str]) -> Vec<String> {
    let output = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields"])
        .args(args)
        .output()
        .expect("tshark is installed (scripts/test installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tshark failed on {}: {stderr}", file.display());
    // tshark reports a cut-short or malformed file on stderr even with exit 0.
    assert!(!stderr.contains("appears to have been cut short"), "tshark: {stderr}");
    assert!(!stderr.contains("isn't a capture file"), "tshark: {stderr}");
    String::from_utf8(output.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

/// Number of frames tshark reads from `file`.
pub fn tshark_count(file: &Path) -> usize {
    tshark_fields(file, &["-e", "frame.number"]).len()
}
