//! DETER layouts: region expansion, views and the isomorphism check, and the
//! mapping between topdl and our topologies.
//!
//! A layout is a topdl document ([`crate::file::topdl`]). [`expand`] replaces
//! regions by their fragments; [`view`] gives DETER's views of a layout;
//! [`check_view`] decides, within a caller-given budget, whether a new view
//! describes the same layout; [`convert`] maps an expanded layout to a
//! [`crate::Topology`] and back. Everything is pure: no I/O and no clock.

pub mod convert;
pub mod expand;
pub mod iso;
pub mod view;

pub use expand::{ExpandConfig, Expansion, expand};
pub use iso::{Budget, Outcome};
pub use view::{View, ViewCheck, check_view, view, views};
