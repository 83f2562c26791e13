//! Accounting records per object, as the `accounting` crate keeps them,
//! and what the roll-up needs: the placed components, the topologies'
//! members and each host's pull cursor.

use std::collections::BTreeMap;

use accounting::UsageStatistics;
use sqlx::Row;

use super::{Store, StoreError, from_json, sql, to_json};
use crate::rollup::{Charged, Charges};

/// What a usage record belongs to (ToMaTo's accounting object types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UsageClass {
    /// An element (by id).
    Element,
    /// A connection (by id).
    Connection,
    /// A topology (by id).
    Topology,
    /// A user (by name).
    User,
    /// An organization (by name).
    Organization,
    /// A host (by name): everything that ran on it.
    Host,
}

/// An element or connection placed on a host, as the roll-up maps the
/// host's records back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// `Element` or `Connection`.
    pub class: UsageClass,
    /// Its id in the backend.
    pub id: i64,
    /// Its topology.
    pub topology: i64,
    /// The host.
    pub host: String,
    /// Its id on the host.
    pub host_id: i64,
}

impl UsageClass {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            UsageClass::Element => "element",
            UsageClass::Connection => "connection",
            UsageClass::Topology => "topology",
            UsageClass::User => "user",
            UsageClass::Organization => "organization",
            UsageClass::Host => "host",
        }
    }
}

impl Store {
    /// Writes the usage records of one object, replacing what was stored.
    pub async fn save_usage(&self, class: UsageClass, object: &str, stats: &UsageStatistics) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO usage_record (class, object, statistics) VALUES ($1, $2, $3) \
             ON CONFLICT (class, object) DO UPDATE SET statistics = excluded.statistics",
        )
        .bind(class.name())
        .bind(object)
        .bind(to_json(stats))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes the usage records of many objects in one transaction (one
    /// accounting pull from a host).
    pub async fn save_usages(&self, records: &[(UsageClass, String, UsageStatistics)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (class, object, stats) in records {
            sqlx::query(
                "INSERT INTO usage_record (class, object, statistics) VALUES ($1, $2, $3) \
                 ON CONFLICT (class, object) DO UPDATE SET statistics = excluded.statistics",
            )
            .bind(class.name())
            .bind(object)
            .bind(to_json(stats))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The usage records of one object, if any were stored.
    pub async fn usage(&self, class: UsageClass, object: &str) -> Result<Option<UsageStatistics>, StoreError> {
        let row = sqlx::query("SELECT statistics FROM usage_record WHERE class = $1 AND object = $2")
            .bind(class.name())
            .bind(object)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| from_json(&r.try_get::<String, _>(0)?, "statistics")).transpose()
    }
    /// Every element and connection placed on a host.
    pub async fn placed_components(&self) -> Result<Vec<Placed>, StoreError> {
        let rows = sqlx::query(
            "SELECT 'element', id, topology, host, host_id FROM element WHERE host IS NOT NULL AND host_id IS NOT NULL \
             UNION ALL SELECT 'connection', id, topology, host, host_id FROM connection \
             WHERE host IS NOT NULL AND host_id IS NOT NULL",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let class: String = r.try_get(0)?;
                Ok(Placed {
                    class: if class == "element" { UsageClass::Element } else { UsageClass::Connection },
                    id: r.try_get(1)?,
                    topology: r.try_get(2)?,
                    host: r.try_get(3)?,
                    host_id: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Every topology's members with their organizations.
    pub async fn memberships(&self) -> Result<BTreeMap<i64, Vec<Charged>>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.topology, p.account, a.organization FROM topology_permission p \
             JOIN account a ON a.name = p.account ORDER BY p.topology, p.account",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut members: BTreeMap<i64, Vec<Charged>> = BTreeMap::new();
        for r in &rows {
            members
                .entry(r.try_get(0)?)
                .or_default()
                .push(Charged { user: r.try_get(1)?, organization: r.try_get(2)? });
        }
        Ok(members)
    }

    /// The end of the newest record pulled from `host` (0 before the first
    /// pull).
    pub async fn accounting_cursor(&self, host: &str) -> Result<f64, StoreError> {
        let row = sqlx::query("SELECT pulled FROM accounting_cursor WHERE host = $1")
            .bind(host)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0.0))
    }

    /// Adds the charges of one pull from `host` to each object's records
    /// and moves the host's cursor to `pulled`, all in one transaction: a
    /// crash charges a pull whole or not at all, and never twice.
    pub async fn charge(&self, host: &str, pulled: f64, charges: &Charges) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for ((class, object), records) in charges {
            // A component or topology removed since the pull began keeps no
            // records (its removal deleted them; they must not come back).
            let table = match class {
                UsageClass::Element => Some("element"),
                UsageClass::Connection => Some("connection"),
                UsageClass::Topology => Some("topology"),
                UsageClass::User | UsageClass::Organization | UsageClass::Host => None,
            };
            if let Some(table) = table {
                let id: i64 =
                    object.parse().map_err(|_| StoreError::invalid("object", format!("`{object}` is not an id")))?;
                let found = sqlx::query(sql(format!("SELECT id FROM {table} WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if found.is_none() {
                    continue;
                }
            }
            let row = sqlx::query("SELECT statistics FROM usage_record WHERE class = $1 AND object = $2")
                .bind(class.name())
                .bind(object)
                .fetch_optional(&mut *tx)
                .await?;
            let mut stats = match row {
                Some(r) => from_json(&r.try_get::<String, _>(0)?, "statistics")?,
                None => UsageStatistics::new(records.first().map_or(pulled, |r| r.begin)),
            };
            for r in records {
                stats.add_single(r.clone());
            }
            sqlx::query(
                "INSERT INTO usage_record (class, object, statistics) VALUES ($1, $2, $3) \
                 ON CONFLICT (class, object) DO UPDATE SET statistics = excluded.statistics",
            )
            .bind(class.name())
            .bind(object)
            .bind(to_json(&stats))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO accounting_cursor (host, pulled) VALUES ($1, $2) \
             ON CONFLICT (host) DO UPDATE SET pulled = excluded.pulled",
        )
        .bind(host)
        .bind(pulled)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
