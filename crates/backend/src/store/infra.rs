//! Sites, hosts, templates, profiles and networks: what the testbed runs on
//! and what users pick from.

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::accounts::require_organization;
use super::{
    Store, StoreError, bool_int, check_name, check_text, exists_or, from_json, int_bool, refuse_if_used, sql, to_json,
};
use crate::placement::{HostLoad, HostView};

/// The element types templates and profiles are for.
pub const TECHS: [&str; 3] = ["full", "container", "repy"];

fn check_tech(value: &str) -> Result<(), StoreError> {
    if TECHS.contains(&value) {
        Ok(())
    } else {
        Err(StoreError::invalid("type", format!("`{value}` is not a template type; allowed: {}", TECHS.join(", "))))
    }
}

/// A site: a place (a lab, a data centre) that holds hosts.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Its unique name.
    pub name: String,
    /// The organization running it.
    pub organization: String,
    /// Its name for people.
    pub label: String,
    /// Where it is (a city, a building).
    pub location: String,
    /// A description.
    pub description: String,
}

impl Site {
    fn check(&self) -> Result<(), StoreError> {
        check_name("name", &self.name)?;
        check_name("organization", &self.organization)?;
        check_text("label", &self.label, 255)?;
        check_text("location", &self.location, 255)?;
        check_text("description", &self.description, 10_000)
    }
}

/// A host running a hostmanager.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    /// Its unique name.
    pub name: String,
    /// Its site.
    pub site: String,
    /// The address users and other hosts reach it at.
    pub address: String,
    /// The hostmanager's API URL (`https://host:port`).
    pub rpcurl: String,
    /// SHA-256 of its TLS certificate, 64 hex digits.
    pub fingerprint: String,
    /// Whether placement may use it (a disabled host is a problem).
    pub enabled: bool,
    /// A description.
    pub description: String,
    /// When it last answered a poll, seconds since the epoch.
    pub last_poll: Option<i64>,
    /// Its problems as of the last poll.
    pub problems: Vec<String>,
    /// Element types it offers.
    pub element_types: BTreeSet<String>,
    /// Connection types it offers.
    pub connection_types: BTreeSet<String>,
    /// Network kinds it reaches.
    pub network_kinds: BTreeSet<String>,
    /// Its last `host_info` answer, verbatim.
    pub host_info: Value,
    /// Component errors since the last poll.
    pub component_errors: i64,
    /// Moving average of its reachability, 0 to 1.
    pub availability: f64,
}

impl Host {
    /// A host that has never been polled.
    pub fn new(name: &str, site: &str, address: &str, rpcurl: &str, fingerprint: &str) -> Host {
        Host {
            name: name.into(),
            site: site.into(),
            address: address.into(),
            rpcurl: rpcurl.into(),
            fingerprint: fingerprint.into(),
            enabled: true,
            description: String::new(),
            last_poll: None,
            problems: Vec::new(),
            element_types: BTreeSet::new(),
            connection_types: BTreeSet::new(),
            network_kinds: BTreeSet::new(),
            host_info: Value::Null,
            component_errors: 0,
            availability: 1.0,
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        check_name("name", &self.name)?;
        check_name("site", &self.site)?;
        if self.address.is_empty()
            || self.address.len() > 255
            || self.address.chars().any(|c| c.is_whitespace() || c == '/')
        {
            return Err(StoreError::invalid(
                "address",
                format!("`{}` is not an address; allowed: an IP address or host name", self.address),
            ));
        }
        let scheme_ok =
            ["https://", "http://"].iter().any(|s| self.rpcurl.strip_prefix(s).is_some_and(|rest| rest.contains(':')));
        if !scheme_ok || self.rpcurl.chars().any(char::is_whitespace) {
            return Err(StoreError::invalid(
                "rpcurl",
                format!("`{}` is not an API URL; allowed: https://HOST:PORT", self.rpcurl),
            ));
        }
        if self.fingerprint.len() != 64 || !self.fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::invalid(
                "fingerprint",
                "allowed: the SHA-256 of the host's certificate, 64 hex digits",
            ));
        }
        check_text("description", &self.description, 10_000)?;
        if !(0.0..=1.0).contains(&self.availability) {
            return Err(StoreError::invalid(
                "availability",
                format!("{} is not allowed; allowed: 0 to 1", self.availability),
            ));
        }
        if self.component_errors < 0 {
            return Err(StoreError::invalid("component_errors", "allowed: 0 or more"));
        }
        Ok(())
    }

    /// The host as placement sees it, given the templates ready on it and
    /// its element and connection counts. A disabled host, or one never
    /// polled, has a problem saying so.
    pub fn view(&self, templates: BTreeSet<String>, elements: u32, connections: u32) -> HostView {
        let mut problems = self.problems.clone();
        if !self.enabled {
            problems.insert(0, "Manually disabled".into());
        }
        if self.last_poll.is_none() {
            problems.push("Never polled".into());
        }
        let r = &self.host_info["resources"];
        let num = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0.0);
        let load = HostLoad {
            loadavg5: num(&r["loadavg"][1]),
            cpus: r["cpus_present"]["count"].as_u64().and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
            memory_used: num(&r["memory"]["used"]),
            memory_total: num(&r["memory"]["total"]),
            disk_used: num(&r["diskspace"]["data"]["used"]),
            disk_total: num(&r["diskspace"]["data"]["total"]),
        };
        HostView {
            name: self.name.clone(),
            site: self.site.clone(),
            element_types: self.element_types.clone(),
            connection_types: self.connection_types.clone(),
            network_kinds: self.network_kinds.clone(),
            templates,
            problems,
            component_errors: u32::try_from(self.component_errors).unwrap_or(u32::MAX),
            load,
            elements,
            connections,
        }
    }
}

/// A template: a disk image, root file system or script that elements
/// start from.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// Its id.
    pub id: i64,
    /// `full`, `container` or `repy`.
    pub kind: String,
    /// Its name, unique per type.
    pub name: String,
    /// Its name for people.
    pub label: String,
    /// A description.
    pub description: String,
    /// Where hosts fetch it.
    pub urls: Vec<String>,
    /// `sha256:<hex>` (or ToMaTo's `sha1:<hex>`) once known.
    pub checksum: Option<String>,
    /// Its size in bytes once known.
    pub size: Option<i64>,
    /// The keyboard layout it uses.
    pub kblang: Option<String>,
    /// Whether only `restricted_templates` users may use it.
    pub restricted: bool,
    /// Higher is offered first.
    pub preference: i64,
    /// How often it is used.
    pub popularity: f64,
    /// Whether the editor shows it among the common elements.
    pub show_as_common: bool,
    /// Whether the nlXTP guest modules are installed in it.
    pub nlxtp_installed: bool,
    /// Hosts it is ready on.
    pub hosts: BTreeSet<String>,
}

impl Template {
    /// A template with only its type, name and URLs.
    pub fn new(kind: &str, name: &str, urls: &[&str]) -> Template {
        Template {
            id: 0,
            kind: kind.into(),
            name: name.into(),
            label: name.into(),
            description: String::new(),
            urls: urls.iter().map(|u| u.to_string()).collect(),
            checksum: None,
            size: None,
            kblang: None,
            restricted: false,
            preference: 0,
            popularity: 0.0,
            show_as_common: false,
            nlxtp_installed: false,
            hosts: BTreeSet::new(),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        check_tech(&self.kind)?;
        check_name("name", &self.name)?;
        check_text("label", &self.label, 255)?;
        check_text("description", &self.description, 10_000)?;
        for (i, u) in self.urls.iter().enumerate() {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.chars().any(char::is_whitespace) {
                return Err(StoreError::invalid(
                    format!("urls[{i}]"),
                    format!("`{u}` is not allowed; allowed: http:// or https:// URLs"),
                ));
            }
        }
        if let Some(c) = &self.checksum {
            let ok = c.split_once(':').is_some_and(|(alg, hex)| {
                (alg == "sha256" && hex.len() == 64 || alg == "sha1" && hex.len() == 40)
                    && hex.chars().all(|c| c.is_ascii_hexdigit())
            });
            if !ok {
                return Err(StoreError::invalid("checksum", "allowed: sha256:<64 hex digits> or sha1:<40 hex digits>"));
            }
        }
        if self.size.is_some_and(|s| s < 0) {
            return Err(StoreError::invalid("size", "allowed: 0 or more bytes"));
        }
        if let Some(k) = &self.kblang
            && !["en-us", "en-gb", "de", "fr", "ja"].contains(&k.as_str())
        {
            return Err(StoreError::invalid(
                "kblang",
                format!("`{k}` is not allowed; allowed: en-us, en-gb, de, fr, ja"),
            ));
        }
        if !self.popularity.is_finite() || self.popularity < 0.0 {
            return Err(StoreError::invalid("popularity", "allowed: a finite number >= 0"));
        }
        Ok(())
    }
}

/// A profile: the resources (memory, CPUs, disk) an element gets.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Its id.
    pub id: i64,
    /// `full`, `container` or `repy`.
    pub kind: String,
    /// Its name, unique per type.
    pub name: String,
    /// Its name for people.
    pub label: String,
    /// A description.
    pub description: String,
    /// Memory, MB.
    pub ram: i64,
    /// CPUs (Repy takes fractions).
    pub cpus: f64,
    /// Disk space, MB.
    pub diskspace: i64,
    /// Whether only `restricted_profiles` users may use it.
    pub restricted: bool,
    /// Higher is offered first.
    pub preference: i64,
}

impl Profile {
    fn check(&self) -> Result<(), StoreError> {
        check_tech(&self.kind)?;
        check_name("name", &self.name)?;
        check_text("label", &self.label, 255)?;
        check_text("description", &self.description, 10_000)?;
        if !(1..=1_048_576).contains(&self.ram) {
            return Err(StoreError::invalid("ram", format!("{} is not allowed; allowed: 1 to 1048576 MB", self.ram)));
        }
        if !(self.cpus.is_finite() && self.cpus > 0.0 && self.cpus <= 256.0) {
            return Err(StoreError::invalid(
                "cpus",
                format!("{} is not allowed; allowed: more than 0, at most 256", self.cpus),
            ));
        }
        if !(0..=16_777_216).contains(&self.diskspace) {
            return Err(StoreError::invalid(
                "diskspace",
                format!("{} is not allowed; allowed: 0 to 16777216 MB", self.diskspace),
            ));
        }
        Ok(())
    }
}

/// An external network kind (`internet`, `internet/uplink`, a lab LAN).
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// Its kind, unique.
    pub kind: String,
    /// Its name for people.
    pub label: String,
    /// A description.
    pub description: String,
    /// Higher is offered first.
    pub preference: i64,
    /// Whether only `restricted_networks` users may use it.
    pub restricted: bool,
    /// Whether the editor shows it among the common elements.
    pub show_as_common: bool,
}

impl Network {
    fn check(&self) -> Result<(), StoreError> {
        let mut parts = self.kind.split('/');
        let ok = self.kind.matches('/').count() <= 1 && parts.all(|p| check_name("kind", p).is_ok());
        if !ok {
            return Err(StoreError::invalid(
                "kind",
                format!("`{}` is not a network kind; allowed: NAME or NAME/NAME", self.kind),
            ));
        }
        check_text("label", &self.label, 255)?;
        check_text("description", &self.description, 10_000)
    }
}

fn site_from_row(r: &AnyRow) -> Result<Site, StoreError> {
    Ok(Site {
        name: r.try_get("name")?,
        organization: r.try_get("organization")?,
        label: r.try_get("label")?,
        location: r.try_get("location")?,
        description: r.try_get("description")?,
    })
}

fn host_from_row(r: &AnyRow) -> Result<Host, StoreError> {
    let json = |col: &str| -> Result<String, StoreError> { Ok(r.try_get::<String, _>(col)?) };
    Ok(Host {
        name: r.try_get("name")?,
        site: r.try_get("site")?,
        address: r.try_get("address")?,
        rpcurl: r.try_get("rpcurl")?,
        fingerprint: r.try_get("fingerprint")?,
        enabled: int_bool(r.try_get("enabled")?),
        description: r.try_get("description")?,
        last_poll: r.try_get("last_poll")?,
        problems: from_json(&json("problems")?, "problems")?,
        element_types: from_json(&json("element_types")?, "element_types")?,
        connection_types: from_json(&json("connection_types")?, "connection_types")?,
        network_kinds: from_json(&json("network_kinds")?, "network_kinds")?,
        host_info: from_json(&json("host_info")?, "host_info")?,
        component_errors: r.try_get("component_errors")?,
        availability: r.try_get("availability")?,
    })
}

fn template_from_row(r: &AnyRow) -> Result<Template, StoreError> {
    Ok(Template {
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        name: r.try_get("name")?,
        label: r.try_get("label")?,
        description: r.try_get("description")?,
        urls: from_json(&r.try_get::<String, _>("urls")?, "urls")?,
        checksum: r.try_get("checksum")?,
        size: r.try_get("size")?,
        kblang: r.try_get("kblang")?,
        restricted: int_bool(r.try_get("restricted")?),
        preference: r.try_get("preference")?,
        popularity: r.try_get("popularity")?,
        show_as_common: int_bool(r.try_get("show_as_common")?),
        nlxtp_installed: int_bool(r.try_get("nlxtp_installed")?),
        hosts: from_json(&r.try_get::<String, _>("hosts")?, "hosts")?,
    })
}

fn profile_from_row(r: &AnyRow) -> Result<Profile, StoreError> {
    Ok(Profile {
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        name: r.try_get("name")?,
        label: r.try_get("label")?,
        description: r.try_get("description")?,
        ram: r.try_get("ram")?,
        cpus: r.try_get("cpus")?,
        diskspace: r.try_get("diskspace")?,
        restricted: int_bool(r.try_get("restricted")?),
        preference: r.try_get("preference")?,
    })
}

fn network_from_row(r: &AnyRow) -> Result<Network, StoreError> {
    Ok(Network {
        kind: r.try_get("kind")?,
        label: r.try_get("label")?,
        description: r.try_get("description")?,
        preference: r.try_get("preference")?,
        restricted: int_bool(r.try_get("restricted")?),
        show_as_common: int_bool(r.try_get("show_as_common")?),
    })
}

impl Store {
    /// Adds a site to an existing organization.
    pub async fn create_site(&self, s: &Site) -> Result<(), StoreError> {
        s.check()?;
        let mut tx = self.pool.begin().await?;
        require_organization(&mut tx, &s.organization).await?;
        sqlx::query("INSERT INTO site (name, organization, label, location, description) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.name)
            .bind(&s.organization)
            .bind(&s.label)
            .bind(&s.location)
            .bind(&s.description)
            .execute(&mut *tx)
            .await
            .map_err(|e| exists_or(e, "site", &s.name))?;
        tx.commit().await?;
        Ok(())
    }

    /// The site `name`.
    pub async fn site(&self, name: &str) -> Result<Site, StoreError> {
        let row = sqlx::query("SELECT * FROM site WHERE name = $1").bind(name).fetch_optional(&self.reader).await?;
        site_from_row(&row.ok_or_else(|| StoreError::not_found("site", name))?)
    }

    /// Every site, or those of one organization, by name.
    pub async fn sites(&self, organization: Option<&str>) -> Result<Vec<Site>, StoreError> {
        let rows = match organization {
            Some(o) => {
                sqlx::query("SELECT * FROM site WHERE organization = $1 ORDER BY name")
                    .bind(o)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => sqlx::query("SELECT * FROM site ORDER BY name").fetch_all(&self.reader).await?,
        };
        rows.iter().map(site_from_row).collect()
    }

    /// Writes a site's organization, label, location and description.
    pub async fn update_site(&self, s: &Site) -> Result<(), StoreError> {
        s.check()?;
        let mut tx = self.pool.begin().await?;
        require_organization(&mut tx, &s.organization).await?;
        let done = sqlx::query(
            "UPDATE site SET organization = $1, label = $2, location = $3, description = $4 WHERE name = $5",
        )
        .bind(&s.organization)
        .bind(&s.label)
        .bind(&s.location)
        .bind(&s.description)
        .bind(&s.name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("site", &s.name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a site that holds no hosts and no topologies.
    pub async fn remove_site(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        refuse_if_used(&mut tx, "site", name, &[("host", "hosts"), ("topology", "topologies")]).await?;
        let done = sqlx::query("DELETE FROM site WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("site", name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds a host to an existing site.
    pub async fn create_host(&self, h: &Host) -> Result<(), StoreError> {
        h.check()?;
        let mut tx = self.pool.begin().await?;
        if sqlx::query("SELECT 1 FROM site WHERE name = $1").bind(&h.site).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::invalid("site", format!("site `{}` does not exist", h.site)));
        }
        if sqlx::query("SELECT 1 FROM host WHERE rpcurl = $1").bind(&h.rpcurl).fetch_optional(&mut *tx).await?.is_some()
        {
            return Err(StoreError::invalid("rpcurl", format!("`{}` is already the URL of another host", h.rpcurl)));
        }
        sqlx::query(
            "INSERT INTO host (name, site, address, rpcurl, fingerprint, enabled, description, last_poll, problems, \
             element_types, connection_types, network_kinds, host_info, component_errors, availability) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&h.name)
        .bind(&h.site)
        .bind(&h.address)
        .bind(&h.rpcurl)
        .bind(&h.fingerprint)
        .bind(bool_int(h.enabled))
        .bind(&h.description)
        .bind(h.last_poll)
        .bind(to_json(&h.problems))
        .bind(to_json(&h.element_types))
        .bind(to_json(&h.connection_types))
        .bind(to_json(&h.network_kinds))
        .bind(to_json(&h.host_info))
        .bind(h.component_errors)
        .bind(h.availability)
        .execute(&mut *tx)
        .await
        .map_err(|e| exists_or(e, "host", &h.name))?;
        tx.commit().await?;
        Ok(())
    }

    /// The host `name`.
    pub async fn host(&self, name: &str) -> Result<Host, StoreError> {
        let row = sqlx::query("SELECT * FROM host WHERE name = $1").bind(name).fetch_optional(&self.reader).await?;
        host_from_row(&row.ok_or_else(|| StoreError::not_found("host", name))?)
    }

    /// Every host, or those of one site, by name.
    pub async fn hosts(&self, site: Option<&str>) -> Result<Vec<Host>, StoreError> {
        let rows = match site {
            Some(s) => {
                sqlx::query("SELECT * FROM host WHERE site = $1 ORDER BY name").bind(s).fetch_all(&self.reader).await?
            }
            None => sqlx::query("SELECT * FROM host ORDER BY name").fetch_all(&self.reader).await?,
        };
        rows.iter().map(host_from_row).collect()
    }

    /// Writes every field of a host but its name (a poll writes
    /// `last_poll`, `problems`, the types, `host_info` ...).
    pub async fn update_host(&self, h: &Host) -> Result<(), StoreError> {
        h.check()?;
        let mut tx = self.pool.begin().await?;
        if sqlx::query("SELECT 1 FROM site WHERE name = $1").bind(&h.site).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::invalid("site", format!("site `{}` does not exist", h.site)));
        }
        let other = sqlx::query("SELECT 1 FROM host WHERE rpcurl = $1 AND name <> $2")
            .bind(&h.rpcurl)
            .bind(&h.name)
            .fetch_optional(&mut *tx)
            .await?;
        if other.is_some() {
            return Err(StoreError::invalid("rpcurl", format!("`{}` is already the URL of another host", h.rpcurl)));
        }
        let done = sqlx::query(
            "UPDATE host SET site = $1, address = $2, rpcurl = $3, fingerprint = $4, enabled = $5, description = $6, \
             last_poll = $7, problems = $8, element_types = $9, connection_types = $10, network_kinds = $11, \
             host_info = $12, component_errors = $13, availability = $14 WHERE name = $15",
        )
        .bind(&h.site)
        .bind(&h.address)
        .bind(&h.rpcurl)
        .bind(&h.fingerprint)
        .bind(bool_int(h.enabled))
        .bind(&h.description)
        .bind(h.last_poll)
        .bind(to_json(&h.problems))
        .bind(to_json(&h.element_types))
        .bind(to_json(&h.connection_types))
        .bind(to_json(&h.network_kinds))
        .bind(to_json(&h.host_info))
        .bind(h.component_errors)
        .bind(h.availability)
        .bind(&h.name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("host", &h.name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a host that carries no elements and no connections, and
    /// drops it from every template's ready list.
    pub async fn remove_host(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        refuse_if_used(&mut tx, "host", name, &[("element", "elements"), ("connection", "connections")]).await?;
        let done = sqlx::query("DELETE FROM host WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("host", name));
        }
        let rows = sqlx::query("SELECT id, hosts FROM template").fetch_all(&mut *tx).await?;
        for r in rows {
            let mut hosts: BTreeSet<String> = from_json(&r.try_get::<String, _>("hosts")?, "hosts")?;
            if hosts.remove(name) {
                sqlx::query("UPDATE template SET hosts = $1 WHERE id = $2")
                    .bind(to_json(&hosts))
                    .bind(r.try_get::<i64, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every host as placement sees it: with the templates ready on it and
    /// its element and connection counts.
    pub async fn placement_hosts(&self) -> Result<Vec<HostView>, StoreError> {
        let hosts = self.hosts(None).await?;
        let templates = self.templates(None).await?;
        let count = |table: &'static str| async move {
            let rows =
                sqlx::query(sql(format!("SELECT host, COUNT(*) FROM {table} WHERE host IS NOT NULL GROUP BY host")))
                    .fetch_all(&self.reader)
                    .await?;
            rows.iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
                .collect::<Result<std::collections::BTreeMap<String, i64>, StoreError>>()
        };
        let elements = count("element").await?;
        let connections = count("connection").await?;
        let n = |m: &std::collections::BTreeMap<String, i64>, h: &str| {
            u32::try_from(m.get(h).copied().unwrap_or(0)).unwrap_or(u32::MAX)
        };
        Ok(hosts
            .iter()
            .map(|h| {
                let ready = templates.iter().filter(|t| t.hosts.contains(&h.name)).map(|t| t.name.clone()).collect();
                h.view(ready, n(&elements, &h.name), n(&connections, &h.name))
            })
            .collect())
    }

    /// Adds a template and returns its id.
    pub async fn create_template(&self, t: &Template) -> Result<i64, StoreError> {
        t.check()?;
        let row = sqlx::query(
            "INSERT INTO template (type, name, label, description, urls, checksum, size, kblang, restricted, preference, \
             popularity, show_as_common, nlxtp_installed, hosts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(&t.kind)
        .bind(&t.name)
        .bind(&t.label)
        .bind(&t.description)
        .bind(to_json(&t.urls))
        .bind(&t.checksum)
        .bind(t.size)
        .bind(&t.kblang)
        .bind(bool_int(t.restricted))
        .bind(t.preference)
        .bind(t.popularity)
        .bind(bool_int(t.show_as_common))
        .bind(bool_int(t.nlxtp_installed))
        .bind(to_json(&t.hosts))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| exists_or(e, "template", &format!("{}/{}", t.kind, t.name)))?;
        Ok(row.try_get(0)?)
    }

    /// The template `name` of type `kind`.
    pub async fn template(&self, kind: &str, name: &str) -> Result<Template, StoreError> {
        template_from_row(&self.by_type_and_name("template", kind, name).await?)
    }

    /// The template with id `id`.
    pub async fn template_by_id(&self, id: i64) -> Result<Template, StoreError> {
        template_from_row(&self.by_id("template", id).await?)
    }

    /// Every template, or those of one type; by type, preference (highest
    /// first) and name.
    pub async fn templates(&self, kind: Option<&str>) -> Result<Vec<Template>, StoreError> {
        self.by_preference("template", kind).await?.iter().map(template_from_row).collect()
    }

    /// Writes every field of the template with `t.id` but its type and name.
    pub async fn update_template(&self, t: &Template) -> Result<(), StoreError> {
        t.check()?;
        let done = sqlx::query(
            "UPDATE template SET label = $1, description = $2, urls = $3, checksum = $4, size = $5, kblang = $6, \
             restricted = $7, preference = $8, popularity = $9, show_as_common = $10, nlxtp_installed = $11, hosts = $12 \
             WHERE id = $13",
        )
        .bind(&t.label)
        .bind(&t.description)
        .bind(to_json(&t.urls))
        .bind(&t.checksum)
        .bind(t.size)
        .bind(&t.kblang)
        .bind(bool_int(t.restricted))
        .bind(t.preference)
        .bind(t.popularity)
        .bind(bool_int(t.show_as_common))
        .bind(bool_int(t.nlxtp_installed))
        .bind(to_json(&t.hosts))
        .bind(t.id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("template", t.id));
        }
        Ok(())
    }

    /// Removes a template.
    pub async fn remove_template(&self, id: i64) -> Result<(), StoreError> {
        self.delete_by_id("template", id).await
    }

    /// Adds a profile and returns its id.
    pub async fn create_profile(&self, p: &Profile) -> Result<i64, StoreError> {
        p.check()?;
        let row = sqlx::query(
            "INSERT INTO profile (type, name, label, description, ram, cpus, diskspace, restricted, preference) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&p.kind)
        .bind(&p.name)
        .bind(&p.label)
        .bind(&p.description)
        .bind(p.ram)
        .bind(p.cpus)
        .bind(p.diskspace)
        .bind(bool_int(p.restricted))
        .bind(p.preference)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| exists_or(e, "profile", &format!("{}/{}", p.kind, p.name)))?;
        Ok(row.try_get(0)?)
    }

    /// The profile `name` of type `kind`.
    pub async fn profile(&self, kind: &str, name: &str) -> Result<Profile, StoreError> {
        profile_from_row(&self.by_type_and_name("profile", kind, name).await?)
    }

    /// The profile with id `id`.
    pub async fn profile_by_id(&self, id: i64) -> Result<Profile, StoreError> {
        profile_from_row(&self.by_id("profile", id).await?)
    }

    /// Every profile, or those of one type; by type, preference and name.
    pub async fn profiles(&self, kind: Option<&str>) -> Result<Vec<Profile>, StoreError> {
        self.by_preference("profile", kind).await?.iter().map(profile_from_row).collect()
    }

    /// Writes every field of the profile with `p.id` but its type and name.
    pub async fn update_profile(&self, p: &Profile) -> Result<(), StoreError> {
        p.check()?;
        let done = sqlx::query(
            "UPDATE profile SET label = $1, description = $2, ram = $3, cpus = $4, diskspace = $5, restricted = $6, \
             preference = $7 WHERE id = $8",
        )
        .bind(&p.label)
        .bind(&p.description)
        .bind(p.ram)
        .bind(p.cpus)
        .bind(p.diskspace)
        .bind(bool_int(p.restricted))
        .bind(p.preference)
        .bind(p.id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("profile", p.id));
        }
        Ok(())
    }

    /// Removes a profile.
    pub async fn remove_profile(&self, id: i64) -> Result<(), StoreError> {
        self.delete_by_id("profile", id).await
    }

    /// Adds a network kind.
    pub async fn create_network(&self, n: &Network) -> Result<(), StoreError> {
        n.check()?;
        sqlx::query(
            "INSERT INTO network (kind, label, description, preference, restricted, show_as_common) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&n.kind)
        .bind(&n.label)
        .bind(&n.description)
        .bind(n.preference)
        .bind(bool_int(n.restricted))
        .bind(bool_int(n.show_as_common))
        .execute(&self.pool)
        .await
        .map_err(|e| exists_or(e, "network", &n.kind))?;
        Ok(())
    }

    /// The network `kind`.
    pub async fn network(&self, kind: &str) -> Result<Network, StoreError> {
        let row = sqlx::query("SELECT * FROM network WHERE kind = $1").bind(kind).fetch_optional(&self.reader).await?;
        network_from_row(&row.ok_or_else(|| StoreError::not_found("network", kind))?)
    }

    /// Every network, by preference (highest first) and kind.
    pub async fn networks(&self) -> Result<Vec<Network>, StoreError> {
        let rows = sqlx::query("SELECT * FROM network ORDER BY preference DESC, kind").fetch_all(&self.reader).await?;
        rows.iter().map(network_from_row).collect()
    }

    /// Writes every field of a network but its kind.
    pub async fn update_network(&self, n: &Network) -> Result<(), StoreError> {
        n.check()?;
        let done = sqlx::query(
            "UPDATE network SET label = $1, description = $2, preference = $3, restricted = $4, show_as_common = $5 WHERE kind = $6",
        )
        .bind(&n.label)
        .bind(&n.description)
        .bind(n.preference)
        .bind(bool_int(n.restricted))
        .bind(bool_int(n.show_as_common))
        .bind(&n.kind)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("network", &n.kind));
        }
        Ok(())
    }

    /// Removes a network kind.
    pub async fn remove_network(&self, kind: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM network WHERE kind = $1").bind(kind).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("network", kind));
        }
        Ok(())
    }
}

/// What templates and profiles share.
impl Store {
    /// The row of `table` (`template` or `profile`) named `name` of type
    /// `kind`.
    async fn by_type_and_name(&self, table: &'static str, kind: &str, name: &str) -> Result<AnyRow, StoreError> {
        let row = sqlx::query(sql(format!("SELECT * FROM {table} WHERE type = $1 AND name = $2")))
            .bind(kind)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.ok_or_else(|| StoreError::not_found(table, format!("{kind}/{name}")))
    }

    /// The row of `table` (`template` or `profile`) with id `id`.
    async fn by_id(&self, table: &'static str, id: i64) -> Result<AnyRow, StoreError> {
        let row = sqlx::query(sql(format!("SELECT * FROM {table} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.ok_or_else(|| StoreError::not_found(table, id))
    }

    /// Rows of `table` (`template` or `profile`), of one type or all, by
    /// type, preference (highest first) and name.
    async fn by_preference(&self, table: &'static str, kind: Option<&str>) -> Result<Vec<AnyRow>, StoreError> {
        let order = "ORDER BY type, preference DESC, name";
        let rows = match kind {
            Some(k) => {
                sqlx::query(sql(format!("SELECT * FROM {table} WHERE type = $1 {order}")))
                    .bind(k)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => sqlx::query(sql(format!("SELECT * FROM {table} {order}"))).fetch_all(&self.reader).await?,
        };
        Ok(rows)
    }

    /// Deletes row `id` of `table`, which names the entity in errors.
    async fn delete_by_id(&self, table: &'static str, id: i64) -> Result<(), StoreError> {
        let done = sqlx::query(sql(format!("DELETE FROM {table} WHERE id = $1"))).bind(id).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(table, id));
        }
        Ok(())
    }
}
