//! Accounting records per object, as the `accounting` crate keeps them.

use accounting::UsageStatistics;
use sqlx::Row;

use super::{Store, StoreError, from_json, to_json};

/// What a usage record belongs to (ToMaTo's accounting object types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_json(&r.try_get::<String, _>(0)?, "statistics")).transpose()
    }
}
