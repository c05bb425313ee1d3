//! One statement API over the two ways the server reaches its database: sqlx (the pool, and
//! PostgreSQL's group commit) and a direct SQLite handle (SQLite's group commit).
//!
//! sqlx runs every SQLite statement on a worker thread and hands each result row back through
//! a channel, so a batch of a dozen statements and a thousand rows cost thousands of thread
//! wake-ups. The group commit already owns a thread, so on SQLite it opens its own handle
//! there and runs its statements in place. Reads have the same SQL text for both, with `$N`
//! placeholders; a batch write has a form for each ([`PerRow`]): row by row on the SQLite
//! handle, one JSON statement per batch on PostgreSQL.

use rusqlite::types::{FromSql, ToSqlOutput, Value, ValueRef};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection};

use crate::error::{Error, Result};

/// Prepared statements kept per SQLite handle: every batch statement, with room to spare.
const SQLITE_STATEMENT_CACHE: usize = 64;

/// A connection statements run on.
pub enum Conn<'c> {
    /// Through sqlx (pool connections and transactions, PostgreSQL batches).
    Sqlx(&'c mut AnyConnection),
    /// A SQLite handle owned by the calling thread (SQLite batches).
    Sqlite(&'c mut rusqlite::Connection),
}

/// A bound parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// NULL.
    Null,
    /// Text (ids, dates, JSON batch parameters).
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// Bytes.
    Blob(&'a [u8]),
}

/// A result row, read by column name.
pub enum Row {
    /// A row sqlx decoded.
    Any(AnyRow),
    /// A row read from a SQLite handle: column names and values.
    Sqlite(std::sync::Arc<[String]>, Vec<Value>),
}

/// A value a column can be read as, through either connection.
pub trait Column: Sized + FromSql + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> {}
impl<T: FromSql + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>> Column for T {}

impl Row {
    /// Column `name` as `T`.
    pub fn get<T: Column>(&self, name: &str) -> Result<T> {
        match self {
            Row::Any(row) => Ok(sqlx::Row::try_get(row, name)?),
            Row::Sqlite(names, values) => {
                let i = names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| Error::Corrupt(format!("no column {name}")))?;
                T::column_result(ValueRef::from(&values[i]))
                    .map_err(|e| Error::Corrupt(format!("column {name}: {e}")))
            }
        }
    }
}

impl From<AnyRow> for Row {
    fn from(row: AnyRow) -> Self {
        Row::Any(row)
    }
}

impl Conn<'_> {
    /// Whether this is SQLite (the JSON helpers of [`crate::db`] differ by backend).
    pub fn is_sqlite(&self) -> bool {
        match self {
            Conn::Sqlx(c) => crate::db::is_sqlite(c),
            Conn::Sqlite(_) => true,
        }
    }

    /// Every row `sql` returns.
    pub async fn fetch_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        match self {
            Conn::Sqlx(c) => Ok(bind(sql, params)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Any)
                .collect()),
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let names = column_names(&stmt);
                bind_dollars(&mut stmt, params)?;
                let mut out = Vec::new();
                read_rows(&mut stmt, &names, &mut out)?;
                Ok(out)
            }
        }
    }

    /// The first row `sql` returns, if any.
    pub async fn fetch_optional(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        match self {
            Conn::Sqlx(c) => Ok(bind(sql, params)
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Any)),
            Conn::Sqlite(_) => Ok(self.fetch_all(sql, params).await?.into_iter().next()),
        }
    }

    /// Runs `sql`; the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        match self {
            Conn::Sqlx(c) => Ok(bind(sql, params).execute(&mut **c).await?.rows_affected()),
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                bind_dollars(&mut stmt, params)?;
                Ok(stmt.raw_execute()? as u64)
            }
        }
    }
}

fn bind<'q>(
    sql: &'q str,
    params: &[Param<'q>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for p in params {
        q = match *p {
            Param::Null => q.bind(None::<String>),
            Param::Text(s) => q.bind(s),
            Param::Int(n) => q.bind(n),
            Param::Blob(b) => q.bind(b),
        };
    }
    q
}

/// One field of a row a batch statement writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (hex text inside PostgreSQL's JSON parameter: decode with `decode(.., 'hex')`).
    Blob(Vec<u8>),
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::Text(s.to_owned())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::Text(s)
    }
}

impl From<&String> for Val {
    fn from(s: &String) -> Self {
        Val::Text(s.clone())
    }
}

impl From<i64> for Val {
    fn from(n: i64) -> Self {
        Val::Int(n)
    }
}

impl From<u32> for Val {
    fn from(n: u32) -> Self {
        Val::Int(n.into())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

impl Val {
    /// This field as a parameter to bind.
    fn param(&self) -> Param<'_> {
        match self {
            Val::Null => Param::Null,
            Val::Int(n) => Param::Int(*n),
            Val::Text(s) => Param::Text(s),
            Val::Blob(b) => Param::Blob(b),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Int(n) => (*n).into(),
            Val::Text(s) => s.as_str().into(),
            Val::Blob(b) => crate::db::hex(b).into(),
        }
    }
}

/// A [`PerRow`] statement from its parts: `head` (up to the rows), where each database takes
/// its rows from (`VALUES` of `$1..$k` on SQLite; the JSON array on PostgreSQL, see
/// [`pg_rows`]), and an optional `tail` (conflict and `RETURNING` clauses) shared by both.
macro_rules! per_row {
    ($head:expr, sqlite: $sqlite:expr, postgres: $postgres:expr $(, $tail:expr)? $(,)?) => {
        $crate::sql::PerRow {
            sqlite: concat!($head, " ", $sqlite $(, " ", $tail)?),
            postgres: concat!($head, " ", $postgres $(, " ", $tail)?),
        }
    };
}
pub(crate) use per_row;

/// PostgreSQL: a batch's rows as the table source `j`; `j.value ->> N` is field N (text; wrap
/// numbers in `CAST(... AS BIGINT)` and blobs in `decode(..., 'hex')`).
macro_rules! pg_rows {
    () => {
        "jsonb_array_elements($1::jsonb) AS j"
    };
}
pub(crate) use pg_rows;

/// PostgreSQL: a batch's `[id, number]` rows as the table `v(dev, n)`.
macro_rules! pg_id_numbers {
    () => {
        concat!(
            "(SELECT j.value ->> 0 AS dev, CAST(j.value ->> 1 AS BIGINT) AS n FROM ",
            $crate::sql::pg_rows!(),
            ") AS v"
        )
    };
}
pub(crate) use pg_id_numbers;

/// A statement a batch runs for each of its rows, in the fastest form for each database.
#[derive(Debug, Clone, Copy)]
pub struct PerRow<'a> {
    /// SQLite: the statement for one row, its fields bound as `$1..$k`; run once per row, so
    /// no JSON is built or parsed and a one-row write needs no statement journal.
    pub sqlite: &'a str,
    /// PostgreSQL: one statement for every row, over the rows as one JSON array of arrays `$1`
    /// (`jsonb_array_elements($1::jsonb) AS j`, field N as `j.value ->> N`, blobs as hex):
    /// one round trip whatever the number of rows.
    pub postgres: &'a str,
}

impl Conn<'_> {
    /// Runs `stmt` for every row of `rows`; what its `RETURNING` clause returned, if any.
    pub async fn per_row(&mut self, stmt: PerRow<'_>, rows: &[Vec<Val>]) -> Result<Vec<Row>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            // SQLite through sqlx (handlers that append a few events): row by row.
            Conn::Sqlx(c) if crate::db::is_sqlite(c) => {
                let mut out = Vec::new();
                for row in rows {
                    let params: Vec<Param<'_>> = row.iter().map(Val::param).collect();
                    let found = bind(stmt.sqlite, &params).fetch_all(&mut **c).await?;
                    out.extend(found.into_iter().map(Row::Any));
                }
                Ok(out)
            }
            Conn::Sqlx(_) => {
                let json = serde_json::Value::Array(
                    rows.iter()
                        .map(|r| serde_json::Value::Array(r.iter().map(Val::json).collect()))
                        .collect(),
                )
                .to_string();
                self.fetch_all(stmt.postgres, &[Param::Text(&json)]).await
            }
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(stmt.sqlite)?;
                let names = column_names(&st);
                let mut out = Vec::new();
                for row in rows {
                    bind_dollars(&mut st, row)?;
                    if names.is_empty() {
                        st.raw_execute()?;
                    } else {
                        read_rows(&mut st, &names, &mut out)?;
                    }
                }
                Ok(out)
            }
        }
    }
}

fn column_names(st: &rusqlite::Statement<'_>) -> std::sync::Arc<[String]> {
    st.column_names().iter().map(|n| n.to_string()).collect()
}

/// Runs a bound statement and appends what it returns to `out`.
fn read_rows(
    st: &mut rusqlite::Statement<'_>,
    names: &std::sync::Arc<[String]>,
    out: &mut Vec<Row>,
) -> Result<()> {
    let mut rows = st.raw_query();
    while let Some(r) = rows.next()? {
        let values = (0..names.len())
            .map(|i| r.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(Row::Sqlite(names.clone(), values));
    }
    Ok(())
}

/// Binds `$N` to `params[N - 1]`. (SQLite reads `$N` as a name and numbers names by first
/// appearance, so binding by position would swap the values of `... $2 ... $1`.)
fn bind_dollars<P: rusqlite::ToSql>(st: &mut rusqlite::Statement<'_>, params: &[P]) -> Result<()> {
    for i in 1..=st.parameter_count() {
        let n = st
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Error::Corrupt(format!("parameter {i} is not $N")))?;
        let value = params
            .get(n.wrapping_sub(1))
            .ok_or_else(|| Error::Corrupt(format!("no value for ${n}")))?;
        st.raw_bind_parameter(i, value)?;
    }
    Ok(())
}

impl<'a> Param<'a> {
    fn value_ref(self) -> ValueRef<'a> {
        match self {
            Param::Null => ValueRef::Null,
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Int(n) => ValueRef::Integer(n),
            Param::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.value_ref()))
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.param().value_ref()))
    }
}

/// Opens the group commit's own handle on the SQLite file at `path`, with the pool's settings
/// ([`crate::db::SQLITE_PRAGMAS`]). Statement journals stay in memory, and the
/// page cache holds 32 MiB (the default 2 MiB made the hot inbox and index pages a read
/// each). The WAL is copied back into the database by [`Checkpointer`], on another thread;
/// this handle does it only if that one falls far behind.
pub fn open_sqlite(path: &str) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(crate::db::SQLITE_PRAGMAS)?;
    conn.execute_batch(
        "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768; \
         PRAGMA wal_autocheckpoint = 16384;",
    )?;
    conn.set_prepared_statement_cache_capacity(SQLITE_STATEMENT_CACHE);
    Ok(conn)
}

/// How often the [`Checkpointer`] copies the WAL back.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies SQLite's WAL back into the database on its own thread (a passive checkpoint, which
/// never blocks the writer), so the group commit does not pay for it; stops, after a last
/// checkpoint, when dropped.
pub struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the SQLite file at `path`.
    pub fn start(path: &str) -> Result<Checkpointer> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(crate::db::SQLITE_PRAGMAS)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("tapline-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = matches!(
                        stopped.recv_timeout(CHECKPOINT_EVERY),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                    );
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                    if last {
                        break;
                    }
                }
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// One passive checkpoint: the WAL frames copied so far and in all.
fn checkpoint(conn: &rusqlite::Connection) -> Result<(i64, i64)> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(2)?, r.get::<_, i64>(1)?))
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpointer_copies_the_wal_back_off_the_writer() {
        let dir = std::env::temp_dir().join(format!("tapline-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.db");
        let path = path.to_str().unwrap();
        let writer = open_sqlite(path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (v BLOB); INSERT INTO t VALUES (zeroblob(100000));")
            .unwrap();
        let other = rusqlite::Connection::open(path).unwrap();
        let (copied, frames) = checkpoint(&other).unwrap();
        assert!(
            frames > 20,
            "the writer left its pages in the WAL ({frames} frames)"
        );
        assert_eq!(copied, frames);
        // Dropping it stops its thread after a last checkpoint.
        drop(Checkpointer::start(path).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn sqlite_handle_binds_dollar_parameters_and_reads_by_name() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        let mut conn = Conn::Sqlite(&mut c);
        conn.execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, b BLOB)",
            &[],
        )
        .await
        .unwrap();
        let rows = r#"[["a",1,"00ff"],["b",2,null]]"#;
        let n = conn
            .execute(
                "INSERT INTO t SELECT j.value ->> 0, CAST(j.value ->> 1 AS BIGINT), \
                 unhex(j.value ->> 2) FROM json_each($1) AS j",
                &[Param::Text(rows)],
            )
            .await
            .unwrap();
        assert_eq!(n, 2);
        let got = conn
            .fetch_all(
                "SELECT id, n, b FROM t WHERE n >= $1 AND id <> $2 ORDER BY id",
                &[Param::Int(1), Param::Text("z")],
            )
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].get::<String>("id").unwrap(), "a");
        assert_eq!(got[0].get::<i64>("n").unwrap(), 1);
        assert_eq!(
            got[0].get::<Option<Vec<u8>>>("b").unwrap(),
            Some(vec![0, 255])
        );
        assert_eq!(got[1].get::<Option<Vec<u8>>>("b").unwrap(), None);
        assert!(got[0].get::<String>("missing").is_err());
        let none = conn
            .fetch_optional("SELECT id FROM t WHERE id = $1", &[Param::Text("c")])
            .await
            .unwrap();
        assert!(none.is_none());
        let bump = PerRow {
            sqlite: "UPDATE t SET n = n + $2 WHERE id = $1 RETURNING id, n",
            postgres: "",
        };
        let rows = vec![
            vec![Val::from("a"), Val::Int(5)],
            vec![Val::from("b"), Val::Int(1)],
        ];
        let got = conn.per_row(bump, &rows).await.unwrap();
        let got: Vec<(String, i64)> = got
            .iter()
            .map(|r| (r.get("id").unwrap(), r.get("n").unwrap()))
            .collect();
        assert_eq!(got, [("a".to_owned(), 6), ("b".to_owned(), 3)]);
    }
}
