//! `container` (ToMaTo's OpenVZ/LXC elements) and `container_interface`.
//!
//! A container is a set of namespaces over an overlay root filesystem made from
//! a template, with limits from its profile.

use serde_json::json;

use super::common::*;
use crate::registry::{DuplicateKind, Registry};
use crate::schema::{ActionSpec, AttrSpec, Pattern, ValueSchema};
use crate::state::State::{Prepared, Started};

/// Registers `container` and `container_interface`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    let mut attrs = vm_attrs();
    attrs.extend([
        AttrSpec::new(
            "hostname",
            "Hostname",
            ValueSchema::Text { max_len: 63, pattern: Some(Pattern::new(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")) },
        )
        .nullable()
        .writable(BEFORE_START)
        .about("Hostname inside the container; null uses the element's name where it is a valid hostname."),
        AttrSpec::new("rootpassword", "Root password", ValueSchema::Text { max_len: 256, pattern: None })
            .nullable()
            .writable(BEFORE_START)
            .about("Password of root inside the container."),
        AttrSpec::new("gateway4", "IPv4 gateway", ValueSchema::Ip4)
            .nullable()
            .writable(ALWAYS)
            .about("Default IPv4 route."),
        AttrSpec::new("gateway6", "IPv6 gateway", ValueSchema::Ip6)
            .nullable()
            .writable(ALWAYS)
            .about("Default IPv6 route."),
    ]);
    let mut actions = vm_actions();
    actions.extend(rextfv_actions(&[Prepared, Started]));
    actions.push(
        ActionSpec::new(
            "execute",
            "Runs a shell command inside the container and returns its output.",
            &[Started],
            None,
        )
        .param("cmd", ValueSchema::Text { max_len: 65_536, pattern: None }, true),
    );
    registry.add(node_kind(
        "container",
        &["openvz", "lxc"],
        "A Linux container: namespaces over a template's root filesystem, limited by its profile.",
        1,
        "container_interface",
        attrs,
        actions,
    ))?;

    let mut attrs = interface_attrs();
    attrs.extend([
        AttrSpec::new("ip4address", "IPv4 address", ValueSchema::Ip4Cidr)
            .nullable()
            .writable(ALWAYS)
            .about("Static IPv4 address with prefix length."),
        AttrSpec::new("ip6address", "IPv6 address", ValueSchema::Ip6Cidr)
            .nullable()
            .writable(ALWAYS)
            .about("Static IPv6 address with prefix length."),
        AttrSpec::new("use_dhcp", "Use DHCP", ValueSchema::Bool)
            .default(json!(false))
            .writable(ALWAYS)
            .about("Whether the interface asks for an address by DHCP."),
    ]);
    registry.add(interface_kind(
        "container_interface",
        &["openvz_interface", "lxc_interface"],
        "A network interface (ethN) of a container.",
        "container",
        attrs,
    ))
}
