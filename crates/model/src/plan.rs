//! The planner: turns a topology action into ordered component actions.
//!
//! It follows ToMaTo's `_compoundAction`: `prepare` runs over nodes, then
//! network elements; `start` prepares first, then starts network elements
//! before nodes and finally the connections whose two ends run; `stop` stops
//! connections, then nodes, then network elements; `destroy` stops first, then
//! destroys network elements before nodes. Children (interfaces, endpoints)
//! follow their parent's state; within a group, kinds go by rank, then by file
//! order. The planner is pure: it simulates the states it would reach.

use std::collections::BTreeMap;

use crate::registry::Role;
use crate::state::State;
use crate::topology::{ComponentId, ElementPath, Topology};

/// An action over a whole topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyAction {
    /// Create everything on hosts.
    Prepare,
    /// Prepare, then run everything.
    Start,
    /// Stop everything that runs.
    Stop,
    /// Stop, then remove everything from hosts.
    Destroy,
}

impl TopologyAction {
    /// Parses the API name.
    pub fn parse(name: &str) -> Option<TopologyAction> {
        match name {
            "prepare" => Some(TopologyAction::Prepare),
            "start" => Some(TopologyAction::Start),
            "stop" => Some(TopologyAction::Stop),
            "destroy" => Some(TopologyAction::Destroy),
            _ => None,
        }
    }
}

/// One component action of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The element or connection.
    pub component: ComponentId,
    /// The action's API name.
    pub action: &'static str,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
}

/// Current states of components; a component missing here is in its kind's
/// initial state.
pub type States = BTreeMap<ComponentId, State>;

/// The state of a component given `states`.
pub fn state_of(topology: &Topology, states: &States, id: &ComponentId) -> State {
    if let Some(s) = states.get(id) {
        return *s;
    }
    match id {
        ComponentId::Element(path) => topology.element(path).map(|e| e.kind.initial_state()),
        ComponentId::Connection(_) => None,
    }
    .unwrap_or(State::Created)
}

/// Plans `action` over `topology` whose components are in `states`.
pub fn plan(topology: &Topology, states: &States, action: TopologyAction) -> Vec<Step> {
    let mut planner = Planner { topology, states: states.clone(), steps: Vec::new() };
    match action {
        TopologyAction::Prepare => planner.elements("prepare", |s| s == State::Created, Order::NodesFirst),
        TopologyAction::Start => {
            planner.elements("prepare", |s| s == State::Created, Order::NodesFirst);
            planner.elements("start", |s| s != State::Started, Order::NetworkFirst);
            planner.start_connections();
        }
        TopologyAction::Stop => planner.stop(),
        TopologyAction::Destroy => {
            planner.stop();
            planner.elements("destroy", |s| s == State::Prepared, Order::NetworkFirst);
        }
    }
    planner.steps
}

#[derive(Clone, Copy)]
enum Order {
    NodesFirst,
    NetworkFirst,
}

struct Planner<'a> {
    topology: &'a Topology,
    states: States,
    steps: Vec<Step>,
}

impl Planner<'_> {
    fn state(&self, id: &ComponentId) -> State {
        state_of(self.topology, &self.states, id)
    }

    fn stop(&mut self) {
        for con in &self.topology.connections {
            let id = con.id();
            if self.state(&id) == State::Started {
                self.step(id, "stop", State::Started, State::Created);
            }
        }
        self.elements("stop", |s| s == State::Started, Order::NodesFirst);
    }

    /// Runs `action` over top-level elements whose state passes `filter`.
    fn elements(&mut self, action: &'static str, filter: fn(State) -> bool, order: Order) {
        let mut ordered: Vec<(u8, u8, usize)> = Vec::new();
        for (idx, el) in self.topology.elements.iter().enumerate() {
            let (group, rank) = match (el.kind.role, order) {
                (Role::Node(r), Order::NodesFirst) | (Role::Network(r), Order::NetworkFirst) => (0, r),
                (Role::Node(r), Order::NetworkFirst) | (Role::Network(r), Order::NodesFirst) => (1, r),
                (Role::Child | Role::Link, _) => continue,
            };
            ordered.push((group, rank, idx));
        }
        ordered.sort();
        for (_, _, idx) in ordered {
            let el = &self.topology.elements[idx];
            let path = ElementPath::top(&el.name);
            let id = ComponentId::Element(path.clone());
            let from = self.state(&id);
            let Some(spec) = el.kind.action(action) else { continue };
            let Some(to) = spec.leads_to else { continue };
            if !filter(from) || !spec.allowed_in.contains(&from) {
                continue;
            }
            self.step(id, action, from, to);
            for child in &el.children {
                if child.kind.states.contains(&to) {
                    self.states.insert(ComponentId::Element(ElementPath::child(&el.name, &child.name)), to);
                }
            }
        }
    }

    fn start_connections(&mut self) {
        for con in &self.topology.connections {
            let id = con.id();
            let ends_run = con.ends.iter().all(|e| self.state(&ComponentId::Element(e.clone())) == State::Started);
            if self.state(&id) == State::Created && ends_run {
                self.step(id, "start", State::Created, State::Started);
            }
        }
    }

    fn step(&mut self, component: ComponentId, action: &'static str, from: State, to: State) {
        self.states.insert(component.clone(), to);
        self.steps.push(Step { component, action, from, to });
    }
}
