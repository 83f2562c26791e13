//! The backend's database: one API over SQLite (embedded, the default) and
//! PostgreSQL.
//!
//! [`Store::open`] takes `sqlite://PATH` (created if missing; WAL journal,
//! `synchronous=FULL`, foreign keys on) or `postgres://...`, and brings the
//! schema up to date with the migrations embedded from
//! `migrations/sqlite/` or `migrations/postgres/`. Every query goes through
//! sqlx's Any driver with `$n` placeholders, so one text serves both.
//!
//! Every write is one transaction, committed before the call returns: a
//! restart loses nothing that was confirmed, and a failed call leaves
//! nothing half-made. Values are checked before they are written; a bad
//! value is a [`StoreError::InvalidValue`] naming the field and what is
//! allowed. Times are passed in (seconds since the epoch), never read here.
//!
//! The store decides nothing about permissions, timeouts or quotas: the
//! caller checks with [`crate::permissions`] and friends first.

mod accounts;
mod infra;
mod topology;
mod usage;

pub use accounts::{Organization, User};
pub use infra::{Host, Network, Profile, Site, Template};
pub use topology::{Connection, Element, Topology};
pub use usage::{Placed, UsageClass};

use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

/// Which database a store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The database, open.
#[derive(Clone, Debug)]
pub struct Store {
    /// Writes (every transaction that writes) and reads inside them.
    pool: AnyPool,
    /// Reads outside a writing transaction. On SQLite a pool of its own,
    /// [`SQLITE_READERS`] connections that may only read (WAL lets them
    /// read beside the one writer, and each sees every commit made before
    /// its statement began); on PostgreSQL the same pool as writes.
    reader: AnyPool,
    backend: Backend,
    /// Shared by clones, like the pool.
    logins: std::sync::Arc<accounts::LoginCache>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://...`)
    /// and migrates its schema.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            // `mode=rwc` creates the file on first use.
            let sep = if path.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::InvalidValue {
                field: "database".into(),
                message: format!("`{}` is not a database URL; allowed: sqlite://PATH, postgres://...", redact(url)),
            });
        };
        let options = AnyConnectOptions::from_str(&url).map_err(StoreError::Database)?;
        let sqlite_options = |readers: bool| {
            AnyPoolOptions::new().max_connections(if readers { SQLITE_READERS } else { 1 }).after_connect(
                move |conn, _| {
                    Box::pin(async move {
                        // WAL lets readers and the writer overlap; FULL
                        // makes each commit durable on disk, not only
                        // against a crash of this process: the backend
                        // holds what users made, and writes are few.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        if readers {
                            conn.execute("PRAGMA query_only = ON").await?;
                        }
                        Ok(())
                    })
                },
            )
        };
        let pool = match backend {
            // One writing connection: SQLite has one writer anyway, and a
            // single connection cannot hit SQLITE_BUSY when a reading
            // transaction upgrades to writing.
            Backend::Sqlite => sqlite_options(false).connect_with(options.clone()).await?,
            Backend::Postgres => AnyPoolOptions::new().max_connections(8).connect_with(options.clone()).await?,
        };
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run(&pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        // Readers connect after the migration, to the file the writer made.
        let reader = match backend {
            Backend::Sqlite => sqlite_options(true).connect_with(options).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Store { pool, reader, backend, logins: std::sync::Arc::new(accounts::LoginCache::new()?) })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection, waiting for them to finish.
    pub async fn close(&self) {
        self.reader.close().await;
        self.pool.close().await;
    }
}

/// How many connections read an SQLite store at once (beside the writer).
const SQLITE_READERS: u32 = 4;

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_string(),
    }
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object.
    #[error("{entity} `{key}` does not exist")]
    NotFound {
        /// `user`, `topology`, ...
        entity: &'static str,
        /// Its name or id.
        key: String,
    },
    /// An object with that name exists already.
    #[error("{entity} `{key}` already exists")]
    AlreadyExists {
        /// `user`, `host`, ...
        entity: &'static str,
        /// Its name.
        key: String,
    },
    /// A value is not allowed.
    #[error("`{field}`: {message}")]
    InvalidValue {
        /// The field, as the API names it.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The object is still in use and cannot be removed.
    #[error("{entity} `{key}` still has {what}")]
    NotEmpty {
        /// The object's kind.
        entity: &'static str,
        /// Its name or id.
        key: String,
        /// What still depends on it.
        what: String,
    },
    /// The two elements are already connected, or one of them is.
    #[error("element {0} is already connected")]
    AlreadyConnected(i64),
    /// Stored data that does not parse (written by something else).
    #[error("stored {what} is corrupt: {message}")]
    Corrupt {
        /// The column.
        what: String,
        /// The parse error.
        message: String,
    },
    /// The schema migration failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Password(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// ToMaTo's error code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "entity_does_not_exist",
            StoreError::AlreadyExists { .. } => "already_exists",
            StoreError::InvalidValue { .. } => "invalid_value",
            StoreError::NotEmpty { .. } => "not_empty",
            StoreError::AlreadyConnected(_) => "already_connected",
            StoreError::Corrupt { .. }
            | StoreError::Migration(_)
            | StoreError::Password(_)
            | StoreError::Database(_) => "internal",
        }
    }

    fn invalid(field: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::InvalidValue { field: field.into(), message: message.into() }
    }

    fn not_found(entity: &'static str, key: impl ToString) -> StoreError {
        StoreError::NotFound { entity, key: key.to_string() }
    }
}

/// Maps a unique-key violation to [`StoreError::AlreadyExists`].
fn exists_or(e: sqlx::Error, entity: &'static str, key: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::AlreadyExists { entity, key: key.to_string() };
    }
    StoreError::Database(e)
}

/// Marks SQL text assembled with `format!` as safe: every such text in
/// this module is built from constant table and column names only, never
/// from values (those are always bound as `$n` parameters).
/// Refuses to remove `entity` `name` while rows of these tables (with
/// their plural for the message) point at it through a column named like
/// the entity.
pub(crate) async fn refuse_if_used(
    conn: &mut sqlx::AnyConnection,
    entity: &'static str,
    name: &str,
    users: &[(&str, &str)],
) -> Result<(), StoreError> {
    for (table, what) in users {
        let n: i64 = sqlx::query(sql(format!("SELECT COUNT(*) FROM {table} WHERE {entity} = $1")))
            .bind(name)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        if n > 0 {
            return Err(StoreError::NotEmpty { entity, key: name.into(), what: format!("{n} {what}") });
        }
    }
    Ok(())
}

fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing maps, lists and numbers to a string cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { what: what.into(), message: e.to_string() })
}

/// Checks a name: 1 to 64 letters, digits, `_`, `-` and `.`, starting with
/// a letter or digit (ToMaTo's identifiers).
fn check_name(field: &str, value: &str) -> Result<(), StoreError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!(
                "`{value}` is not a name; allowed: 1 to 64 letters, digits, `_`, `-` and `.`, starting with a letter or digit"
            ),
        ))
    }
}

/// Checks free text: at most `max` characters, no control characters but
/// newlines and tabs.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.chars().count() > max {
        return Err(StoreError::invalid(field, format!("too long; allowed: at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(StoreError::invalid(field, "contains control characters; allowed: text, newlines and tabs"));
    }
    Ok(())
}

/// Checks that every key of client data starts with `_` (the rest of the
/// map is the client's, kept verbatim).
fn check_client_data(field: &str, data: &model::Attrs) -> Result<(), StoreError> {
    match data.keys().find(|k| !k.starts_with('_') || k.len() < 2) {
        Some(k) => Err(StoreError::invalid(
            format!("{field}.{k}"),
            "client data keys start with `_` followed by a name (`_pos`, `_notes`, ...)",
        )),
        None => Ok(()),
    }
}

fn bool_int(b: bool) -> i64 {
    i64::from(b)
}

fn int_bool(i: i64) -> bool {
    i != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_text_and_client_data_are_checked() {
        assert!(check_name("name", "web-1.lab_2").is_ok());
        for bad in ["", "-x", "a b", "ä", &"x".repeat(65)] {
            let e = check_name("name", bad).unwrap_err();
            assert_eq!(e.code(), "invalid_value");
            assert!(e.to_string().starts_with("`name`: "), "{e}");
            assert!(e.to_string().contains("allowed: 1 to 64 letters"), "{e}");
        }
        assert!(check_text("label", "two\nlines", 20).is_ok());
        assert_eq!(
            check_text("label", "abc", 2).unwrap_err().to_string(),
            "`label`: too long; allowed: at most 2 characters"
        );
        assert!(check_text("label", "bell\u{7}", 20).is_err());
        let mut data = model::Attrs::new();
        data.insert("_pos".into(), serde_json::json!({"x": 1}));
        assert!(check_client_data("client_data", &data).is_ok());
        data.insert("pos".into(), serde_json::json!(1));
        assert_eq!(
            check_client_data("client_data", &data).unwrap_err().to_string(),
            "`client_data.pos`: client data keys start with `_` followed by a name (`_pos`, `_notes`, ...)"
        );
    }

    #[test]
    fn urls_are_redacted_and_unknown_schemes_named() {
        assert_eq!(redact("postgres://tomato:secret@db/tomato"), "postgres://***@db/tomato");
        assert_eq!(redact("sqlite:///x"), "sqlite:///x");
    }

    #[tokio::test]
    async fn an_unknown_url_is_refused_with_the_allowed_forms() {
        let e = Store::open("mysql://u:pw@h/db").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "`database`: `mysql://***@h/db` is not a database URL; allowed: sqlite://PATH, postgres://..."
        );
    }

    /// The two schemas differ only in how ids are generated.
    #[test]
    fn sqlite_and_postgres_schemas_are_in_step() {
        let norm = |s: &str| -> Vec<String> {
            s.lines()
                .skip(1)
                .map(|l| {
                    l.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "ID")
                        .replace("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "ID")
                })
                .collect()
        };
        let sqlite = include_str!("../../migrations/sqlite/0001_init.sql");
        let postgres = include_str!("../../migrations/postgres/0001_init.sql");
        assert_eq!(norm(sqlite), norm(postgres));
    }
}
