//! Test databases: an SQLite file in a temporary directory, or a database
//! on a throwaway PostgreSQL cluster that the `testdb` crate starts (or on
//! the server `TOMATO_TEST_POSTGRES=postgres://...` names), removed when
//! the test ends, panics included. If PostgreSQL cannot be started the
//! PostgreSQL tests fail, saying why.
#![allow(clippy::unwrap_used, dead_code)]

use backend::store::Store;
use testdb::PgDatabase;

/// A database a test may open, close and open again.
pub struct TestDb {
    url: String,
    kind: &'static str,
    // Kept alive for the test's duration.
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<PgDatabase>,
}

impl TestDb {
    /// A new SQLite file.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("backend.sqlite").display());
        TestDb { url, kind: "sqlite", _sqlite_dir: Some(dir), _postgres: None }
    }

    /// A new, empty PostgreSQL database.
    pub async fn postgres() -> TestDb {
        let db = PgDatabase::create().await;
        TestDb { url: db.url().to_string(), kind: "postgres", _sqlite_dir: None, _postgres: Some(db) }
    }

    /// Opens the store (migrating it).
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Runs each `async fn NAME(db: TestDb)` as two tests, `sqlite::NAME` and
/// `postgres::NAME`, so a failure names its database.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::TestDb::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::TestDb::postgres().await).await
                }
            )*
        }
    };
}
