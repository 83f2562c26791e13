//! The container runtime of a ToMaTo-rs host: what the hostmanager's
//! `container` element driver calls (issue #4).
//!
//! A container is a process tree in its own network, mount, PID, UTS and IPC
//! namespaces, whose root is an overlay over an unpacked template
//! ([`unpack_template`]), with a minimal `/dev`, `/proc`, a read-only `/sys`
//! and its hostname, limited by cgroups (v1 or v2, probed at run time:
//! [`CgroupKind`]), and joined to the host by veth pairs made over netlink
//! ([`add_interface`]).
//!
//! Lifecycle ([`prepare`], [`start`], [`find_running`], [`stop`],
//! [`destroy`]): every step is idempotent and may be re-run after the
//! caller died at any point in it. All state lives in the kernel and in the
//! container's own directory ([`ContainerSpec::dir`]): `upper/` and `work/`
//! (the overlay's writable layer), `merged/` (the mount point, empty on the
//! host: the overlay is mounted at start *inside the container's mount
//! namespace*, so it vanishes with the container and never shows in the
//! host's mount table), `init.pid` (init's PID and its start time, so PID
//! reuse cannot fool [`find_running`]) and `init.log` (init's output).
//!
//! The lifecycle, [`execute`] and the template functions block (call them
//! from `spawn_blocking`); the netlink functions and [`spawn_console`] are
//! async and need a tokio runtime.
//!
//! Architecture invariant: this crate owns the namespaces, mounts, cgroups
//! and veths of containers and nothing else; it knows neither the data plane
//! nor the hostmanager's store or API.

mod cgroup;
mod error;
mod exec;
mod launch;
mod lifecycle;
mod net;
mod spec;
mod sweep;
mod sys;
mod template;

pub use cgroup::CgroupKind;
pub use error::Error;
pub use exec::{Console, ExecOutput, execute, execute_file, spawn_console};
pub use lifecycle::{Running, Usage, destroy, find_running, prepare, start, start_with, stop, usage};
pub use net::{InterfaceSpec, add_interface, configure_interface, host_end_name, remove_interface, set_gateways};
pub use spec::{Bind, ContainerSpec, Limits};
pub use sweep::{Leftovers, leftovers, remove_cgroup_parent, sweep};
pub use sys::become_subreaper;
pub use template::{TemplateInfo, build_busybox_template, build_busybox_template_from, sha256_file, unpack_template};

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
