//! The durable store: one SQLite file with every entity, resource and grant.
//!
//! The host keeps all entities in memory and writes each change through
//! here before it answers, so a `kill -9` loses nothing that was confirmed.
//! An action's name is written to `pending` before it starts and cleared
//! when it ends; recovery reads it (see `recovery.rs`).

use std::path::Path;
use std::str::FromStr;

use accounting::UsageStatistics;
use model::{Attrs, State};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, sqlite::SqliteRow};

use crate::error::{HostError, Result};

/// Element or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// An element (node, switch, interface, endpoint).
    Element,
    /// A connection between two elements.
    Connection,
}

impl Class {
    /// The wire and store name.
    pub fn name(self) -> &'static str {
        match self {
            Class::Element => "element",
            Class::Connection => "connection",
        }
    }
}

/// An element or connection as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Unique on this host, elements and connections alike.
    pub id: i64,
    /// Element or connection.
    pub class: Class,
    /// The backend that made it (its certificate's common name).
    pub owner: String,
    /// The model's kind name (`container`, `bridge`, ...).
    pub kind: String,
    /// The parent element, for interfaces and endpoints.
    pub parent: Option<i64>,
    /// The two elements a connection joins (A, B).
    pub ends: Option<[i64; 2]>,
    /// Lifecycle state.
    pub state: State,
    /// Attributes as the owner set them (defaults are not stored).
    pub attrs: Attrs,
    /// Epoch seconds after which the element is torn down.
    pub timeout: i64,
    /// The action under way, if any.
    pub pending: Option<String>,
    /// Usage records.
    pub usage: UsageStatistics,
}

/// A resource (template, network) as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Unique on this host.
    pub id: i64,
    /// The backend that made it.
    pub owner: String,
    /// `template` or `network`.
    pub kind: String,
    /// Its attributes.
    pub attrs: Attrs,
}

/// A one-time token for a direct upload or download.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The random token in the URL.
    pub token: String,
    /// The backend that asked for it.
    pub owner: String,
    /// The element or connection it is for.
    pub entity: i64,
    /// `upload` or `download`.
    pub action: String,
    /// The file it reads or writes.
    pub path: String,
    /// Epoch seconds after which it is refused.
    pub expires: i64,
    /// The largest upload accepted, in bytes (`None`: the fileserver's limit).
    pub max_size: Option<i64>,
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| HostError::internal(format!("store: bad {what}: {e}")))
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema
    /// up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            // WAL with NORMAL sync survives a killed process (not a power
            // loss between checkpoints), at a fraction of FULL's cost.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| HostError::internal(format!("store migration: {e}")))?;
        Ok(Store { pool })
    }

    /// Every entity.
    pub async fn entities(&self) -> Result<Vec<Entity>> {
        let rows = sqlx::query("SELECT * FROM entity ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(entity_from_row).collect()
    }

    /// Inserts a new entity (its `id` is ignored) and returns its id.
    pub async fn insert(&self, e: &Entity) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO entity (class, owner, type, parent, element1, element2, state, attrs, timeout, pending, usage) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(e.class.name())
        .bind(&e.owner)
        .bind(&e.kind)
        .bind(e.parent)
        .bind(e.ends.map(|x| x[0]))
        .bind(e.ends.map(|x| x[1]))
        .bind(e.state.as_str())
        .bind(json_text(&e.attrs))
        .bind(e.timeout)
        .bind(&e.pending)
        .bind(json_text(&e.usage))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Writes an entity's mutable fields (state, attributes, timeout,
    /// pending action, usage).
    pub async fn update(&self, e: &Entity) -> Result<()> {
        sqlx::query("UPDATE entity SET state = $1, attrs = $2, timeout = $3, pending = $4, usage = $5 WHERE id = $6")
            .bind(e.state.as_str())
            .bind(json_text(&e.attrs))
            .bind(e.timeout)
            .bind(&e.pending)
            .bind(json_text(&e.usage))
            .bind(e.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets the pending action of many entities in one transaction (a
    /// removal marks the entity, its children and connections at once).
    pub async fn set_pending(&self, ids: &[i64], pending: Option<&str>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query("UPDATE entity SET pending = $1 WHERE id = $2")
                .bind(pending)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Writes the usage of many entities in one transaction.
    pub async fn update_usage(&self, entities: &[Entity]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for e in entities {
            sqlx::query("UPDATE entity SET usage = $1 WHERE id = $2")
                .bind(json_text(&e.usage))
                .bind(e.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an entity and the grants that point at it.
    pub async fn delete(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM file_grant WHERE entity = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM entity WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every resource.
    pub async fn resources(&self) -> Result<Vec<Resource>> {
        let rows = sqlx::query("SELECT * FROM resource ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Resource {
                    id: r.try_get("id")?,
                    owner: r.try_get("owner")?,
                    kind: r.try_get("type")?,
                    attrs: parse_json(&r.try_get::<String, _>("attrs")?, "attrs")?,
                })
            })
            .collect()
    }

    /// Inserts a resource and returns its id.
    pub async fn insert_resource(&self, r: &Resource) -> Result<i64> {
        let row = sqlx::query("INSERT INTO resource (owner, type, attrs) VALUES ($1, $2, $3) RETURNING id")
            .bind(&r.owner)
            .bind(&r.kind)
            .bind(json_text(&r.attrs))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Writes a resource's attributes.
    pub async fn update_resource(&self, r: &Resource) -> Result<()> {
        sqlx::query("UPDATE resource SET attrs = $1 WHERE id = $2")
            .bind(json_text(&r.attrs))
            .bind(r.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a resource.
    pub async fn delete_resource(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM resource WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Stores a new grant.
    pub async fn insert_grant(&self, g: &Grant) -> Result<()> {
        sqlx::query(
            "INSERT INTO file_grant (token, owner, entity, action, path, expires, max_size) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&g.token)
        .bind(&g.owner)
        .bind(g.entity)
        .bind(&g.action)
        .bind(&g.path)
        .bind(g.expires)
        .bind(g.max_size)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes a grant: returns it and deletes it in one step, so it is used
    /// once even by concurrent requests; expired grants are not returned.
    pub async fn take_grant(&self, token: &str, now: i64) -> Result<Option<Grant>> {
        let row = sqlx::query("DELETE FROM file_grant WHERE token = $1 RETURNING *")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let g = Grant {
            token: r.try_get("token")?,
            owner: r.try_get("owner")?,
            entity: r.try_get("entity")?,
            action: r.try_get("action")?,
            path: r.try_get("path")?,
            expires: r.try_get("expires")?,
            max_size: r.try_get("max_size")?,
        };
        Ok((g.expires > now).then_some(g))
    }

    /// Deletes expired grants and returns their files' paths.
    pub async fn expire_grants(&self, now: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("DELETE FROM file_grant WHERE expires <= $1 RETURNING path")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("path")?)).collect()
    }

    /// Paths of every live grant (files recovery must keep).
    pub async fn grant_paths(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT path FROM file_grant").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("path")?)).collect()
    }
}

fn entity_from_row(r: &SqliteRow) -> Result<Entity> {
    let class = match r.try_get::<String, _>("class")?.as_str() {
        "element" => Class::Element,
        _ => Class::Connection,
    };
    let state_name: String = r.try_get("state")?;
    let state =
        State::parse(&state_name).ok_or_else(|| HostError::internal(format!("store: bad state {state_name}")))?;
    let e1: Option<i64> = r.try_get("element1")?;
    let e2: Option<i64> = r.try_get("element2")?;
    Ok(Entity {
        id: r.try_get("id")?,
        class,
        owner: r.try_get("owner")?,
        kind: r.try_get("type")?,
        parent: r.try_get("parent")?,
        ends: e1.zip(e2).map(|(a, b)| [a, b]),
        state,
        attrs: parse_json(&r.try_get::<String, _>("attrs")?, "attrs")?,
        timeout: r.try_get("timeout")?,
        pending: r.try_get("pending")?,
        usage: parse_json(&r.try_get::<String, _>("usage")?, "usage")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(kind: &str) -> Entity {
        Entity {
            id: 0,
            class: Class::Element,
            owner: "backend-a".into(),
            kind: kind.into(),
            parent: None,
            ends: None,
            state: State::Created,
            attrs: Attrs::new(),
            timeout: 100,
            pending: None,
            usage: UsageStatistics::new(0.0),
        }
    }

    #[tokio::test]
    async fn entities_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let store = Store::open(&path).await.unwrap();
        let mut e = entity("container");
        e.id = store.insert(&e).await.unwrap();
        e.state = State::Prepared;
        e.pending = Some("start".into());
        e.attrs.insert("ram".into(), serde_json::json!(128));
        store.update(&e).await.unwrap();
        drop(store);
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.entities().await.unwrap(), vec![e]);
    }

    #[tokio::test]
    async fn a_grant_is_taken_once_and_not_after_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).await.unwrap();
        let mut e = entity("container");
        e.id = store.insert(&e).await.unwrap();
        let g = Grant {
            token: "t1".into(),
            owner: "b".into(),
            entity: e.id,
            action: "download".into(),
            path: "/x".into(),
            expires: 50,
            max_size: Some(7),
        };
        store.insert_grant(&g).await.unwrap();
        assert_eq!(store.take_grant("t1", 10).await.unwrap(), Some(g.clone()));
        assert_eq!(store.take_grant("t1", 10).await.unwrap(), None);
        store.insert_grant(&Grant { token: "t2".into(), ..g }).await.unwrap();
        assert_eq!(store.take_grant("t2", 60).await.unwrap(), None);
    }
}
