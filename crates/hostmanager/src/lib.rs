//! The hostmanager: ToMaTo's per-host agent.
//!
//! It has exclusive control of one host and offers its elements (containers,
//! switches) and connections (emulated links) to one or more backends, each
//! seeing only its own objects. `host.rs` is the core (checks against the
//! model, store, actions, recovery); `drivers/` holds one module per type;
//! `plane.rs` keeps the data plane in step with the entities.

pub mod console;
pub mod crashpoint;
pub mod daemon;
pub mod disk;
pub mod drivers;
pub mod error;
pub mod fileserver;
pub mod host;
pub mod methods;
pub mod netns;
pub mod nlxtp;
pub mod plane;
pub mod resources;
pub mod store;
pub mod sysinfo;

pub use error::{ErrorKind, HostError};
pub use host::{Host, HostConfig, Recovery};

/// Removes everything the containers of hostmanager instance `instance`
/// left (processes, mounts, cgroups under `tomato/INSTANCE`, veths, their
/// files under `containers_dir`) and its network namespace `tomato-INSTANCE`.
/// Blocking; it runs its own runtime on a thread of its own, so it works
/// from `Drop` also inside an async test or while unwinding. For test
/// harnesses and benchmarks that made the instance; errors are ignored
/// (whatever is left shows in their leftover checks).
pub fn sweep_instance(containers_dir: &std::path::Path, instance: &str) {
    let (root, instance) = (containers_dir.to_path_buf(), instance.to_string());
    let namespace = format!("tomato-{instance}");
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        let parent = format!("tomato/{instance}");
        let netns = netns::path_of(&format!("tomato-{instance}"));
        let netns = netns.exists().then_some(netns);
        let _ = rt.block_on(container::sweep(&root, &parent, netns.as_deref(), &[]));
        let _ = container::remove_cgroup_parent(&parent);
    })
    .join();
    let _ = netns::remove(&namespace);
}
