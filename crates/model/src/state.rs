//! Lifecycle states of elements and connections, as ToMaTo names them.
//!
//! Every component moves between `created`, `prepared` and `started`; which of
//! the three a kind uses, and which action moves it where, is data in its
//! [`Kind`](crate::Kind). This module only names the states.

use std::fmt;

/// A lifecycle state of an element or a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Known to the testbed, nothing exists on a host.
    Created,
    /// Resources exist on a host (disk, namespaces), nothing runs.
    Prepared,
    /// Running.
    Started,
}

impl State {
    /// All states, in lifecycle order.
    pub const ALL: [State; 3] = [State::Created, State::Prepared, State::Started];

    /// The API name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Prepared => "prepared",
            State::Started => "started",
        }
    }

    /// Parses an API name; `None` for anything else.
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats a list of states as `created, prepared` (or `none`).
pub fn list_states(states: &[State]) -> String {
    if states.is_empty() {
        return "none".to_string();
    }
    states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
