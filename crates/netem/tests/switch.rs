//! Behaviour of the learning switch and hub: learning, ageing, flooding,
//! VLAN filtering and tagging, flap protection and malformed frames.

use netem::{
    Duration, Egress, EthernetFrame, FlapGuard, Forwarding, Instant, Mac, MacTableEntry, PortIdx, PortVlan, Switch,
    SwitchConfig, SwitchDrop, SwitchMode, Tagging, VlanId, rewrite_frame,
};

const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);
const C: Mac = Mac([2, 0, 0, 0, 0, 0xc]);

fn vlan(id: u16) -> VlanId {
    VlanId::new(id).expect("valid VLAN id")
}

fn frame(dst: Mac, src: Mac, tag: Option<u16>) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(tci) = tag {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.resize(f.len() + 46, 0x55);
    f
}

/// A switch with ports 1..=n on VLAN 1.
fn switch(n: u16, config: SwitchConfig) -> Switch {
    let mut sw = Switch::new(config);
    for p in 1..=n {
        sw.add_port(PortIdx(p), PortVlan::access(VlanId::DEFAULT)).expect("new port");
    }
    sw
}

/// The egress list, or the drop reason, as a comparable value.
fn send(sw: &mut Switch, now: Instant, port: u16, bytes: &[u8]) -> Result<Vec<(u16, Tagging)>, SwitchDrop> {
    match sw.handle_frame(now, PortIdx(port), bytes) {
        Forwarding::Dropped(why) => Err(why),
        Forwarding::Forward(out) => Ok(out.iter().map(|e: &Egress| (e.port.0, e.tagging)).collect()),
    }
}

const T0: Instant = Instant::ZERO;
const U: Tagging = Tagging::Untagged;

#[test]
fn learns_and_forwards_known_unicast_to_one_port() {
    let mut sw = switch(3, SwitchConfig::standard(1));
    assert_eq!(send(&mut sw, T0, 1, &frame(Mac::BROADCAST, A, None)), Ok(vec![(2, U), (3, U)]));
    assert_eq!(send(&mut sw, T0, 2, &frame(A, B, None)), Ok(vec![(1, U)]));
    assert_eq!(send(&mut sw, T0, 1, &frame(B, A, None)), Ok(vec![(2, U)]));
    // Unknown unicast floods.
    assert_eq!(send(&mut sw, T0, 1, &frame(C, A, None)), Ok(vec![(2, U), (3, U)]));
    assert_eq!(sw.lookup(T0, A, VlanId::DEFAULT), Some(PortIdx(1)));
    assert_eq!(sw.counters().learned, 2);
    let p1 = sw.port_counters(PortIdx(1)).expect("port 1");
    assert_eq!((p1.rx.frames, p1.tx.frames, p1.tx.bytes), (3, 1, 60));
}

#[test]
fn entries_age_out() {
    let mut config = SwitchConfig::standard(2);
    config.ageing = Duration::from_secs(10);
    let mut sw = switch(3, config);
    send(&mut sw, T0, 1, &frame(Mac::BROADCAST, A, None)).expect("forwarded");
    let fresh = Instant::from_secs(10);
    assert_eq!(send(&mut sw, fresh, 2, &frame(A, B, None)), Ok(vec![(1, U)]));
    // B was refreshed at 10 s, A was not: at 10 s + 1 ns A is unknown.
    let stale = Instant::from_secs(10) + Duration::from_nanos(1);
    assert_eq!(sw.lookup(stale, A, VlanId::DEFAULT), None);
    let listed: Vec<MacTableEntry> = sw.mac_entries(stale).collect();
    let one_ns = Duration::from_nanos(1);
    assert_eq!(listed, [MacTableEntry { mac: B, vlan: VlanId::DEFAULT, port: PortIdx(2), age: one_ns }]);
    assert_eq!(send(&mut sw, stale, 3, &frame(A, C, None)), Ok(vec![(1, U), (2, U)]));
    assert_eq!(sw.poll_at(), Some(Instant::from_secs(10)));
    sw.handle_timeout(Instant::from_secs(30));
    assert_eq!(sw.mac_table_len(), 0);
    assert_eq!(sw.poll_at(), None);
}

#[test]
fn no_echo_to_the_ingress_port() {
    let mut sw = switch(2, SwitchConfig::standard(3));
    send(&mut sw, T0, 1, &frame(Mac::BROADCAST, A, None)).expect("forwarded");
    // B sits behind the same port as A (a hub there) and talks to A.
    assert_eq!(send(&mut sw, T0, 1, &frame(A, B, None)), Err(SwitchDrop::NoEcho));
    assert_eq!(sw.counters().dropped_no_echo, 1);
    // Floods never include the ingress port either.
    assert_eq!(send(&mut sw, T0, 2, &frame(Mac::BROADCAST, C, None)), Ok(vec![(1, U)]));
}

#[test]
fn hub_floods_everything_unchanged_and_learns_nothing() {
    let mut config = SwitchConfig::standard(4);
    config.mode = SwitchMode::Hub;
    let mut sw = switch(3, config);
    let asis = Tagging::AsReceived;
    send(&mut sw, T0, 1, &frame(B, A, None)).expect("forwarded");
    assert_eq!(send(&mut sw, T0, 2, &frame(A, B, None)), Ok(vec![(1, asis), (3, asis)]));
    // Even a tagged frame for a VLAN no port carries.
    assert_eq!(send(&mut sw, T0, 3, &frame(A, C, Some(999))), Ok(vec![(1, asis), (2, asis)]));
    assert_eq!(sw.mac_table_len(), 0);
}

/// Ports 1, 2 access VLAN 10; port 3 access VLAN 20; port 4 trunk 10+20.
fn vlan_switch() -> Switch {
    let mut sw = Switch::new(SwitchConfig::standard(5));
    sw.add_port(PortIdx(1), PortVlan::access(vlan(10))).expect("new");
    sw.add_port(PortIdx(2), PortVlan::access(vlan(10))).expect("new");
    sw.add_port(PortIdx(3), PortVlan::access(vlan(20))).expect("new");
    sw.add_port(PortIdx(4), PortVlan::trunk([vlan(10), vlan(20)])).expect("new");
    sw
}

#[test]
fn floods_stay_in_their_vlan_with_tags_on_trunks() {
    let mut sw = vlan_switch();
    assert_eq!(send(&mut sw, T0, 1, &frame(Mac::BROADCAST, A, None)), Ok(vec![(2, U), (4, Tagging::Tagged(vlan(10)))]));
    // A tagged frame of VLAN 20 from the trunk reaches port 3 untagged.
    assert_eq!(send(&mut sw, T0, 4, &frame(Mac::BROADCAST, B, Some(20))), Ok(vec![(3, U)]));
    // The same MAC is learnt separately per VLAN.
    assert_eq!(sw.lookup(T0, B, vlan(20)), Some(PortIdx(4)));
    assert_eq!(sw.lookup(T0, B, vlan(10)), None);
    assert_eq!(send(&mut sw, T0, 3, &frame(B, C, None)), Ok(vec![(4, Tagging::Tagged(vlan(20)))]));
}

#[test]
fn ingress_vlan_filtering() {
    let mut sw = vlan_switch();
    // VLAN 30 is not on the trunk; untagged frames have no VLAN on a trunk.
    assert_eq!(send(&mut sw, T0, 4, &frame(A, B, Some(30))), Err(SwitchDrop::VlanNotAllowed));
    assert_eq!(send(&mut sw, T0, 4, &frame(A, B, None)), Err(SwitchDrop::VlanNotAllowed));
    // An access port accepts no tagged frames, except priority tags (VID 0).
    assert_eq!(send(&mut sw, T0, 1, &frame(A, B, Some(10))), Err(SwitchDrop::VlanNotAllowed));
    assert_eq!(
        send(&mut sw, T0, 1, &frame(Mac::BROADCAST, B, Some(0xe000))),
        Ok(vec![(2, U), (4, Tagging::Tagged(vlan(10)))])
    );
    assert_eq!(sw.counters().dropped_vlan, 3);
    assert_eq!(sw.port_counters(PortIdx(4)).map(|c| c.rx_dropped.frames), Some(2));
}

#[test]
fn egress_rewrite_inserts_and_strips_tags() {
    let untagged = frame(Mac::BROADCAST, A, None);
    let mut out = [0u8; 1518];
    let n = rewrite_frame(&untagged, Tagging::Tagged(vlan(10)), &mut out).expect("fits");
    let eth = EthernetFrame::new_checked(&out[..n]).expect("valid");
    assert_eq!((n, eth.tag_vid(), eth.ethertype()), (untagged.len() + 4, Some(10), 0x0800));
    let tagged = out[..n].to_vec();
    let m = rewrite_frame(&tagged, Tagging::Untagged, &mut out).expect("fits");
    assert_eq!(&out[..m], &untagged[..]);
    // Bytes counted on egress follow the rewrite.
    let mut sw = vlan_switch();
    send(&mut sw, T0, 1, &untagged).expect("forwarded");
    assert_eq!(sw.port_counters(PortIdx(4)).map(|c| c.tx.bytes), Some(64));
    assert_eq!(sw.port_counters(PortIdx(2)).map(|c| c.tx.bytes), Some(60));
}

fn guarded(moves: u8, block_for: Option<Duration>) -> Switch {
    let mut config = SwitchConfig::standard(6);
    config.flap = FlapGuard { moves, window: Duration::from_secs(1), block_for };
    switch(3, config)
}

#[test]
fn flapping_mac_blocks_the_later_port() {
    let mut sw = guarded(3, Some(Duration::from_secs(60)));
    let ms = Instant::from_millis;
    let bcast = frame(Mac::BROADCAST, A, None);
    send(&mut sw, ms(0), 1, &bcast).expect("learnt on 1");
    send(&mut sw, ms(10), 2, &bcast).expect("move 1 -> 2");
    send(&mut sw, ms(20), 1, &bcast).expect("move 2 -> 1");
    assert_eq!(send(&mut sw, ms(30), 2, &bcast), Err(SwitchDrop::Flapping));
    assert!(sw.is_blocked(PortIdx(2)) && !sw.is_blocked(PortIdx(1)));
    assert_eq!(sw.lookup(ms(30), A, VlanId::DEFAULT), Some(PortIdx(1)));
    // The blocked port neither sends nor receives.
    assert_eq!(send(&mut sw, ms(40), 2, &frame(B, C, None)), Err(SwitchDrop::PortBlocked));
    assert_eq!(send(&mut sw, ms(50), 3, &frame(Mac::BROADCAST, C, None)), Ok(vec![(1, U)]));
    assert_eq!(sw.poll_at(), Some(ms(30) + Duration::from_secs(60)));
    // The block lifts after 60 s.
    let later = ms(30) + Duration::from_secs(60);
    assert_eq!(send(&mut sw, later, 3, &frame(Mac::BROADCAST, C, None)), Ok(vec![(1, U), (2, U)]));
    assert_eq!((sw.counters().flap_blocks, sw.counters().dropped_blocked), (1, 1));
}

#[test]
fn slow_moves_do_not_block() {
    let mut sw = guarded(3, None);
    let bcast = frame(Mac::BROADCAST, A, None);
    for i in 0..10u64 {
        let port = 1 + (i % 2) as u16;
        // Moves 1.5 s apart: each window holds one move.
        assert!(send(&mut sw, Instant::from_millis(i * 1500), port, &bcast).is_ok());
    }
    assert_eq!(sw.counters().moved, 9);
    assert!(!sw.is_blocked(PortIdx(1)) && !sw.is_blocked(PortIdx(2)));
}

#[test]
fn permanent_block_needs_an_unblock() {
    let mut sw = guarded(1, None);
    let bcast = frame(Mac::BROADCAST, A, None);
    send(&mut sw, T0, 1, &bcast).expect("learnt");
    assert_eq!(send(&mut sw, T0, 2, &bcast), Err(SwitchDrop::Flapping));
    assert_eq!(sw.poll_at(), Some(Instant::ZERO + Duration::from_secs(100)));
    sw.handle_timeout(Instant::from_secs(1000));
    assert!(sw.is_blocked(PortIdx(2)));
    sw.handle_unblock(PortIdx(2)).expect("port exists");
    assert!(!sw.is_blocked(PortIdx(2)));
}

#[test]
fn short_frames_are_dropped_and_counted() {
    let mut sw = switch(2, SwitchConfig::standard(7));
    for len in 0..14 {
        assert_eq!(send(&mut sw, T0, 1, &vec![0xff; len]), Err(SwitchDrop::Short));
    }
    let mut short_tag = frame(Mac::BROADCAST, A, Some(1));
    short_tag.truncate(17);
    assert_eq!(send(&mut sw, T0, 1, &short_tag), Err(SwitchDrop::ShortTag));
    assert_eq!(sw.counters().dropped_short, 15);
    assert_eq!(sw.port_counters(PortIdx(1)).map(|c| c.rx_dropped.frames), Some(15));
    // A bare 14-byte header is a frame.
    assert!(send(&mut sw, T0, 1, &frame(Mac::BROADCAST, A, None)[..14]).is_ok());
}

#[test]
fn full_table_floods_instead_of_learning() {
    let mut config = SwitchConfig::standard(8);
    config.table_size = 2;
    let mut sw = switch(3, config);
    for (port, mac) in [(1, A), (2, B), (3, C)] {
        send(&mut sw, T0, port, &frame(Mac::BROADCAST, mac, None)).expect("forwarded");
    }
    assert_eq!(sw.mac_table_len(), 2);
    assert_eq!(sw.counters().table_full, 1);
    assert_eq!(send(&mut sw, T0, 1, &frame(C, A, None)), Ok(vec![(2, U), (3, U)]));
}

#[test]
fn removing_or_reconfiguring_a_port_forgets_its_addresses() {
    let mut sw = switch(3, SwitchConfig::standard(9));
    send(&mut sw, T0, 1, &frame(Mac::BROADCAST, A, None)).expect("forwarded");
    send(&mut sw, T0, 2, &frame(Mac::BROADCAST, B, None)).expect("forwarded");
    sw.handle_port_vlan(PortIdx(1), PortVlan::access(VlanId::DEFAULT)).expect("exists");
    assert_eq!(sw.lookup(T0, A, VlanId::DEFAULT), None);
    sw.remove_port(PortIdx(2)).expect("exists");
    assert_eq!(sw.lookup(T0, B, VlanId::DEFAULT), None);
    assert_eq!(send(&mut sw, T0, 2, &frame(A, B, None)), Err(SwitchDrop::UnknownPort));
    assert_eq!(send(&mut sw, T0, 1, &frame(B, A, None)), Ok(vec![(3, U)]));
    assert_eq!(sw.ports().map(|p| p.0).collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn footprint_per_port() {
    let sw = switch(64, SwitchConfig::standard(0));
    println!(
        "size_of Switch = {} B; per port {} B; heap with 64 ports and a {}-entry table = {} B",
        core::mem::size_of::<Switch>(),
        Switch::PORT_BYTES,
        sw.config().table_size,
        sw.heap_bytes(),
    );
}
