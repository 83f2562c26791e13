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
//! - MLD snooping (RFC 4541, on by default): IPv6 multicast (33:33:..)
//!   goes only to the ports that asked for its group, to ports behind which
//!   a multicast router sent a query, and to ports from which no MLD report
//!   was heard yet in that VLAN (so a port to another switch, a hub or a
//!   host without IPv6 loses nothing). Reports and dones update the ingress
//!   port's groups and go to router ports only; queries and the all-nodes
//!   group ff02::1 are flooded. Groups are keyed by their Ethernet address
//!   (the last 32 bits of the IPv6 group), so two groups sharing it share
//!   listeners. Memberships live while the port does (there is no querier
//!   to refresh them, so none expire): a stale one costs copies, never
//!   frames. When the group table is full, a port whose join cannot be
//!   kept receives every group again. Without this, every fresh IPv6
//!   interface's neighbour discovery, MLD and router solicitations reach
//!   every port, which on a switch of 1,000 containers is millions of
//!   copies. IPv4 multicast (IGMP) is not snooped and floods.
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
use crate::mld::{self, Changes, MldMessage};
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
    /// Whether IPv6 multicast follows MLD reports (else it floods); the
    /// group table holds up to `table_size` (group, VLAN) entries.
    pub mld_snooping: bool,
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
            mld_snooping: true,
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
    /// MLD queries, reports and dones snooped.
    pub mld_messages: u64,
    /// IPv6 multicast frames sent by group membership instead of flooded.
    pub group_forwarded: u64,
    /// Joins not kept because the group table was full.
    pub groups_full: u64,
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
    /// A multicast router (an MLD querier) is behind this port.
    mld_router: bool,
    /// The VLANs in which an MLD report was heard on this port, and whether
    /// all its joins were kept. Usually one entry.
    listeners: Vec<(VlanId, Heard)>,
}

/// What MLD told about the listeners behind a port in one VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// Their groups are in the group table: send them only those.
    Listening,
    /// A join did not fit in the group table: send them every group.
    Overflowed,
}

impl Port {
    /// Whether this port gets IPv6 multicast of `vlan` whatever its group.
    fn wants_every_group(&self, vlan: VlanId) -> bool {
        self.mld_router || !self.listeners.iter().any(|&(v, heard)| v == vlan && heard == Heard::Listening)
    }
}

/// ff02::1, the all-nodes group, which MLD never reports (RFC 4541 3).
const ALL_NODES: Mac = Mac([0x33, 0x33, 0, 0, 0, 1]);

/// Ethertype of IPv6.
const ETHERTYPE_IPV6: u16 = 0x86dd;

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
    /// MLD listeners: (group MAC, VLAN) as a table key, to the ports that
    /// joined it, sorted.
    groups: HashMap<u64, Vec<PortIdx>, KeyedState>,
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
        let groups = HashMap::with_hasher(KeyedState { key: config.hash_key });
        Switch {
            next_sweep: Instant::ZERO + config.ageing,
            config,
            ports: Vec::new(),
            table,
            groups,
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
        let port = Port {
            idx,
            vlan,
            counters: PortCounters::default(),
            blocked: Blocked::No,
            mld_router: false,
            listeners: Vec::new(),
        };
        self.ports.insert(at, port);
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
        self.forget_listeners(idx);
        Ok(())
    }

    /// Changes the VLAN membership of `idx` and forgets the addresses learnt
    /// on it, as VDE does.
    pub fn handle_port_vlan(&mut self, idx: PortIdx, vlan: PortVlan) -> Result<(), SwitchError> {
        let at = self.position(idx).map_err(|_| SwitchError::NoSuchPort(idx))?;
        self.ports[at].vlan = vlan;
        self.ports[at].listeners.clear();
        self.flush_port(idx);
        self.forget_listeners(idx);
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

    /// Heap bytes reserved: ports, the egress scratch list, the MAC table
    /// (entries plus one control byte each, hashbrown's layout) and the MLD
    /// group table.
    pub fn heap_bytes(&self) -> usize {
        let listeners: usize =
            self.ports.iter().map(|p| p.listeners.capacity() * core::mem::size_of::<(VlanId, Heard)>()).sum();
        let members: usize = self.groups.values().map(|m| m.capacity() * core::mem::size_of::<PortIdx>()).sum();
        self.ports.capacity() * core::mem::size_of::<Port>()
            + self.egress.capacity() * core::mem::size_of::<Egress>()
            + self.table.capacity() * (core::mem::size_of::<(u64, MacEntry)>() + 1)
            + self.groups.capacity() * (core::mem::size_of::<(u64, Vec<PortIdx>)>() + 1)
            + listeners
            + members
    }

    /// The ports that joined IPv6 group `group` (its Ethernet address) in
    /// `vlan`, by MLD.
    pub fn group_members(&self, group: Mac, vlan: VlanId) -> &[PortIdx] {
        self.groups.get(&table_key(group, vlan)).map_or(&[], Vec::as_slice)
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
        if self.config.mld_snooping && dst.0[..2] == [0x33, 0x33] {
            self.snoop(in_at, vlan, &eth);
            return Ok(());
        }
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

    /// Forwards an IPv6 multicast frame by MLD state, learning from it
    /// first if it is an MLD message (general queries go to all-nodes).
    fn snoop(&mut self, in_at: usize, vlan: VlanId, eth: &EthernetFrame<'_>) {
        let in_idx = self.ports[in_at].idx;
        let message = (eth.ethertype() == ETHERTYPE_IPV6).then(|| mld::parse(eth.payload())).flatten();
        match message {
            Some(MldMessage::Query) => {
                self.counters.mld_messages += 1;
                self.ports[in_at].mld_router = true;
                self.flood(in_idx, |port| port.vlan.egress_tagging(vlan));
            }
            Some(MldMessage::Membership(changes)) => {
                self.counters.mld_messages += 1;
                self.listen(in_at, vlan, changes);
                self.forward_group(in_idx, vlan, None);
            }
            None if eth.dst() == ALL_NODES => self.flood(in_idx, |port| port.vlan.egress_tagging(vlan)),
            None => {
                self.counters.group_forwarded += 1;
                self.forward_group(in_idx, vlan, Some(eth.dst()));
            }
        }
    }

    /// Sends to router ports and, for a `group`, to its members and to the
    /// ports that get every group; `None` (an MLD report) goes to router
    /// ports only.
    fn forward_group(&mut self, ingress: PortIdx, vlan: VlanId, group: Option<Mac>) {
        let members = group.and_then(|g| self.groups.get(&table_key(g, vlan))).map_or(&[][..], Vec::as_slice);
        for port in &self.ports {
            if port.idx == ingress || port.blocked != Blocked::No {
                continue;
            }
            let wanted = port.mld_router
                || (group.is_some() && (port.wants_every_group(vlan) || members.binary_search(&port.idx).is_ok()));
            if let Some(tagging) = port.vlan.egress_tagging(vlan).filter(|_| wanted) {
                self.egress.push(Egress { port: port.idx, tagging });
            }
        }
    }

    /// Applies a report's joins and leaves to the ingress port.
    fn listen(&mut self, in_at: usize, vlan: VlanId, changes: Changes<'_>) {
        let idx = self.ports[in_at].idx;
        let mut kept = true;
        for (group, joined) in changes {
            let key = table_key(group, vlan);
            let room = self.groups.len() < self.config.table_size;
            match (joined, self.groups.get_mut(&key)) {
                (true, Some(members)) => {
                    if let Err(at) = members.binary_search(&idx) {
                        members.insert(at, idx);
                    }
                }
                (true, None) if room => {
                    self.groups.insert(key, vec![idx]);
                }
                (true, None) => {
                    self.counters.groups_full += 1;
                    kept = false;
                }
                (false, Some(members)) => {
                    if let Ok(at) = members.binary_search(&idx) {
                        members.remove(at);
                    }
                    if members.is_empty() {
                        self.groups.remove(&key);
                    }
                }
                (false, None) => {}
            }
        }
        let listeners = &mut self.ports[in_at].listeners;
        match listeners.iter_mut().find(|(v, _)| *v == vlan) {
            // Overflowed stays: the lost join is not in the table.
            Some((_, heard)) if !kept => *heard = Heard::Overflowed,
            Some(_) => {}
            None => listeners.push((vlan, if kept { Heard::Listening } else { Heard::Overflowed })),
        }
    }

    /// Removes `idx` from every group.
    fn forget_listeners(&mut self, idx: PortIdx) {
        self.groups.retain(|_, members| {
            if let Ok(at) = members.binary_search(&idx) {
                members.remove(at);
            }
            !members.is_empty()
        });
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

    /// A switch with ports 1..=n on VLAN 1.
    fn switch_of(n: u16, config: SwitchConfig) -> Switch {
        let mut sw = Switch::new(config);
        for p in 1..=n {
            sw.add_port(PortIdx(p), PortVlan::access(VlanId::DEFAULT)).expect("new port");
        }
        sw
    }

    /// `ipv6` in an untagged frame from port `from`'s host to `dst`.
    fn ipv6_frame(dst: Mac, from: u16, ipv6: &[u8]) -> Vec<u8> {
        let mut f = dst.0.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, u8::try_from(from).expect("small")]);
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f.extend_from_slice(ipv6);
        f
    }

    /// The ports `frame` from `port` goes to.
    fn out(sw: &mut Switch, port: u16, frame: &[u8]) -> Vec<u16> {
        match sw.handle_frame(Instant::ZERO, PortIdx(port), frame) {
            Forwarding::Forward(egress) => egress.iter().map(|e| e.port.0).collect(),
            Forwarding::Dropped(why) => panic!("dropped: {why:?}"),
        }
    }

    const REPORTS: Mac = Mac([0x33, 0x33, 0, 0, 0, 0x16]);

    fn join(sw: &mut Switch, port: u16, id: u32) -> Vec<u16> {
        out(sw, port, &ipv6_frame(REPORTS, port, &mld::build::report_v2(&[(4, mld::build::solicited_node(id))])))
    }

    /// A neighbour solicitation's frame (not MLD) to the solicited-node
    /// group of `id`.
    fn to_group(sw: &mut Switch, from: u16, id: u32) -> Vec<u16> {
        let b = id.to_be_bytes();
        let mut ns = vec![0x60, 0, 0, 0, 0, 8, 58, 255];
        ns.resize(48, 0);
        out(sw, from, &ipv6_frame(Mac([0x33, 0x33, 0xff, b[1], b[2], b[3]]), from, &ns))
    }

    #[test]
    fn ipv6_multicast_goes_to_listeners_routers_and_unheard_ports() {
        let mut sw = switch_of(4, SwitchConfig::standard(0));
        // Nobody reported yet: a group's frames reach every port.
        assert_eq!(to_group(&mut sw, 1, 0xa), [2, 3, 4]);
        // Reports go to router ports only: none yet.
        assert_eq!(join(&mut sw, 2, 0xa), Vec::<u16>::new());
        assert_eq!(join(&mut sw, 3, 0xb), Vec::<u16>::new());
        assert_eq!(sw.group_members(Mac([0x33, 0x33, 0xff, 0, 0, 0xa]), VlanId::DEFAULT), [PortIdx(2)]);
        // Port 3 heard, not a member; port 4 never heard: still gets it.
        assert_eq!(to_group(&mut sw, 1, 0xa), [2, 4]);
        assert_eq!(to_group(&mut sw, 1, 0xc), [4]);
        // All-nodes always floods.
        let all_nodes = ipv6_frame(ALL_NODES, 1, &[0x60, 0, 0, 0, 0, 0, 59, 1]);
        assert_eq!(out(&mut sw, 1, &all_nodes), [2, 3, 4]);
        // A query makes port 4 a router port: it gets reports and groups.
        assert_eq!(out(&mut sw, 4, &ipv6_frame(ALL_NODES, 4, &mld::build::query())), [1, 2, 3]);
        assert_eq!(join(&mut sw, 1, 0xd), [4]);
        assert_eq!(to_group(&mut sw, 3, 0xa), [2, 4]);
        // A leave (change to include nothing) ends the membership.
        let leave = mld::build::report_v2(&[(3, mld::build::solicited_node(0xa))]);
        assert_eq!(out(&mut sw, 2, &ipv6_frame(REPORTS, 2, &leave)), [4]);
        assert_eq!(to_group(&mut sw, 3, 0xa), [4]);
        // MLDv1 works the same.
        let v1 = mld::build::v1(131, mld::build::solicited_node(0xa));
        assert_eq!(out(&mut sw, 3, &ipv6_frame(REPORTS, 3, &v1)), [4]);
        assert_eq!(to_group(&mut sw, 1, 0xa), [3, 4]);
        let c = sw.counters();
        assert_eq!((c.mld_messages, c.group_forwarded), (6, 6));
    }

    #[test]
    fn a_port_that_changes_vlan_or_goes_forgets_its_groups() {
        let mut sw = switch_of(3, SwitchConfig::standard(0));
        join(&mut sw, 2, 0xa);
        join(&mut sw, 3, 0xb);
        assert_eq!(to_group(&mut sw, 1, 0xa), [2]);
        sw.handle_port_vlan(PortIdx(2), PortVlan::access(VlanId::DEFAULT)).expect("port 2");
        assert_eq!(to_group(&mut sw, 1, 0xa), [2], "unheard again, so it gets every group");
        assert_eq!(sw.group_members(Mac([0x33, 0x33, 0xff, 0, 0, 0xa]), VlanId::DEFAULT), []);
        sw.remove_port(PortIdx(3)).expect("port 3");
        assert_eq!(sw.group_members(Mac([0x33, 0x33, 0xff, 0, 0, 0xb]), VlanId::DEFAULT), []);
    }

    #[test]
    fn a_join_that_does_not_fit_sends_the_port_every_group() {
        let mut config = SwitchConfig::standard(0);
        config.table_size = 1;
        let mut sw = switch_of(3, config);
        join(&mut sw, 2, 0xa);
        join(&mut sw, 3, 0xb);
        assert_eq!(sw.counters().groups_full, 1);
        assert_eq!(to_group(&mut sw, 1, 0xb), [3]);
        assert_eq!(to_group(&mut sw, 1, 0xc), [3]);
        // A later report that fits does not cut it off again.
        let leave_a = mld::build::report_v2(&[(3, mld::build::solicited_node(0xa))]);
        out(&mut sw, 2, &ipv6_frame(REPORTS, 2, &leave_a));
        join(&mut sw, 3, 0xe);
        assert_eq!(to_group(&mut sw, 1, 0xc), [3]);
    }

    #[test]
    fn without_snooping_ipv6_multicast_floods() {
        let mut config = SwitchConfig::standard(0);
        config.mld_snooping = false;
        let mut sw = switch_of(3, config);
        assert_eq!(join(&mut sw, 2, 0xa), [1, 3]);
        assert_eq!(to_group(&mut sw, 1, 0xb), [2, 3]);
        assert_eq!(sw.counters().mld_messages, 0);
    }

    proptest::proptest! {
        /// Snooping only ever removes copies, never from a port that sent
        /// no MLD, and never from a port that joined the group and did not
        /// leave it.
        #[test]
        fn snooping_only_removes_copies_nobody_asked_for(
            events in proptest::collection::vec((1u16..=4, 0u8..5, 0u32..3), 1..60),
        ) {
            let mut snooping = switch_of(5, SwitchConfig::standard(0));
            let mut config = SwitchConfig::standard(0);
            config.mld_snooping = false;
            let mut flooding = switch_of(5, config);
            let mut joined = std::collections::BTreeSet::new();
            for (port, kind, group) in events {
                let ipv6 = match kind {
                    0 => mld::build::report_v2(&[(4, mld::build::solicited_node(group))]),
                    1 => mld::build::report_v2(&[(3, mld::build::solicited_node(group))]),
                    2 => mld::build::query(),
                    _ => {
                        // Data to the group, from any port.
                        let b = group.to_be_bytes();
                        let dst = Mac([0x33, 0x33, 0xff, b[1], b[2], b[3]]);
                        let mut ns = vec![0x60, 0, 0, 0, 0, 8, 58, 255];
                        ns.resize(48, 0);
                        let frame = ipv6_frame(dst, port, &ns);
                        let with = out(&mut snooping, port, &frame);
                        let without = out(&mut flooding, port, &frame);
                        proptest::prop_assert!(with.iter().all(|p| without.contains(p)));
                        proptest::prop_assert!(with.contains(&5), "port 5 never reported: {with:?}");
                        for &(member, g) in &joined {
                            if g == group && member != port {
                                proptest::prop_assert!(with.contains(&member), "member {member} of {g}: {with:?}");
                            }
                        }
                        continue;
                    }
                };
                match kind {
                    0 => { joined.insert((port, group)); }
                    1 => { joined.remove(&(port, group)); }
                    _ => {}
                }
                let dst = if kind == 2 { ALL_NODES } else { REPORTS };
                let frame = ipv6_frame(dst, port, &ipv6);
                let with = out(&mut snooping, port, &frame);
                let without = out(&mut flooding, port, &frame);
                proptest::prop_assert!(with.iter().all(|p| without.contains(p)));
            }
        }
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
