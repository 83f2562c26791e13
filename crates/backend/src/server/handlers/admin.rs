//! What administrators keep: `organization_*`, `site_*`, `host_*`,
//! `template_*`, `profile_*` and `network_*`.
//!
//! Each family checks `permissions::check_admin` with the organization
//! the object belongs to, writes through the store (which checks values
//! and refuses removals of what is still in use) and answers the object's
//! info. Settable attributes are tables of [`Field`]s, so an unknown key
//! or a value of the wrong kind is refused naming the attribute and what
//! is allowed.

use super::*;
use crate::store::{Network, Organization, Profile, Site, Template};

const ORGANIZATION_FIELDS: &[Field<Organization>] = &[
    field!("label", label, text),
    field!("description", description, text),
    field!("homepage_url", homepage_url, text),
    field!("image_url", image_url, text),
];

const SITE_FIELDS: &[Field<Site>] = &[
    field!("label", label, text),
    field!("location", location, text),
    field!("description", description, text),
    field!("organization", organization, text),
];

const HOST_FIELDS: &[Field<Host>] = &[
    field!("site", site, text),
    field!("address", address, text),
    field!("rpcurl", rpcurl, text),
    field!("fingerprint", fingerprint, text),
    field!("description", description, text),
    field!("enabled", enabled, boolean),
];

const TEMPLATE_FIELDS: &[Field<Template>] = &[
    field!("label", label, text),
    field!("description", description, text),
    field!("urls", urls, strings),
    field!("checksum", checksum, opt_text),
    field!("size", size, opt_int),
    field!("kblang", kblang, opt_text),
    field!("restricted", restricted, boolean),
    field!("preference", preference, int),
    field!("popularity", popularity, number),
    field!("show_as_common", show_as_common, boolean),
    field!("nlXTP_installed", nlxtp_installed, boolean),
];

const PROFILE_FIELDS: &[Field<Profile>] = &[
    field!("label", label, text),
    field!("description", description, text),
    field!("ram", ram, int),
    field!("cpus", cpus, number),
    field!("diskspace", diskspace, int),
    field!("restricted", restricted, boolean),
    field!("preference", preference, int),
];

const NETWORK_FIELDS: &[Field<Network>] = &[
    field!("label", label, text),
    field!("description", description, text),
    field!("preference", preference, int),
    field!("restricted", restricted, boolean),
    field!("show_as_common", show_as_common, boolean),
];

fn organization_value(o: &Organization) -> Value {
    json!({
        "name": o.name,
        "label": o.label,
        "description": o.description,
        "homepage_url": o.homepage_url,
        "image_url": o.image_url,
    })
}

fn site_value(s: &Site) -> Value {
    json!({
        "name": s.name,
        "organization": s.organization,
        "label": s.label,
        "location": s.location,
        "description": s.description,
    })
}

fn template_value(t: &Template) -> Value {
    json!({
        "id": t.id,
        "tech": t.kind,
        "name": t.name,
        "label": t.label,
        "description": t.description,
        "urls": t.urls,
        "checksum": t.checksum,
        "size": t.size,
        "kblang": t.kblang,
        "restricted": t.restricted,
        "preference": t.preference,
        "popularity": t.popularity,
        "show_as_common": t.show_as_common,
        "nlXTP_installed": t.nlxtp_installed,
        "hosts": t.hosts,
    })
}

fn profile_value(p: &Profile) -> Value {
    json!({
        "id": p.id,
        "tech": p.kind,
        "name": p.name,
        "label": p.label,
        "description": p.description,
        "ram": p.ram,
        "cpus": p.cpus,
        "diskspace": p.diskspace,
        "restricted": p.restricted,
        "preference": p.preference,
    })
}

/// Networks are known by their kind, which is also their id in the API.
fn network_value(n: &Network) -> Value {
    json!({
        "id": n.kind,
        "kind": n.kind,
        "label": n.label,
        "description": n.description,
        "preference": n.preference,
        "restricted": n.restricted,
        "show_as_common": n.show_as_common,
    })
}

fn list<T>(items: &[T], shape: fn(&T) -> Value) -> Value {
    Value::Array(items.iter().map(shape).collect())
}

impl Cx<'_> {
    fn admin(&self, op: AdminOp<'_>) -> Result<(), RpcError> {
        check_admin(&subject(self.me()?), op).map_err(fail)
    }

    // ---- organizations ----------------------------------------------------

    pub(super) async fn organization_list(&self) -> Outcome {
        Ok(list(&self.b.store.organizations().await.map_err(fail)?, organization_value))
    }

    pub(super) async fn organization_info(&self, name: &str) -> Outcome {
        Ok(organization_value(&self.b.store.organization(name).await.map_err(fail)?))
    }

    pub(super) async fn organization_create(&self, bound: &Bound) -> Outcome {
        self.admin(AdminOp::CreateOrganization)?;
        let name = bound.str("name")?;
        let label = bound.str("label")?;
        let mut o = Organization {
            name: name.into(),
            label: if label.is_empty() { name.into() } else { label.into() },
            description: String::new(),
            homepage_url: String::new(),
            image_url: String::new(),
        };
        apply(bound, ORGANIZATION_FIELDS, &mut o, &opt_attrs(bound))?;
        self.b.store.create_organization(&o).await.map_err(fail)?;
        Ok(organization_value(&o))
    }

    pub(super) async fn organization_modify(&self, bound: &Bound) -> Outcome {
        let mut o = self.b.store.organization(bound.str("name")?).await.map_err(fail)?;
        self.admin(AdminOp::ModifyOrganization(&o.name))?;
        apply(bound, ORGANIZATION_FIELDS, &mut o, &bound.map("attrs")?)?;
        self.b.store.update_organization(&o).await.map_err(fail)?;
        Ok(organization_value(&o))
    }

    pub(super) async fn organization_remove(&self, name: &str) -> Outcome {
        self.admin(AdminOp::RemoveOrganization(name))?;
        self.b.store.remove_organization(name).await.map_err(fail)?;
        Ok(Value::Null)
    }

    // ---- sites ------------------------------------------------------------

    pub(super) async fn site_list(&self, organization: Option<&str>) -> Outcome {
        Ok(list(&self.b.store.sites(organization).await.map_err(fail)?, site_value))
    }

    pub(super) async fn site_info(&self, name: &str) -> Outcome {
        Ok(site_value(&self.b.store.site(name).await.map_err(fail)?))
    }

    pub(super) async fn site_create(&self, bound: &Bound) -> Outcome {
        let (name, organization, label) = (bound.str("name")?, bound.str("organization")?, bound.str("label")?);
        self.admin(AdminOp::CreateSite(organization))?;
        let mut s = Site {
            name: name.into(),
            organization: organization.into(),
            label: if label.is_empty() { name.into() } else { label.into() },
            location: String::new(),
            description: String::new(),
        };
        apply(bound, SITE_FIELDS, &mut s, &opt_attrs(bound))?;
        // `attrs.organization` may not move the new site elsewhere unchecked.
        self.admin(AdminOp::CreateSite(&s.organization))?;
        self.b.store.create_site(&s).await.map_err(fail)?;
        Ok(site_value(&s))
    }

    pub(super) async fn site_modify(&self, bound: &Bound) -> Outcome {
        let mut s = self.b.store.site(bound.str("name")?).await.map_err(fail)?;
        self.admin(AdminOp::ModifySite(&s.organization))?;
        apply(bound, SITE_FIELDS, &mut s, &bound.map("attrs")?)?;
        // Moving a site hands it to another organization: the caller must
        // manage hosts there too.
        self.admin(AdminOp::CreateSite(&s.organization))?;
        self.b.store.update_site(&s).await.map_err(fail)?;
        Ok(site_value(&s))
    }

    pub(super) async fn site_remove(&self, name: &str) -> Outcome {
        let s = self.b.store.site(name).await.map_err(fail)?;
        self.admin(AdminOp::RemoveSite(&s.organization))?;
        self.b.store.remove_site(name).await.map_err(fail)?;
        Ok(Value::Null)
    }

    // ---- hosts ------------------------------------------------------------

    /// The organization of the site `site`.
    async fn site_organization(&self, site: &str) -> Result<String, RpcError> {
        Ok(self.b.store.site(site).await.map_err(fail)?.organization)
    }

    pub(super) async fn host_create(&self, bound: &Bound) -> Outcome {
        let me = self.me()?;
        let (name, site) = (bound.str("name")?, bound.str("site")?);
        let site = self.b.store.site(site).await.map_err(fail)?;
        check_admin(&subject(me), AdminOp::CreateHost(&site.organization)).map_err(fail)?;
        let attrs = opt_attrs(bound);
        // Address, URL and fingerprint have no sensible default: all three
        // are required.
        if let Some(key) = ["address", "rpcurl", "fingerprint"].into_iter().find(|k| !attrs.contains_key(*k)) {
            return Err(invalid_attr(
                bound,
                key,
                "(a string) is missing; `address`, `rpcurl` and `fingerprint` are required",
            ));
        }
        let mut host = Host::new(name, &site.name, "", "", "");
        apply(bound, HOST_FIELDS, &mut host, &attrs)?;
        if host.site != site.name {
            return Err(invalid_attr(bound, "site", "is the `site` parameter, not an attribute here"));
        }
        let host = hosts::register(&self.b.store, &self.b.hosts, host, &site.organization, now()).await?;
        Ok(host_value(&host))
    }

    pub(super) async fn host_list(&self, site: Option<&str>, organization: Option<&str>) -> Outcome {
        let mut list = self.b.store.hosts(site).await.map_err(fail)?;
        if let (None, Some(org)) = (site, organization) {
            let sites: BTreeSet<String> =
                self.b.store.sites(Some(org)).await.map_err(fail)?.into_iter().map(|s| s.name).collect();
            list.retain(|h| sites.contains(&h.site));
        }
        Ok(Value::Array(list.iter().map(host_value).collect()))
    }

    pub(super) async fn host_info(&self, name: &str) -> Outcome {
        self.me()?;
        Ok(host_value(&self.b.store.host(name).await.map_err(fail)?))
    }

    pub(super) async fn host_modify(&self, bound: &Bound) -> Outcome {
        let mut h = self.b.store.host(bound.str("name")?).await.map_err(fail)?;
        self.admin(AdminOp::ModifyHost(&self.site_organization(&h.site).await?))?;
        apply(bound, HOST_FIELDS, &mut h, &bound.map("attrs")?)?;
        // A host moved to another site may change organization.
        self.admin(AdminOp::ModifyHost(&self.site_organization(&h.site).await?))?;
        self.b.store.update_host(&h).await.map_err(fail)?;
        Ok(host_value(&h))
    }

    pub(super) async fn host_remove(&self, name: &str) -> Outcome {
        let h = self.b.store.host(name).await.map_err(fail)?;
        self.admin(AdminOp::RemoveHost(&self.site_organization(&h.site).await?))?;
        self.b.store.remove_host(name).await.map_err(fail)?;
        Ok(Value::Null)
    }

    // ---- templates --------------------------------------------------------

    pub(super) async fn template_list(&self, tech: Option<&str>) -> Outcome {
        self.me()?;
        Ok(list(&self.b.store.templates(tech).await.map_err(fail)?, template_value))
    }

    pub(super) async fn template_info(&self, id: i64) -> Outcome {
        self.me()?;
        Ok(template_value(&self.b.store.template_by_id(id).await.map_err(fail)?))
    }

    pub(super) async fn template_create(&self, bound: &Bound) -> Outcome {
        self.admin(AdminOp::ManageTemplatesAndProfiles)?;
        let mut t = Template::new(bound.str("tech")?, bound.str("name")?, &[]);
        apply(bound, TEMPLATE_FIELDS, &mut t, &opt_attrs(bound))?;
        t.id = self.b.store.create_template(&t).await.map_err(fail)?;
        Ok(template_value(&t))
    }

    pub(super) async fn template_modify(&self, bound: &Bound) -> Outcome {
        self.admin(AdminOp::ManageTemplatesAndProfiles)?;
        let mut t = self.b.store.template_by_id(id(bound, "id")?).await.map_err(fail)?;
        apply(bound, TEMPLATE_FIELDS, &mut t, &bound.map("attrs")?)?;
        self.b.store.update_template(&t).await.map_err(fail)?;
        Ok(template_value(&t))
    }

    pub(super) async fn template_remove(&self, id: i64) -> Outcome {
        self.admin(AdminOp::ManageTemplatesAndProfiles)?;
        self.b.store.remove_template(id).await.map_err(fail)?;
        Ok(Value::Null)
    }

    // ---- profiles ---------------------------------------------------------

    pub(super) async fn profile_list(&self, tech: Option<&str>) -> Outcome {
        Ok(list(&self.b.store.profiles(tech).await.map_err(fail)?, profile_value))
    }

    pub(super) async fn profile_info(&self, id: i64) -> Outcome {
        self.me()?;
        Ok(profile_value(&self.b.store.profile_by_id(id).await.map_err(fail)?))
    }

    pub(super) async fn profile_create(&self, bound: &Bound) -> Outcome {
        self.admin(AdminOp::ManageTemplatesAndProfiles)?;
        let (tech, name) = (bound.str("tech")?, bound.str("name")?);
        // ToMaTo's defaults: 512 MB, 1 CPU, 10 GB for VMs; less for Repy.
        let (ram, cpus) = if tech == "repy" { (50, 0.25) } else { (512, 1.0) };
        let mut p = Profile {
            id: 0,
            kind: tech.into(),
            name: name.into(),
            label: name.into(),
            description: String::new(),
            ram,
            cpus,
            diskspace: 10_240,
            restricted: false,
            preference: 0,
        };
        apply(bound, PROFILE_FIELDS, &mut p, &opt_attrs(bound))?;
        p.id = self.b.store.create_profile(&p).await.map_err(fail)?;
        Ok(profile_value(&p))
    }

    pub(super) async fn profile_modify(&self, bound: &Bound) -> Outcome {
        self.admin(AdminOp::ManageTemplatesAndProfiles)?;
        let mut p = self.b.store.profile_by_id(id(bound, "id")?).await.map_err(fail)?;
        apply(bound, PROFILE_FIELDS, &mut p, &bound.map("attrs")?)?;
        self.b.store.update_profile(&p).await.map_err(fail)?;
        Ok(profile_value(&p))
    }

    pub(super) async fn profile_remove(&self, id: i64) -> Outcome {
        self.admin(AdminOp::ManageTemplatesAndProfiles)?;
        self.b.store.remove_profile(id).await.map_err(fail)?;
        Ok(Value::Null)
    }

    // ---- networks ---------------------------------------------------------

    pub(super) async fn network_list(&self) -> Outcome {
        Ok(list(&self.b.store.networks().await.map_err(fail)?, network_value))
    }

    pub(super) async fn network_info(&self, kind: &str) -> Outcome {
        self.me()?;
        Ok(network_value(&self.b.store.network(kind).await.map_err(fail)?))
    }

    pub(super) async fn network_create(&self, bound: &Bound) -> Outcome {
        self.admin(AdminOp::ManageNetworks)?;
        let kind = bound.str("kind")?;
        let mut n = Network {
            kind: kind.into(),
            label: kind.into(),
            description: String::new(),
            preference: 0,
            restricted: false,
            show_as_common: false,
        };
        apply(bound, NETWORK_FIELDS, &mut n, &opt_attrs(bound))?;
        self.b.store.create_network(&n).await.map_err(fail)?;
        Ok(network_value(&n))
    }

    pub(super) async fn network_modify(&self, bound: &Bound) -> Outcome {
        self.admin(AdminOp::ManageNetworks)?;
        let mut n = self.b.store.network(&bound.id("id")?.to_string()).await.map_err(fail)?;
        apply(bound, NETWORK_FIELDS, &mut n, &bound.map("attrs")?)?;
        self.b.store.update_network(&n).await.map_err(fail)?;
        Ok(network_value(&n))
    }

    pub(super) async fn network_remove(&self, kind: &str) -> Outcome {
        self.admin(AdminOp::ManageNetworks)?;
        self.b.store.remove_network(kind).await.map_err(fail)?;
        Ok(Value::Null)
    }
}
