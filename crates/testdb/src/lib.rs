//! Throwaway PostgreSQL databases for the backend's tests and benchmarks:
//! [`PgDatabase::create`] makes a new, empty database on a cluster that
//! the harness starts itself, or on the server
//! `TOMATO_TEST_POSTGRES=postgres://...` names.
//!
//! The cluster runs as the `postgres` system user (PostgreSQL refuses
//! root), in a temporary directory it owns, listening only on a Unix socket
//! there. It is shared by the databases alive at the same time and stopped
//! by its PID, and its directory removed, when the last of them is dropped,
//! panics included. If it cannot be started, `create` panics saying why
//! and what to install.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::Connection;

static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One database on the shared cluster or on the external server, dropped
/// with it (the cluster goes when its last database does).
pub struct PgDatabase {
    url: String,
    name: String,
    /// The server's maintenance URL (for dropping an external database).
    admin_url: String,
    cluster: Option<Arc<PgCluster>>,
}

impl PgDatabase {
    /// A new, empty database.
    ///
    /// # Panics
    ///
    /// When no server can be started or reached (the message says what to
    /// install or set).
    pub async fn create() -> PgDatabase {
        let name = format!("tomato_test_{}_{}", std::process::id(), DB_COUNTER.fetch_add(1, Ordering::SeqCst));
        let (admin_url, cluster) = match std::env::var("TOMATO_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let cluster = PgCluster::shared();
                (cluster.url("postgres"), Some(cluster))
            }
        };
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server at {admin_url}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = conn.close().await;
        let url = match &cluster {
            Some(c) => c.url(&name),
            None => replace_database(&admin_url, &name),
        };
        PgDatabase { url, name, admin_url, cluster }
    }

    /// The database's URL (`postgres://...`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // The throwaway cluster goes away whole; a database on an external
        // server is dropped here, on a thread of its own (no async drop).
        if self.cluster.is_some() {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// `postgres://u:p@h:5432/db?x=y` with its database replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

static CLUSTER: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());

/// A PostgreSQL cluster in a temporary directory, run as `postgres`.
struct PgCluster {
    dir: tempfile::TempDir,
    pid: u32,
}

impl PgCluster {
    /// The running cluster, started if no test holds it.
    fn shared() -> Arc<PgCluster> {
        let mut slot = CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.upgrade() {
            return c;
        }
        let c = Arc::new(PgCluster::start().unwrap_or_else(|why| {
            panic!(
                "the PostgreSQL tests need a PostgreSQL server and none could be started: {why}\n\
                 Install Debian's `postgresql` package (apt-get install postgresql), or point \
                 TOMATO_TEST_POSTGRES at a server (postgres://user:password@host/database)."
            )
        }));
        *slot = Arc::downgrade(&c);
        c
    }

    /// The URL of database `name` over the cluster's socket.
    fn url(&self, name: &str) -> String {
        format!("postgres://postgres@localhost:5432/{name}?host={}", self.dir.path().display())
    }

    fn start() -> Result<PgCluster, String> {
        let bin = pg_bin_dir()?;
        let root = std::fs::metadata("/proc/self").map_err(|e| e.to_string())?.uid() == 0;
        let dir = tempfile::Builder::new().prefix("tomato-pg-").tempdir().map_err(|e| e.to_string())?;
        if root {
            ensure_postgres_user()?;
            let (uid, gid) = (id_of("-u")?, id_of("-g")?);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
        }
        let data = dir.path().join("data");
        let run = |program: &Path, args: &[&str]| -> Result<(), String> {
            let mut cmd = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            };
            let out = cmd.args(args).output().map_err(|e| format!("{}: {e}", program.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} {} failed ({}): {}{}",
                    program.display(),
                    args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        let data_arg = data.to_str().ok_or("temporary path is not UTF-8")?;
        run(
            &bin.join("initdb"),
            &["-D", data_arg, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        )?;
        let log = dir.path().join("server.log");
        let options = format!("-k {} -c listen_addresses= -p 5432", dir.path().display());
        let started = run(
            &bin.join("pg_ctl"),
            &["-D", data_arg, "-l", log.to_str().ok_or("bad log path")?, "-o", &options, "-w", "-t", "60", "start"],
        );
        // Whatever happened, a postmaster that wrote its PID is ours to stop.
        let pid = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        match (started, pid) {
            (Ok(()), Some(pid)) => Ok(PgCluster { dir, pid }),
            (result, pid) => {
                if let Some(pid) = pid {
                    stop_pid(pid);
                }
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                Err(format!("{}; server log: {log}", result.err().unwrap_or_else(|| "no postmaster.pid".into())))
            }
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        stop_pid(self.pid);
        // The TempDir removes the directory after this.
    }
}

/// Fast shutdown (SIGINT) of the postmaster `pid`, SIGKILL after 30 s.
fn stop_pid(pid: u32) {
    let alive = || Path::new(&format!("/proc/{pid}")).exists();
    let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive() {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

/// The directory of `initdb`, `pg_ctl` and `postgres`: `$PG_BIN`, the
/// newest `/usr/lib/postgresql/*/bin`, or `/usr/local/bin`.
fn pg_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if Path::new("/usr/local/bin/initdb").exists() {
        return Ok(PathBuf::from("/usr/local/bin"));
    }
    Err("no initdb in $PG_BIN, /usr/lib/postgresql/*/bin or /usr/local/bin".into())
}

fn id_of(flag: &str) -> Result<u32, String> {
    let out = Command::new("id").args([flag, "postgres"]).output().map_err(|e| format!("id: {e}"))?;
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|_| "the user postgres does not exist".to_string())
}

/// Creates the `postgres` system user if it does not exist.
fn ensure_postgres_user() -> Result<(), String> {
    if id_of("-u").is_ok() {
        return Ok(());
    }
    let status = Command::new("useradd")
        .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"])
        .status()
        .map_err(|e| format!("useradd: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("useradd postgres failed: {status}")) }
}

#[cfg(test)]
#[test]
fn database_urls_are_rewritten() {
    assert_eq!(
        replace_database("postgres://u:p@h:1/db?sslmode=disable", "t1"),
        "postgres://u:p@h:1/t1?sslmode=disable"
    );
    assert_eq!(replace_database("postgres://u@h", "t1"), "postgres://u@h/t1");
}
