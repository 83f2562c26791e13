//! Property tests: no panics on arbitrary input, and the timing invariants
//! of a link direction for arbitrary parameters and arrivals.

mod common;

use common::drive;
use netem::{
    DirectionParams, Distribution, EthernetFrame, Forwarding, Instant, LinkDirection, PortIdx, PortVlan, Switch,
    SwitchConfig, Tagging, VlanId, rewrite_frame,
};
use proptest::prelude::*;

fn distribution() -> impl Strategy<Value = Distribution> {
    prop_oneof![
        Just(Distribution::Uniform),
        Just(Distribution::Normal),
        Just(Distribution::Pareto),
        Just(Distribution::Paretonormal),
    ]
}

prop_compose! {
    /// Parameters with reordering off (the invariants below assume it).
    fn params()(
        seed in any::<u64>(),
        bandwidth_kbit in prop_oneof![Just(0u32), 1u32..2_000_000],
        burst_bytes in prop_oneof![Just(0u32), 1u32..100_000],
        queue_frames in 0u32..50,
        queue_bytes in prop_oneof![Just(0u32), 100u32..100_000],
        delay_ms in 0.0f64..200.0,
        jitter_ms in 0.0f64..100.0,
        distribution in distribution(),
        lossratio_percent in 0.0f64..100.0,
        lossburst_frames in prop_oneof![Just(0.0f64), 1.0f64..20.0],
        duplicate_percent in 0.0f64..100.0,
        corrupt_percent in 0.0f64..100.0,
        noise_bits_per_mbyte in 0.0f64..100_000.0,
        mtu in prop_oneof![Just(0u32), 60u32..2000],
    ) -> DirectionParams {
        DirectionParams {
            bandwidth_kbit, burst_bytes, queue_frames, queue_bytes, delay_ms, jitter_ms, distribution,
            lossratio_percent, lossburst_frames, duplicate_percent, corrupt_percent,
            noise_bits_per_mbyte, mtu, reorder_percent: 0.0, seed,
        }
    }
}

/// Arrivals as (gap in µs, length) pairs turned into absolute times.
fn arrivals() -> impl Strategy<Value = Vec<(Instant, usize)>> {
    prop::collection::vec((0u64..5_000, 0usize..3000), 1..200).prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .map(|(gap, len)| {
                t += gap * 1000;
                (Instant::from_nanos(t), len)
            })
            .collect()
    })
}

/// The smallest delay a copy can get: `delay - jitter` for uniform, `delay -
/// 4 jitter` for the table shapes (netem's clamp), and never below 0.
fn min_delay_ns(p: &DirectionParams) -> f64 {
    let spread = match p.distribution {
        Distribution::Uniform => 1.0,
        _ => 4.0,
    };
    ((p.delay_ms - spread * p.jitter_ms) * 1e6).max(0.0)
}

proptest! {
    #[test]
    fn departures_respect_arrival_order_and_minimum_delay(p in params(), arrivals in arrivals()) {
        let min_ns = min_delay_ns(&p);
        let mut link = LinkDirection::new(p).expect("generated parameters are valid");
        let run = drive(&mut link, arrivals.clone());
        let mut last_seq = None;
        for d in &run.departures {
            let arrival = arrivals[d.seq as usize].0;
            // One nanosecond of slack for rounding the drawn delay.
            prop_assert!(d.due.total_nanos() as f64 + 1.0 >= arrival.total_nanos() as f64 + min_ns);
            // FIFO: sequence numbers never go down (a duplicate follows its original).
            prop_assert!(last_seq <= Some(d.seq));
            last_seq = Some(d.seq);
            if let Some(c) = d.corruption {
                prop_assert!(c.bits().all(|bit| bit < d.len * 8));
            }
        }
        let c = link.counters();
        let scheduled: u64 = run.verdicts.iter().map(|v| match v.fate {
            netem::Fate::Dropped(_) => 0,
            netem::Fate::Queued { duplicate: netem::Duplicate::Queued(_), .. } => 2,
            netem::Fate::Queued { .. } => 1,
        }).sum();
        prop_assert_eq!(c.sent.frames, scheduled);
        prop_assert_eq!(link.held_frames(), 0);
        prop_assert_eq!(c.received.frames, arrivals.len() as u64);
    }

    /// A rate-limited link with a bucket never sends more than the bucket
    /// plus the rate over any window (plus the frame that opens it).
    #[test]
    fn a_token_bucket_bounds_every_window(
        kbit in 1_000u32..100_000,
        burst in 0u32..50_000,
        arrivals in arrivals(),
    ) {
        let mut link = common::link(5, |p| {
            p.bandwidth_kbit = kbit;
            p.burst_bytes = burst;
            p.queue_frames = 1_000;
        });
        let run = drive(&mut link, arrivals);
        let d = &run.departures;
        for i in 0..d.len() {
            let mut bytes = 0u64;
            for j in i..d.len() {
                bytes += u64::from(d[j].len);
                let window_ns = (d[j].due.total_nanos() - d[i].due.total_nanos()) as f64;
                let allowed = f64::from(burst) + f64::from(kbit) * window_ns / 8e6 + f64::from(d[i].len) + 1.0;
                prop_assert!(bytes as f64 <= allowed, "{bytes} bytes from {i} to {j} in {window_ns} ns");
            }
        }
    }

    #[test]
    fn switch_never_panics_on_arbitrary_frames(
        frames in prop::collection::vec((0u16..6, prop::collection::vec(any::<u8>(), 0..80), 0u64..1_000_000_000), 1..100),
        hub in any::<bool>(),
    ) {
        let mut config = SwitchConfig::standard(3);
        config.table_size = 8;
        if hub {
            config.mode = netem::SwitchMode::Hub;
        }
        let mut sw = Switch::new(config);
        let v = |id| VlanId::new(id).expect("valid");
        sw.add_port(PortIdx(1), PortVlan::access(VlanId::DEFAULT)).expect("new");
        sw.add_port(PortIdx(2), PortVlan::access(v(2))).expect("new");
        sw.add_port(PortIdx(3), PortVlan::trunk([VlanId::DEFAULT, v(2)])).expect("new");
        sw.add_port(PortIdx(4), PortVlan { untagged: Some(v(2)), tagged: [VlanId::DEFAULT].into_iter().collect() }).expect("new");
        let mut now = 0;
        let mut out = [0u8; 128];
        for (port, bytes, step) in frames {
            now += step;
            match sw.handle_frame(Instant::from_nanos(now), PortIdx(port), &bytes) {
                Forwarding::Dropped(_) => {}
                Forwarding::Forward(egress) => {
                    for e in egress {
                        prop_assert_ne!(e.port, PortIdx(port));
                        prop_assert!(rewrite_frame(&bytes, e.tagging, &mut out).is_ok());
                    }
                }
            }
        }
    }

    #[test]
    fn rewrite_never_panics_and_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..100), id in 1u16..4095) {
        let vlan = VlanId::new(id).expect("in range");
        let mut tagged = [0u8; 128];
        let mut plain = [0u8; 128];
        for tagging in [Tagging::AsReceived, Tagging::Untagged, Tagging::Tagged(vlan)] {
            let _ = rewrite_frame(&bytes, tagging, &mut tagged);
        }
        if let Ok(n) = rewrite_frame(&bytes, Tagging::Tagged(vlan), &mut tagged) {
            let eth = EthernetFrame::new_checked(&tagged[..n]).expect("rewritten frame parses");
            prop_assert_eq!(eth.tag_vid(), Some(id));
            let m = rewrite_frame(&tagged[..n], Tagging::Untagged, &mut plain).expect("fits");
            let original = EthernetFrame::new_checked(&bytes).expect("it was accepted");
            prop_assert_eq!(&plain[..12], &bytes[..12]);
            prop_assert_eq!(original.ethertype(), EthernetFrame::new_checked(&plain[..m]).expect("parses").ethertype());
        }
    }
}
