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

/// A connection pool and its backend.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: String,
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
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL for concurrent readers; FULL so an acknowledged tap survives
                            // power loss; foreign keys on; wait for the write lock, don't fail.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Db { pool, backend, url })
    }

    /// The pool, for reads and single statements.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL it was opened with (for extra connections such as the cluster listener).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`) so two writers queue instead of failing on lock upgrade.
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` so SQLite creates the file, and creates its folder.
fn prepare_sqlite_url(url: &str) -> Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
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

/// SQL built at run time for a batch. Only for text made of constant SQL and [`placeholders`]:
/// every value is bound, never spliced in.
pub fn built(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

/// `n` numbered placeholders from `$first` on, comma-separated: `$3, $4, $5`. For `IN (...)`
/// lists and set-based statements built for a batch.
pub fn placeholders(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in first..first + n {
        if i > first {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&i.to_string());
    }
    s
}

/// `rows` parenthesised tuples of `cols` numbered placeholders from `$1`, for a multi-row
/// `VALUES`: `($1, $2), ($3, $4)`.
pub fn value_rows(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        s.push_str(&placeholders(1 + r * cols, cols));
        s.push(')');
    }
    s
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
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
        assert_eq!(value_rows(2, 2), "($1, $2), ($3, $4)");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        assert_eq!(from_us(to_us(t)), t);
        let ts = timestamp_us(-1);
        assert_eq!((ts.seconds, ts.nanos), (-1, 999_999_000));
    }
}
