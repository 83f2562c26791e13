//! Host placement: which host an element goes to, scored the way ToMaTo's
//! `host.select` does it.
//!
//! First every host that cannot take the element is left out, with the
//! reason: it has problems, lacks an element or connection type or a
//! network kind the element needs, lacks the template, or lies outside the
//! required site. The rest are scored:
//!
//! - −25 per component error since the last poll;
//! - −100 × load, where load is the highest of load average per CPU, used
//!   memory fraction and used data-disk fraction, at most 1;
//! - −10 × (elements − average) / average, clamped to ±20, and the same
//!   for connections clamped to ±10 (averages over the remaining hosts);
//! - plus the host and site preferences of the element's neighbours
//!   ([`LocationPrefs`]): each connected element on a host adds the two
//!   ends' same-host affinities to that host and their same-site
//!   affinities to its site.
//!
//! The highest score wins; ties go to the host whose name sorts first, so
//! the choice is deterministic. When no host remains, the error lists
//! every host with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What placement knows of one host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostView {
    /// The host's name.
    pub name: String,
    /// The host's site.
    pub site: String,
    /// Element types (host techs) it offers.
    pub element_types: BTreeSet<String>,
    /// Connection types it offers.
    pub connection_types: BTreeSet<String>,
    /// Network kinds it reaches (`internet`, `internet/uplink`, ...).
    pub network_kinds: BTreeSet<String>,
    /// Templates ready on it (by name).
    pub templates: BTreeSet<String>,
    /// Its current problems; any problem rules it out.
    pub problems: Vec<String>,
    /// Component errors since the last poll.
    pub component_errors: u32,
    /// How loaded it is, see [`HostLoad`].
    pub load: HostLoad,
    /// Elements it carries now.
    pub elements: u32,
    /// Connections it carries now.
    pub connections: u32,
}

/// A host's resources as its last `host_info` reported them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostLoad {
    /// The 5-minute load average.
    pub loadavg5: f64,
    /// CPUs present.
    pub cpus: u32,
    /// Memory in use and in total, bytes.
    pub memory_used: f64,
    /// Total memory, bytes.
    pub memory_total: f64,
    /// Data disk in use, bytes.
    pub disk_used: f64,
    /// Total data disk, bytes.
    pub disk_total: f64,
}

impl HostLoad {
    /// The load from 0 (idle) to 1 (full): the highest of load per CPU,
    /// memory and data disk fractions, capped at 1. A host that reports no
    /// CPUs or no totals counts as full.
    pub fn value(&self) -> f64 {
        let ratio = |used: f64, total: f64| if total > 0.0 { used / total } else { 1.0 };
        let cpu = ratio(self.loadavg5, f64::from(self.cpus));
        let load = cpu.max(ratio(self.memory_used, self.memory_total)).max(ratio(self.disk_used, self.disk_total));
        if load.is_nan() { 1.0 } else { load.clamp(0.0, 1.0) }
    }
}

/// What the element to place needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requirements {
    /// Only hosts of this site, if set (the element's or topology's site).
    pub site: Option<String>,
    /// Host element types it needs, e.g. `["container", "container_interface"]`.
    pub element_types: BTreeSet<String>,
    /// Host connection types it needs.
    pub connection_types: BTreeSet<String>,
    /// Network kinds it needs (external networks).
    pub network_kinds: BTreeSet<String>,
    /// The template that must be ready on the host.
    pub template: Option<String>,
}

/// How much a kind of element wants its neighbours close (ToMaTo's
/// `SAME_HOST_AFFINITY` and `SAME_SITE_AFFINITY`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affinity {
    /// Added to a neighbour's host (negative spreads load).
    pub same_host: f64,
    /// Added to a neighbour's site (keeps traffic local).
    pub same_site: f64,
}

impl Affinity {
    /// ToMaTo's default for elements: −10 host, +20 site.
    pub const ELEMENT: Affinity = Affinity { same_host: -10.0, same_site: 20.0 };
    /// VM interfaces: −20 host (spread connected VMs), +20 site.
    pub const INTERFACE: Affinity = Affinity { same_host: -20.0, same_site: 20.0 };
    /// Switch and tunnel endpoints: +1000 host (they must sit with what
    /// they connect), +20 site.
    pub const ENDPOINT: Affinity = Affinity { same_host: 1000.0, same_site: 20.0 };
    /// External network endpoints: +50 host, +20 site.
    pub const EXTERNAL_ENDPOINT: Affinity = Affinity { same_host: 50.0, same_site: 20.0 };

    /// The affinity of one of our element kinds (model names).
    pub fn of_kind(kind: &str) -> Affinity {
        match kind {
            "full_interface" | "container_interface" | "repy_interface" => Affinity::INTERFACE,
            "switch_endpoint" | "udp_endpoint" => Affinity::ENDPOINT,
            "external_network_endpoint" => Affinity::EXTERNAL_ENDPOINT,
            _ => Affinity::ELEMENT,
        }
    }
}

/// A neighbour already placed: an element connected to one of the
/// element's interfaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbour {
    /// The interface (or the element itself) the connection ends at.
    pub own: Affinity,
    /// The connected element's affinity.
    pub theirs: Affinity,
    /// The connected element's host.
    pub host: String,
    /// That host's site.
    pub site: String,
}

/// Host and site preferences gathered from neighbours (ToMaTo's
/// `getLocationPrefs`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocationPrefs {
    /// Points per host.
    pub hosts: BTreeMap<String, f64>,
    /// Points per site.
    pub sites: BTreeMap<String, f64>,
}

impl LocationPrefs {
    /// Sums the preferences of `neighbours`.
    pub fn from_neighbours(neighbours: &[Neighbour]) -> LocationPrefs {
        let mut prefs = LocationPrefs::default();
        for n in neighbours {
            *prefs.hosts.entry(n.host.clone()).or_default() += n.own.same_host + n.theirs.same_host;
            *prefs.sites.entry(n.site.clone()).or_default() += n.own.same_site + n.theirs.same_site;
        }
        prefs
    }
}

/// One host's score, by part.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The host's name.
    pub host: String,
    /// The sum of the parts.
    pub total: f64,
    /// −25 per component error.
    pub errors: f64,
    /// −100 × load.
    pub load: f64,
    /// Element count against the average.
    pub elements: f64,
    /// Connection count against the average.
    pub connections: f64,
    /// Neighbours' host preference.
    pub host_affinity: f64,
    /// Neighbours' site preference.
    pub site_affinity: f64,
}

/// Why a host was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// It has problems.
    Problems(Vec<String>),
    /// It is not in the required site.
    OtherSite {
        /// Its site.
        site: String,
    },
    /// It lacks element types.
    ElementTypes(Vec<String>),
    /// It lacks connection types.
    ConnectionTypes(Vec<String>),
    /// It lacks network kinds.
    NetworkKinds(Vec<String>),
    /// The template is not ready on it.
    Template(String),
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exclusion::Problems(p) => write!(f, "has problems: {}", p.join("; ")),
            Exclusion::OtherSite { site } => write!(f, "is in site {site}"),
            Exclusion::ElementTypes(t) => write!(f, "lacks element types {}", t.join(", ")),
            Exclusion::ConnectionTypes(t) => write!(f, "lacks connection types {}", t.join(", ")),
            Exclusion::NetworkKinds(k) => write!(f, "lacks networks {}", k.join(", ")),
            Exclusion::Template(t) => write!(f, "does not hold template {t}"),
        }
    }
}

/// The first reason `host` cannot take an element with `req`, if any.
pub fn exclusion(host: &HostView, req: &Requirements) -> Option<Exclusion> {
    let missing =
        |need: &BTreeSet<String>, have: &BTreeSet<String>| -> Vec<String> { need.difference(have).cloned().collect() };
    if !host.problems.is_empty() {
        return Some(Exclusion::Problems(host.problems.clone()));
    }
    if let Some(site) = &req.site
        && &host.site != site
    {
        return Some(Exclusion::OtherSite { site: host.site.clone() });
    }
    let m = missing(&req.element_types, &host.element_types);
    if !m.is_empty() {
        return Some(Exclusion::ElementTypes(m));
    }
    let m = missing(&req.connection_types, &host.connection_types);
    if !m.is_empty() {
        return Some(Exclusion::ConnectionTypes(m));
    }
    // A host reaching `internet/uplink` reaches the kind `internet` too.
    let kinds: BTreeSet<String> =
        host.network_kinds.iter().flat_map(|k| [k.clone(), k.split('/').next().unwrap_or(k).to_string()]).collect();
    let m = missing(&req.network_kinds, &kinds);
    if !m.is_empty() {
        return Some(Exclusion::NetworkKinds(m));
    }
    if let Some(t) = &req.template
        && !host.templates.contains(t)
    {
        return Some(Exclusion::Template(t.clone()));
    }
    None
}

/// Ranks the hosts that can take an element with `req`, best first, or
/// says why none can.
pub fn rank(hosts: &[HostView], req: &Requirements, prefs: &LocationPrefs) -> Result<Vec<Score>, NoHost> {
    let mut excluded = Vec::new();
    let mut fit = Vec::new();
    for h in hosts {
        match exclusion(h, req) {
            Some(why) => excluded.push((h.name.clone(), why)),
            None => fit.push(h),
        }
    }
    if fit.is_empty() {
        return Err(NoHost { requirements: Box::new(req.clone()), excluded });
    }
    let n = fit.len() as f64;
    let avg_elements = fit.iter().map(|h| f64::from(h.elements)).sum::<f64>() / n;
    let avg_connections = fit.iter().map(|h| f64::from(h.connections)).sum::<f64>() / n;
    let spread = |count: u32, avg: f64, limit: f64| {
        if avg > 0.0 { -(10.0 * (f64::from(count) - avg) / avg).clamp(-limit, limit) } else { 0.0 }
    };
    let mut scores: Vec<Score> = fit
        .into_iter()
        .map(|h| {
            let mut s = Score {
                host: h.name.clone(),
                total: 0.0,
                errors: -25.0 * f64::from(h.component_errors),
                load: -100.0 * h.load.value(),
                elements: spread(h.elements, avg_elements, 20.0),
                connections: spread(h.connections, avg_connections, 10.0),
                host_affinity: prefs.hosts.get(&h.name).copied().unwrap_or(0.0),
                site_affinity: prefs.sites.get(&h.site).copied().unwrap_or(0.0),
            };
            s.total = s.errors + s.load + s.elements + s.connections + s.host_affinity + s.site_affinity;
            s
        })
        .collect();
    scores.sort_by(|a, b| b.total.total_cmp(&a.total).then_with(|| a.host.cmp(&b.host)));
    Ok(scores)
}

/// No host can take the element.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("no host fits ({}): {}", describe(.requirements), reasons(.excluded))]
pub struct NoHost {
    /// What was needed (boxed: keeps `Result`s small).
    pub requirements: Box<Requirements>,
    /// Every host and why it was left out.
    pub excluded: Vec<(String, Exclusion)>,
}

impl NoHost {
    /// ToMaTo's error code.
    pub fn code(&self) -> &'static str {
        "no_resources"
    }
}

fn describe(req: &Requirements) -> String {
    let mut parts = Vec::new();
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    if let Some(site) = &req.site {
        parts.push(format!("site {site}"));
    }
    if !req.element_types.is_empty() {
        parts.push(format!("element types {}", list(&req.element_types)));
    }
    if !req.connection_types.is_empty() {
        parts.push(format!("connection types {}", list(&req.connection_types)));
    }
    if !req.network_kinds.is_empty() {
        parts.push(format!("networks {}", list(&req.network_kinds)));
    }
    if let Some(t) = &req.template {
        parts.push(format!("template {t}"));
    }
    if parts.is_empty() { "no requirements".into() } else { format!("needs {}", parts.join(", ")) }
}

fn reasons(excluded: &[(String, Exclusion)]) -> String {
    if excluded.is_empty() {
        return "there are no hosts".into();
    }
    excluded.iter().map(|(h, why)| format!("{h} {why}")).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn host(name: &str, site: &str) -> HostView {
        HostView {
            name: name.into(),
            site: site.into(),
            element_types: set(&["container", "container_interface", "switch_endpoint"]),
            connection_types: set(&["bridge"]),
            network_kinds: set(&["internet/uplink"]),
            templates: set(&["debian"]),
            problems: vec![],
            component_errors: 0,
            load: HostLoad {
                loadavg5: 0.0,
                cpus: 4,
                memory_used: 0.0,
                memory_total: 8e9,
                disk_used: 0.0,
                disk_total: 1e12,
            },
            elements: 10,
            connections: 10,
        }
    }

    fn container() -> Requirements {
        Requirements {
            element_types: set(&["container", "container_interface"]),
            template: Some("debian".into()),
            ..Requirements::default()
        }
    }

    #[test]
    fn load_is_the_highest_fraction_capped_at_one() {
        let mut l = host("a", "s").load;
        assert_eq!(l.value(), 0.0);
        l.loadavg5 = 2.0;
        assert_eq!(l.value(), 0.5);
        l.memory_used = 6e9;
        assert_eq!(l.value(), 0.75);
        l.loadavg5 = 40.0;
        assert_eq!(l.value(), 1.0);
        l.cpus = 0;
        l.loadavg5 = 0.0;
        assert_eq!(l.value(), 1.0, "no CPUs reported counts as full");
    }

    #[test]
    fn scores_follow_tomato() {
        let mut a = host("a", "s1");
        a.component_errors = 1; // -25
        a.load.loadavg5 = 1.0; // load 0.25: -25
        a.elements = 20; // avg 10 -> +10 above: -10
        let mut b = host("b", "s1");
        b.elements = 0; // 10 below: +10
        b.connections = 0; // avg 5 below: +10 clamped to +10
        let mut c = host("c", "s2");
        c.elements = 10;
        c.connections = 15; // avg 25/3: 10 x 0.8 above: -8
        let prefs = LocationPrefs {
            hosts: BTreeMap::from([("c".to_string(), 40.0)]),
            sites: BTreeMap::from([("s2".to_string(), 20.0)]),
        };
        let r = rank(&[a, b, c], &container(), &prefs).unwrap();
        let got: Vec<(&str, f64)> = r.iter().map(|s| (s.host.as_str(), (s.total * 1000.0).round() / 1000.0)).collect();
        // a: -25 -25 -10 + conns (10 vs avg 8.333: -2) = -62
        // b: +10 + 10 = 20; c: 0 -8 +40 +20 = 52.
        assert_eq!(got, vec![("c", 52.0), ("b", 20.0), ("a", -62.0)]);
        assert_eq!(r[2].errors, -25.0);
        assert_eq!(r[2].load, -25.0);
        assert_eq!(r[0].host_affinity, 40.0);
        assert_eq!(r[0].site_affinity, 20.0);
    }

    #[test]
    fn ties_go_to_the_first_name() {
        let r = rank(&[host("zeta", "s"), host("alpha", "s")], &container(), &LocationPrefs::default()).unwrap();
        assert_eq!(r[0].host, "alpha");
    }

    #[test]
    fn neighbours_pull_endpoints_together_and_push_vms_apart() {
        // A switch endpoint connected to a container interface on host b.
        let prefs = LocationPrefs::from_neighbours(&[Neighbour {
            own: Affinity::of_kind("switch_endpoint"),
            theirs: Affinity::of_kind("container_interface"),
            host: "b".into(),
            site: "s1".into(),
        }]);
        assert_eq!(prefs.hosts["b"], 980.0);
        assert_eq!(prefs.sites["s1"], 40.0);
        let req = Requirements { element_types: set(&["switch_endpoint"]), ..Requirements::default() };
        let r = rank(&[host("a", "s1"), host("b", "s1"), host("c", "s2")], &req, &prefs).unwrap();
        assert_eq!(r[0].host, "b");
        // Two container interfaces connected: the other host wins, same site.
        let prefs = LocationPrefs::from_neighbours(&[Neighbour {
            own: Affinity::INTERFACE,
            theirs: Affinity::INTERFACE,
            host: "b".into(),
            site: "s1".into(),
        }]);
        let r = rank(&[host("a", "s1"), host("b", "s1"), host("c", "s2")], &container(), &prefs).unwrap();
        assert_eq!(r.iter().map(|s| s.host.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!((r[0].total, r[1].total, r[2].total), (40.0, 0.0, 0.0));
    }

    #[test]
    fn no_host_names_each_reason() {
        let mut sick = host("sick", "s1");
        sick.problems = vec!["Host unreachable".into()];
        let mut old = host("old", "s1");
        old.element_types = set(&["repy"]);
        let mut bare = host("bare", "s1");
        bare.templates = set(&[]);
        let far = host("far", "s2");
        let mut req = container();
        req.site = Some("s1".into());
        let e = rank(&[sick, old, bare, far], &req, &LocationPrefs::default()).unwrap_err();
        assert_eq!(e.code(), "no_resources");
        assert_eq!(
            e.to_string(),
            "no host fits (needs site s1, element types container, container_interface, template debian): \
             sick has problems: Host unreachable; old lacks element types container, container_interface; \
             bare does not hold template debian; far is in site s2"
        );
        let e = rank(&[], &Requirements::default(), &LocationPrefs::default()).unwrap_err();
        assert_eq!(e.to_string(), "no host fits (no requirements): there are no hosts");
    }

    #[test]
    fn network_kinds_match_their_prefix() {
        let mut req = Requirements { network_kinds: set(&["internet"]), ..Requirements::default() };
        assert_eq!(exclusion(&host("a", "s"), &req), None);
        req.network_kinds = set(&["internet/uplink"]);
        assert_eq!(exclusion(&host("a", "s"), &req), None);
        req.network_kinds = set(&["lab"]);
        assert_eq!(exclusion(&host("a", "s"), &req), Some(Exclusion::NetworkKinds(vec!["lab".into()])));
        req = Requirements { connection_types: set(&["fixed_bridge"]), ..Requirements::default() };
        assert!(matches!(exclusion(&host("a", "s"), &req), Some(Exclusion::ConnectionTypes(_))));
    }

    fn arb_host() -> impl Strategy<Value = HostView> {
        (0u32..4, 0.0f64..8.0, 0u32..50, 0u32..50, any::<bool>(), any::<bool>()).prop_map(
            |(errors, loadavg, elements, connections, sick, has_template)| {
                let mut h = host("h", "s");
                h.component_errors = errors;
                h.load.loadavg5 = loadavg;
                h.elements = elements;
                h.connections = connections;
                if sick {
                    h.problems = vec!["High load".into()];
                }
                if !has_template {
                    h.templates.clear();
                }
                h
            },
        )
    }

    proptest! {
        /// The ranking holds exactly the hosts without exclusion, sorted by
        /// score; each score is the sum of its parts, and the load, element
        /// and connection parts stay within ToMaTo's bounds.
        #[test]
        fn ranking_is_complete_sorted_and_bounded(mut hosts in prop::collection::vec(arb_host(), 0..8)) {
            for (i, h) in hosts.iter_mut().enumerate() {
                h.name = format!("h{i}");
            }
            let req = container();
            let fitting: BTreeSet<String> =
                hosts.iter().filter(|h| exclusion(h, &req).is_none()).map(|h| h.name.clone()).collect();
            match rank(&hosts, &req, &LocationPrefs::default()) {
                Ok(r) => {
                    prop_assert_eq!(r.iter().map(|s| s.host.clone()).collect::<BTreeSet<_>>(), fitting);
                    for w in r.windows(2) {
                        prop_assert!(w[0].total >= w[1].total);
                    }
                    for s in &r {
                        prop_assert!((-100.0..=0.0).contains(&s.load));
                        prop_assert!((-20.0..=20.0).contains(&s.elements));
                        prop_assert!((-10.0..=10.0).contains(&s.connections));
                        let sum = s.errors + s.load + s.elements + s.connections + s.host_affinity + s.site_affinity;
                        prop_assert!((s.total - sum).abs() < 1e-9);
                    }
                }
                Err(e) => {
                    prop_assert!(fitting.is_empty());
                    prop_assert_eq!(e.excluded.len(), hosts.len());
                }
            }
        }
    }
}
