//! `full` virtual machines (ToMaTo's KVM elements) and `full_interface`.
//!
//! A full VM runs its own kernel from a disk image; on hosts without usable
//! KVM it runs under QEMU's software emulation.

use serde_json::json;

use super::common::*;
use crate::registry::{DuplicateKind, Registry};
use crate::schema::{AttrSpec, ValueSchema};
use crate::state::State::Prepared;

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
    registry.add(node_kind(
        "full",
        &["kvmqm", "kvm"],
        "A full virtual machine running its own kernel from a disk image.",
        0,
        "full_interface",
        attrs,
        actions,
    ))?;
    registry.add(interface_kind(
        "full_interface",
        &["kvmqm_interface", "kvm_interface"],
        "A network interface (ethN, virtio) of a full VM.",
        "full",
        interface_attrs(),
    ))
}
