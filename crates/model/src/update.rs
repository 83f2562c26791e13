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
