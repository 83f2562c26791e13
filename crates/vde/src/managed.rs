//! A switch as VDE's console sees it: ports, VLANs and endpoints kept here
//! and mirrored onto a [`netem::Switch`].
//!
//! [`ManagedSwitch`] is what the data plane runs per switch (the engine
//! drives frames through [`switch_mut`](ManagedSwitch::switch_mut)) and what
//! tests drive directly, so frames are forwarded by the VLANs the console
//! set and show up in the port counters.
//!
//! VDE's VLAN 0 (the default untagged VLAN) has no 802.1Q id; it maps to
//! netem's VLAN 4094, which VDE cannot create (its range is 1..=4093) and
//! which never appears on the wire because VLAN 0 is never tagged here.
//! Known limit: netem's switch cannot change mode or ageing live, so
//! `port/sethub` and `hash/setexpire` rebuild it, which empties the MAC
//! table and resets the port counters.

use std::collections::{BTreeMap, BTreeSet};

use netem::{Duration, Instant, PortIdx, PortVlan, Switch, SwitchConfig, SwitchError, SwitchMode, VlanId};

use crate::reply::{Errno, TargetError};
use crate::switch::{Endpoint, HashEntry, HashInfo, PortInfo, SwitchChange, SwitchInfo, SwitchTarget};

/// netem's VLAN for VDE's VLAN `vlan` (see the module docs).
fn netem_vlan(vlan: u16) -> VlanId {
    VlanId::new(if vlan == 0 { 4094 } else { vlan }).expect("VDE VLANs are 0..=4093")
}

/// VDE's VLAN for netem's VLAN `vlan` (the inverse of [`netem_vlan`]).
fn vde_vlan(vlan: VlanId) -> u16 {
    if vlan.get() == 4094 { 0 } else { vlan.get() }
}

/// VDE's view of one port.
#[derive(Debug, Clone)]
struct ManagedPort {
    untagged: Option<u16>,
    tagged: BTreeSet<u16>,
    active: bool,
    endpoints: Vec<Endpoint>,
}

impl ManagedPort {
    fn netem_vlan(&self) -> PortVlan {
        PortVlan {
            untagged: self.untagged.map(netem_vlan),
            tagged: self.tagged.iter().map(|v| netem_vlan(*v)).collect(),
        }
    }
}

/// A switch in memory, with VDE's ports and VLANs over a [`netem::Switch`].
#[derive(Debug, Clone)]
pub struct ManagedSwitch {
    switch: Switch,
    numports: u16,
    vlans: BTreeSet<u16>,
    ports: BTreeMap<u16, ManagedPort>,
    next_endpoint: u32,
    now: Instant,
}

impl ManagedSwitch {
    /// A learning switch with ports `1..numports` available and none
    /// allocated; `hash_key` keys netem's MAC table.
    pub fn new(numports: u16, hash_key: u64) -> ManagedSwitch {
        ManagedSwitch::with_config(numports, SwitchConfig::standard(hash_key))
    }

    /// A switch (or hub) with the given configuration, ports `1..numports`
    /// available and none allocated.
    pub fn with_config(numports: u16, config: SwitchConfig) -> ManagedSwitch {
        ManagedSwitch {
            switch: Switch::new(config),
            numports,
            vlans: BTreeSet::from([0]),
            ports: BTreeMap::new(),
            next_endpoint: 1,
            now: Instant::ZERO,
        }
    }

    /// Sets the instant MAC table ages are reported at (the console has
    /// no clock).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// The netem switch, to read its state.
    pub fn switch(&self) -> &Switch {
        &self.switch
    }

    /// Allocates port `number` in VLAN 0 with one endpoint of `module`
    /// described by `description`, active. A number at or past `numports`
    /// grows the switch (VDE's switches are fixed-size; ours are not).
    pub fn add_port(&mut self, number: u16, module: &str, description: &str) -> Result<(), SwitchError> {
        let port = ManagedPort {
            untagged: Some(0),
            tagged: BTreeSet::new(),
            active: true,
            endpoints: vec![Endpoint {
                id: self.next_endpoint,
                module: module.to_owned(),
                description: description.to_owned(),
            }],
        };
        self.switch.add_port(PortIdx(number), port.netem_vlan())?;
        self.next_endpoint += 1;
        self.ports.insert(number, port);
        self.numports = self.numports.max(number.saturating_add(1));
        Ok(())
    }

    /// Frees port `number`; the addresses learnt on it are forgotten.
    pub fn remove_port(&mut self, number: u16) -> Result<(), SwitchError> {
        self.switch.remove_port(PortIdx(number))?;
        self.ports.remove(&number);
        Ok(())
    }

    /// The lowest port number not allocated (from 1).
    pub fn free_port(&self) -> u16 {
        (1..=u16::MAX).find(|n| !self.ports.contains_key(n)).unwrap_or(u16::MAX)
    }

    /// Marks a port active (something connected) or inactive.
    pub fn set_active(&mut self, number: u16, active: bool) {
        if let Some(port) = self.ports.get_mut(&number) {
            port.active = active;
        }
    }

    /// The netem switch, to drive frames through it.
    pub fn switch_mut(&mut self) -> &mut Switch {
        &mut self.switch
    }

    /// Rebuilds the netem switch with a new configuration, keeping ports.
    fn rebuild(&mut self, config: SwitchConfig) -> Result<(), TargetError> {
        let mut switch = Switch::new(config);
        for (number, port) in &self.ports {
            switch.add_port(PortIdx(*number), port.netem_vlan()).map_err(|e| TargetError::failed(e.to_string()))?;
        }
        self.switch = switch;
        Ok(())
    }

    fn port_mut(&mut self, number: u16) -> Result<&mut ManagedPort, TargetError> {
        self.ports.get_mut(&number).ok_or(TargetError::code(Errno::NxIo))
    }

    fn sync_port(&mut self, number: u16) -> Result<(), TargetError> {
        let vlan = self.ports.get(&number).ok_or(TargetError::code(Errno::NxIo))?.netem_vlan();
        self.switch.handle_port_vlan(PortIdx(number), vlan).map_err(|e| TargetError::failed(e.to_string()))
    }
}

impl SwitchTarget for ManagedSwitch {
    fn info(&self) -> SwitchInfo {
        let config = self.switch.config();
        SwitchInfo {
            numports: self.numports,
            hub: config.mode == SwitchMode::Hub,
            lines: vec![format!("in-memory switch, {} ports allocated", self.ports.len())],
        }
    }

    fn ports(&self) -> Vec<PortInfo> {
        self.ports
            .iter()
            .map(|(number, port)| {
                let counters = self.switch.port_counters(PortIdx(*number)).copied().unwrap_or_default();
                PortInfo {
                    number: *number,
                    untagged: port.untagged,
                    tagged: port.tagged.iter().copied().collect(),
                    active: port.active,
                    blocked: self.switch.is_blocked(PortIdx(*number)),
                    rx: counters.rx,
                    tx: counters.tx,
                    endpoints: port.endpoints.clone(),
                }
            })
            .collect()
    }

    fn vlans(&self) -> Vec<u16> {
        self.vlans.iter().copied().collect()
    }

    fn hash_info(&self) -> HashInfo {
        let config = self.switch.config();
        HashInfo {
            size: config.table_size,
            expire_secs: config.ageing.total_nanos() / 1_000_000_000,
            entries: self.switch.mac_table_len(),
        }
    }

    fn hash_entries(&self) -> Vec<HashEntry> {
        let mut entries: Vec<HashEntry> = self
            .switch
            .mac_entries(self.now)
            .map(|e| HashEntry {
                mac: e.mac,
                vlan: vde_vlan(e.vlan),
                port: e.port.0,
                age_secs: e.age.total_nanos() / 1_000_000_000,
            })
            .collect();
        entries.sort_by_key(|e| (e.vlan, e.mac));
        entries
    }

    fn apply(&mut self, change: &SwitchChange) -> Result<(), TargetError> {
        match change {
            SwitchChange::SetPortVlan { port, vlan } => {
                self.port_mut(*port)?.untagged = *vlan;
                self.sync_port(*port)
            }
            SwitchChange::CreateVlan(vlan) => {
                self.vlans.insert(*vlan);
                Ok(())
            }
            SwitchChange::RemoveVlan(vlan) => {
                self.vlans.remove(vlan);
                Ok(())
            }
            SwitchChange::AddTagged { vlan, port } => {
                self.port_mut(*port)?.tagged.insert(*vlan);
                self.sync_port(*port)
            }
            SwitchChange::RemoveTagged { vlan, port } => {
                self.port_mut(*port)?.tagged.remove(vlan);
                self.sync_port(*port)
            }
            SwitchChange::SetHub(hub) => {
                let mut config = self.switch.config().clone();
                config.mode = if *hub { SwitchMode::Hub } else { SwitchMode::Learning };
                self.rebuild(config)
            }
            SwitchChange::SetHashExpire(secs) => {
                let mut config = self.switch.config().clone();
                config.ageing = Duration::from_secs(u64::from(*secs));
                self.rebuild(config)
            }
        }
    }
}
