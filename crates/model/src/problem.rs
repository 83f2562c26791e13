//! Problems found in a topology: each names the place, the field, the value
//! given and what is allowed, so that a user can fix all of them at once.

use std::fmt;

use crate::topology::ElementPath;

/// Where a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The file as a whole (syntax, format).
    File,
    /// The topology's own attributes.
    Topology,
    /// An element.
    Element(ElementPath),
    /// A connection, by the ends as written (and its position in the file,
    /// where the ends are not known yet).
    Connection(Option<usize>, String),
    /// A group of the file.
    Group(String),
    /// The defaults of one type in the file.
    Defaults(String),
    /// A part of an XML (topdl) document: its line (0 when not known) and
    /// what it is (`substrate lan0`, `region core`).
    Xml(usize, String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File => f.write_str("file"),
            Place::Topology => f.write_str("topology"),
            Place::Element(p) => write!(f, "element {p}"),
            Place::Connection(Some(i), ends) => write!(f, "connection #{} ({ends})", i + 1),
            Place::Connection(None, ends) => write!(f, "connection {ends}"),
            Place::Group(g) => write!(f, "group {g}"),
            Place::Defaults(t) => write!(f, "defaults for {t}"),
            Place::Xml(0, what) => f.write_str(what),
            Place::Xml(line, what) => write!(f, "line {line}, {what}"),
        }
    }
}

/// One problem: the place, the field and what is wrong, with the allowed values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub place: Place,
    /// Which field or attribute (`type`, `ram`, `between`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Problem {
    /// A problem at `place` in `field`.
    pub fn new(place: Place, field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { place, field: field.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}", self.place, self.field, self.message)
    }
}

/// Problems as one message, one per line.
pub fn report(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}
