//! Property tests over random valid topologies.
//!
//! A topology is built from a proptest-chosen seed with values drawn from each
//! attribute's own schema, so every kind and attribute of the registry is
//! exercised. Checked: YAML -> JSON -> ToMaTo -> YAML gives back the same
//! topology and the same text; the planner never runs an action in a state that
//! does not allow it, never starts a connection before both ends run, and
//! reaches the states its action promises.

use proptest::prelude::*;
use serde_json::{Value, json};

use model::file::{self, Format};
use model::plan::state_of;
use model::registry::{Class, Kind, registry};
use model::schema::{AttrSpec, ValueSchema};
use model::topology::KindRef;
use model::{Attrs, ComponentId, Connection, Element, ElementPath, State, States, Topology, TopologyAction, plan};

/// A small deterministic generator (xorshift64*), seeded by proptest.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A value the schema accepts.
fn value_for(g: &mut Gen, schema: &ValueSchema) -> Value {
    match schema {
        ValueSchema::Bool => json!(g.chance(50)),
        ValueSchema::Int { min, max } => {
            let span = (*max as i128 - *min as i128 + 1) as u128;
            json!((*min as i128 + (g.next() as u128 % span) as i128) as i64)
        }
        ValueSchema::Float { min, max } => {
            // Values with few decimals, as people write them, and arbitrary ones.
            let f = if g.chance(50) {
                min + (g.below(1000) as f64 / 1000.0) * (max - min)
            } else {
                min + (g.next() as f64 / u64::MAX as f64) * (max - min)
            };
            json!(f.clamp(*min, *max))
        }
        ValueSchema::Choice(options) => json!(g.pick(options)),
        ValueSchema::Text { pattern: None, .. } => {
            json!(g.pick(&["", "x", "tcp port 80", "héllo wörld", "a: b", "- dash", "123", "true", "null"]))
        }
        ValueSchema::Text { pattern: Some(p), .. } => match p.source() {
            "[A-Za-z0-9_./-]+" => json!(g.pick(&["normal", "debian-12_x86_64", "site/a", "busybox"])),
            _ => json!(g.pick(&["h1", "router-7", "A"])),
        },
        ValueSchema::Ip4Cidr => json!(format!("10.{}.{}.{}/{}", g.below(256), g.below(256), g.below(256), g.below(33))),
        ValueSchema::Ip6Cidr => json!(format!("fd00::{:x}/{}", g.below(65536), g.below(129))),
        ValueSchema::Ip4 => json!(format!("192.168.{}.{}", g.below(256), g.below(256))),
        ValueSchema::Ip6 => json!(format!("fd00::{:x}", g.below(65536))),
        ValueSchema::Mac => json!(format!("02:00:00:00:{:02x}:{:02x}", g.below(256), g.below(256))),
        ValueSchema::HostPort => json!(format!("198.51.100.{}:{}", g.below(256), 1 + g.below(65535))),
        ValueSchema::List(inner) => Value::Array((0..g.below(3)).map(|_| value_for(g, inner)).collect()),
        ValueSchema::Map => json!({"k": g.below(10)}),
    }
}

fn attrs_for(g: &mut Gen, specs: &[AttrSpec]) -> Attrs {
    let mut attrs = Attrs::new();
    for spec in specs.iter().filter(|s| s.writable_in.contains(&State::Created)) {
        if g.chance(30) {
            let v = if spec.nullable && g.chance(20) { Value::Null } else { value_for(g, &spec.schema) };
            attrs.insert(spec.name.clone(), v);
        }
    }
    if g.chance(30) {
        attrs.insert("_pos".into(), json!({"x": g.below(1000) as f64 / 7.0, "y": 0.5}));
    }
    attrs
}

fn name(g: &mut Gen, taken: &[String]) -> String {
    let alphabet: Vec<char> = "abcxyzAB019-_ é".chars().collect();
    loop {
        let len = 1 + g.below(8);
        let mut n: String = (0..len).map(|_| *g.pick(&alphabet)).collect();
        n = n.trim().to_string();
        if !n.is_empty() && !taken.contains(&n) {
            return n;
        }
    }
}

fn random_topology(seed: u64) -> Topology {
    let mut g = Gen(seed | 1);
    let kinds: Vec<&'static Kind> =
        registry().kinds().iter().filter(|k| k.class == Class::Element && !k.is_child()).collect();
    let mut top = Topology::default();
    top.attrs.insert("name".into(), json!(format!("random {seed}")));
    if g.chance(50) {
        top.attrs.insert("_notes".into(), json!("client data: {kept: [as, is]}"));
    }
    let mut names = Vec::new();
    for _ in 0..g.below(8) {
        let kind = *g.pick(&kinds);
        let n = name(&mut g, &names);
        names.push(n.clone());
        let mut children = Vec::new();
        if let Some(rule) = &kind.children {
            let child_kind = registry().get(rule.kind).expect("registered");
            for i in 0..g.below(4) {
                let child_name = if rule.name_prefix == "eth" { format!("eth{i}") } else { format!("p{i}") };
                children.push(Element {
                    name: child_name,
                    kind: KindRef(child_kind),
                    attrs: attrs_for(&mut g, &child_kind.attrs),
                    children: Vec::new(),
                });
            }
        }
        let attrs = attrs_for(&mut g, &kind.attrs);
        top.elements.push(Element { name: n, kind: KindRef(kind), attrs, children });
    }
    // Connect random pairs of free connectable elements.
    let mut free: Vec<(ElementPath, bool)> = top
        .walk()
        .filter(|(_, e)| e.kind.connectable)
        .map(|(p, e)| (p, e.kind.name == "external_network_endpoint"))
        .collect();
    while free.len() >= 2 && g.chance(80) {
        let a = free.remove(g.below(free.len() as u64) as usize);
        let b = free.remove(g.below(free.len() as u64) as usize);
        let kind = registry().get(if a.1 || b.1 { "fixed_bridge" } else { "bridge" }).expect("registered");
        top.connections.push(Connection {
            kind: KindRef(kind),
            ends: [a.0, b.0],
            attrs: attrs_for(&mut g, &kind.attrs),
        });
    }
    top
}

/// Random consistent states: children follow their parent, connections run
/// only when both ends run.
fn random_states(seed: u64, top: &Topology) -> States {
    let mut g = Gen(seed.rotate_left(17) | 1);
    let mut states = States::new();
    for el in &top.elements {
        let s = *g.pick(&el.kind.states);
        states.insert(ComponentId::Element(ElementPath::top(&el.name)), s);
        for ch in &el.children {
            let cs = if ch.kind.states.contains(&s) { s } else { ch.kind.initial_state() };
            states.insert(ComponentId::Element(ElementPath::child(&el.name, &ch.name)), cs);
        }
    }
    for con in &top.connections {
        let run = con.ends.iter().all(|e| states.get(&ComponentId::Element(e.clone())) == Some(&State::Started));
        states.insert(con.id(), if run && g.chance(70) { State::Started } else { State::Created });
    }
    states
}

fn load_ok(text: &str, format: Format) -> Topology {
    let loaded = file::load(text, Some(format));
    assert!(loaded.problems.is_empty(), "problems: {:?}\n{text}", loaded.problems);
    loaded.topology
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_topologies_are_valid(seed in any::<u64>()) {
        let top = random_topology(seed);
        let problems = model::validate(&top);
        prop_assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn yaml_json_tomato_yaml_round_trip(seed in any::<u64>()) {
        let top = random_topology(seed);
        let yaml = file::write(&top, Format::Yaml);
        let from_yaml = load_ok(&yaml, Format::Yaml);
        prop_assert_eq!(&from_yaml, &top);
        let json = file::write(&from_yaml, Format::Json);
        let from_json = load_ok(&json, Format::Json);
        prop_assert_eq!(&from_json, &top);
        let tomato = file::write(&from_json, Format::Tomato);
        let from_tomato = load_ok(&tomato, Format::Tomato);
        prop_assert_eq!(&from_tomato, &top);
        prop_assert_eq!(file::write(&from_tomato, Format::Yaml), yaml);
    }

    #[test]
    fn planner_respects_states_and_order(seed in any::<u64>(), action in 0usize..4) {
        let top = random_topology(seed);
        let start = random_states(seed, &top);
        let action = [TopologyAction::Prepare, TopologyAction::Start, TopologyAction::Stop, TopologyAction::Destroy][action];
        let steps = plan(&top, &start, action);
        let mut states = start.clone();
        for step in &steps {
            let now = state_of(&top, &states, &step.component);
            prop_assert_eq!(now, step.from, "step {:?} starts from the wrong state", step);
            let kind = match &step.component {
                ComponentId::Element(p) => top.element(p).expect("element exists").kind,
                ComponentId::Connection(ends) => top.connections.iter().find(|c| &c.ends == ends).expect("connection exists").kind,
            };
            let spec = kind.action(step.action).expect("the kind has the action");
            prop_assert!(spec.allowed_in.contains(&now), "{} not allowed in {} for {:?}", step.action, now, step.component);
            prop_assert_eq!(spec.leads_to, Some(step.to));
            if let ComponentId::Connection(ends) = &step.component && step.action == "start" {
                for end in ends {
                    prop_assert_eq!(state_of(&top, &states, &ComponentId::Element(end.clone())), State::Started,
                        "connection started before {} runs", end);
                }
            }
            states.insert(step.component.clone(), step.to);
            // Children follow their parent.
            if let ComponentId::Element(p) = &step.component {
                let el = top.element(p).expect("element exists");
                for ch in &el.children {
                    if ch.kind.states.contains(&step.to) {
                        states.insert(ComponentId::Element(ElementPath::child(&el.name, &ch.name)), step.to);
                    }
                }
            }
        }
        for (path, el) in top.walk() {
            let s = state_of(&top, &states, &ComponentId::Element(path.clone()));
            match action {
                TopologyAction::Start => prop_assert_eq!(s, State::Started, "{} not started", path),
                TopologyAction::Stop => prop_assert!(s != State::Started, "{} still started", path),
                TopologyAction::Destroy => prop_assert_eq!(s, el.kind.initial_state(), "{} not destroyed", path),
                TopologyAction::Prepare => prop_assert!(s != State::Created || !el.kind.states.contains(&State::Prepared), "{} not prepared", path),
            }
        }
        for con in &top.connections {
            let s = state_of(&top, &states, &con.id());
            let want = if action == TopologyAction::Start { State::Started } else if action == TopologyAction::Prepare { state_of(&top, &start, &con.id()) } else { State::Created };
            prop_assert_eq!(s, want, "connection {:?}", con.ends);
        }
    }
}

#[test]
fn start_from_scratch_follows_tomato_type_order() {
    let text = "
elements:
  sw: {type: switch}
  net: {type: external_network}
  vm: {type: full}
  ct: {type: container}
  dev: {type: repy}
  tun: {type: udp_endpoint}
connections:
  - between: [vm, sw]
  - between: [ct, net]
  - between: [dev, tun]
";
    let top = load_ok(text, Format::Yaml);
    let steps: Vec<String> = plan(&top, &States::new(), TopologyAction::Start)
        .iter()
        .map(|s| format!("{} {}", s.action, s.component))
        .collect();
    assert_eq!(
        steps,
        [
            "prepare element vm",
            "prepare element ct",
            "prepare element dev",
            "prepare element sw",
            "prepare element tun",
            "start element sw",
            "start element tun",
            "start element net",
            "start element vm",
            "start element ct",
            "start element dev",
            "start connection vm.eth0 -- sw.port0",
            "start connection ct.eth0 -- net.port0",
            "start connection dev.eth0 -- tun",
        ]
    );
    let all_started: States =
        plan(&top, &States::new(), TopologyAction::Start).into_iter().map(|s| (s.component, s.to)).collect();
    let destroy: Vec<String> = plan(&top, &all_started, TopologyAction::Destroy)
        .iter()
        .map(|s| format!("{} {}", s.action, s.component))
        .collect();
    assert_eq!(
        &destroy[..3],
        [
            "stop connection vm.eth0 -- sw.port0",
            "stop connection ct.eth0 -- net.port0",
            "stop connection dev.eth0 -- tun"
        ]
    );
    assert_eq!(
        destroy[3..9],
        [
            "stop element vm",
            "stop element ct",
            "stop element dev",
            "stop element sw",
            "stop element tun",
            "stop element net"
        ]
    );
    assert_eq!(
        destroy[9..],
        [
            "destroy element sw",
            "destroy element tun",
            "destroy element vm",
            "destroy element ct",
            "destroy element dev"
        ]
    );
}

/// Random documents: scalars, lists and maps with keys from the format's
/// vocabulary, so the resolver's paths are reached, not just the parser's.
fn arb_tree() -> impl Strategy<Value = file::Tree> {
    use file::Tree;
    let key = prop::sample::select(vec![
        "name",
        "type",
        "elements",
        "connections",
        "groups",
        "defaults",
        "between",
        "interfaces",
        "endpoints",
        "count",
        "first",
        "connect",
        "link",
        "container",
        "switch",
        "eth0",
        "pc1",
        "sw",
        "delay_to",
        "ram",
        "file_information",
        "version",
        "topology",
        "attrs",
        "id",
        "parent",
        "_pos",
        "{i}",
        "x{i/0}",
    ]);
    let leaf = prop_oneof![
        Just(Tree::Null),
        any::<bool>().prop_map(Tree::Bool),
        any::<i64>().prop_map(|n| Tree::Number(n.into())),
        prop::sample::select(vec![
            "container",
            "switch",
            "bridge",
            "pc1.eth0",
            "sw",
            "h{i}",
            "{i%0}",
            "",
            "10.0.0.1/24",
            "-1"
        ])
        .prop_map(|s| Tree::Str(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Tree::List),
            prop::collection::vec((key.clone().prop_map(str::to_string), inner), 0..6).prop_map(Tree::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn loading_never_panics(tree in arb_tree(), text in ".{0,200}") {
        let yaml = yaml_serde::to_string(&tree).expect("trees serialize");
        let _ = file::load(&yaml, Some(Format::Yaml));
        let _ = file::load(&serde_json::to_string(&tree).expect("trees serialize"), Some(Format::Json));
        let _ = file::load(&text, None);
    }
}
