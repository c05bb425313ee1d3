//! History written straight into a run's scratch database, so the load runs against a server
//! that already stores millions of taps (the "cost per tap is flat as history grows" check).
//!
//! The taps are spread over every signed-in device in round robin, with the ids and client
//! ids a real history would have (unique per device), in one statement generated inside the
//! database. Only `taps` grows with history: inbox rows are deleted once acknowledged and the
//! streak keeps one row per couple and day.

use std::time::{Duration, Instant};

use sqlx::Connection;

/// The signed-in devices with their couples, numbered from 0.
const DEVICES: &str = "SELECT d.id AS dev, d.account_id AS acc, a.couple_id AS couple, \
     ROW_NUMBER() OVER (ORDER BY d.id) - 1 AS k \
     FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.couple_id IS NOT NULL";

/// Stores `n` taps of history in the database at `url` (`sqlite://` or `postgres://`), sent
/// a year before the run; returns how long it took.
pub async fn history(url: &str, n: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let n = i64::try_from(n).map_err(|_| "too many taps to preload".to_string())?;
    let columns = "INSERT INTO taps (id, couple_id, sender_account_id, sender_device_id, \
         client_tap_id, kind, rhythm, note, created_at_us)";
    // A year before now, one tap per millisecond.
    let year_ago_us = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_micros() as i64)
        - 365 * 86_400 * 1_000_000;
    let sqlite = url.starts_with("sqlite:");
    let sql = if sqlite {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1), \
             s AS ({DEVICES}), m AS (SELECT COUNT(*) AS c FROM s) \
             {columns} SELECT 'h' || printf('%012d', n.i), s.couple, s.acc, s.dev, \
             'h' || printf('%012d', n.i), 1, NULL, '', $2 + n.i * 1000 \
             FROM n, m JOIN s ON s.k = n.i % m.c"
        )
    } else {
        format!(
            "WITH s AS ({DEVICES}), m AS (SELECT COUNT(*) AS c FROM s) \
             {columns} SELECT 'h' || lpad(n.i::text, 12, '0'), s.couple, s.acc, s.dev, \
             'h' || lpad(n.i::text, 12, '0'), 1, NULL, '', $2 + n.i * 1000 \
             FROM generate_series(1, $1::bigint) AS n(i) CROSS JOIN m JOIN s ON s.k = n.i % m.c"
        )
    };
    sqlx::any::install_default_drivers();
    let fail = |e: sqlx::Error| format!("preload: {e}");
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .map_err(|e| format!("preload: open {url}: {e}"))?;
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(n)
        .bind(year_ago_us)
        .execute(&mut conn)
        .await
        .map_err(fail)?;
    if !sqlite {
        // Fresh statistics, as autovacuum would have them for an old table.
        sqlx::query("ANALYZE taps")
            .execute(&mut conn)
            .await
            .map_err(fail)?;
    }
    conn.close().await.map_err(fail)?;
    Ok(started.elapsed())
}
