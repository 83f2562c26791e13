//! The data plane of the host: which switches and links should exist, and
//! making the engine match.
//!
//! [`desired`] is pure: from the stored entities it derives the started
//! switches and, for every started connection whose two ends are present
//! (a container interface whose container runs, an endpoint of a started
//! switch), the link with its attributes. [`Plane::reconcile`] then adds,
//! changes and removes engine objects until the engine matches. It runs
//! after every change and after a restart, so a link follows its ends
//! (a container restarted gets its links back) without any driver keeping
//! track of the others.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use capture::{Capture, CaptureConfig, CaptureMode, CaptureSetup, Interface};
use dataplane::{Direction, EngineControl, EngineHandle, LinkEnd, LinkId, PacketPort, SwitchId};
use model::{Attrs, State};
use netem::{DirectionParams, ParamsUpdate, SwitchMode};
use serde_json::{Value, json};
use vde::SwitchChange;

use crate::store::{Class, Entity};

/// One end of a link as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A veth host end in the hostmanager's namespace.
    Port {
        /// Interface name.
        ifname: String,
    },
    /// A port of a switch element, with its VLANs (model numbering).
    Switch {
        /// The switch element.
        switch: i64,
        /// Untagged VLAN.
        vlan: u16,
        /// Tagged VLANs.
        tagged: Vec<u16>,
    },
}

/// A link that should exist.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredLink {
    /// Ends A and B (the connection's element1 and element2).
    pub ends: [End; 2],
    /// The connection's attributes.
    pub attrs: Attrs,
}

/// What the engine should hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Started switches: element id → hub mode.
    pub switches: BTreeMap<i64, bool>,
    /// Links: connection id → link.
    pub links: BTreeMap<i64, DesiredLink>,
}

fn attr_u16(e: &Entity, name: &str, default: u16) -> u16 {
    e.attrs.get(name).and_then(Value::as_u64).and_then(|v| u16::try_from(v).ok()).unwrap_or(default)
}

/// The data plane end of element `id`, if it is present now.
fn end_of(entities: &BTreeMap<i64, Entity>, id: i64) -> Option<End> {
    let e = entities.get(&id)?;
    let parent = entities.get(&e.parent?)?;
    if parent.state != State::Started {
        return None;
    }
    match e.kind.as_str() {
        "container_interface" => Some(End::Port { ifname: crate::drivers::container::host_end(parent, e) }),
        "switch_endpoint" => Some(End::Switch {
            switch: parent.id,
            vlan: attr_u16(e, "vlan", 1),
            tagged: e
                .attrs
                .get("tagged")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).filter_map(|v| u16::try_from(v).ok()).collect())
                .unwrap_or_default(),
        }),
        _ => None,
    }
}

/// The switches and links the entities ask for.
pub fn desired(entities: &BTreeMap<i64, Entity>) -> Desired {
    let mut want = Desired::default();
    for e in entities.values() {
        match (e.class, e.kind.as_str()) {
            (Class::Element, "switch") if e.state == State::Started => {
                let hub = e.attrs.get("mode").and_then(Value::as_str) == Some("hub");
                want.switches.insert(e.id, hub);
            }
            (Class::Connection, _) if e.state == State::Started => {
                let Some([a, b]) = e.ends else { continue };
                if let (Some(a), Some(b)) = (end_of(entities, a), end_of(entities, b)) {
                    want.links.insert(e.id, DesiredLink { ends: [a, b], attrs: e.attrs.clone() });
                }
            }
            _ => {}
        }
    }
    want
}

/// The capture a connection's attributes ask for.
pub fn capture_config(attrs: &Attrs) -> CaptureConfig {
    let mode = match attrs.get("capture_mode").and_then(Value::as_str) {
        Some("net") => CaptureMode::Net,
        _ => CaptureMode::File,
    };
    CaptureConfig {
        enabled: attrs.get("capturing").and_then(Value::as_bool).unwrap_or(false),
        filter: attrs.get("capture_filter").and_then(Value::as_str).unwrap_or("").to_string(),
        mode,
        ..CaptureConfig::tomato_default()
    }
}

/// Model VLAN numbers to VDE's: the model's default VLAN 1 is VDE's
/// default VLAN 0, so untouched ports need no change.
fn vde_vlan(vlan: u16) -> u16 {
    if vlan == 1 { 0 } else { vlan }
}

/// The VDE changes that give switch port `port` the end's VLANs.
fn vlan_changes(port: u16, vlan: u16, tagged: &[u16]) -> Vec<Vec<SwitchChange>> {
    let mut steps = Vec::new();
    let untagged = vde_vlan(vlan);
    if untagged != 0 {
        steps.push(vec![SwitchChange::CreateVlan(untagged)]);
        steps.push(vec![SwitchChange::SetPortVlan { port, vlan: Some(untagged) }]);
    }
    for &t in tagged {
        let t = vde_vlan(t);
        if t != 0 {
            steps.push(vec![SwitchChange::CreateVlan(t)]);
            steps.push(vec![SwitchChange::AddTagged { vlan: t, port }]);
        }
    }
    steps
}

/// A link the engine runs for a connection.
struct LiveLink {
    id: LinkId,
    ends: [End; 2],
    attrs: Attrs,
    params: [DirectionParams; 2],
    capture: Option<Capture>,
}

/// The engine and what runs in it, by entity id.
pub struct Plane {
    engine: EngineHandle,
    netns: String,
    capture_dir: PathBuf,
    capture_ip: IpAddr,
    switches: BTreeMap<i64, (SwitchId, bool)>,
    links: BTreeMap<i64, LiveLink>,
    /// Captures of links that went away, kept for download until the link
    /// returns or the connection goes.
    parked: BTreeMap<i64, Capture>,
    /// Bytes of links that went away, so a connection's traffic only grows.
    earlier: BTreeMap<i64, u64>,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane").field("switches", &self.switches.len()).field("links", &self.links.len()).finish()
    }
}

/// Parameters of both directions, keeping `old`'s seeds unless the `seed`
/// attribute changed (a fresh seed would restart every random stream).
fn params_for(attrs: &Attrs, old: Option<(&Attrs, &[DirectionParams; 2])>) -> Result<[DirectionParams; 2], String> {
    let (mut a, mut b) = dataplane::link_params_from_attrs(attrs)?;
    if let Some((old_attrs, old_params)) = old
        && old_attrs.get("seed") == attrs.get("seed")
    {
        a.seed = old_params[0].seed;
        b.seed = old_params[1].seed;
    }
    Ok([a, b])
}

impl Plane {
    /// A plane on a fresh engine whose ports open in namespace `netns`
    /// (a path); captures keep their rings under `capture_dir` and stream
    /// on `capture_ip`.
    pub fn new(netns: &Path, capture_dir: PathBuf, capture_ip: IpAddr) -> std::io::Result<Plane> {
        let engine = EngineHandle::spawn(dataplane::EngineConfig::standard())?;
        Ok(Plane {
            engine,
            netns: netns.display().to_string(),
            capture_dir,
            capture_ip,
            switches: BTreeMap::new(),
            links: BTreeMap::new(),
            parked: BTreeMap::new(),
            earlier: BTreeMap::new(),
        })
    }

    /// The engine's control, for consoles and statistics.
    pub fn control(&self) -> EngineControl {
        self.engine.control()
    }

    /// Makes the engine match `want`; returns the entities that could not
    /// be set up, with the reason (they are retried at the next call).
    pub fn reconcile(&mut self, want: &Desired) -> Vec<(i64, String)> {
        let mut errors = Vec::new();
        // Links that go, or whose ends changed, first: they may hold ports
        // of switches that go.
        let stale: Vec<i64> = self
            .links
            .iter()
            .filter(|(id, live)| want.links.get(id).is_none_or(|w| w.ends != live.ends))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove_link(id);
        }
        let gone: Vec<i64> = self
            .switches
            .iter()
            .filter(|(id, (_, hub))| want.switches.get(id) != Some(hub))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some((sw, _)) = self.switches.remove(&id) {
                let _ = self.engine.remove_switch(sw);
            }
        }
        for (&id, &hub) in &want.switches {
            if self.switches.contains_key(&id) {
                continue;
            }
            let mode = if hub { SwitchMode::Hub } else { SwitchMode::Learning };
            match self.engine.add_switch(mode, Vec::new()) {
                Ok(sw) => {
                    self.switches.insert(id, (sw, hub));
                }
                Err(e) => errors.push((id, format!("switch: {e}"))),
            }
        }
        for (&id, link) in &want.links {
            let result = match self.links.get(&id) {
                Some(live) if live.attrs == link.attrs => Ok(()),
                Some(_) => self.change_link(id, &link.attrs),
                None => self.add_link(id, link),
            };
            if let Err(e) = result {
                errors.push((id, e));
            }
        }
        errors
    }

    /// Drops what is kept of connection `id` (its parked capture), when
    /// the connection is removed.
    pub fn forget(&mut self, id: i64) {
        self.remove_link(id);
        self.earlier.remove(&id);
        if let Some(capture) = self.parked.remove(&id) {
            let _ = capture.close();
        }
    }

    fn open_end(&self, end: &End) -> Result<LinkEnd, String> {
        match end {
            End::Port { ifname } => {
                let name = ifname.clone();
                let port = dataplane::sys::in_netns(&self.netns, move || PacketPort::open(&name))
                    .and_then(|r| r)
                    .map_err(|e| format!("opening {ifname}: {e}"))?;
                Ok(LinkEnd::Port(Box::new(port)))
            }
            End::Switch { switch, .. } => {
                let (sw, _) = self.switches.get(switch).ok_or_else(|| format!("switch {switch} is not running"))?;
                Ok(LinkEnd::Switch(*sw))
            }
        }
    }

    fn add_link(&mut self, id: i64, want: &DesiredLink) -> Result<(), String> {
        let params = params_for(&want.attrs, None)?;
        let ends = [self.open_end(&want.ends[0])?, self.open_end(&want.ends[1])?];
        let [a, b] = ends;
        let link = self.engine.add_link_ends(a, b, params[0].clone(), params[1].clone()).map_err(|e| e.to_string())?;
        let ports = self.engine.link_switch_ports(link).map_err(|e| e.to_string())?;
        for (end, port) in want.ends.iter().zip(ports) {
            if let (End::Switch { vlan, tagged, .. }, Some((sw, number))) = (end, port) {
                for step in vlan_changes(number, *vlan, tagged) {
                    // Creating a VLAN that exists fails harmlessly.
                    let create = matches!(step.first(), Some(SwitchChange::CreateVlan(_)));
                    if let Err(e) = self.engine.apply_switch_changes(sw, step)
                        && !create
                    {
                        let _ = self.engine.remove_link(link);
                        return Err(format!("switch port VLAN: {e}"));
                    }
                }
            }
        }
        // A new link starts a new capture (its tap is the link's).
        if let Some(old) = self.parked.remove(&id) {
            let _ = old.close();
        }
        let live = LiveLink { id: link, ends: want.ends.clone(), attrs: want.attrs.clone(), params, capture: None };
        self.links.insert(id, live);
        // The capture starts where changes start and end it.
        self.sync_capture(id)
    }

    fn change_link(&mut self, id: i64, attrs: &Attrs) -> Result<(), String> {
        let live = self.links.get_mut(&id).ok_or("no such link")?;
        let params = params_for(attrs, Some((&live.attrs, &live.params)))?;
        for (i, dir) in [Direction::AToB, Direction::BToA].into_iter().enumerate() {
            let update = ParamsUpdate::between(&live.params[i], &params[i]);
            if !update.is_empty() {
                self.engine.set_link_params(live.id, dir, update).map_err(|e| e.to_string())?;
            }
        }
        live.params = params;
        live.attrs = attrs.clone();
        self.sync_capture(id)
    }

    /// Starts, changes or ends the link's capture to match its attributes.
    fn sync_capture(&mut self, id: i64) -> Result<(), String> {
        let live = self.links.get_mut(&id).ok_or("no such link")?;
        let config = capture_config(&live.attrs);
        match (&mut live.capture, config.enabled) {
            (None, false) => Ok(()),
            (Some(c), true) if c.config().mode == config.mode => c.reconfigure(config).map_err(|e| e.to_string()),
            (Some(_), _) => {
                if let Some(c) = live.capture.take() {
                    let _ = self.engine.set_link_capture(live.id, None);
                    let _ = c.close();
                }
                if config.enabled { self.start_capture(id, config) } else { Ok(()) }
            }
            (None, true) => self.start_capture(id, config),
        }
    }

    fn start_capture(&mut self, id: i64, config: CaptureConfig) -> Result<(), String> {
        let live = self.links.get_mut(&id).ok_or("no such link")?;
        let name = |e: &End| match e {
            End::Port { ifname } => ifname.clone(),
            End::Switch { switch, .. } => format!("switch{switch}"),
        };
        let (a, b) = (name(&live.ends[0]), name(&live.ends[1]));
        let interfaces = vec![Interface::named(format!("{a} -> {b}")), Interface::named(format!("{b} -> {a}"))];
        let mut setup = CaptureSetup::new(interfaces, self.capture_dir.join(id.to_string()));
        setup.listen = std::net::SocketAddr::new(self.capture_ip, 0);
        let (capture, tap) = Capture::start(setup, config).map_err(|e| format!("capture: {e}"))?;
        self.engine.set_link_capture(live.id, Some(tap)).map_err(|e| e.to_string())?;
        live.capture = Some(capture);
        Ok(())
    }

    fn remove_link(&mut self, id: i64) {
        let Some(live) = self.links.remove(&id) else { return };
        if let Ok(stats) = self.engine.remove_link(live.id) {
            *self.earlier.entry(id).or_default() += stats.ports.iter().map(|p| p.rx.bytes).sum::<u64>();
        }
        if let Some(c) = live.capture {
            self.parked.insert(id, c);
        }
    }

    /// Bytes received from both ends of each connection's link so far.
    pub fn traffic(&self) -> BTreeMap<i64, u64> {
        let Ok(stats) = self.engine.stats() else { return BTreeMap::new() };
        let by_link: BTreeMap<LinkId, u64> =
            stats.links.iter().map(|l| (l.id, l.ports.iter().map(|p| p.rx.bytes).sum())).collect();
        let mut out = self.earlier.clone();
        for (id, live) in &self.links {
            *out.entry(*id).or_default() += by_link.get(&live.id).copied().unwrap_or(0);
        }
        out
    }

    /// Runtime facts of connection `id` for its info.
    pub fn link_info(&self, id: i64) -> Attrs {
        let mut info = Attrs::new();
        let capture = self.links.get(&id).and_then(|l| l.capture.as_ref()).or(self.parked.get(&id));
        info.insert("emulating".into(), json!(self.links.contains_key(&id)));
        if let Some(port) = capture.and_then(Capture::stream_addr) {
            info.insert("capture_port".into(), json!(port.port()));
        }
        if let Some(c) = capture {
            let counters = c.counters();
            info.insert("capture_packets".into(), json!(counters.written));
        }
        info
    }

    /// Writes connection `id`'s capture as one pcapng file (newest
    /// packets within `limit` bytes, if given).
    pub fn capture_download(&self, id: i64, limit: Option<u64>, out: &Path) -> Result<(), String> {
        let capture = self
            .links
            .get(&id)
            .and_then(|l| l.capture.as_ref())
            .or(self.parked.get(&id))
            .ok_or("the connection has no capture: set capturing=true (capture_mode file) first")?;
        capture.sync(std::time::Duration::from_secs(5));
        capture.merge(limit, out).map(|_| ()).map_err(|e| format!("capture: {e}"))
    }

    /// Ends every link and switch (at shutdown; kernel ends stay).
    pub fn clear(&mut self) {
        let ids: Vec<i64> = self.links.keys().copied().collect();
        for id in ids {
            self.forget(id);
        }
        for (_, c) in std::mem::take(&mut self.parked) {
            let _ = c.close();
        }
        for (_, (sw, _)) in std::mem::take(&mut self.switches) {
            let _ = self.engine.remove_switch(sw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::UsageStatistics;

    fn entity(id: i64, class: Class, kind: &str, parent: Option<i64>, state: State) -> Entity {
        Entity {
            id,
            class,
            owner: "b".into(),
            kind: kind.into(),
            parent,
            ends: None,
            state,
            attrs: Attrs::new(),
            timeout: 0,
            pending: None,
            usage: UsageStatistics::new(0.0),
        }
    }

    fn lan(container_state: State, switch_state: State) -> BTreeMap<i64, Entity> {
        let mut m = BTreeMap::new();
        m.insert(1, entity(1, Class::Element, "container", None, container_state));
        m.insert(2, entity(2, Class::Element, "container_interface", Some(1), container_state));
        m.insert(3, entity(3, Class::Element, "switch", None, switch_state));
        let mut ep = entity(4, Class::Element, "switch_endpoint", Some(3), switch_state);
        ep.attrs.insert("vlan".into(), json!(7));
        m.insert(4, ep);
        let mut c = entity(5, Class::Connection, "bridge", None, State::Started);
        c.ends = Some([2, 4]);
        c.attrs.insert("delay_to".into(), json!(10));
        m.insert(5, c);
        m
    }

    #[test]
    fn a_link_exists_only_while_both_ends_are_present() {
        let want = desired(&lan(State::Started, State::Started));
        assert_eq!(want.switches, BTreeMap::from([(3, false)]));
        let link = &want.links[&5];
        assert_eq!(link.ends[0], End::Port { ifname: "c1-0".into() });
        assert_eq!(link.ends[1], End::Switch { switch: 3, vlan: 7, tagged: vec![] });
        assert_eq!(link.attrs["delay_to"], json!(10));

        let want = desired(&lan(State::Prepared, State::Started));
        assert!(want.links.is_empty());
        assert_eq!(want.switches.len(), 1);
        let want = desired(&lan(State::Started, State::Prepared));
        assert!(want.links.is_empty() && want.switches.is_empty());
    }

    #[test]
    fn a_stopped_connection_has_no_link() {
        let mut m = lan(State::Started, State::Started);
        m.get_mut(&5).unwrap().state = State::Created;
        assert!(desired(&m).links.is_empty());
    }

    #[test]
    fn vlan_one_is_vdes_default() {
        assert!(vlan_changes(3, 1, &[]).is_empty());
        let steps = vlan_changes(3, 7, &[1, 9]);
        assert_eq!(
            steps,
            vec![
                vec![SwitchChange::CreateVlan(7)],
                vec![SwitchChange::SetPortVlan { port: 3, vlan: Some(7) }],
                vec![SwitchChange::CreateVlan(9)],
                vec![SwitchChange::AddTagged { vlan: 9, port: 3 }],
            ]
        );
    }

    #[test]
    fn changed_attributes_keep_the_seed() {
        let mut old = Attrs::new();
        old.insert("delay_to".into(), json!(10));
        let first = params_for(&old, None).unwrap();
        let mut new = old.clone();
        new.insert("lossratio_from".into(), json!(5));
        let second = params_for(&new, Some((&old, &first))).unwrap();
        assert_eq!(second[0].seed, first[0].seed);
        assert_eq!(second[1].seed, first[1].seed);
        assert_eq!(second[0].lossratio_percent, 5.0);
        new.insert("seed".into(), json!(42));
        let third = params_for(&new, Some((&old, &first))).unwrap();
        assert_eq!(third[0].seed, 42);
    }
}
