//! The database: the read pool (sqlx's `Any` driver, one code path for SQLite and PostgreSQL)
//! and what the group commit opens for itself ([`crate::commit`]).
//!
//! Instants are stored as `BIGINT` microseconds since the Unix epoch (UTC) and booleans as
//! `0/1`, so the same SQL and the same decoding serve both backends. Each backend has its own
//! migrations folder, embedded at build time and run at start-up. Request tasks only read;
//! every write goes through the group commit.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use crate::error::{Error, Result};
use crate::store::sqlite::PRAGMAS as SQLITE_PRAGMAS;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long start-up may wait to reach the database before failing with the cause.
pub const START_TIMEOUT: Duration = Duration::from_secs(2);

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in WAL mode.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The read pool and its backend; the group commit opens its own connections.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    options: AnyConnectOptions,
    backend: Backend,
    url: String,
    instance: std::sync::Arc<str>,
}

/// A start-up failure that names its cause.
fn cannot(what: &str, url: &str, cause: impl std::fmt::Display) -> Error {
    Error::Io(std::io::Error::other(format!(
        "{what} {}: {cause}",
        redact(url)
    )))
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), runs the migrations and checks
    /// that the database takes a write. A SQLite file and its folder are created when
    /// missing. A database that cannot be reached, opened or written fails within about
    /// [`START_TIMEOUT`] (plus the migrations' own time), naming the cause.
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
        // One direct connection first: its error is the real cause (a pool would retry and
        // report only that it timed out).
        let first = tokio::time::timeout(START_TIMEOUT, options.connect())
            .await
            .map_err(|_| cannot("timed out connecting to", &url, "no answer"))?
            .map_err(|e| cannot("cannot open", &url, e))?;
        let _ = first.close().await;
        let pool = pool_options(backend, 4, 16)
            .connect_with(options.clone())
            .await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await,
        }
        .map_err(|e| cannot("cannot migrate", &url, e))?;
        let db = Db {
            pool,
            options,
            backend,
            url,
            instance: uuid::Uuid::new_v4().simple().to_string().into(),
        };
        db.check_writable().await?;
        Ok(db)
    }

    /// One small write, so a read-only file or a read-only server fails at start.
    async fn check_writable(&self) -> Result<()> {
        let mut conn = self.connect_one().await?;
        if self.backend == Backend::Sqlite {
            conn.execute("PRAGMA busy_timeout = 2000").await?;
        }
        let write = sqlx::query(
            "INSERT INTO write_probe (id, at_us) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET at_us = excluded.at_us",
        )
        .bind(to_us(Utc::now()));
        let done = tokio::time::timeout(START_TIMEOUT, write.execute(&mut conn)).await;
        let _ = conn.close().await;
        match done {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(cannot("cannot write to", &self.url, e)),
            Err(_) => Err(cannot("timed out writing to", &self.url, "locked?")),
        }
    }

    /// A new connection of its own, with the pool's settings (for the group commit's general
    /// connection).
    pub async fn connect_one(&self) -> Result<AnyConnection> {
        let mut conn = self.options.connect().await?;
        if self.backend == Backend::Sqlite {
            conn.execute(SQLITE_PRAGMAS).await?;
        }
        Ok(conn)
    }

    /// The pool, for reads.
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

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How long a pooled PostgreSQL connection may sit idle before it is pinged before use.
const IDLE_PING: Duration = Duration::from_secs(1);

/// Pool options per backend: `sqlite` or `postgres` connections at most.
fn pool_options(backend: Backend, sqlite: u32, postgres: u32) -> AnyPoolOptions {
    match backend {
        // No ping before each acquire: a broken connection fails its query, which is
        // reported; the ping would cost every query a round trip.
        Backend::Sqlite => AnyPoolOptions::new()
            .max_connections(sqlite)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            }),
        // A connection idle for a while is pinged before use, so one that died meanwhile (a
        // terminated backend, a failover) is replaced instead of failing a request; a busy
        // one that dies fails its query once (UNAVAILABLE) and is closed on release.
        Backend::Postgres => AnyPoolOptions::new()
            .max_connections(postgres)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
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

/// Whether `conn` is SQLite.
pub fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
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
    fn timestamps_round_trip() {
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        assert_eq!(from_us(to_us(t)), t);
        let ts = timestamp_us(-1);
        assert_eq!((ts.seconds, ts.nanos), (-1, 999_999_000));
    }
}
