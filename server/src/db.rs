//! The database: one code path for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! Instants are stored as `BIGINT` microseconds since the Unix epoch (UTC) and booleans as
//! `0/1`, so the same SQL and the same decoding serve both backends. Each backend has its own
//! migrations folder, embedded at build time and run at start-up.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::error::{Error, Result};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in WAL mode.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection pool and its backend; the group commit opens its own connection from it.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    options: AnyConnectOptions,
    backend: Backend,
    url: String,
    instance: std::sync::Arc<str>,
}

/// A write transaction.
pub type Tx = Transaction<'static, Any>;

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`) and runs the migrations.
    /// A SQLite file and its folder are created when missing.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Io(std::io::Error::other(format!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://...",
                redact(url)
            ))));
        };
        let url = if backend == Backend::Sqlite {
            prepare_sqlite_url(url)?
        } else {
            url.to_owned()
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = pool_options(backend, 4, 16)
            .connect_with(options.clone())
            .await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Db {
            pool,
            options,
            backend,
            url,
            instance: uuid::Uuid::new_v4().simple().to_string().into(),
        })
    }

    /// A pool of one connection for the group commit, opened on the calling runtime, so a
    /// batch never queues behind readers for a connection.
    ///
    /// On PostgreSQL this connection never plans a sequential scan where an index serves:
    /// every batch statement looks rows up by key, but the inbox and device tables churn so
    /// fast that their statistics lag (a plan made while the inbox was nearly empty kept
    /// scanning all of it, dead rows included, for every batch of acks).
    pub async fn open_batch_pool(&self) -> Result<AnyPool> {
        let options = pool_options(self.backend, 1, 1);
        let options = match self.backend {
            Backend::Sqlite => options,
            Backend::Postgres => options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET enable_seqscan = off").await?;
                    Ok(())
                })
            }),
        };
        Ok(options.connect_with(self.options.clone()).await?)
    }

    /// Begins a write transaction on `pool` (see [`Db::begin_write`]).
    pub async fn begin_on(&self, pool: &AnyPool) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => pool.begin().await?,
        })
    }

    /// The pool, for reads and single statements.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL it was opened with (for extra connections such as the cluster listener).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQLite file's path, on SQLite.
    pub fn sqlite_path(&self) -> Option<&str> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        Some(sqlite_path_and_query(&self.url).0)
    }

    /// This server process's own id among the instances sharing the database (fresh at each
    /// start), so it can tell its own cross-instance doorbells from the others'.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`) so two writers queue instead of failing on lock upgrade.
    pub async fn begin_write(&self) -> Result<Tx> {
        self.begin_on(&self.pool).await
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Every SQLite connection's settings: WAL for concurrent readers; FULL so an acknowledged tap
/// survives power loss; foreign keys on; wait for the write lock, don't fail.
pub const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// Pool options per backend: `sqlite` or `postgres` connections at most.
fn pool_options(backend: Backend, sqlite: u32, postgres: u32) -> AnyPoolOptions {
    match backend {
        // No ping before each acquire: a broken connection fails its query, which is
        // reported; the ping would cost every query a round trip.
        Backend::Sqlite => AnyPoolOptions::new()
            .max_connections(sqlite)
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            }),
        Backend::Postgres => AnyPoolOptions::new()
            .max_connections(postgres)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10)),
    }
}

/// The file path and the query string of a `sqlite:` URL.
fn sqlite_path_and_query(url: &str) -> (&str, &str) {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split_once('?').unwrap_or((rest, ""))
}

/// Adds `mode=rwc` so SQLite creates the file, and creates its folder.
fn prepare_sqlite_url(url: &str) -> Result<String> {
    let (path, query) = sqlite_path_and_query(url);
    if path.is_empty() || path == ":memory:" {
        return Err(Error::Io(std::io::Error::other(
            "an in-memory SQLite database would lose every tap at restart; give a file path",
        )));
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let query = if query.split('&').any(|kv| kv.starts_with("mode=")) {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// The URL with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether `conn` is SQLite (the JSON helpers below differ by backend).
pub fn is_sqlite(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// A set of values passed as one JSON array parameter `$1`, whatever its size, so a batch
/// statement has fixed text (prepared once, cached) and one bind: `IN (SELECT ...)` over the
/// array's strings. (Multi-row `VALUES` with one placeholder per value would cost O(n²) to
/// bind on SQLite, which finds a numbered parameter by a linear scan.)
pub fn json_list(sqlite: bool) -> &'static str {
    if sqlite {
        "SELECT value FROM json_each($1)"
    } else {
        "SELECT jsonb_array_elements_text($1::jsonb)"
    }
}

/// Lowercase hex of `bytes`, for blobs inside a JSON parameter (`decode(.., 'hex')`).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// `items` as the JSON array text of a batch parameter.
pub fn json(items: Vec<serde_json::Value>) -> String {
    serde_json::Value::Array(items).to_string()
}

/// Strings as the JSON array text of a [`json_list`] parameter.
pub fn json_strs<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    json(items.into_iter().map(serde_json::Value::from).collect())
}

/// Microseconds since the Unix epoch, as stored.
pub fn to_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// An instant from stored microseconds.
pub fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A protobuf timestamp from stored microseconds.
pub fn timestamp_us(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir().join(format!("tapline-url-{}", std::process::id()));
        let url = format!("sqlite://{}/x.db", dir.display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.is_dir());
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn batch_parameters() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(
            json(vec![serde_json::json!(["a", 1, null])]),
            r#"[["a",1,null]]"#
        );
        assert_eq!(json_strs(["x", "y\""]), r#"["x","y\""]"#);
    }

    #[test]
    fn timestamps_round_trip() {
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        assert_eq!(from_us(to_us(t)), t);
        let ts = timestamp_us(-1);
        assert_eq!((ts.seconds, ts.nanos), (-1, 999_999_000));
    }
}
