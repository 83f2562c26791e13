//! Who may do what: ToMaTo's user flags, topology roles and the role ×
//! action matrix, as plain data and functions.
//!
//! A topology gives each of its users a [`Role`] (`owner` > `manager` >
//! `user` > `null`). A person's *effective* role on a topology
//! ([`effective_role`]) is the highest of: the role the topology gives them,
//! the role a `global_topl_*` flag gives them on every topology, and the role
//! an `orga_topl_*` flag gives them on topologies where a member of their
//! own organization holds at least that role (ToMaTo's
//! `organization_has_role`; the flag's role is capped by that member's).
//!
//! Each topology, element and connection operation needs a minimum role
//! ([`topology_op_role`], [`element_action_role`],
//! [`connection_action_role`]); administration of users, organizations,
//! sites, hosts, templates, profiles and networks depends on flags and on
//! the organization they are scoped to ([`check_admin`]). Checks answer
//! `Ok(())` or a [`PermissionError`] that says what was needed.
//!
//! Departures from ToMaTo 4 (bugs listed in `reference/tomato.md`): profile
//! and network restrictions test `restricted_profiles` and
//! `restricted_networks` (ToMaTo tested `restricted_templates` for all
//! three); connection `download_grant` (capture download) is allowed to
//! managers; permission changes cannot demote someone above you or remove a
//! topology's last owner.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One of ToMaTo's user flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// `debug`: sees debugging information.
    Debug,
    /// `error_notify`: receives mail about new kinds of errors.
    ErrorNotify,
    /// `no_topology_create`: may not create topologies.
    NoTopologyCreate,
    /// `over_quota`: may not run `prepare`, `start` or `upload_grant`.
    OverQuota,
    /// `new_account`: the account awaits acceptance (a tag).
    NewAccount,
    /// `restricted_profiles`: may use restricted profiles.
    RestrictedProfiles,
    /// `restricted_templates`: may use restricted templates.
    RestrictedTemplates,
    /// `restricted_networks`: may use restricted networks.
    RestrictedNetworks,
    /// `nomails`: receives no mail at all.
    NoMails,
    /// `global_admin`: administers every account.
    GlobalAdmin,
    /// `global_host_manager`: manages every host and site.
    GlobalHostManager,
    /// `global_topl_owner`: owner of every topology.
    GlobalToplOwner,
    /// `global_topl_manager`: manager of every topology.
    GlobalToplManager,
    /// `global_topl_user`: user of every topology.
    GlobalToplUser,
    /// `global_host_contact`: receives mail about host problems.
    GlobalHostContact,
    /// `global_admin_contact`: receives mail sent to the administrators.
    GlobalAdminContact,
    /// `orga_admin`: administers the accounts of their organization.
    OrgaAdmin,
    /// `orga_host_manager`: manages the hosts and sites of their organization.
    OrgaHostManager,
    /// `orga_topl_owner`: owner of their organization's topologies.
    OrgaToplOwner,
    /// `orga_topl_manager`: manager of their organization's topologies.
    OrgaToplManager,
    /// `orga_topl_user`: user of their organization's topologies.
    OrgaToplUser,
    /// `orga_host_contact`: receives mail about their organization's hosts.
    OrgaHostContact,
    /// `orga_admin_contact`: receives mail sent to their organization.
    OrgaAdminContact,
}

impl Flag {
    /// Every flag, in ToMaTo's order.
    pub const ALL: [Flag; 23] = [
        Flag::Debug,
        Flag::ErrorNotify,
        Flag::NoTopologyCreate,
        Flag::OverQuota,
        Flag::NewAccount,
        Flag::RestrictedProfiles,
        Flag::RestrictedTemplates,
        Flag::RestrictedNetworks,
        Flag::NoMails,
        Flag::GlobalAdmin,
        Flag::GlobalHostManager,
        Flag::GlobalToplOwner,
        Flag::GlobalToplManager,
        Flag::GlobalToplUser,
        Flag::GlobalHostContact,
        Flag::GlobalAdminContact,
        Flag::OrgaAdmin,
        Flag::OrgaHostManager,
        Flag::OrgaToplOwner,
        Flag::OrgaToplManager,
        Flag::OrgaToplUser,
        Flag::OrgaHostContact,
        Flag::OrgaAdminContact,
    ];

    /// ToMaTo's name of the flag.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Debug => "debug",
            Flag::ErrorNotify => "error_notify",
            Flag::NoTopologyCreate => "no_topology_create",
            Flag::OverQuota => "over_quota",
            Flag::NewAccount => "new_account",
            Flag::RestrictedProfiles => "restricted_profiles",
            Flag::RestrictedTemplates => "restricted_templates",
            Flag::RestrictedNetworks => "restricted_networks",
            Flag::NoMails => "nomails",
            Flag::GlobalAdmin => "global_admin",
            Flag::GlobalHostManager => "global_host_manager",
            Flag::GlobalToplOwner => "global_topl_owner",
            Flag::GlobalToplManager => "global_topl_manager",
            Flag::GlobalToplUser => "global_topl_user",
            Flag::GlobalHostContact => "global_host_contact",
            Flag::GlobalAdminContact => "global_admin_contact",
            Flag::OrgaAdmin => "orga_admin",
            Flag::OrgaHostManager => "orga_host_manager",
            Flag::OrgaToplOwner => "orga_topl_owner",
            Flag::OrgaToplManager => "orga_topl_manager",
            Flag::OrgaToplUser => "orga_topl_user",
            Flag::OrgaHostContact => "orga_host_contact",
            Flag::OrgaAdminContact => "orga_admin_contact",
        }
    }

    /// The flag named `name`, or an error listing every flag.
    pub fn parse(name: &str) -> Result<Flag, PermissionError> {
        Flag::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| PermissionError::UnknownFlag(name.to_string()))
    }

    /// The topology role a `*_topl_*` flag gives, `Null` for other flags.
    pub fn topology_role(self) -> Role {
        match self {
            Flag::GlobalToplOwner | Flag::OrgaToplOwner => Role::Owner,
            Flag::GlobalToplManager | Flag::OrgaToplManager => Role::Manager,
            Flag::GlobalToplUser | Flag::OrgaToplUser => Role::User,
            _ => Role::Null,
        }
    }

    /// What the flag means, in ToMaTo's words (`account_flags`).
    pub fn description(self) -> &'static str {
        match self {
            Flag::Debug => "Debug: See everything",
            Flag::ErrorNotify => "ErrorNotify: receive emails for new kinds of errors",
            Flag::NoTopologyCreate => "NoTopologyCreate: Restriction on topology_create",
            Flag::OverQuota => "OverQuota: Restriction on actions start, prepare and upload_grant",
            Flag::NewAccount => "NewAccount: Account is new, just a tag",
            Flag::RestrictedProfiles => "RestrictedProfiles: Can use restricted profiles",
            Flag::RestrictedTemplates => "RestrictedTemplates: Can use restricted templates",
            Flag::RestrictedNetworks => "RestrictedNetworks: Can use restricted Networks",
            Flag::NoMails => "NoMails: Can not receive mails at all",
            Flag::GlobalAdmin => "GlobalAdmin: Modify all accounts",
            Flag::GlobalHostManager => "GlobalHostsManager: Can manage all hosts and sites",
            Flag::GlobalToplOwner => "GlobalToplOwner: Owner for every topology",
            Flag::GlobalToplManager => "GlobalToplManager: Manager for every topology",
            Flag::GlobalToplUser => "GlobalToplUser: User for every topology",
            Flag::GlobalHostContact => "GlobalHostContact: User receives mails about host problems",
            Flag::GlobalAdminContact => "GlobalAdminContact: User receives mails to administrators",
            Flag::OrgaAdmin => "OrgaAdmin: Modify all accounts of a specific organization",
            Flag::OrgaHostManager => "OrgaHostsManager: Can manage all hosts and sites of a specific organization",
            Flag::OrgaToplOwner => "OrgaToplOwner: Owner for every topology of a specific organization",
            Flag::OrgaToplManager => "OrgaToplManager: Manager for every topology of a specific organization",
            Flag::OrgaToplUser => "OrgaToplUser: User for every topology of a specific organization",
            Flag::OrgaHostContact => {
                "OrgaHostContact: User receives mails about host problems of a specific organization"
            }
            Flag::OrgaAdminContact => "OrgaAdminContact: User receives mails to a specific organization",
        }
    }

    /// Whether the flag only acts inside the holder's organization.
    pub fn is_orga(self) -> bool {
        self.name().starts_with("orga_")
    }

    /// Whether the flag acts on the whole testbed.
    pub fn is_global(self) -> bool {
        self.name().starts_with("global_")
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A group of flags as ToMaTo's account pages show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagCategory {
    /// Its key (`manager_user_global`, ...).
    pub title: &'static str,
    /// Its heading for people.
    pub onscreentitle: &'static str,
    /// Its flags.
    pub flags: &'static [Flag],
}

/// The flags of an account's own settings and restrictions (ToMaTo's
/// "User Settings"), which its organization's admins may change.
const USER_SETTINGS: &[Flag] = &[
    Flag::NoTopologyCreate,
    Flag::OverQuota,
    Flag::RestrictedProfiles,
    Flag::RestrictedTemplates,
    Flag::RestrictedNetworks,
    Flag::NewAccount,
    Flag::NoMails,
];

/// ToMaTo's flag categories; each flag is in exactly one.
pub const FLAG_CATEGORIES: [FlagCategory; 6] = {
    use Flag::*;
    [
        FlagCategory {
            title: "manager_user_global",
            onscreentitle: "Global User Management",
            flags: &[GlobalAdmin, GlobalToplOwner, GlobalToplManager, GlobalToplUser, GlobalAdminContact],
        },
        FlagCategory {
            title: "manager_user_orga",
            onscreentitle: "Organization-Internal User Management",
            flags: &[OrgaAdmin, OrgaToplOwner, OrgaToplManager, OrgaToplUser, OrgaAdminContact],
        },
        FlagCategory {
            title: "manager_host_global",
            onscreentitle: "Global Host Management",
            flags: &[GlobalHostManager, GlobalHostContact],
        },
        FlagCategory {
            title: "manager_host_orga",
            onscreentitle: "Organization-Internal Host Management",
            flags: &[OrgaHostManager, OrgaHostContact],
        },
        FlagCategory { title: "error_management", onscreentitle: "Error Management", flags: &[Debug, ErrorNotify] },
        FlagCategory { title: "user", onscreentitle: "User Settings", flags: USER_SETTINGS },
    ]
};

/// A set of flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags(BTreeSet<Flag>);

impl Flags {
    /// No flags.
    pub fn new() -> Flags {
        Flags(BTreeSet::new())
    }

    /// Parses flag names; the error names the first unknown one and lists
    /// all flags.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Flags, PermissionError> {
        names.iter().map(|n| Flag::parse(n.as_ref())).collect::<Result<BTreeSet<_>, _>>().map(Flags)
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: Flag) -> bool {
        self.0.contains(&flag)
    }

    /// Sets or clears `flag`.
    pub fn set(&mut self, flag: Flag, on: bool) {
        if on {
            self.0.insert(flag);
        } else {
            self.0.remove(&flag);
        }
    }

    /// The flags, in ToMaTo's order.
    pub fn iter(&self) -> impl Iterator<Item = Flag> + '_ {
        self.0.iter().copied()
    }

    /// The flags' names, in ToMaTo's order.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Flag::name).collect()
    }

    /// The highest topology role of the `global_topl_*` flags.
    pub fn global_topology_role(&self) -> Role {
        self.iter().filter(|f| f.is_global()).map(Flag::topology_role).max().unwrap_or(Role::Null)
    }

    /// The highest topology role of the `orga_topl_*` flags.
    pub fn orga_topology_role(&self) -> Role {
        self.iter().filter(|f| f.is_orga()).map(Flag::topology_role).max().unwrap_or(Role::Null)
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Flags {
        Flags(iter.into_iter().collect())
    }
}

/// A person's role on one topology; the order is the ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// No access at all.
    Null,
    /// Views the topology, changes client data (`_*` keys), uses consoles
    /// and executable archives.
    User,
    /// Full control of elements and connections; no removal of the
    /// topology, no permission changes.
    Manager,
    /// Everything, including removal and permission changes.
    Owner,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Null, Role::User, Role::Manager, Role::Owner];

    /// ToMaTo's name of the role.
    pub fn name(self) -> &'static str {
        match self {
            Role::Null => "null",
            Role::User => "user",
            Role::Manager => "manager",
            Role::Owner => "owner",
        }
    }

    /// ToMaTo's title of the role (`topology_permissions`).
    pub fn title(self) -> &'static str {
        match self {
            Role::Null => "[no permission]",
            Role::User => "User",
            Role::Manager => "Manager",
            Role::Owner => "Owner",
        }
    }

    /// What the role allows, in ToMaTo's words.
    pub fn description(self) -> &'static str {
        match self {
            Role::Null => "no access at all",
            Role::User => "no destroy/prepare, no topology changes, no permission changes",
            Role::Manager => "full topology control, no topology delete, no permission changes",
            Role::Owner => "full topology control, permission changes, topology removal",
        }
    }

    /// The role named `name`, or an error listing the roles.
    pub fn parse(name: &str) -> Result<Role, PermissionError> {
        Role::ALL.into_iter().find(|r| r.name() == name).ok_or_else(|| PermissionError::UnknownRole(name.to_string()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A person as permission checks see them: the caller, or the account an
/// operation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The account name.
    pub name: &'a str,
    /// The account's organization.
    pub organization: &'a str,
    /// The account's flags.
    pub flags: &'a Flags,
}

impl Subject<'_> {
    fn has(&self, flag: Flag) -> bool {
        self.flags.has(flag)
    }

    /// Whether the subject holds `flag`, or `orga_flag` for `organization`.
    fn has_scoped(&self, global: Flag, orga: Flag, organization: &str) -> bool {
        self.has(global) || (self.has(orga) && self.organization == organization)
    }
}

/// One entry of a topology's permissions, with the organization of its
/// account (needed for `orga_topl_*` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The account name.
    pub user: String,
    /// The account's organization.
    pub organization: String,
    /// The role the topology gives the account.
    pub role: Role,
}

/// The role `who` has on a topology whose permissions are `members`; see
/// the module documentation.
pub fn effective_role(who: &Subject<'_>, members: &[Member]) -> Role {
    let own = members.iter().filter(|m| m.user == who.name).map(|m| m.role).max().unwrap_or(Role::Null);
    let organization_best =
        members.iter().filter(|m| m.organization == who.organization).map(|m| m.role).max().unwrap_or(Role::Null);
    let orga = who.flags.orga_topology_role().min(organization_best);
    own.max(who.flags.global_topology_role()).max(orga)
}

/// An operation on a topology as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyOp {
    /// `topology_info`, `topology_export`.
    View,
    /// `topology_usage`.
    ViewUsage,
    /// `topology_modify` of client data (`_*` keys) only.
    ModifyClientData,
    /// `topology_modify` of any other attribute (name, site, ...).
    Modify,
    /// `topology_remove`.
    Remove,
    /// `topology_set_permission` (see also [`check_set_permission`]).
    SetPermission,
    /// `element_create` and `connection_create` in this topology.
    CreateComponent,
    /// `topology_action(prepare)`.
    Prepare,
    /// `topology_action(start)`.
    Start,
    /// `topology_action(stop)`.
    Stop,
    /// `topology_action(destroy)`.
    Destroy,
    /// `topology_action(renew)`.
    Renew,
}

impl TopologyOp {
    /// Every topology operation.
    pub const ALL: [TopologyOp; 12] = [
        TopologyOp::View,
        TopologyOp::ViewUsage,
        TopologyOp::ModifyClientData,
        TopologyOp::Modify,
        TopologyOp::Remove,
        TopologyOp::SetPermission,
        TopologyOp::CreateComponent,
        TopologyOp::Prepare,
        TopologyOp::Start,
        TopologyOp::Stop,
        TopologyOp::Destroy,
        TopologyOp::Renew,
    ];

    /// The topology actions (`topology_action`'s names).
    pub const ACTIONS: [&'static str; 5] = ["prepare", "start", "stop", "destroy", "renew"];

    /// The operation of `topology_action(name)`, or an error listing the
    /// topology actions.
    pub fn action(name: &str) -> Result<TopologyOp, PermissionError> {
        Ok(match name {
            "prepare" => TopologyOp::Prepare,
            "start" => TopologyOp::Start,
            "stop" => TopologyOp::Stop,
            "destroy" => TopologyOp::Destroy,
            "renew" => TopologyOp::Renew,
            _ => return Err(PermissionError::unknown_action("topology", name, &TopologyOp::ACTIONS)),
        })
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            TopologyOp::View => "view",
            TopologyOp::ViewUsage => "view usage",
            TopologyOp::ModifyClientData => "modify client data",
            TopologyOp::Modify => "modify",
            TopologyOp::Remove => "remove",
            TopologyOp::SetPermission => "change permissions",
            TopologyOp::CreateComponent => "create elements and connections",
            TopologyOp::Prepare => "prepare",
            TopologyOp::Start => "start",
            TopologyOp::Stop => "stop",
            TopologyOp::Destroy => "destroy",
            TopologyOp::Renew => "renew",
        }
    }
}

/// The least role an operation on a topology needs.
pub fn topology_op_role(op: TopologyOp) -> Role {
    match op {
        TopologyOp::View | TopologyOp::ViewUsage | TopologyOp::ModifyClientData => Role::User,
        TopologyOp::CreateComponent
        | TopologyOp::Prepare
        | TopologyOp::Start
        | TopologyOp::Stop
        | TopologyOp::Destroy
        | TopologyOp::Renew => Role::Manager,
        TopologyOp::Modify | TopologyOp::Remove | TopologyOp::SetPermission => Role::Owner,
    }
}

/// Element actions a `user` may run (executable archives and logs); the
/// names ToMaTo's API checker knows plus those our kinds add.
pub const ELEMENT_USER_ACTIONS: [&str; 4] =
    ["rextfv_upload_grant", "rextfv_upload_use", "rextfv_download_grant", "download_log_grant"];
/// Element actions that need a `manager`.
pub const ELEMENT_MANAGER_ACTIONS: [&str; 10] = [
    "prepare",
    "start",
    "stop",
    "destroy",
    "(remove)",
    "change_template",
    "upload_grant",
    "upload_use",
    "download_grant",
    "execute",
];
/// Connection actions; all need a `manager`.
pub const CONNECTION_ACTIONS: [&str; 6] = ["prepare", "start", "stop", "destroy", "(remove)", "download_grant"];

/// Actions refused while the caller is over quota (ToMaTo's `over_quota`).
pub const QUOTA_GATED_ACTIONS: [&str; 3] = ["prepare", "start", "upload_grant"];

/// An operation on an element or a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentOp<'a> {
    /// `*_info`.
    View,
    /// `*_usage`.
    ViewUsage,
    /// `*_modify` of client data (`_*` keys) only.
    ModifyClientData,
    /// `*_modify` of any other attribute.
    Modify,
    /// `*_remove`.
    Remove,
    /// Opening an element's console (ToMaTo showed its VNC details to
    /// every user of the topology).
    Console,
    /// `*_action(name)`.
    Action(&'a str),
}

/// The least role `op` on an element needs; unknown action names are an
/// error that lists the known ones.
pub fn element_op_role(op: ComponentOp<'_>) -> Result<Role, PermissionError> {
    component_op_role(op, element_action_role)
}

/// The least role `op` on a connection needs.
pub fn connection_op_role(op: ComponentOp<'_>) -> Result<Role, PermissionError> {
    component_op_role(op, connection_action_role)
}

fn component_op_role(
    op: ComponentOp<'_>,
    action: impl Fn(&str) -> Result<Role, PermissionError>,
) -> Result<Role, PermissionError> {
    Ok(match op {
        ComponentOp::View | ComponentOp::ViewUsage | ComponentOp::ModifyClientData | ComponentOp::Console => Role::User,
        ComponentOp::Modify | ComponentOp::Remove => Role::Manager,
        ComponentOp::Action(name) => action(name)?,
    })
}

/// The least role an element action needs.
pub fn element_action_role(name: &str) -> Result<Role, PermissionError> {
    if ELEMENT_USER_ACTIONS.contains(&name) {
        Ok(Role::User)
    } else if ELEMENT_MANAGER_ACTIONS.contains(&name) {
        Ok(Role::Manager)
    } else {
        let all: Vec<&str> = ELEMENT_MANAGER_ACTIONS.iter().chain(&ELEMENT_USER_ACTIONS).copied().collect();
        Err(PermissionError::unknown_action("element", name, &all))
    }
}

/// The least role a connection action needs.
pub fn connection_action_role(name: &str) -> Result<Role, PermissionError> {
    if CONNECTION_ACTIONS.contains(&name) {
        Ok(Role::Manager)
    } else {
        Err(PermissionError::unknown_action("connection", name, &CONNECTION_ACTIONS))
    }
}

fn require(have: Role, need: Role, what: String) -> Result<(), PermissionError> {
    if have >= need { Ok(()) } else { Err(PermissionError::RoleTooLow { what, need, have }) }
}

/// Checks the over-quota flag for an action name.
fn check_over_quota(who: &Subject<'_>, action: &str) -> Result<(), PermissionError> {
    if who.has(Flag::OverQuota) && QUOTA_GATED_ACTIONS.contains(&action) {
        return Err(PermissionError::OverQuotaFlag { action: action.to_string() });
    }
    Ok(())
}

/// Checks that `who` may do `op` on a topology with these `members`.
pub fn check_topology(who: &Subject<'_>, members: &[Member], op: TopologyOp) -> Result<(), PermissionError> {
    let have = effective_role(who, members);
    require(have, topology_op_role(op), format!("topology: {}", op.name()))?;
    match op {
        TopologyOp::Prepare => check_over_quota(who, "prepare"),
        TopologyOp::Start => check_over_quota(who, "start"),
        _ => Ok(()),
    }
}

/// Checks that `who` may do `op` on an element of a topology with these
/// `members`.
pub fn check_element(who: &Subject<'_>, members: &[Member], op: ComponentOp<'_>) -> Result<(), PermissionError> {
    check_component("element", element_op_role(op)?, who, members, op)
}

/// Checks that `who` may do `op` on a connection of a topology with these
/// `members`.
pub fn check_connection(who: &Subject<'_>, members: &[Member], op: ComponentOp<'_>) -> Result<(), PermissionError> {
    check_component("connection", connection_op_role(op)?, who, members, op)
}

/// `who` needs role `need` for `op` on a component (`element` or
/// `connection`), and actions are subject to the quota flag.
fn check_component(
    component: &str,
    need: Role,
    who: &Subject<'_>,
    members: &[Member],
    op: ComponentOp<'_>,
) -> Result<(), PermissionError> {
    let what = match op {
        ComponentOp::Action(name) => format!("{component}: action {name}"),
        other => format!("{component}: {}", component_op_name(other)),
    };
    require(effective_role(who, members), need, what)?;
    if let ComponentOp::Action(name) = op {
        check_over_quota(who, name)?;
    }
    Ok(())
}

fn component_op_name(op: ComponentOp<'_>) -> &'static str {
    match op {
        ComponentOp::View => "view",
        ComponentOp::ViewUsage => "view usage",
        ComponentOp::ModifyClientData => "modify client data",
        ComponentOp::Modify => "modify",
        ComponentOp::Remove => "remove",
        ComponentOp::Console => "console",
        ComponentOp::Action(_) => "action",
    }
}

/// Checks `topology_set_permission(user = target, role)`: nobody changes
/// their own role; nobody grants a role they do not hold, nor changes the
/// role of someone above them; only an owner changes permissions; and the
/// last owner stays (a topology without owner could not be removed or
/// shared any more).
pub fn check_set_permission(
    who: &Subject<'_>,
    members: &[Member],
    target: &str,
    role: Role,
) -> Result<(), PermissionError> {
    if target == who.name {
        return Err(PermissionError::OwnRole);
    }
    let have = effective_role(who, members);
    if role > have {
        return Err(PermissionError::GrantAboveOwn { role, have });
    }
    let current = members.iter().filter(|m| m.user == target).map(|m| m.role).max().unwrap_or(Role::Null);
    if current > have {
        return Err(PermissionError::TargetAboveOwn { target: target.to_string(), current, have });
    }
    require(have, topology_op_role(TopologyOp::SetPermission), "topology: change permissions".into())?;
    let owners_after =
        members.iter().filter(|m| m.role == Role::Owner && m.user != target).count() + usize::from(role == Role::Owner);
    if owners_after == 0 {
        return Err(PermissionError::LastOwner { target: target.to_string() });
    }
    Ok(())
}

/// A resource whose use may be restricted to flagged users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restricted {
    /// A template (needs `restricted_templates`).
    Template,
    /// A profile (needs `restricted_profiles`).
    Profile,
    /// A network (needs `restricted_networks`).
    Network,
}

impl Restricted {
    /// The flag that unlocks restricted resources of this kind.
    pub fn flag(self) -> Flag {
        match self {
            Restricted::Template => Flag::RestrictedTemplates,
            Restricted::Profile => Flag::RestrictedProfiles,
            Restricted::Network => Flag::RestrictedNetworks,
        }
    }
}

/// Checks that `who` may use the resource `name` of `kind`, which is
/// `restricted` or not.
pub fn check_use(who: &Subject<'_>, kind: Restricted, name: &str, restricted: bool) -> Result<(), PermissionError> {
    if restricted && !who.has(kind.flag()) {
        return Err(PermissionError::RestrictedResource { name: name.to_string(), flag: kind.flag() });
    }
    Ok(())
}

/// An administrative operation; organization-scoped ones carry the
/// organization they touch (of the account, site or host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminOp<'a> {
    /// `account_list()` of every account.
    ListAllUsers,
    /// `account_list(organization)`.
    ListOrganizationUsers(&'a str),
    /// `account_create` for another person in an organization.
    CreateUser(&'a str),
    /// `account_info` with private fields (email, flags, quota) of an account.
    ViewUserDetails(&'a Subject<'a>),
    /// Reset another account's password.
    ResetPassword(&'a Subject<'a>),
    /// `account_usage` of an account.
    ViewUserUsage(&'a Subject<'a>),
    /// `account_remove`.
    RemoveUser(&'a Subject<'a>),
    /// Send a notification to an account.
    SendMessage(&'a Subject<'a>),
    /// `broadcast_announcement`, to everybody (`None`) or one organization.
    Broadcast(Option<&'a str>),
    /// `organization_create`.
    CreateOrganization,
    /// `organization_modify`.
    ModifyOrganization(&'a str),
    /// `organization_remove`.
    RemoveOrganization(&'a str),
    /// `organization_usage`.
    ViewOrganizationUsage(&'a str),
    /// `site_create` in an organization.
    CreateSite(&'a str),
    /// `site_modify` of a site of an organization.
    ModifySite(&'a str),
    /// `site_remove`.
    RemoveSite(&'a str),
    /// `host_create` in a site of an organization.
    CreateHost(&'a str),
    /// `host_modify`, `host_action`.
    ModifyHost(&'a str),
    /// `host_remove`.
    RemoveHost(&'a str),
    /// `host_users`.
    ListHostUsers(&'a str),
    /// `template_*`/`profile_*` create, modify and remove ("user resources").
    ManageTemplatesAndProfiles,
    /// `network_*`/`network_instance_*` create, modify and remove
    /// ("technical resources").
    ManageNetworks,
    /// `topology_create`.
    CreateTopology,
    /// `topology_list(showAll)`.
    ListAllTopologies,
    /// `topology_list(organization)`.
    ListOrganizationTopologies(&'a str),
    /// Debugging information.
    ViewDebugInfo,
}

/// Checks an administrative operation (ToMaTo's `check_may_*`).
pub fn check_admin(who: &Subject<'_>, op: AdminOp<'_>) -> Result<(), PermissionError> {
    use Flag::*;
    let admin_of = |org: &str| who.has_scoped(GlobalAdmin, OrgaAdmin, org);
    let host_manager_of = |org: &str| who.has_scoped(GlobalHostManager, OrgaHostManager, org);
    let itself = |target: &Subject<'_>| target.name == who.name;
    let (ok, need): (bool, &str) = match op {
        AdminOp::ListAllUsers => (who.has(GlobalAdmin), "global_admin"),
        AdminOp::ListOrganizationUsers(org) | AdminOp::CreateUser(org) => {
            (admin_of(org), "global_admin, or orga_admin of that organization")
        }
        AdminOp::ViewUserDetails(t)
        | AdminOp::ResetPassword(t)
        | AdminOp::ViewUserUsage(t)
        | AdminOp::SendMessage(t) => (
            itself(t) || admin_of(t.organization),
            "to be that account, global_admin, or orga_admin of its organization",
        ),
        AdminOp::RemoveUser(t) => {
            if itself(t) && who.has(GlobalAdmin) {
                return Err(PermissionError::denied("global admins may not remove their own account"));
            }
            if !itself(t) && !who.has(GlobalAdmin) && who.has(OrgaAdmin) && t.flags.has(GlobalAdmin) {
                return Err(PermissionError::denied("organization admins may not remove global admins"));
            }
            (
                itself(t) || admin_of(t.organization),
                "to be that account, global_admin, or orga_admin of its organization",
            )
        }
        AdminOp::Broadcast(None) => {
            (who.has(GlobalAdmin) || who.has(GlobalHostManager), "global_admin or global_host_manager")
        }
        AdminOp::Broadcast(Some(org)) => (
            admin_of(org) || host_manager_of(org),
            "global_admin, global_host_manager, or orga_admin or orga_host_manager of that organization",
        ),
        AdminOp::CreateOrganization => {
            (who.has(GlobalAdmin) || who.has(GlobalHostManager), "global_admin or global_host_manager")
        }
        AdminOp::ModifyOrganization(org) => (
            admin_of(org) || host_manager_of(org),
            "global_admin, global_host_manager, or orga_admin or orga_host_manager of that organization",
        ),
        AdminOp::RemoveOrganization(org) => {
            if org == who.organization {
                return Err(PermissionError::denied("nobody may remove their own organization"));
            }
            (who.has(GlobalAdmin) || who.has(GlobalHostManager), "global_admin or global_host_manager")
        }
        AdminOp::ViewOrganizationUsage(org) => {
            (org == who.organization || who.has(GlobalAdmin), "to be a member of that organization, or global_admin")
        }
        AdminOp::CreateSite(org)
        | AdminOp::ModifySite(org)
        | AdminOp::RemoveSite(org)
        | AdminOp::CreateHost(org)
        | AdminOp::ModifyHost(org)
        | AdminOp::RemoveHost(org)
        | AdminOp::ListHostUsers(org) => {
            (host_manager_of(org), "global_host_manager, or orga_host_manager of that organization")
        }
        AdminOp::ManageTemplatesAndProfiles => (who.has(GlobalAdmin), "global_admin"),
        AdminOp::ManageNetworks => (who.has(GlobalHostManager), "global_host_manager"),
        AdminOp::CreateTopology => {
            if who.has(NoTopologyCreate) {
                return Err(PermissionError::denied("the flag no_topology_create forbids creating topologies"));
            }
            (true, "")
        }
        AdminOp::ListAllTopologies => (
            [GlobalToplUser, GlobalToplManager, GlobalToplOwner].iter().any(|f| who.has(*f)),
            "global_topl_user, global_topl_manager or global_topl_owner",
        ),
        AdminOp::ListOrganizationTopologies(org) => (
            [GlobalToplUser, GlobalToplManager, GlobalToplOwner].iter().any(|f| who.has(*f))
                || (org == who.organization
                    && [OrgaToplUser, OrgaToplManager, OrgaToplOwner].iter().any(|f| who.has(*f))),
            "a global_topl_* flag, or an orga_topl_* flag in that organization",
        ),
        AdminOp::ViewDebugInfo => (who.has(Debug), "debug"),
    };
    if ok { Ok(()) } else { Err(PermissionError::NeedsFlag { op: format!("{op:?}"), need: need.to_string() }) }
}

/// A field of an account that `account_modify` may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserField {
    /// The full name.
    Realname,
    /// The e-mail address.
    Email,
    /// The password.
    Password,
    /// The organization.
    Organization,
    /// Flags (which ones: [`changeable_flags`]).
    Flags,
    /// The quota.
    Quota,
    /// Client data (`_*` keys).
    ClientData,
}

impl UserField {
    /// The API name of the field.
    pub fn name(self) -> &'static str {
        match self {
            UserField::Realname => "realname",
            UserField::Email => "email",
            UserField::Password => "password",
            UserField::Organization => "organization",
            UserField::Flags => "flags",
            UserField::Quota => "quota",
            UserField::ClientData => "client_data",
        }
    }
}

/// The fields of `target` that `who` may change (ToMaTo's
/// `modify_user_allowed_keys`; quota joins the admin fields).
pub fn changeable_user_fields(who: &Subject<'_>, target: &Subject<'_>) -> BTreeSet<UserField> {
    let mut fields = BTreeSet::from([UserField::Flags]);
    let admin_of_target =
        who.has(Flag::GlobalAdmin) || (who.has(Flag::OrgaAdmin) && who.organization == target.organization);
    if who.name == target.name {
        fields.extend([UserField::Realname, UserField::Email, UserField::Password, UserField::ClientData]);
        if who.has(Flag::GlobalAdmin) {
            fields.insert(UserField::Organization);
        }
    } else {
        if who.has(Flag::GlobalAdmin) {
            fields.extend([UserField::Realname, UserField::Email, UserField::Organization]);
        }
        if admin_of_target {
            fields.extend([UserField::Realname, UserField::Email]);
        }
    }
    if admin_of_target {
        fields.insert(UserField::Quota);
    }
    fields
}

/// The flags of `target` that `who` may set or clear (ToMaTo's
/// `modify_user_allowed_flags`): their own `nomails`; global admins every
/// global flag except taking away their own `global_admin`; admins of the
/// target's organization every non-global flag except taking away their
/// own `orga_admin`.
pub fn changeable_flags(who: &Subject<'_>, target: &Subject<'_>) -> Flags {
    use Flag::*;
    let itself = who.name == target.name;
    let mut out = Flags::new();
    if itself {
        out.set(NoMails, true);
    }
    if who.has(GlobalAdmin) {
        for f in [
            GlobalToplOwner,
            GlobalToplManager,
            GlobalToplUser,
            GlobalAdminContact,
            GlobalHostManager,
            GlobalHostContact,
            Debug,
            ErrorNotify,
        ] {
            out.set(f, true);
        }
        out.set(GlobalAdmin, !itself);
    }
    if who.has(GlobalAdmin) || (who.has(OrgaAdmin) && who.organization == target.organization) {
        for f in [OrgaToplOwner, OrgaToplManager, OrgaToplUser, OrgaAdminContact, OrgaHostManager, OrgaHostContact]
            .into_iter()
            .chain(USER_SETTINGS.iter().copied())
        {
            out.set(f, true);
        }
        out.set(OrgaAdmin, !itself);
    }
    out
}

/// Checks a change of `target`'s fields and flags by `who`; `flags` maps
/// each flag to be changed to its new value.
pub fn check_user_modify(
    who: &Subject<'_>,
    target: &Subject<'_>,
    fields: &[UserField],
    flags: &BTreeMap<Flag, bool>,
) -> Result<(), PermissionError> {
    let allowed = changeable_user_fields(who, target);
    if let Some(field) = fields.iter().find(|f| !allowed.contains(f)) {
        return Err(PermissionError::FieldNotChangeable {
            field: field.name(),
            allowed: allowed.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
        });
    }
    let changeable = changeable_flags(who, target);
    // Setting a flag to the value it already has changes nothing, so it is
    // not refused (clients send the whole flag map back).
    if let Some((flag, _)) = flags.iter().find(|(f, on)| target.flags.has(**f) != **on && !changeable.has(**f)) {
        return Err(PermissionError::FlagNotChangeable { flag: *flag, allowed: changeable.names().join(", ") });
    }
    Ok(())
}

/// Why a permission check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    /// The caller's role on the topology is too low.
    #[error("{what} needs the role {need} on this topology; you have {have}")]
    RoleTooLow {
        /// The operation.
        what: String,
        /// The least role it needs.
        need: Role,
        /// The caller's effective role.
        have: Role,
    },
    /// The caller lacks a flag.
    #[error("{op} needs {need}")]
    NeedsFlag {
        /// The operation.
        op: String,
        /// What it needs, in words.
        need: String,
    },
    /// A rule without a flag that would lift it.
    #[error("{0}")]
    Denied(String),
    /// The caller carries `over_quota`.
    #[error("{action} is refused while your account is over quota (flag over_quota)")]
    OverQuotaFlag {
        /// The refused action.
        action: String,
    },
    /// Nobody changes their own role.
    #[error("you may not change your own role on a topology")]
    OwnRole,
    /// The granted role is above the caller's.
    #[error("you can only grant roles you hold yourself: you are {have}, asked to grant {role}")]
    GrantAboveOwn {
        /// The role asked for.
        role: Role,
        /// The caller's effective role.
        have: Role,
    },
    /// The target's role is above the caller's.
    #[error("{target} is {current} on this topology, above your role {have}")]
    TargetAboveOwn {
        /// The account whose role would change.
        target: String,
        /// Their current role.
        current: Role,
        /// The caller's effective role.
        have: Role,
    },
    /// The change would leave the topology without owner.
    #[error("{target} is the last owner of this topology; make someone else owner first")]
    LastOwner {
        /// The last owner.
        target: String,
    },
    /// A restricted template, profile or network.
    #[error("{name} is restricted; using it needs the flag {flag}")]
    RestrictedResource {
        /// The resource.
        name: String,
        /// The flag that unlocks it.
        flag: Flag,
    },
    /// A field the caller may not change.
    #[error("you may not change `{field}` of this account; you may change: {allowed}")]
    FieldNotChangeable {
        /// The field.
        field: &'static str,
        /// The fields the caller may change.
        allowed: String,
    },
    /// A flag the caller may not change.
    #[error("you may not change the flag {flag} of this account; you may change: {allowed}")]
    FlagNotChangeable {
        /// The flag.
        flag: Flag,
        /// The flags the caller may change.
        allowed: String,
    },
    /// Not an action of this object.
    #[error("`action`: {target} has no action `{action}`; allowed: {allowed}")]
    UnknownAction {
        /// `topology`, `element` or `connection`.
        target: &'static str,
        /// The name asked for.
        action: String,
        /// The known actions.
        allowed: String,
    },
    /// Not a flag name.
    #[error("`flags`: unknown flag `{0}`; allowed: {names}", names = flag_names())]
    UnknownFlag(String),
    /// Not a role name.
    #[error("`role`: unknown role `{0}`; allowed: null, user, manager, owner")]
    UnknownRole(String),
}

fn flag_names() -> String {
    Flag::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

impl PermissionError {
    fn denied(message: &str) -> PermissionError {
        PermissionError::Denied(message.to_string())
    }

    fn unknown_action(target: &'static str, action: &str, allowed: &[&str]) -> PermissionError {
        PermissionError::UnknownAction { target, action: action.to_string(), allowed: allowed.join(", ") }
    }

    /// ToMaTo's error code: `denied`, `unsupported_action` or
    /// `invalid_value`.
    pub fn code(&self) -> &'static str {
        match self {
            PermissionError::UnknownAction { .. } => "unsupported_action",
            PermissionError::UnknownFlag(_) | PermissionError::UnknownRole(_) => "invalid_value",
            _ => "denied",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ORG: &str = "uni";

    fn flags(names: &[&str]) -> Flags {
        Flags::parse(names).unwrap()
    }

    fn member(user: &str, organization: &str, role: Role) -> Member {
        Member { user: user.into(), organization: organization.into(), role }
    }

    /// A topology where `alice` has `role` (nothing for `Null`), `owner`
    /// owns it, both in another organization than `ORG` unless said.
    fn members_with(role: Role) -> Vec<Member> {
        let mut m = vec![member("owner", "elsewhere", Role::Owner)];
        if role != Role::Null {
            m.push(member("alice", "elsewhere", role));
        }
        m
    }

    /// The whole role × operation matrix: each row is what null, user,
    /// manager and owner may do. Written out, not derived from the code.
    #[test]
    fn role_matrix_for_topologies_elements_and_connections() {
        type Row = (&'static str, [bool; 4]);
        const NONE: [bool; 4] = [false, false, false, false];
        const USER: [bool; 4] = [false, true, true, true];
        const MANAGER: [bool; 4] = [false, false, true, true];
        const OWNER: [bool; 4] = [false, false, false, true];
        let topology: [(TopologyOp, [bool; 4]); 12] = [
            (TopologyOp::View, USER),
            (TopologyOp::ViewUsage, USER),
            (TopologyOp::ModifyClientData, USER),
            (TopologyOp::Modify, OWNER),
            (TopologyOp::Remove, OWNER),
            (TopologyOp::SetPermission, OWNER),
            (TopologyOp::CreateComponent, MANAGER),
            (TopologyOp::Prepare, MANAGER),
            (TopologyOp::Start, MANAGER),
            (TopologyOp::Stop, MANAGER),
            (TopologyOp::Destroy, MANAGER),
            (TopologyOp::Renew, MANAGER),
        ];
        assert_eq!(topology.len(), TopologyOp::ALL.len(), "every topology operation is in the table");
        let elements: [Row; 20] = [
            ("view", USER),
            ("usage", USER),
            ("modify _data", USER),
            ("modify", MANAGER),
            ("remove", MANAGER),
            ("console", USER),
            ("prepare", MANAGER),
            ("start", MANAGER),
            ("stop", MANAGER),
            ("destroy", MANAGER),
            ("(remove)", MANAGER),
            ("change_template", MANAGER),
            ("upload_grant", MANAGER),
            ("upload_use", MANAGER),
            ("download_grant", MANAGER),
            ("execute", MANAGER),
            ("rextfv_upload_grant", USER),
            ("rextfv_upload_use", USER),
            ("rextfv_download_grant", USER),
            ("download_log_grant", USER),
        ];
        let connections: [Row; 11] = [
            ("view", USER),
            ("usage", USER),
            ("modify _data", USER),
            ("modify", MANAGER),
            ("remove", MANAGER),
            ("prepare", MANAGER),
            ("start", MANAGER),
            ("stop", MANAGER),
            ("destroy", MANAGER),
            ("(remove)", MANAGER),
            ("download_grant", MANAGER),
        ];
        let op = |name: &'static str| match name {
            "view" => ComponentOp::View,
            "usage" => ComponentOp::ViewUsage,
            "modify _data" => ComponentOp::ModifyClientData,
            "modify" => ComponentOp::Modify,
            "remove" => ComponentOp::Remove,
            "console" => ComponentOp::Console,
            action => ComponentOp::Action(action),
        };
        let no_flags = Flags::new();
        let alice = Subject { name: "alice", organization: ORG, flags: &no_flags };
        for (i, role) in Role::ALL.into_iter().enumerate() {
            let members = members_with(role);
            for (o, expect) in topology {
                assert_eq!(check_topology(&alice, &members, o).is_ok(), expect[i], "topology {o:?} as {role}");
            }
            for (name, expect) in elements {
                assert_eq!(check_element(&alice, &members, op(name)).is_ok(), expect[i], "element {name} as {role}");
            }
            for (name, expect) in connections {
                let got = check_connection(&alice, &members, op(name)).is_ok();
                assert_eq!(got, expect[i], "connection {name} as {role}");
            }
        }
        // Every action name the table lists is every name the module knows.
        let mut known: Vec<&str> = ELEMENT_MANAGER_ACTIONS.iter().chain(&ELEMENT_USER_ACTIONS).copied().collect();
        known.sort();
        let mut listed: Vec<&str> = elements[6..].iter().map(|r| r.0).collect();
        listed.sort();
        assert_eq!(known, listed);
        assert_eq!(NONE, [false; 4]);
    }

    #[test]
    fn every_action_of_every_model_kind_has_a_role() {
        for kind in model::registry().kinds() {
            for action in &kind.actions {
                let role = match kind.class {
                    model::Class::Element => element_action_role(action.name),
                    model::Class::Connection => connection_action_role(action.name),
                };
                assert!(role.is_ok(), "{}: action {} has no role: {role:?}", kind.name, action.name);
            }
        }
    }

    #[test]
    fn unknown_actions_name_the_allowed_ones() {
        let e = element_action_role("explode").unwrap_err();
        assert_eq!(e.code(), "unsupported_action");
        assert!(e.to_string().contains("element has no action `explode`"), "{e}");
        assert!(e.to_string().contains("rextfv_upload_grant"), "{e}");
        let e = TopologyOp::action("pause").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`action`: topology has no action `pause`; allowed: prepare, start, stop, destroy, renew"
        );
        let e = connection_action_role("execute").unwrap_err();
        assert!(e.to_string().contains("allowed: prepare, start, stop, destroy, (remove), download_grant"), "{e}");
    }

    #[test]
    fn over_quota_flag_refuses_prepare_start_and_upload_grant_only() {
        let f = flags(&["over_quota"]);
        let alice = Subject { name: "alice", organization: ORG, flags: &f };
        let members = members_with(Role::Owner);
        for op in [TopologyOp::Prepare, TopologyOp::Start] {
            let e = check_topology(&alice, &members, op).unwrap_err();
            assert!(matches!(e, PermissionError::OverQuotaFlag { .. }), "{e}");
            assert_eq!(e.code(), "denied");
        }
        for op in [TopologyOp::Stop, TopologyOp::Destroy, TopologyOp::Renew, TopologyOp::View] {
            assert_eq!(check_topology(&alice, &members, op), Ok(()));
        }
        for a in ["prepare", "start", "upload_grant"] {
            let e = check_element(&alice, &members, ComponentOp::Action(a)).unwrap_err();
            assert_eq!(e.to_string(), format!("{a} is refused while your account is over quota (flag over_quota)"));
        }
        for a in ["stop", "destroy", "download_grant", "rextfv_upload_grant"] {
            assert_eq!(check_element(&alice, &members, ComponentOp::Action(a)), Ok(()), "{a}");
        }
    }

    #[test]
    fn global_flags_give_their_role_on_every_topology() {
        for (flag, role) in [
            ("global_topl_user", Role::User),
            ("global_topl_manager", Role::Manager),
            ("global_topl_owner", Role::Owner),
        ] {
            let f = flags(&[flag]);
            let bob = Subject { name: "bob", organization: ORG, flags: &f };
            assert_eq!(effective_role(&bob, &members_with(Role::Null)), role, "{flag}");
        }
    }

    #[test]
    fn orga_flags_act_only_where_their_organization_holds_the_role() {
        let f = flags(&["orga_topl_owner"]);
        let bob = Subject { name: "bob", organization: ORG, flags: &f };
        // No member of bob's organization: the flag gives nothing.
        assert_eq!(effective_role(&bob, &members_with(Role::Owner)), Role::Null);
        // A colleague is manager: the owner flag gives manager (capped).
        let mut m = members_with(Role::Null);
        m.push(member("carol", ORG, Role::Manager));
        assert_eq!(effective_role(&bob, &m), Role::Manager);
        // A colleague is owner: owner.
        m.push(member("dave", ORG, Role::Owner));
        assert_eq!(effective_role(&bob, &m), Role::Owner);
        // A user flag stays user even where colleagues own the topology.
        let f = flags(&["orga_topl_user"]);
        let erin = Subject { name: "erin", organization: ORG, flags: &f };
        assert_eq!(effective_role(&erin, &m), Role::User);
        // The same flags in another organization give nothing.
        let f = flags(&["orga_topl_owner"]);
        let frank = Subject { name: "frank", organization: "other", flags: &f };
        assert_eq!(effective_role(&frank, &m), Role::Null);
    }

    #[test]
    fn set_permission_rules() {
        let none = Flags::new();
        let m = vec![
            member("olga", ORG, Role::Owner),
            member("mike", ORG, Role::Manager),
            member("ursula", ORG, Role::User),
        ];
        let olga = Subject { name: "olga", organization: ORG, flags: &none };
        let mike = Subject { name: "mike", organization: ORG, flags: &none };
        assert_eq!(check_set_permission(&olga, &m, "olga", Role::User), Err(PermissionError::OwnRole));
        assert_eq!(check_set_permission(&olga, &m, "ursula", Role::Owner), Ok(()));
        assert_eq!(check_set_permission(&olga, &m, "newbie", Role::Manager), Ok(()));
        assert_eq!(check_set_permission(&olga, &m, "mike", Role::Null), Ok(()));
        // A manager cannot grant owner: a role they do not hold.
        assert_eq!(
            check_set_permission(&mike, &m, "ursula", Role::Owner),
            Err(PermissionError::GrantAboveOwn { role: Role::Owner, have: Role::Manager })
        );
        // Nor demote the owner above them.
        assert!(matches!(
            check_set_permission(&mike, &m, "olga", Role::User),
            Err(PermissionError::TargetAboveOwn { current: Role::Owner, .. })
        ));
        // Nor change permissions at all (owner only).
        assert!(matches!(
            check_set_permission(&mike, &m, "ursula", Role::Manager),
            Err(PermissionError::RoleTooLow { need: Role::Owner, have: Role::Manager, .. })
        ));
        // A global owner can, but not remove the last owner.
        let g = flags(&["global_topl_owner"]);
        let root = Subject { name: "root", organization: "x", flags: &g };
        assert_eq!(
            check_set_permission(&root, &m, "olga", Role::Null),
            Err(PermissionError::LastOwner { target: "olga".into() })
        );
        assert_eq!(check_set_permission(&root, &m, "olga", Role::Owner), Ok(()));
        let m2 = vec![member("olga", ORG, Role::Owner), member("otto", ORG, Role::Owner)];
        assert_eq!(check_set_permission(&root, &m2, "olga", Role::Null), Ok(()));
    }

    #[test]
    fn restricted_resources_need_their_own_flag() {
        let t = flags(&["restricted_templates"]);
        let who = Subject { name: "a", organization: ORG, flags: &t };
        assert_eq!(check_use(&who, Restricted::Template, "debian", true), Ok(()));
        assert_eq!(check_use(&who, Restricted::Profile, "big", false), Ok(()));
        // ToMaTo tested restricted_templates here; we test the right flag.
        let e = check_use(&who, Restricted::Profile, "big", true).unwrap_err();
        assert_eq!(e.to_string(), "big is restricted; using it needs the flag restricted_profiles");
        assert!(check_use(&who, Restricted::Network, "uplink", true).is_err());
    }

    /// Administration: each row lists who may do it among a fixed cast.
    #[test]
    fn admin_matrix() {
        let cast_flags: [(&str, &str, Flags); 8] = [
            ("plain", ORG, flags(&[])),
            ("gadmin", "hq", flags(&["global_admin"])),
            ("oadmin", ORG, flags(&["orga_admin"])),
            ("oadmin_other", "other", flags(&["orga_admin"])),
            ("ghm", "hq", flags(&["global_host_manager"])),
            ("ohm", ORG, flags(&["orga_host_manager"])),
            ("gtu", "hq", flags(&["global_topl_user"])),
            ("otm", ORG, flags(&["orga_topl_manager", "debug"])),
        ];
        let cast: Vec<Subject<'_>> =
            cast_flags.iter().map(|(n, o, f)| Subject { name: n, organization: o, flags: f }).collect();
        let no = Flags::new();
        let target = Subject { name: "target", organization: ORG, flags: &no };
        let gtarget_flags = flags(&["global_admin"]);
        let gtarget = Subject { name: "gtarget", organization: ORG, flags: &gtarget_flags };
        //            plain  gadmin oadmin oadm_o ghm    ohm    gtu    otm
        let rows: Vec<(AdminOp<'_>, [bool; 8])> = vec![
            (AdminOp::ListAllUsers, [false, true, false, false, false, false, false, false]),
            (AdminOp::ListOrganizationUsers(ORG), [false, true, true, false, false, false, false, false]),
            (AdminOp::CreateUser(ORG), [false, true, true, false, false, false, false, false]),
            (AdminOp::ViewUserDetails(&target), [false, true, true, false, false, false, false, false]),
            (AdminOp::ResetPassword(&target), [false, true, true, false, false, false, false, false]),
            (AdminOp::RemoveUser(&target), [false, true, true, false, false, false, false, false]),
            (AdminOp::RemoveUser(&gtarget), [false, true, false, false, false, false, false, false]),
            (AdminOp::Broadcast(None), [false, true, false, false, true, false, false, false]),
            (AdminOp::Broadcast(Some(ORG)), [false, true, true, false, true, true, false, false]),
            (AdminOp::CreateOrganization, [false, true, false, false, true, false, false, false]),
            (AdminOp::ModifyOrganization(ORG), [false, true, true, false, true, true, false, false]),
            (AdminOp::RemoveOrganization(ORG), [false, true, false, false, true, false, false, false]),
            (AdminOp::ViewOrganizationUsage(ORG), [true, true, true, false, false, true, false, true]),
            (AdminOp::CreateSite(ORG), [false, false, false, false, true, true, false, false]),
            (AdminOp::ModifySite(ORG), [false, false, false, false, true, true, false, false]),
            (AdminOp::RemoveSite("other"), [false, false, false, false, true, false, false, false]),
            (AdminOp::CreateHost(ORG), [false, false, false, false, true, true, false, false]),
            (AdminOp::ModifyHost("other"), [false, false, false, false, true, false, false, false]),
            (AdminOp::RemoveHost(ORG), [false, false, false, false, true, true, false, false]),
            (AdminOp::ListHostUsers(ORG), [false, false, false, false, true, true, false, false]),
            (AdminOp::ManageTemplatesAndProfiles, [false, true, false, false, false, false, false, false]),
            (AdminOp::ManageNetworks, [false, false, false, false, true, false, false, false]),
            (AdminOp::CreateTopology, [true; 8]),
            (AdminOp::ListAllTopologies, [false, false, false, false, false, false, true, false]),
            (AdminOp::ListOrganizationTopologies(ORG), [false, false, false, false, false, false, true, true]),
            (AdminOp::ListOrganizationTopologies("other"), [false, false, false, false, false, false, true, false]),
            (AdminOp::ViewDebugInfo, [false, false, false, false, false, false, false, true]),
        ];
        for (op, expect) in rows {
            for (who, want) in cast.iter().zip(expect) {
                assert_eq!(check_admin(who, op).is_ok(), want, "{op:?} by {}", who.name);
            }
        }
        // The organization rules that do not depend on flags.
        let gadmin = cast[1];
        assert!(check_admin(&gadmin, AdminOp::RemoveOrganization("hq")).is_err(), "own organization");
        assert!(check_admin(&gadmin, AdminOp::RemoveUser(&gadmin)).is_err(), "admins keep their account");
        assert_eq!(check_admin(&cast[0], AdminOp::RemoveUser(&cast[0])), Ok(()), "anyone removes their own account");
        let ntc = flags(&["no_topology_create"]);
        let e =
            check_admin(&Subject { name: "n", organization: ORG, flags: &ntc }, AdminOp::CreateTopology).unwrap_err();
        assert!(e.to_string().contains("no_topology_create"), "{e}");
    }

    #[test]
    fn account_fields_and_flags() {
        let none = Flags::new();
        let ga = flags(&["global_admin"]);
        let oa = flags(&["orga_admin"]);
        let plain = Subject { name: "p", organization: ORG, flags: &none };
        let gadmin = Subject { name: "g", organization: "hq", flags: &ga };
        let oadmin = Subject { name: "o", organization: ORG, flags: &oa };
        let fields = |w: &Subject<'_>, t: &Subject<'_>| {
            changeable_user_fields(w, t).into_iter().map(UserField::name).collect::<Vec<_>>()
        };
        assert_eq!(fields(&plain, &plain), ["realname", "email", "password", "flags", "client_data"]);
        assert_eq!(fields(&plain, &oadmin), ["flags"]);
        assert_eq!(fields(&oadmin, &plain), ["realname", "email", "flags", "quota"]);
        assert_eq!(fields(&gadmin, &plain), ["realname", "email", "organization", "flags", "quota"]);
        assert_eq!(changeable_flags(&plain, &plain).names(), ["nomails"]);
        assert!(!changeable_flags(&gadmin, &gadmin).has(Flag::GlobalAdmin));
        assert!(changeable_flags(&gadmin, &plain).has(Flag::GlobalAdmin));
        assert!(!changeable_flags(&oadmin, &oadmin).has(Flag::OrgaAdmin));
        assert!(!changeable_flags(&oadmin, &plain).has(Flag::GlobalToplOwner));
        assert!(changeable_flags(&oadmin, &plain).has(Flag::OverQuota));
        let set = |f: Flag, on: bool| BTreeMap::from([(f, on)]);
        assert_eq!(check_user_modify(&oadmin, &plain, &[UserField::Email], &set(Flag::OverQuota, true)), Ok(()));
        let e = check_user_modify(&oadmin, &plain, &[], &set(Flag::GlobalAdmin, true)).unwrap_err();
        assert!(e.to_string().starts_with("you may not change the flag global_admin"), "{e}");
        let e = check_user_modify(&plain, &plain, &[UserField::Quota], &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "you may not change `quota` of this account; you may change: realname, email, password, flags, client_data"
        );
        // Re-sending a flag's current value is no change.
        assert_eq!(check_user_modify(&oadmin, &oadmin, &[], &set(Flag::OrgaAdmin, true)), Ok(()));
        assert!(check_user_modify(&oadmin, &oadmin, &[], &set(Flag::OrgaAdmin, false)).is_err());
    }

    #[test]
    fn every_flag_has_a_description_and_exactly_one_category() {
        for f in Flag::ALL {
            assert!(!f.description().is_empty(), "{f}");
            let n = FLAG_CATEGORIES.iter().filter(|c| c.flags.contains(&f)).count();
            assert_eq!(n, 1, "{f} is in {n} categories");
        }
        assert_eq!(FLAG_CATEGORIES.iter().map(|c| c.flags.len()).sum::<usize>(), Flag::ALL.len());
        assert_eq!(Role::Owner.title(), "Owner");
        assert!(Role::ALL.iter().all(|r| !r.description().is_empty()));
    }

    #[test]
    fn names_parse_and_errors_list_choices() {
        for f in Flag::ALL {
            assert_eq!(Flag::parse(f.name()), Ok(f));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Ok(r));
        }
        let e = Flags::parse(&["debug", "superuser"]).unwrap_err();
        assert_eq!(e.code(), "invalid_value");
        assert!(e.to_string().starts_with("`flags`: unknown flag `superuser`; allowed: debug, error_notify,"), "{e}");
        assert!(e.to_string().ends_with("orga_admin_contact"), "{e}");
        assert_eq!(
            Role::parse("admin").unwrap_err().to_string(),
            "`role`: unknown role `admin`; allowed: null, user, manager, owner"
        );
    }

    fn role_strategy() -> impl Strategy<Value = Role> {
        prop::sample::select(Role::ALL.to_vec())
    }

    proptest! {
        /// Raising any member's role never lowers anyone's effective role,
        /// and the effective role is bounded by what the person holds.
        #[test]
        fn effective_role_is_monotone_and_bounded(
            roles in prop::collection::vec((0usize..4, 0usize..2, role_strategy()), 0..6),
            flag_bits in prop::collection::vec(any::<bool>(), 23),
            bump in 0usize..6,
        ) {
            let users = ["alice", "bob", "carol", "dave"];
            let orgs = [ORG, "other"];
            let members: Vec<Member> = roles.iter().map(|(u, o, r)| member(users[*u], orgs[*o], *r)).collect();
            let f: Flags = Flag::ALL.iter().zip(&flag_bits).filter(|(_, on)| **on).map(|(f, _)| *f).collect();
            let alice = Subject { name: "alice", organization: ORG, flags: &f };
            let before = effective_role(&alice, &members);
            let own = members.iter().filter(|m| m.user == "alice").map(|m| m.role).max().unwrap_or(Role::Null);
            prop_assert!(before >= own);
            prop_assert!(before <= own.max(f.global_topology_role()).max(f.orga_topology_role()));
            let mut raised = members.clone();
            if let Some(m) = raised.get_mut(bump) {
                m.role = Role::Owner;
            }
            prop_assert!(effective_role(&alice, &raised) >= before);
        }

        /// Whatever the roles, a permission change never grants above the
        /// caller's role and never leaves a topology without owner.
        #[test]
        fn set_permission_never_escalates(
            roles in prop::collection::vec((0usize..4, role_strategy()), 1..6),
            target in 0usize..4,
            role in role_strategy(),
        ) {
            let users = ["alice", "bob", "carol", "dave"];
            let mut members: Vec<Member> = Vec::new();
            for (u, r) in roles {
                members.retain(|m| m.user != users[u]);
                members.push(member(users[u], ORG, r));
            }
            let none = Flags::new();
            let alice = Subject { name: "alice", organization: "solo", flags: &none };
            if check_set_permission(&alice, &members, users[target], role).is_ok() {
                let have = effective_role(&alice, &members);
                prop_assert!(role <= have && have == Role::Owner);
                prop_assert!(users[target] != "alice");
                members.retain(|m| m.user != users[target]);
                members.push(member(users[target], ORG, role));
                prop_assert!(members.iter().any(|m| m.role == Role::Owner));
            }
        }
    }
}
