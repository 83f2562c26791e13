//! The `vde_switch` console: commands, the target trait, and VDE's rules.
//!
//! [`parse`] turns a line into a [`SwitchCommand`]; [`execute`] checks it
//! against VDE's rules and the target's current state (port and VLAN
//! ranges, existence, membership, in the order `vde_switch` checks them, so
//! the same mistake gets the same errno) and only then asks the
//! [`SwitchTarget`] to apply a [`SwitchChange`]. The target therefore never
//! sees an illegal change and needs no VDE knowledge; its own errors are
//! reported as they are.
//!
//! VDE numbering: ports are `1..numports` (port 0 is the management port and
//! never listed); VLAN 0 is the default untagged VLAN and always exists;
//! `vlan/create` accepts 1 to 4093; `port/setvlan PORT 4095` leaves the port
//! without an untagged VLAN.

use netem::{Count, Mac};

use crate::reply::{Errno, Outcome, Reply, TargetError};
use crate::text::{args, int, split_line};

/// The largest VLAN `vlan/create` accepts.
pub const MAX_VLAN: u16 = 4093;
/// The untagged VLAN number meaning "none" in `port/setvlan`.
pub const NO_VLAN: u16 = 4095;

/// The banner sent when a client connects. libvdemgmt takes the version
/// from after `V.` on the first line.
pub const BANNER: &str =
    "VDE switch V.2.3.2 (ToMaTo-rs)\n(C) ToMaTo-rs, a VDE-compatible management console - AGPL-3.0-or-later\n";
/// The prompt sent after every reply.
pub const PROMPT: &str = "\nvde$ ";

/// One `vde_switch` management command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchCommand {
    /// `help [prefix]`: the command table, limited to paths starting with
    /// `prefix`.
    Help(Option<String>),
    /// `showinfo`: version and switch facts.
    ShowInfo,
    /// `logout`: end this session.
    Logout,
    /// `shutdown`: refused, the testbed owns the switch's life.
    Shutdown,
    /// `hash/showinfo`: MAC table facts.
    HashShowInfo,
    /// `hash/setexpire N`: entry lifetime in seconds.
    HashSetExpire(u32),
    /// `hash/print`: the MAC table.
    HashPrint,
    /// `port/showinfo`: number of ports and mode.
    PortShowInfo,
    /// `port/sethub 0|1`: hub (1) or switch (0) mode.
    PortSetHub(bool),
    /// `port/setvlan PORT VLAN`: the port's untagged VLAN (4095 = none).
    PortSetVlan {
        /// The port.
        port: u16,
        /// The VLAN.
        vlan: u16,
    },
    /// `port/print [N]` (`all` = false) or `port/allprint [N]` (true).
    PortPrint {
        /// Only this port.
        port: Option<u16>,
        /// Include inactive ports.
        all: bool,
    },
    /// `vlan/create N`.
    VlanCreate(u16),
    /// `vlan/remove N`.
    VlanRemove(u16),
    /// `vlan/addport VLAN PORT`: tagged membership.
    VlanAddPort {
        /// The VLAN.
        vlan: u16,
        /// The port.
        port: u16,
    },
    /// `vlan/delport VLAN PORT`: remove a tagged membership.
    VlanDelPort {
        /// The VLAN.
        vlan: u16,
        /// The port.
        port: u16,
    },
    /// `vlan/print [N]` (`all` = false) or `vlan/allprint [N]` (true).
    VlanPrint {
        /// Only this VLAN.
        vlan: Option<u16>,
        /// Include inactive ports.
        all: bool,
    },
}

/// A change the target applies; [`execute`] has checked it already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchChange {
    /// Set the untagged VLAN of an existing port (`None` = no untagged VLAN).
    SetPortVlan {
        /// The port.
        port: u16,
        /// The VDE VLAN number, or `None`.
        vlan: Option<u16>,
    },
    /// Define a new VLAN (1..=4093).
    CreateVlan(u16),
    /// Forget a VLAN no port uses.
    RemoveVlan(u16),
    /// Add a tagged membership.
    AddTagged {
        /// The VLAN.
        vlan: u16,
        /// The port.
        port: u16,
    },
    /// Remove a tagged membership (the port may not be a member).
    RemoveTagged {
        /// The VLAN.
        vlan: u16,
        /// The port.
        port: u16,
    },
    /// Hub (true) or learning switch (false).
    SetHub(bool),
    /// MAC table entry lifetime, in seconds (at least 1).
    SetHashExpire(u32),
}

/// Facts for `showinfo` and `port/showinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchInfo {
    /// Port numbers are below this (VDE's `-n`); port 0 is not a user port.
    pub numports: u16,
    /// Whether the switch runs as a hub.
    pub hub: bool,
    /// Free lines for `showinfo` after the banner (element, host, uptime).
    pub lines: Vec<String>,
}

/// One endpoint connected to a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// An identifier, unique within the switch.
    pub id: u32,
    /// The kind of endpoint (VDE prints its module: `tuntap`, `unix prog`).
    pub module: String,
    /// What is connected, e.g. `tap0 (element 12 eth0)`.
    pub description: String,
}

/// The state of one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The port number, 1 to `numports - 1`.
    pub number: u16,
    /// The untagged VLAN (VDE number, 0 = default), or `None`.
    pub untagged: Option<u16>,
    /// VLANs carried tagged, in increasing order.
    pub tagged: Vec<u16>,
    /// Whether something is connected (VDE lists inactive ports only in
    /// `allprint`).
    pub active: bool,
    /// Whether loop protection blocks the port (shown as `Discarding`).
    pub blocked: bool,
    /// Frames and bytes received.
    pub rx: Count,
    /// Frames and bytes sent.
    pub tx: Count,
    /// What is connected.
    pub endpoints: Vec<Endpoint>,
}

/// Facts for `hash/showinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashInfo {
    /// Capacity of the MAC table.
    pub size: usize,
    /// Entry lifetime in seconds.
    pub expire_secs: u64,
    /// Entries in the table now.
    pub entries: usize,
}

/// One MAC table entry for `hash/print`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashEntry {
    /// The learnt address.
    pub mac: Mac,
    /// Its VLAN (VDE number).
    pub vlan: u16,
    /// The port it was seen on.
    pub port: u16,
    /// Seconds since it was last seen.
    pub age_secs: u64,
}

/// What the console needs from a switch. The data plane implements it;
/// [`crate::ManagedSwitch`] does for tests.
pub trait SwitchTarget {
    /// General facts.
    fn info(&self) -> SwitchInfo;
    /// Every allocated port, active or not, in increasing order.
    fn ports(&self) -> Vec<PortInfo>;
    /// The defined VLANs, 0 included, in increasing order.
    fn vlans(&self) -> Vec<u16>;
    /// MAC table facts.
    fn hash_info(&self) -> HashInfo;
    /// The MAC table.
    fn hash_entries(&self) -> Vec<HashEntry>;
    /// Applies a checked change.
    fn apply(&mut self, change: &SwitchChange) -> Result<(), TargetError>;
}

/// A line that is not a valid command: its errno, and whether the command
/// prints a data block (VDE sends an empty block before the error then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// Why.
    pub errno: Errno,
    /// Whether an empty data block precedes the status.
    pub data: bool,
}

/// A row of `help`: path, syntax, help text; menus have syntax `None`.
struct HelpRow {
    path: &'static str,
    syntax: Option<&'static str>,
    help: &'static str,
}

const fn row(path: &'static str, syntax: &'static str, help: &'static str) -> HelpRow {
    HelpRow { path, syntax: Some(syntax), help }
}

const fn menu(path: &'static str, help: &'static str) -> HelpRow {
    HelpRow { path, syntax: None, help }
}

/// The commands we support, in `vde_switch`'s order and wording.
const HELP: &[HelpRow] = &[
    row("help", "[arg]", "Help (limited to arg when specified)"),
    row("logout", "", "logout from this mgmt terminal"),
    row("shutdown", "", "shutdown of the switch (refused: the testbed owns it)"),
    row("showinfo", "", "show switch version and info"),
    menu("hash", "HASH TABLE MENU"),
    row("hash/showinfo", "", "show hash info"),
    row("hash/setexpire", "N", "change hash entries expire time"),
    row("hash/print", "", "print the hash table"),
    menu("port", "PORT STATUS MENU"),
    row("port/showinfo", "", "show port info"),
    row("port/sethub", "0/1", "1=HUB 0=switch"),
    row("port/setvlan", "N VLAN", "set port VLAN (untagged)"),
    row("port/print", "[N]", "print the port/endpoint table"),
    row("port/allprint", "[N]", "print the port/endpoint table (including inactive port)"),
    menu("vlan", "VLAN MANAGEMENT MENU"),
    row("vlan/create", "N", "create the VLAN with tag N"),
    row("vlan/remove", "N", "remove the VLAN with tag N"),
    row("vlan/addport", "N PORT", "add port to the vlan N (tagged)"),
    row("vlan/delport", "N PORT", "remove port from the vlan N (tagged)"),
    row("vlan/print", "[N]", "print the list of defined vlan"),
    row("vlan/allprint", "[N]", "print the list of defined vlan (including inactive port)"),
];

/// Whether a command prints a data block.
fn is_data_command(path: &str) -> bool {
    matches!(
        path,
        "help"
            | "showinfo"
            | "hash/showinfo"
            | "hash/print"
            | "port/showinfo"
            | "port/print"
            | "port/allprint"
            | "vlan/print"
            | "vlan/allprint"
    )
}

/// Parses one line; `Ok(None)` for an empty or comment line.
pub fn parse(line: &str) -> Result<Option<SwitchCommand>, ParseError> {
    let Some((path, rest)) = split_line(line) else {
        return Ok(None);
    };
    let data = is_data_command(path);
    parse_command(path, rest).map(Some).map_err(|errno| ParseError { errno, data })
}

fn optional<T: std::str::FromStr>(rest: &str) -> Result<Option<T>, Errno> {
    if rest.is_empty() { Ok(None) } else { args::<1>(rest).and_then(|[n]| int(n)).map(Some) }
}

fn no_args(rest: &str, command: SwitchCommand) -> Result<SwitchCommand, Errno> {
    // VDE ignores extra words after argument-less commands; so do we.
    let _ = rest;
    Ok(command)
}

fn parse_command(path: &str, rest: &str) -> Result<SwitchCommand, Errno> {
    use SwitchCommand as C;
    match path {
        "help" => Ok(C::Help(if rest.is_empty() { None } else { Some(args::<1>(rest)?[0].to_owned()) })),
        "showinfo" => no_args(rest, C::ShowInfo),
        "logout" => no_args(rest, C::Logout),
        "shutdown" => no_args(rest, C::Shutdown),
        "hash/showinfo" => no_args(rest, C::HashShowInfo),
        "hash/print" => no_args(rest, C::HashPrint),
        "hash/setexpire" => {
            let secs: u32 = int(args::<1>(rest)?[0])?;
            if secs == 0 { Err(Errno::Inval) } else { Ok(C::HashSetExpire(secs)) }
        }
        "port/showinfo" => no_args(rest, C::PortShowInfo),
        "port/sethub" => Ok(C::PortSetHub(int::<u32>(args::<1>(rest)?[0])? != 0)),
        "port/setvlan" => {
            let [port, vlan] = args::<2>(rest)?;
            Ok(C::PortSetVlan { port: int(port)?, vlan: int(vlan)? })
        }
        "port/print" => Ok(C::PortPrint { port: optional(rest)?, all: false }),
        "port/allprint" => Ok(C::PortPrint { port: optional(rest)?, all: true }),
        "vlan/create" => Ok(C::VlanCreate(int(args::<1>(rest)?[0])?)),
        "vlan/remove" => Ok(C::VlanRemove(int(args::<1>(rest)?[0])?)),
        "vlan/addport" => {
            let [vlan, port] = args::<2>(rest)?;
            Ok(C::VlanAddPort { vlan: int(vlan)?, port: int(port)? })
        }
        "vlan/delport" => {
            let [vlan, port] = args::<2>(rest)?;
            Ok(C::VlanDelPort { vlan: int(vlan)?, port: int(port)? })
        }
        "vlan/print" => Ok(C::VlanPrint { vlan: optional(rest)?, all: false }),
        "vlan/allprint" => Ok(C::VlanPrint { vlan: optional(rest)?, all: true }),
        _ => Err(Errno::NoSys),
    }
}

/// Parses and executes one line.
pub fn handle_line<T: SwitchTarget + ?Sized>(target: &mut T, line: &str) -> Outcome {
    match parse(line) {
        Ok(None) => Outcome::Nothing,
        Ok(Some(command)) => execute(target, &command),
        Err(ParseError { errno, data: true }) => Outcome::Reply(Reply::data(Vec::new(), Err(errno))),
        Err(ParseError { errno, data: false }) => Outcome::Reply(Reply::error(errno)),
    }
}

/// Checks `command` against VDE's rules and the target's state, applies it,
/// and says what to send back.
pub fn execute<T: SwitchTarget + ?Sized>(target: &mut T, command: &SwitchCommand) -> Outcome {
    use SwitchCommand as C;
    let reply = match command {
        C::Logout => return Outcome::Logout,
        C::Help(prefix) => Reply::data(help_lines(prefix.as_deref()), Ok(())),
        C::ShowInfo => {
            let mut lines: Vec<String> = BANNER.lines().map(str::to_owned).collect();
            lines.push(String::new());
            lines.extend(target.info().lines);
            Reply::data(lines, Ok(()))
        }
        C::Shutdown => Reply::data(
            vec!["shutdown refused: the testbed owns this switch; stop it through ToMaTo".to_owned()],
            Err(Errno::Perm),
        ),
        C::HashShowInfo => {
            let info = target.hash_info();
            Reply::data(
                vec![
                    format!("Hash size {}", info.size),
                    format!("GC expire {} secs", info.expire_secs),
                    format!("Entries {}", info.entries),
                ],
                Ok(()),
            )
        }
        C::HashPrint => {
            let lines = target
                .hash_entries()
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    format!(
                        "Hash: {i:04} Addr: {} VLAN {:04} to port: {:03}  age {} secs",
                        e.mac, e.vlan, e.port, e.age_secs
                    )
                })
                .collect();
            Reply::data(lines, Ok(()))
        }
        C::HashSetExpire(secs) => apply(target, &SwitchChange::SetHashExpire(*secs)),
        C::PortShowInfo => {
            let info = target.info();
            Reply::data(
                vec![format!("Numports={}", info.numports), format!("HUB={}", info.hub), "counters=true".to_owned()],
                Ok(()),
            )
        }
        C::PortSetHub(hub) => apply(target, &SwitchChange::SetHub(*hub)),
        C::PortSetVlan { port, vlan } => match check_port(target, *port).and_then(|()| {
            if *vlan == NO_VLAN { Ok(None) } else { check_vlan_exists(target, *vlan).map(|()| Some(*vlan)) }
        }) {
            Ok(vlan) => apply(target, &SwitchChange::SetPortVlan { port: *port, vlan }),
            Err(errno) => Reply::error(errno),
        },
        C::PortPrint { port, all } => print_ports(target, *port, *all),
        C::VlanCreate(vlan) => {
            if !(1..=MAX_VLAN).contains(vlan) {
                Reply::error(Errno::Inval)
            } else if target.vlans().contains(vlan) {
                Reply::error(Errno::Exist)
            } else {
                apply(target, &SwitchChange::CreateVlan(*vlan))
            }
        }
        C::VlanRemove(vlan) => match check_vlan_exists(target, *vlan) {
            Err(errno) => Reply::error(errno),
            Ok(()) if target.ports().iter().any(|p| p.untagged == Some(*vlan) || p.tagged.contains(vlan)) => {
                Reply::error(Errno::AddrInUse)
            }
            // VLAN 0 is where ports start; it always exists.
            Ok(()) if *vlan == 0 => Reply::error(Errno::Inval),
            Ok(()) => apply(target, &SwitchChange::RemoveVlan(*vlan)),
        },
        C::VlanAddPort { vlan, port } => {
            match check_vlan_exists(target, *vlan).and_then(|()| check_port(target, *port)) {
                Ok(()) => apply(target, &SwitchChange::AddTagged { vlan: *vlan, port: *port }),
                Err(errno) => Reply::error(errno),
            }
        }
        C::VlanDelPort { vlan, port } => {
            match check_vlan_exists(target, *vlan).and_then(|()| check_port(target, *port)) {
                Err(errno) => Reply::error(errno),
                Ok(()) if target.ports().iter().any(|p| p.number == *port && p.untagged == Some(*vlan)) => {
                    Reply::error(Errno::AddrInUse)
                }
                Ok(()) => apply(target, &SwitchChange::RemoveTagged { vlan: *vlan, port: *port }),
            }
        }
        C::VlanPrint { vlan, all } => print_vlans(target, *vlan, *all),
    };
    Outcome::Reply(reply)
}

fn apply<T: SwitchTarget + ?Sized>(target: &mut T, change: &SwitchChange) -> Reply {
    match target.apply(change) {
        Ok(()) => Reply::success(),
        Err(error) => Reply::target_error(&error),
    }
}

/// VDE's port checks: beyond the switch is EINVAL, port 0 or an
/// unallocated port is ENXIO.
fn check_port<T: SwitchTarget + ?Sized>(target: &T, port: u16) -> Result<(), Errno> {
    if port >= target.info().numports {
        Err(Errno::Inval)
    } else if port == 0 || !target.ports().iter().any(|p| p.number == port) {
        Err(Errno::NxIo)
    } else {
        Ok(())
    }
}

/// VDE's VLAN checks: beyond 4095 is EINVAL, undefined is ENXIO.
fn check_vlan_exists<T: SwitchTarget + ?Sized>(target: &T, vlan: u16) -> Result<(), Errno> {
    if vlan > NO_VLAN {
        Err(Errno::Inval)
    } else if !target.vlans().contains(&vlan) {
        Err(Errno::NxIo)
    } else {
        Ok(())
    }
}

fn help_lines(prefix: Option<&str>) -> Vec<String> {
    let mut lines = vec![
        format!("{:<18} {:<15} {}", "COMMAND PATH", "SYNTAX", "HELP"),
        format!("{:<18} {:<15} {}", "------------", "--------------", "------------"),
    ];
    for row in HELP.iter().filter(|r| prefix.is_none_or(|p| r.path.starts_with(p))) {
        lines.push(format!("{:<18} {:<15} {}", row.path, row.syntax.unwrap_or("============"), row.help));
    }
    lines
}

fn port_lines(port: &PortInfo, lines: &mut Vec<String>) {
    lines.push(format!(
        "Port {:04} untagged_vlan={:04} {}ACTIVE - Unnamed Allocatable",
        port.number,
        port.untagged.unwrap_or(NO_VLAN),
        if port.active { "" } else { "IN" }
    ));
    lines.push(" Current User: NONE Access Control: (User: NONE - Group: NONE)".to_owned());
    lines.push(format!(" IN:  pkts {:10}          bytes {:20}", port.rx.frames, port.rx.bytes));
    lines.push(format!(" OUT: pkts {:10}          bytes {:20}", port.tx.frames, port.tx.bytes));
    for ep in &port.endpoints {
        lines.push(format!("  -- endpoint ID {:04} module {:<12}: {}", ep.id, ep.module, ep.description));
    }
}

fn print_ports<T: SwitchTarget + ?Sized>(target: &T, only: Option<u16>, all: bool) -> Reply {
    let ports = target.ports();
    let mut lines = Vec::new();
    match only {
        Some(n) if n >= target.info().numports => return Reply::data(lines, Err(Errno::Inval)),
        Some(n) => match ports.iter().find(|p| p.number == n && (all || p.active)) {
            Some(port) => port_lines(port, &mut lines),
            None => return Reply::data(lines, Err(Errno::NxIo)),
        },
        None => ports.iter().filter(|p| all || p.active).for_each(|p| port_lines(p, &mut lines)),
    }
    Reply::data(lines, Ok(()))
}

fn print_vlans<T: SwitchTarget + ?Sized>(target: &T, only: Option<u16>, all: bool) -> Reply {
    let vlans = target.vlans();
    let ports = target.ports();
    let mut lines = Vec::new();
    let selected: Vec<u16> = match only {
        Some(v) if v > NO_VLAN => return Reply::data(lines, Err(Errno::Inval)),
        Some(v) if !vlans.contains(&v) => return Reply::data(lines, Err(Errno::NxIo)),
        Some(v) => vec![v],
        None => vlans,
    };
    for vlan in selected {
        lines.push(format!("VLAN {vlan:04}"));
        for port in ports.iter().filter(|p| all || p.active) {
            let tagged = if port.untagged == Some(vlan) {
                0
            } else if port.tagged.contains(&vlan) {
                1
            } else {
                continue;
            };
            lines.push(format!(
                " -- Port {:04} tagged={tagged} active={} status={}",
                port.number,
                u8::from(port.active),
                if port.blocked { "Discarding" } else { "Forwarding" }
            ));
        }
    }
    Reply::data(lines, Ok(()))
}
