//! A learning Ethernet switch (or hub) with 802.1Q VLANs, as a state machine.
//!
//! [`Switch::handle_frame`] looks at one frame's header and returns where it
//! goes and in which form (tag kept, stripped or inserted); the driver moves
//! the bytes, using [`rewrite_frame`](crate::wire::rewrite_frame) into its
//! own buffers. The behaviour follows VDE's `vde_switch`:
//!
//! - Ingress: a frame shorter than 14 bytes (or a tagged one shorter than 18)
//!   is dropped and counted. An untagged or priority-tagged (VID 0) frame
//!   belongs to the port's untagged VLAN and is dropped if the port has none;
//!   a tagged frame is accepted only if its VLAN is in the port's tagged set.
//! - Learning: the source (unless multicast) is learnt under (MAC, VLAN).
//!   Entries expire `ageing` after they were last seen. When the table is
//!   full, expired entries are swept; if it is still full the address is not
//!   learnt (its frames are flooded, the fail-open choice of real switches).
//! - Forwarding: a known unicast destination goes to its port only, and is
//!   dropped if that is the ingress port (no echo). Unknown unicast,
//!   broadcast and multicast are flooded to every other port of the VLAN.
//!   Egress strips the tag on a port's untagged VLAN and inserts it
//!   (0x8100) on its tagged VLANs.
//! - Hub mode floods every frame unchanged to every other port, with no
//!   learning and no VLANs.
//! - Loop protection: if a source MAC moves between ports `flap.moves` times
//!   within `flap.window`, the port it moved to last is blocked (frames in
//!   and out are dropped) for `flap.block_for`, or until
//!   [`Switch::handle_unblock`]. This is the "MAC move" guard of real
//!   switches: in a loop, the same MAC bounces between the two ports that
//!   close it, and the later port is the one the looping copy came in on.
//!   The MAC stays on its earlier port, and entries on the blocked port are
//!   flushed.
//!
//! Link-local groups (01:80:c2:00:00:0x, STP BPDUs) are flooded like other
//! multicast: there is no spanning tree here.
//!
//! The MAC table is a `HashMap` preallocated to the configured size, with a
//! keyed hash (seeded from the config, so no OS randomness) to make
//! collisions hard to aim at; it is not a cryptographic hash.

use core::hash::{BuildHasher, Hasher};
use std::collections::HashMap;

use thiserror::Error;

use crate::link::Count;
use crate::time::{Duration, Instant};
use crate::wire::{EthernetFrame, Mac, Tagging, VlanId, WireError};

/// A switch port number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortIdx(pub u16);

/// Learning switch or hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchMode {
    /// Learns addresses and honours VLANs.
    Learning,
    /// Floods every frame unchanged to every other port.
    Hub,
}

/// The MAC-move rule that blocks a looping port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapGuard {
    /// Moves of one (MAC, VLAN) within `window` that block the port; 0
    /// disables the guard.
    pub moves: u8,
    /// The window in which moves are counted.
    pub window: Duration,
    /// How long a port stays blocked; `None` until `handle_unblock`.
    pub block_for: Option<Duration>,
}

/// Switch configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchConfig {
    /// Learning switch or hub.
    pub mode: SwitchMode,
    /// Entries of the MAC table, preallocated.
    pub table_size: usize,
    /// How long an entry lives after its address was last seen.
    pub ageing: Duration,
    /// Loop protection.
    pub flap: FlapGuard,
    /// Key of the MAC table hash.
    pub hash_key: u64,
}

impl SwitchConfig {
    /// A learning switch with VDE's defaults where VDE has them: 100 s
    /// ageing; 1024 entries; blocking after 4 moves within 1 s, for 60 s.
    pub fn standard(hash_key: u64) -> SwitchConfig {
        SwitchConfig {
            mode: SwitchMode::Learning,
            table_size: 1024,
            ageing: Duration::from_secs(100),
            flap: FlapGuard { moves: 4, window: Duration::from_secs(1), block_for: Some(Duration::from_secs(60)) },
            hash_key,
        }
    }
}

/// A set of VLAN ids, as a 4096-bit map.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet {
    bits: [u64; 64],
}

impl VlanSet {
    /// The empty set.
    pub const fn new() -> VlanSet {
        VlanSet { bits: [0; 64] }
    }

    /// Adds `vlan`.
    pub fn insert(&mut self, vlan: VlanId) {
        let id = usize::from(vlan.get());
        self.bits[id / 64] |= 1 << (id % 64);
    }

    /// Removes `vlan`.
    pub fn remove(&mut self, vlan: VlanId) {
        let id = usize::from(vlan.get());
        self.bits[id / 64] &= !(1 << (id % 64));
    }

    /// Whether `vlan` is in the set.
    pub fn contains(&self, vlan: VlanId) -> bool {
        let id = usize::from(vlan.get());
        self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    /// The members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = VlanId> + '_ {
        (1..=4094u16).filter_map(VlanId::new).filter(|v| self.contains(*v))
    }
}

impl Default for VlanSet {
    fn default() -> VlanSet {
        VlanSet::new()
    }
}

impl core::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<VlanId> for VlanSet {
    fn from_iter<I: IntoIterator<Item = VlanId>>(iter: I) -> VlanSet {
        let mut set = VlanSet::new();
        for vlan in iter {
            set.insert(vlan);
        }
        set
    }
}

/// VLAN membership of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortVlan {
    /// The access VLAN: untagged frames belong to it and leave untagged;
    /// `None` drops untagged frames.
    pub untagged: Option<VlanId>,
    /// VLANs carried tagged.
    pub tagged: VlanSet,
}

impl PortVlan {
    /// An access port of `vlan`.
    pub fn access(vlan: VlanId) -> PortVlan {
        PortVlan { untagged: Some(vlan), tagged: VlanSet::new() }
    }

    /// A trunk carrying `vlans` tagged, with no untagged VLAN.
    pub fn trunk(vlans: impl IntoIterator<Item = VlanId>) -> PortVlan {
        PortVlan { untagged: None, tagged: vlans.into_iter().collect() }
    }

    /// How a frame of `vlan` leaves this port, or `None` if not a member.
    /// The untagged VLAN wins if it is also in the tagged set.
    pub fn egress_tagging(&self, vlan: VlanId) -> Option<Tagging> {
        if self.untagged == Some(vlan) {
            Some(Tagging::Untagged)
        } else if self.tagged.contains(vlan) {
            Some(Tagging::Tagged(vlan))
        } else {
            None
        }
    }
}

/// Per-port totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortCounters {
    /// Frames received on the port, dropped or not.
    pub rx: Count,
    /// Frames received and then dropped.
    pub rx_dropped: Count,
    /// Frames sent out of the port (bytes after tag rewriting).
    pub tx: Count,
}

/// Switch-wide totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchCounters {
    /// Frames shorter than their header.
    pub dropped_short: u64,
    /// Frames on a port that does not exist.
    pub dropped_unknown_port: u64,
    /// Frames received on a blocked port.
    pub dropped_blocked: u64,
    /// Frames whose VLAN the port does not carry.
    pub dropped_vlan: u64,
    /// Known unicast whose destination is the ingress port.
    pub dropped_no_echo: u64,
    /// Frames that triggered the flap guard.
    pub dropped_flapping: u64,
    /// Ports blocked by the flap guard.
    pub flap_blocks: u64,
    /// Addresses learnt (new entries).
    pub learned: u64,
    /// Addresses that moved to another port.
    pub moved: u64,
    /// Addresses not learnt because the table was full.
    pub table_full: u64,
    /// Frames flooded.
    pub flooded: u64,
}

/// Why the switch dropped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwitchDrop {
    /// Shorter than 14 bytes.
    Short,
    /// Tagged but shorter than 18 bytes.
    ShortTag,
    /// The ingress port does not exist.
    UnknownPort,
    /// The ingress port is blocked.
    PortBlocked,
    /// The port does not carry the frame's VLAN.
    VlanNotAllowed,
    /// The destination is behind the ingress port.
    NoEcho,
    /// The source MAC flapped; the ingress port is now blocked.
    Flapping,
}

/// One output of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Egress {
    /// The port to send on.
    pub port: PortIdx,
    /// The form the frame leaves in.
    pub tagging: Tagging,
}

/// One fresh entry of the MAC table, as [`Switch::mac_entries`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacTableEntry {
    /// The learnt address.
    pub mac: Mac,
    /// The VLAN it was learnt in.
    pub vlan: VlanId,
    /// The port it was last seen on.
    pub port: PortIdx,
    /// Time since it was last seen.
    pub age: Duration,
}

/// The switch's decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding<'a> {
    /// Dropped, and why.
    Dropped(SwitchDrop),
    /// Send to these ports (possibly none), in increasing port order.
    Forward(&'a [Egress]),
}

/// A port-management error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SwitchError {
    /// `add_port` with a number in use.
    #[error("port {} already exists", .0.0)]
    PortExists(PortIdx),
    /// A port number that is not in use.
    #[error("port {} does not exist", .0.0)]
    NoSuchPort(PortIdx),
}

/// Whether and how long a port is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    No,
    Until(Instant),
    Forever,
}

#[derive(Debug, Clone)]
struct Port {
    idx: PortIdx,
    vlan: PortVlan,
    counters: PortCounters,
    blocked: Blocked,
}

/// One learnt address.
#[derive(Debug, Clone, Copy)]
struct MacEntry {
    port: PortIdx,
    last_seen: Instant,
    /// Start of the flap-counting window.
    window_start: Instant,
    /// Moves within the window.
    moves: u8,
}

/// (MAC, VLAN) packed as MAC in bits 0..48 and VLAN in bits 48..60.
fn table_key(mac: Mac, vlan: VlanId) -> u64 {
    mac.to_u64() | (u64::from(vlan.get()) << 48)
}

/// Builds [`KeyedHasher`]s with the switch's key.
#[derive(Debug, Clone, Copy)]
struct KeyedState {
    key: u64,
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { key: self.key, state: 0 }
    }
}

/// The SplitMix64 finaliser over `key ^ value`: a keyed bijection of the
/// 64-bit table key, cheap and well mixed in every bit.
#[derive(Debug, Clone, Copy)]
struct KeyedHasher {
    key: u64,
    state: u64,
}

impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for table keys; this keeps any other
        // input correct, if slower.
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        let mut z = (self.state ^ value ^ self.key).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.state = z ^ (z >> 31);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// A learning switch or hub.
///
/// Call order: add ports with [`add_port`](Self::add_port); for every frame
/// call [`handle_frame`](Self::handle_frame) with the current time and send
/// the frame to each returned [`Egress`] (rewriting tags with
/// [`rewrite_frame`](crate::wire::rewrite_frame)); call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_at`](Self::poll_at) to
/// free aged entries and lift timed blocks (lookups ignore aged entries
/// anyway, so a late timeout changes memory use, not decisions). Each
/// `handle_frame` does O(ports) work and allocates nothing once ports are
/// added.
#[derive(Debug, Clone)]
pub struct Switch {
    config: SwitchConfig,
    /// Sorted by port number.
    ports: Vec<Port>,
    table: HashMap<u64, MacEntry, KeyedState>,
    /// Reused output of `handle_frame`, with room for every port.
    egress: Vec<Egress>,
    counters: SwitchCounters,
    n_blocked_timed: usize,
    next_sweep: Instant,
    now: Instant,
}

impl Switch {
    /// An empty switch with its MAC table preallocated.
    pub fn new(config: SwitchConfig) -> Switch {
        let table = HashMap::with_capacity_and_hasher(config.table_size, KeyedState { key: config.hash_key });
        Switch {
            next_sweep: Instant::ZERO + config.ageing,
            config,
            ports: Vec::new(),
            table,
            egress: Vec::new(),
            counters: SwitchCounters::default(),
            n_blocked_timed: 0,
            now: Instant::ZERO,
        }
    }

    /// Adds port `idx` with its VLAN membership.
    pub fn add_port(&mut self, idx: PortIdx, vlan: PortVlan) -> Result<(), SwitchError> {
        let at = match self.position(idx) {
            Ok(_) => return Err(SwitchError::PortExists(idx)),
            Err(at) => at,
        };
        self.ports.insert(at, Port { idx, vlan, counters: PortCounters::default(), blocked: Blocked::No });
        // Keep room for a flood to every port, so frames never allocate.
        self.egress.reserve(self.ports.len());
        Ok(())
    }

    /// Removes port `idx` and forgets the addresses learnt on it.
    pub fn remove_port(&mut self, idx: PortIdx) -> Result<(), SwitchError> {
        let at = self.position(idx).map_err(|_| SwitchError::NoSuchPort(idx))?;
        if matches!(self.ports[at].blocked, Blocked::Until(_)) {
            self.n_blocked_timed -= 1;
        }
        self.ports.remove(at);
        self.flush_port(idx);
        Ok(())
    }

    /// Changes the VLAN membership of `idx` and forgets the addresses learnt
    /// on it, as VDE does.
    pub fn handle_port_vlan(&mut self, idx: PortIdx, vlan: PortVlan) -> Result<(), SwitchError> {
        let at = self.position(idx).map_err(|_| SwitchError::NoSuchPort(idx))?;
        self.ports[at].vlan = vlan;
        self.flush_port(idx);
        Ok(())
    }

    /// Lifts a block on `idx`.
    pub fn handle_unblock(&mut self, idx: PortIdx) -> Result<(), SwitchError> {
        let at = self.position(idx).map_err(|_| SwitchError::NoSuchPort(idx))?;
        self.unblock_at(at);
        Ok(())
    }

    /// Decides where `frame`, received on `ingress` at `now`, goes.
    pub fn handle_frame(&mut self, now: Instant, ingress: PortIdx, frame: &[u8]) -> Forwarding<'_> {
        self.now = self.now.max(now);
        let now = self.now;
        self.egress.clear();
        if self.n_blocked_timed > 0 {
            self.lift_expired_blocks(now);
        }
        let Ok(in_at) = self.position(ingress) else {
            self.counters.dropped_unknown_port += 1;
            return Forwarding::Dropped(SwitchDrop::UnknownPort);
        };
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.ports[in_at].counters.rx.add(len);
        match self.decide(now, in_at, frame) {
            Ok(()) => {
                for egress in &self.egress {
                    if let Ok(at) = self.ports.binary_search_by_key(&egress.port, |p| p.idx) {
                        let tagged = frame.get(12..14) == Some(&[0x81, 0x00][..]);
                        let out_len = egress.tagging.output_len(frame.len(), tagged);
                        self.ports[at].counters.tx.add(u32::try_from(out_len).unwrap_or(u32::MAX));
                    }
                }
                Forwarding::Forward(&self.egress)
            }
            Err(drop) => {
                self.ports[in_at].counters.rx_dropped.add(len);
                let c = &mut self.counters;
                match drop {
                    SwitchDrop::Short | SwitchDrop::ShortTag => c.dropped_short += 1,
                    SwitchDrop::UnknownPort => c.dropped_unknown_port += 1,
                    SwitchDrop::PortBlocked => c.dropped_blocked += 1,
                    SwitchDrop::VlanNotAllowed => c.dropped_vlan += 1,
                    SwitchDrop::NoEcho => c.dropped_no_echo += 1,
                    SwitchDrop::Flapping => c.dropped_flapping += 1,
                }
                Forwarding::Dropped(drop)
            }
        }
    }

    /// Frees aged entries and lifts expired blocks.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        self.sweep(now);
        self.lift_expired_blocks(now);
    }

    /// When `handle_timeout` has work next, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        let sweep = (!self.table.is_empty()).then_some(self.next_sweep);
        let unblock = self
            .ports
            .iter()
            .filter_map(|p| match p.blocked {
                Blocked::Until(t) => Some(t),
                Blocked::No | Blocked::Forever => None,
            })
            .min();
        match (sweep, unblock) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The port `mac` was last seen on in `vlan`, if the entry is fresh at
    /// `now`.
    pub fn lookup(&self, now: Instant, mac: Mac, vlan: VlanId) -> Option<PortIdx> {
        self.fresh_entry(now, table_key(mac, vlan)).map(|e| e.port)
    }

    /// Whether `idx` is blocked by the flap guard.
    pub fn is_blocked(&self, idx: PortIdx) -> bool {
        self.position(idx).is_ok_and(|at| self.ports[at].blocked != Blocked::No)
    }

    /// The totals of port `idx`.
    pub fn port_counters(&self, idx: PortIdx) -> Option<&PortCounters> {
        let at = self.position(idx).ok()?;
        Some(&self.ports[at].counters)
    }

    /// The switch-wide totals.
    pub fn counters(&self) -> &SwitchCounters {
        &self.counters
    }

    /// The entries still fresh at `now`, in no particular order.
    pub fn mac_entries(&self, now: Instant) -> impl Iterator<Item = MacTableEntry> + '_ {
        self.table.iter().filter_map(move |(key, e)| {
            let age = now.saturating_duration_since(e.last_seen);
            let vlan = VlanId::new((key >> 48) as u16)?;
            (age <= self.config.ageing).then_some(MacTableEntry { mac: Mac::from_u64(*key), vlan, port: e.port, age })
        })
    }

    /// Entries in the MAC table, aged or not.
    pub fn mac_table_len(&self) -> usize {
        self.table.len()
    }

    /// The configuration.
    pub fn config(&self) -> &SwitchConfig {
        &self.config
    }

    /// Port numbers in increasing order.
    pub fn ports(&self) -> impl Iterator<Item = PortIdx> + '_ {
        self.ports.iter().map(|p| p.idx)
    }

    /// Heap bytes reserved: ports, the egress scratch list and the MAC table
    /// (entries plus one control byte each, hashbrown's layout).
    pub fn heap_bytes(&self) -> usize {
        self.ports.capacity() * core::mem::size_of::<Port>()
            + self.egress.capacity() * core::mem::size_of::<Egress>()
            + self.table.capacity() * (core::mem::size_of::<(u64, MacEntry)>() + 1)
    }

    /// Bytes one port costs: its record and its slot in the egress list.
    pub const PORT_BYTES: usize = core::mem::size_of::<Port>() + core::mem::size_of::<Egress>();

    fn position(&self, idx: PortIdx) -> Result<usize, usize> {
        self.ports.binary_search_by_key(&idx, |p| p.idx)
    }

    /// Fills `self.egress`, or says why the frame is dropped.
    fn decide(&mut self, now: Instant, in_at: usize, frame: &[u8]) -> Result<(), SwitchDrop> {
        let eth = EthernetFrame::new_checked(frame).map_err(|e| match e {
            WireError::ShortTag { .. } => SwitchDrop::ShortTag,
            WireError::Short { .. } | WireError::BufferTooSmall { .. } => SwitchDrop::Short,
        })?;
        let ingress = &self.ports[in_at];
        if ingress.blocked != Blocked::No {
            return Err(SwitchDrop::PortBlocked);
        }
        let in_idx = ingress.idx;
        if self.config.mode == SwitchMode::Hub {
            self.flood(in_idx, |_| Some(Tagging::AsReceived));
            return Ok(());
        }
        let vlan = match eth.tag_vid() {
            // VID 0 is a priority tag: the frame is on the port's own VLAN.
            None | Some(0) => ingress.vlan.untagged,
            Some(vid) => VlanId::new(vid).filter(|v| ingress.vlan.tagged.contains(*v)),
        }
        .ok_or(SwitchDrop::VlanNotAllowed)?;

        let src = eth.src();
        if !src.is_multicast() {
            self.learn(now, in_at, src, vlan)?;
        }
        let dst = eth.dst();
        if !dst.is_multicast()
            && let Some(entry) = self.fresh_entry(now, table_key(dst, vlan))
        {
            if entry.port == in_idx {
                return Err(SwitchDrop::NoEcho);
            }
            let target = self
                .position(entry.port)
                .ok()
                .map(|at| &self.ports[at])
                .filter(|p| p.blocked == Blocked::No)
                .and_then(|p| p.vlan.egress_tagging(vlan));
            if let Some(tagging) = target {
                self.egress.push(Egress { port: entry.port, tagging });
                return Ok(());
            }
        }
        self.flood(in_idx, |port| port.vlan.egress_tagging(vlan));
        Ok(())
    }

    /// Sends to every unblocked port but `ingress` that `tagging` accepts.
    fn flood(&mut self, ingress: PortIdx, tagging: impl Fn(&Port) -> Option<Tagging>) {
        self.counters.flooded += 1;
        for port in &self.ports {
            if port.idx == ingress || port.blocked != Blocked::No {
                continue;
            }
            if let Some(tagging) = tagging(port) {
                self.egress.push(Egress { port: port.idx, tagging });
            }
        }
    }

    /// Learns `src` on the ingress port, applying the flap guard.
    fn learn(&mut self, now: Instant, in_at: usize, src: Mac, vlan: VlanId) -> Result<(), SwitchDrop> {
        let in_idx = self.ports[in_at].idx;
        let key = table_key(src, vlan);
        let ageing = self.config.ageing;
        let guard = self.config.flap;
        let fresh = MacEntry { port: in_idx, last_seen: now, window_start: now, moves: 0 };
        match self.table.get_mut(&key) {
            Some(entry) if now.saturating_duration_since(entry.last_seen) > ageing => {
                *entry = fresh;
            }
            Some(entry) if entry.port == in_idx => entry.last_seen = now,
            Some(entry) => {
                if guard.moves > 0 {
                    if now.saturating_duration_since(entry.window_start) > guard.window {
                        entry.window_start = now;
                        entry.moves = 0;
                    }
                    entry.moves = entry.moves.saturating_add(1);
                    if entry.moves >= guard.moves {
                        self.block(now, in_at);
                        return Err(SwitchDrop::Flapping);
                    }
                }
                entry.port = in_idx;
                entry.last_seen = now;
                self.counters.moved += 1;
            }
            None => {
                if self.table.len() >= self.config.table_size {
                    self.sweep(now);
                }
                if self.table.len() >= self.config.table_size {
                    self.counters.table_full += 1;
                } else {
                    self.table.insert(key, fresh);
                    self.counters.learned += 1;
                }
            }
        }
        Ok(())
    }

    fn fresh_entry(&self, now: Instant, key: u64) -> Option<&MacEntry> {
        self.table.get(&key).filter(|e| now.saturating_duration_since(e.last_seen) <= self.config.ageing)
    }

    fn block(&mut self, now: Instant, at: usize) {
        let port = &mut self.ports[at];
        if let Blocked::Until(_) = port.blocked {
            self.n_blocked_timed -= 1;
        }
        port.blocked = match self.config.flap.block_for {
            Some(hold) => {
                self.n_blocked_timed += 1;
                Blocked::Until(now + hold)
            }
            None => Blocked::Forever,
        };
        self.counters.flap_blocks += 1;
        let idx = port.idx;
        self.flush_port(idx);
    }

    fn unblock_at(&mut self, at: usize) {
        if let Blocked::Until(_) = self.ports[at].blocked {
            self.n_blocked_timed -= 1;
        }
        self.ports[at].blocked = Blocked::No;
    }

    fn lift_expired_blocks(&mut self, now: Instant) {
        for at in 0..self.ports.len() {
            if matches!(self.ports[at].blocked, Blocked::Until(t) if t <= now) {
                self.unblock_at(at);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        let ageing = self.config.ageing;
        self.table.retain(|_, e| now.saturating_duration_since(e.last_seen) <= ageing);
        self.next_sweep = now + ageing;
    }

    fn flush_port(&mut self, idx: PortIdx) {
        self.table.retain(|_, e| e.port != idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_set_membership() {
        let v = |id| VlanId::new(id).expect("valid id");
        let mut set: VlanSet = [v(1), v(100), v(4094)].into_iter().collect();
        assert!(set.contains(v(100)) && !set.contains(v(101)));
        set.remove(v(100));
        assert_eq!(set.iter().map(VlanId::get).collect::<Vec<_>>(), [1, 4094]);
    }

    #[test]
    fn keyed_hash_depends_on_the_key() {
        let a = KeyedState { key: 1 }.hash_one(42u64);
        let b = KeyedState { key: 2 }.hash_one(42u64);
        assert_ne!(a, b);
    }

    #[test]
    fn port_numbers_are_checked() {
        let mut sw = Switch::new(SwitchConfig::standard(0));
        let access = PortVlan::access(VlanId::DEFAULT);
        assert_eq!(sw.add_port(PortIdx(3), access.clone()), Ok(()));
        assert_eq!(sw.add_port(PortIdx(3), access.clone()), Err(SwitchError::PortExists(PortIdx(3))));
        assert_eq!(sw.remove_port(PortIdx(4)), Err(SwitchError::NoSuchPort(PortIdx(4))));
        assert_eq!(sw.handle_frame(Instant::ZERO, PortIdx(9), &[0; 60]), Forwarding::Dropped(SwitchDrop::UnknownPort));
    }
}
