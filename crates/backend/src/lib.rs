//! The ToMaTo-rs backend: its rules, its store and its API server.
//!
//! Pure rules (no I/O, no clock: times are passed in as seconds since the
//! epoch): [`permissions`] (user flags, topology roles, the role × action
//! matrix), [`timeouts`] (topology expiry and renewal), [`quota`] (monthly
//! quotas against accounted usage) and [`placement`] (ToMaTo's host
//! scoring). The data layer, [`store`], keeps every entity in SQLite or
//! PostgreSQL behind one API; each write is committed before it returns.
//!
//! [`server`] wires them together: ToMaTo's API over XML-RPC and JSON,
//! each element and connection operation carried out on its host.
//!
//! Architecture invariant: the rule modules know nothing of the store, of
//! hosts' RPC or of HTTP; the store decides nothing about permissions.

pub mod error;
pub mod permissions;
pub mod placement;
pub mod quota;
pub mod rollup;
pub mod server;
pub mod store;
pub mod timeouts;
pub use error::Error;
