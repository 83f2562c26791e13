//! Attribute and action sets shared by several kinds.
//!
//! Kind modules hold only what differs; what VMs, interfaces and links have in
//! common is built here, as containerlab's `default_node.go` does for nodes.

use serde_json::{Value, json};

use crate::registry::{ChildRule, Class, Kind, Role};
use crate::schema::{ActionSpec, AttrSpec, Pattern, REMOVE, ValueSchema};
use crate::state::State::{self, Created, Prepared, Started};

/// States in which VM resources (profile, ram, ...) may change.
pub const BEFORE_START: &[State] = &[Created, Prepared];
/// Every state: the attribute may change at any time, also while running.
pub const ALWAYS: &[State] = &[Created, Prepared, Started];

/// An identifier: a template, profile, site or network name.
pub fn identifier() -> ValueSchema {
    ValueSchema::Text { max_len: 100, pattern: Some(Pattern::new(r"[A-Za-z0-9_./-]+")) }
}

/// Attributes every VM-like node has: placement, template and resources.
pub fn vm_attrs() -> Vec<AttrSpec> {
    vec![
        AttrSpec::new("site", "Site", identifier())
            .nullable()
            .writable(&[Created])
            .about("Site to place the element at; null lets the testbed choose."),
        AttrSpec::new("profile", "Profile", identifier())
            .default(json!("normal"))
            .writable(BEFORE_START)
            .about("Resource profile (ram, cpus, diskspace) defined by the administrators."),
        AttrSpec::new("template", "Template", identifier())
            .nullable()
            .writable(&[Created])
            .about("Template (disk image or root filesystem); null picks the preferred template of this type."),
        AttrSpec::new("ram", "Memory", ValueSchema::Int { min: 8, max: 65536 })
            .unit("MB")
            .nullable()
            .writable(BEFORE_START)
            .about("Memory limit; null takes it from the profile."),
        AttrSpec::new("cpus", "CPUs", ValueSchema::Float { min: 0.1, max: 64.0 })
            .unit("cpus")
            .nullable()
            .writable(BEFORE_START)
            .about("CPU share in whole CPUs; null takes it from the profile."),
        AttrSpec::new("diskspace", "Disk space", ValueSchema::Int { min: 16, max: 1_048_576 })
            .unit("MB")
            .nullable()
            .writable(BEFORE_START)
            .about("Disk space limit; null takes it from the profile."),
    ]
}

/// The lifecycle actions of a VM-like node (ToMaTo's `VMElement`).
pub fn vm_actions() -> Vec<ActionSpec> {
    vec![
        ActionSpec::new("prepare", "Creates the element on a host (disk, namespaces).", &[Created], Some(Prepared)),
        ActionSpec::new(
            "start",
            "Starts the element, preparing it first if needed.",
            &[Created, Prepared],
            Some(Started),
        ),
        ActionSpec::new("stop", "Stops every process of the element.", &[Started], Some(Prepared)),
        ActionSpec::new(
            "destroy",
            "Removes the element from its host, disk included.",
            &[Prepared, Started],
            Some(Created),
        ),
        ActionSpec::new(REMOVE, "Removes the element from the topology.", &[Created], None),
        ActionSpec::new("change_template", "Selects another template.", BEFORE_START, None).param(
            "template",
            identifier(),
            true,
        ),
        ActionSpec::new("upload_grant", "Grants a one-time upload of a disk image.", &[Prepared], None),
        ActionSpec::new("upload_use", "Uses the uploaded disk image as the element's disk.", &[Prepared], None),
        ActionSpec::new("download_grant", "Grants a one-time download of the element's disk.", &[Prepared], None),
    ]
}

/// Executable-archive actions (nlXTP); `upload_in` says when uploads are allowed.
pub fn rextfv_actions(upload_in: &[State]) -> Vec<ActionSpec> {
    vec![
        ActionSpec::new("rextfv_upload_grant", "Grants a one-time upload of an executable archive.", upload_in, None),
        ActionSpec::new(
            "rextfv_upload_use",
            "Places the uploaded archive in the element's archive directory.",
            upload_in,
            None,
        ),
        ActionSpec::new(
            "rextfv_download_grant",
            "Grants a download of the archive directory with its results.",
            &[Prepared, Started],
            None,
        ),
    ]
}

/// The pattern of interface names (`eth0`, `eth1`, ...).
pub fn interface_name_pattern() -> Pattern {
    Pattern::new("eth[0-9]+")
}

/// Attributes of every interface: its MAC address.
pub fn interface_attrs() -> Vec<AttrSpec> {
    vec![
        AttrSpec::new("mac", "MAC address", ValueSchema::Mac)
            .nullable()
            .writable(BEFORE_START)
            .about("Ethernet address; null picks a random locally administered one."),
    ]
}

/// The actions of an interface (ToMaTo's `VMInterface`).
pub fn interface_actions() -> Vec<ActionSpec> {
    vec![ActionSpec::new(REMOVE, "Removes the interface.", BEFORE_START, None)]
}

/// One link attribute for both directions: `{base}_to` and `{base}_from`.
fn both_directions(
    base: &str,
    label: &str,
    schema: ValueSchema,
    unit: Option<&'static str>,
    default: Value,
    about: &str,
) -> Vec<AttrSpec> {
    [("to", "towards the first element (B to A)"), ("from", "from the first element (A to B)")]
        .into_iter()
        .map(|(dir, text)| {
            let mut a = AttrSpec::new(format!("{base}_{dir}"), format!("{label} ({dir})"), schema.clone())
                .default(default.clone())
                .writable(&[Created, Started])
                .about(format!("{about} Applies to frames {text}."));
            a.unit = unit;
            a
        })
        .collect()
}

/// The distributions of link delay jitter, as ToMaTo and netem name them.
pub const DISTRIBUTIONS: &[&str] = &["uniform", "normal", "pareto", "paretonormal"];

/// Emulation and capture attributes of a link, ToMaTo's names first, then ours.
pub fn link_attrs() -> Vec<AttrSpec> {
    let pct = || ValueSchema::Float { min: 0.0, max: 100.0 };
    let ms = || ValueSchema::Float { min: 0.0, max: 60_000.0 };
    let mut attrs = vec![
        AttrSpec::new("emulation", "Emulation", ValueSchema::Bool)
            .default(json!(true))
            .writable(&[Created, Started])
            .about("Whether the link emulates the configured properties; false passes frames untouched."),
    ];
    attrs.extend(both_directions(
        "bandwidth",
        "Bandwidth",
        ValueSchema::Int { min: 0, max: 100_000_000 },
        Some("kbit/s"),
        json!(10000),
        "Rate limit at the Ethernet level; 0 means no limit.",
    ));
    attrs.extend(both_directions("delay", "Delay", ms(), Some("ms"), json!(0), "Mean one-way delay."));
    attrs.extend(both_directions(
        "jitter",
        "Jitter",
        ms(),
        Some("ms"),
        json!(0),
        "Variation of the delay, shaped by the distribution; jitter alone keeps frames in order.",
    ));
    attrs.extend(both_directions(
        "distribution",
        "Distribution",
        ValueSchema::Choice(DISTRIBUTIONS),
        None,
        json!("uniform"),
        "Distribution of the jitter.",
    ));
    attrs.extend(both_directions("lossratio", "Loss ratio", pct(), Some("%"), json!(0), "Share of frames lost."));
    attrs.extend(both_directions(
        "lossburst",
        "Loss burst",
        ValueSchema::Float { min: 0.0, max: 10_000.0 },
        Some("frames"),
        json!(0),
        "Mean length of loss bursts (wirefilter's Gilbert model); 0 means independent losses.",
    ));
    attrs.extend(both_directions(
        "duplicate",
        "Duplication",
        pct(),
        Some("%"),
        json!(0),
        "Share of frames sent twice.",
    ));
    attrs.extend(both_directions(
        "corrupt",
        "Corruption",
        pct(),
        Some("%"),
        json!(0),
        "Share of frames with one bit flipped.",
    ));
    attrs.extend(both_directions(
        "reorder",
        "Reordering",
        pct(),
        Some("%"),
        json!(0),
        "Share of frames sent at once, ahead of delayed ones (netem's reorder); needs a delay.",
    ));
    attrs.extend(both_directions(
        "queue",
        "Queue limit",
        ValueSchema::Int { min: 0, max: 1_000_000 },
        Some("packets"),
        json!(0),
        "Frames waiting beyond this are dropped; 0 sizes the queue from delay and bandwidth as ToMaTo does.",
    ));
    attrs.extend(both_directions(
        "mtu",
        "MTU",
        ValueSchema::Int { min: 0, max: 65_535 },
        Some("bytes"),
        json!(0),
        "Larger frames are dropped; 0 means no limit.",
    ));
    attrs.extend([
        AttrSpec::new("seed", "Random seed", ValueSchema::Int { min: 0, max: (1 << 53) - 1 })
            .nullable()
            .writable(&[Created, Started])
            .about("Seed of the emulation's random decisions; the same seed gives the same decisions. Null picks one at start and reports it."),
        AttrSpec::new("capturing", "Capturing", ValueSchema::Bool)
            .default(json!(false))
            .writable(&[Created, Started])
            .about("Whether frames on the link are captured."),
        AttrSpec::new("capture_filter", "Capture filter", ValueSchema::Text { max_len: 1024, pattern: None })
            .default(json!(""))
            .writable(&[Created, Started])
            .about("A pcap filter expression (tcpdump syntax); empty captures everything."),
        AttrSpec::new("capture_mode", "Capture mode", ValueSchema::Choice(&["file", "net"]))
            .default(json!("file"))
            .writable(&[Created, Started])
            .about("file: a ring of capture files to download; net: a live stream on a TCP port."),
    ]);
    attrs
}

/// The actions of a link.
pub fn link_actions() -> Vec<ActionSpec> {
    vec![
        ActionSpec::new("start", "Joins the two ends; runs once both ends are started.", &[Created], Some(Started)),
        ActionSpec::new("stop", "Separates the two ends.", &[Started], Some(Created)),
        ActionSpec::new(REMOVE, "Removes the connection, stopping it first.", &[Created, Started], None),
        ActionSpec::new(
            "download_grant",
            "Grants a download of the capture as one pcapng file.",
            &[Created, Started],
            None,
        )
        .param("limitSize", ValueSchema::Int { min: 0, max: 1 << 40 }, false),
    ]
}

/// A node kind (container, full VM, device): created, prepared, started, with
/// `ethN` interfaces of kind `interface`. Its ToMaTo name is its name.
pub fn node_kind(
    name: &'static str,
    aliases: &'static [&'static str],
    description: &'static str,
    rank: u8,
    interface: &'static str,
    attrs: Vec<AttrSpec>,
    actions: Vec<ActionSpec>,
) -> Kind {
    Kind {
        name,
        tomato_name: name,
        aliases,
        description,
        class: Class::Element,
        role: Role::Node(rank),
        parent: None,
        children: Some(ChildRule {
            kind: interface,
            name_prefix: "eth",
            file_key: "interfaces",
            add_in: BEFORE_START.to_vec(),
        }),
        connectable: false,
        states: ALWAYS.to_vec(),
        attrs,
        actions,
        name_pattern: None,
    }
}

/// An interface kind of node `parent`: follows its parent's state, named `ethN`.
pub fn interface_kind(
    name: &'static str,
    aliases: &'static [&'static str],
    description: &'static str,
    parent: &'static str,
    attrs: Vec<AttrSpec>,
) -> Kind {
    Kind {
        name,
        tomato_name: name,
        aliases,
        description,
        class: Class::Element,
        role: Role::Child,
        parent: Some(parent),
        children: None,
        connectable: true,
        states: ALWAYS.to_vec(),
        attrs,
        actions: interface_actions(),
        name_pattern: Some(interface_name_pattern()),
    }
}

/// A connection kind with the link emulation and capture attributes.
pub fn link_kind(name: &'static str, description: &'static str) -> Kind {
    Kind {
        name,
        tomato_name: name,
        aliases: &[],
        description,
        class: Class::Connection,
        role: Role::Link,
        parent: None,
        children: None,
        connectable: false,
        states: vec![Created, Started],
        attrs: link_attrs(),
        actions: link_actions(),
        name_pattern: None,
    }
}
