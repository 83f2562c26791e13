//! `full` virtual machines (ToMaTo's KVM elements) and `full_interface`.
//!
//! A full VM runs its own kernel from a disk image; on hosts without usable
//! KVM it runs under QEMU's software emulation.

use serde_json::json;

use super::common::*;
use crate::registry::{ChildRule, Class, DuplicateKind, Kind, Registry, Role};
use crate::schema::{AttrSpec, ValueSchema};
use crate::state::State::{Created, Prepared, Started};

/// Keyboard layouts a VM console may use (ToMaTo's `kblang`).
const KEYBOARD_LAYOUTS: &[&str] = &["en-us", "en-gb", "de", "fr", "ja"];

/// Registers `full` and `full_interface`.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateKind> {
    let mut attrs = vm_attrs();
    attrs.extend([
        AttrSpec::new("kblang", "Keyboard layout", ValueSchema::Choice(KEYBOARD_LAYOUTS))
            .nullable()
            .writable(BEFORE_START)
            .about("Keyboard layout of the console; null uses the template's."),
        AttrSpec::new("usbtablet", "USB tablet", ValueSchema::Bool)
            .default(json!(true))
            .writable(BEFORE_START)
            .about("Whether the VM gets a USB tablet, so the mouse pointer follows the console."),
    ]);
    let mut actions = vm_actions();
    actions.extend(rextfv_actions(&[Prepared]));
    registry.add(Kind {
        name: "full",
        tomato_name: "full",
        aliases: &["kvmqm", "kvm"],
        description: "A full virtual machine running its own kernel from a disk image.",
        class: Class::Element,
        role: Role::Node(0),
        parent: None,
        children: Some(ChildRule {
            kind: "full_interface",
            name_prefix: "eth",
            file_key: "interfaces",
            add_in: vec![Created, Prepared],
        }),
        connectable: false,
        states: vec![Created, Prepared, Started],
        attrs,
        actions,
        name_pattern: None,
    })?;
    registry.add(Kind {
        name: "full_interface",
        tomato_name: "full_interface",
        aliases: &["kvmqm_interface", "kvm_interface"],
        description: "A network interface (ethN, virtio) of a full VM.",
        class: Class::Element,
        role: Role::Child,
        parent: Some("full"),
        children: None,
        connectable: true,
        states: vec![Created, Prepared, Started],
        attrs: interface_attrs(),
        actions: interface_actions(),
        name_pattern: Some(interface_name_pattern()),
    })
}
