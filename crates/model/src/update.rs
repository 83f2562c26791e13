//! Checks a change of a topology that may be running: which elements and
//! connections are added, removed or modified, and whether each change is
//! allowed in the component's current state (ToMaTo's `states_writable`,
//! `(remove)` states and the states in which children may be added).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::plan::{States, state_of};
use crate::problem::{Place, Problem};
use crate::schema::{AttrSpec, REMOVE};
use crate::state::{State, list_states};
use crate::topology::{Attrs, ComponentId, Element, ElementPath, Topology};
use crate::validate::is_client_data;

/// One change from the current topology to the desired one.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new element.
    AddElement(ElementPath),
    /// An element that goes away.
    RemoveElement(ElementPath),
    /// Attributes that change; a removed attribute returns to its default.
    ModifyElement(ElementPath, Attrs),
    /// A new connection.
    AddConnection([ElementPath; 2]),
    /// A connection that goes away.
    RemoveConnection([ElementPath; 2]),
    /// Attributes of a connection that change.
    ModifyConnection([ElementPath; 2], Attrs),
}

/// Computes the changes from `current` (in `states`) to `desired`, or every
/// change that is not allowed in the state its component is in.
pub fn check_update(current: &Topology, states: &States, desired: &Topology) -> Result<Vec<Change>, Vec<Problem>> {
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    let before: Vec<(ElementPath, &Element)> = current.walk().collect();
    let after: Vec<(ElementPath, &Element)> = desired.walk().collect();

    for (path, old) in &before {
        let state = state_of(current, states, &ComponentId::Element(path.clone()));
        let place = Place::Element(path.clone());
        match desired.element(path) {
            None => {
                if path.child.is_none() || desired.element(&ElementPath::top(&path.element)).is_some() {
                    check_removable(&old.kind.actions, state, &place, &mut problems);
                    if let Some(parent) = path.child.as_ref().and(current.element(&ElementPath::top(&path.element))) {
                        check_child_change(parent, current, states, path, &mut problems);
                    }
                }
                changes.push(Change::RemoveElement(path.clone()));
            }
            Some(new) if new.kind != old.kind => problems.push(Problem::new(
                place,
                "type",
                format!(
                    "cannot change from {} to {}; remove the element and add a new one",
                    old.kind.name, new.kind.name
                ),
            )),
            Some(new) => {
                let diff = attr_diff(&old.attrs, &new.attrs, &old.kind.attrs);
                check_writable(&diff, &old.kind.attrs, state, &place, &mut problems);
                if !diff.is_empty() {
                    changes.push(Change::ModifyElement(path.clone(), diff));
                }
            }
        }
    }
    for (path, _) in &after {
        if current.element(path).is_none() {
            if path.child.is_some()
                && let Some(parent) = current.element(&ElementPath::top(&path.element))
            {
                check_child_change(parent, current, states, path, &mut problems);
            }
            changes.push(Change::AddElement(path.clone()));
        }
    }

    let old_ids: BTreeSet<_> = current.connections.iter().map(|c| c.ends.clone()).collect();
    for con in &current.connections {
        let place = Place::Connection(None, format!("{} -- {}", con.ends[0], con.ends[1]));
        let state = state_of(current, states, &con.id());
        match desired.connections.iter().find(|c| c.ends == con.ends) {
            None => {
                check_removable(&con.kind.actions, state, &place, &mut problems);
                changes.push(Change::RemoveConnection(con.ends.clone()));
            }
            Some(new) => {
                let diff = attr_diff(&con.attrs, &new.attrs, &con.kind.attrs);
                check_writable(&diff, &con.kind.attrs, state, &place, &mut problems);
                if !diff.is_empty() {
                    changes.push(Change::ModifyConnection(con.ends.clone(), diff));
                }
            }
        }
    }
    for con in &desired.connections {
        if !old_ids.contains(&con.ends) {
            changes.push(Change::AddConnection(con.ends.clone()));
        }
    }
    if problems.is_empty() { Ok(changes) } else { Err(problems) }
}

/// Attributes whose value differs; a key that disappears maps to its default.
fn attr_diff(old: &Attrs, new: &Attrs, specs: &[AttrSpec]) -> Attrs {
    let mut diff = Attrs::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            diff.insert(k.clone(), v.clone());
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            let default = specs.iter().find(|s| &s.name == k).map(|s| s.default.clone()).unwrap_or(Value::Null);
            if old.get(k) != Some(&default) {
                diff.insert(k.clone(), default);
            }
        }
    }
    diff
}

fn check_writable(diff: &Attrs, specs: &[AttrSpec], state: State, place: &Place, problems: &mut Vec<Problem>) {
    for key in diff.keys().filter(|k| !is_client_data(k)) {
        if let Some(spec) = specs.iter().find(|s| &s.name == key)
            && !spec.writable_in.contains(&state)
        {
            problems.push(Problem::new(
                place.clone(),
                key,
                format!("cannot change while {state}; writable in: {}", list_states(&spec.writable_in)),
            ));
        }
    }
}

fn check_removable(actions: &[crate::schema::ActionSpec], state: State, place: &Place, problems: &mut Vec<Problem>) {
    if let Some(remove) = actions.iter().find(|a| a.name == REMOVE)
        && !remove.allowed_in.contains(&state)
    {
        problems.push(Problem::new(
            place.clone(),
            "(remove)",
            format!("cannot be removed while {state}; allowed in: {}", remove.allowed_states()),
        ));
    }
}

fn check_child_change(
    parent: &Element,
    current: &Topology,
    states: &States,
    child: &ElementPath,
    problems: &mut Vec<Problem>,
) {
    let parent_state = state_of(current, states, &ComponentId::Element(ElementPath::top(&parent.name)));
    if let Some(rule) = &parent.kind.children
        && !rule.add_in.contains(&parent_state)
    {
        problems.push(Problem::new(
            Place::Element(child.clone()),
            "children",
            format!(
                "{} of `{}` cannot be added or removed while it is {parent_state}; allowed in: {}",
                rule.file_key,
                parent.name,
                list_states(&rule.add_in)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{Format, load};

    fn topology(text: &str) -> Topology {
        let loaded = load(text, Some(Format::Yaml));
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        loaded.topology
    }

    fn all(top: &Topology, state: State) -> States {
        let mut states: States = top.walk().map(|(p, _)| (ComponentId::Element(p), state)).collect();
        states.extend(
            top.connections.iter().map(|c| (c.id(), if state == State::Started { state } else { State::Created })),
        );
        states
    }

    const BASE: &str = "
elements:
  a: {type: container, template: busybox, interfaces: {eth0: {}}}
  sw: {type: switch}
connections:
  - {between: [a.eth0, sw], delay_to: 10}
";

    #[test]
    fn live_link_changes_and_client_data_pass_while_started() {
        let current = topology(BASE);
        let desired = topology(
            &BASE
                .replace("delay_to: 10", "delay_to: 50, lossratio_from: 2")
                .replace("template: busybox,", "template: busybox, _pos: 1,"),
        );
        let changes = check_update(&current, &all(&current, State::Started), &desired).expect("allowed");
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(matches!(&changes[1], Change::ModifyConnection(_, attrs) if attrs.len() == 2));
    }

    #[test]
    fn removed_attribute_returns_to_its_default() {
        let current = topology(BASE);
        let desired = topology(&BASE.replace(", delay_to: 10", ""));
        let changes = check_update(&current, &all(&current, State::Started), &desired).expect("allowed");
        assert_eq!(
            changes,
            [Change::ModifyConnection(
                current.connections[0].ends.clone(),
                [("delay_to".to_string(), serde_json::json!(0))].into()
            )]
        );
    }

    #[test]
    fn state_bound_changes_are_refused_with_the_allowed_states() {
        let current = topology(BASE);
        let desired = topology(
            &BASE
                .replace(
                    "template: busybox, interfaces: {eth0: {}}",
                    "template: debian, interfaces: {eth0: {}, eth1: {}}",
                )
                .replace("sw: {type: switch}", "sw: {type: switch, mode: hub}"),
        );
        let problems = check_update(&current, &all(&current, State::Started), &desired).expect_err("refused");
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            text,
            [
                "element a: `template`: cannot change while started; writable in: created",
                "element sw: `mode`: cannot change while started; writable in: created, prepared",
                "element a.eth1: `children`: interfaces of `a` cannot be added or removed while it is started; allowed in: created, prepared",
            ]
        );
        // Before the topology is prepared, all of it is allowed.
        assert!(check_update(&current, &all(&current, State::Created), &desired).is_ok());
    }

    #[test]
    fn kind_changes_and_running_removals_are_refused() {
        let current = topology(BASE);
        let desired = topology("elements:\n  a: {type: full}\n");
        let problems = check_update(&current, &all(&current, State::Started), &desired).expect_err("refused");
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.contains(
                &"element a: `type`: cannot change from container to full; remove the element and add a new one"
                    .to_string()
            ),
            "{text:?}"
        );
        assert!(
            text.contains(&"element sw: `(remove)`: cannot be removed while started; allowed in: created".to_string()),
            "{text:?}"
        );
        // Connections may go while they run.
        assert!(!text.iter().any(|t| t.starts_with("connection")), "{text:?}");
    }
}
