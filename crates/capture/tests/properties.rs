//! Properties: the pcapng writer never panics on arbitrary frames, lengths,
//! interfaces and timestamps, and a ring merge is always in time order and
//! respects its size limit.

use capture::{Interface, PcapngWriter, Ring, RingConfig};
use pcap_file::pcapng::{Block, PcapNgReader};
use proptest::prelude::*;

fn interfaces() -> Vec<Interface> {
    vec![Interface::named("x -> y"), Interface { name: "y -> x".into(), description: "back".into() }]
}

/// Reads back (timestamp, interface, original length, data) of every packet.
fn read_back(bytes: &[u8]) -> Vec<(u64, u32, u32, Vec<u8>)> {
    let mut reader = PcapNgReader::new(bytes).expect("valid header");
    let mut packets = Vec::new();
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(epb) = block.expect("valid block") {
            packets.push((epb.timestamp.as_nanos() as u64, epb.interface_id, epb.original_len, epb.data.into_owned()));
        }
    }
    packets
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_writer_never_panics_and_round_trips(
        snaplen in prop_oneof![Just(0u32), 1u32..200, Just(65535)],
        packets in proptest::collection::vec(
            (any::<u64>(), 0u32..4, proptest::collection::vec(any::<u8>(), 0..300)),
            0..20,
        ),
    ) {
        let mut writer = PcapngWriter::new(Vec::new(), &interfaces(), snaplen).expect("vec");
        let mut expected = Vec::new();
        for (timestamp_ns, iface, frame) in &packets {
            let result = writer.write_packet(*timestamp_ns, *iface, frame);
            if *iface < 2 {
                prop_assert!(result.is_ok());
                let kept = if snaplen == 0 { frame.len() } else { frame.len().min(snaplen as usize) };
                expected.push((*timestamp_ns, *iface, frame.len() as u32, frame[..kept].to_vec()));
            } else {
                prop_assert!(result.is_err());
            }
        }
        prop_assert_eq!(writer.bytes_written(), writer.get_ref().len() as u64);
        prop_assert_eq!(read_back(writer.get_ref()), expected);
    }

    #[test]
    fn merge_is_in_time_order_and_within_the_limit(
        file_size in 200u64..3000,
        n_files in 1usize..5,
        timestamps in proptest::collection::vec(0u64..1_000_000, 0..80),
        limit in proptest::option::of(0u64..6000),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = RingConfig { dir: dir.path().join("ring"), n_files, file_size, snaplen: 65535 };
        let mut ring = Ring::create(config, &interfaces()).expect("ring");
        for (i, timestamp_ns) in timestamps.iter().enumerate() {
            let frame = vec![i as u8; 20 + i % 50];
            ring.write_packet(*timestamp_ns, (i % 2) as u32, frame.len() as u32, &frame).expect("write");
        }
        let mut merged = Vec::new();
        let summary = ring.merge_to(limit, &mut merged).expect("merge");
        let packets = read_back(&merged);
        prop_assert_eq!(packets.len() as u64, summary.packets);
        prop_assert_eq!(merged.len() as u64, summary.bytes);
        prop_assert!(packets.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
        let header = PcapngWriter::new(Vec::new(), &interfaces(), 65535).expect("vec").bytes_written();
        if let Some(limit) = limit {
            prop_assert!(summary.bytes <= limit.max(header));
        }
        // Whatever was kept is the newest part of what the ring held.
        if let (Some(first), true) = (packets.first(), summary.left_out > 0) {
            let mut unlimited = Vec::new();
            ring.merge_to(None, &mut unlimited).expect("merge");
            let all = read_back(&unlimited);
            prop_assert_eq!(all.len() as u64, summary.packets + summary.left_out);
            prop_assert!(all[..summary.left_out as usize].iter().all(|p| p.0 <= first.0));
            prop_assert_eq!(&all[summary.left_out as usize..], &packets[..]);
        }
    }
}
