//! Retention: forgets what no client can ask for again, in small batches.
//!
//! - **Acked inbox rows.** An ack deletes the rows it covers in its own transaction only when
//!   they are few ([`crate::delivery::acks::forget_now`]); an ack of a long backlog just moves
//!   the device's `acked_seq`, and its rows are deleted here. A cursor older than the last ack already gets a `reset`
//!   ([`crate::delivery::resume`]) whether or not its rows were pruned yet, so pruning never
//!   changes what a client sees, and an un-acked row is never deleted.
//! - **Codes.** Invite and link codes a day after they expired or were used (until then a
//!   late attempt still hears "expired" or "used" rather than "not found").
//! - **Tap history** (off by default): taps, with their receipts, older than
//!   [`Settings::tap_history_days`](crate::Settings::tap_history_days).
//!
//! Every batch is at most [`BATCH`] rows, one job of the group commit (a short transaction of
//! its own, between the other writers' rounds); acknowledged inbox rows are found by a read
//! before it. [`prune`] does one full pass at a given "now"
//! (tests call it after moving the clock); [`run`] calls it periodically until shutdown.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::to_us;
use crate::error::Result;
use crate::state::AppState;

/// Most rows one statement deletes.
pub const BATCH: i64 = 500;

/// Default interval between prune passes.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);

/// How long a used or expired code is kept.
pub const CODE_GRACE: chrono::Duration = chrono::Duration::days(1);

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    /// Acknowledged inbox rows.
    pub inbox_rows: u64,
    /// Used or expired codes.
    pub codes: u64,
    /// Taps older than the history limit.
    pub taps: u64,
    /// Receipts of those taps.
    pub receipts: u64,
    /// Transactions it took.
    pub batches: u32,
}

/// Codes used or expired before this instant (µs) can go.
pub fn code_cutoff_us(now: DateTime<Utc>) -> i64 {
    to_us(now - CODE_GRACE)
}

/// The tap-history cutoff at `now`: taps created before this instant (µs) can go; `None`
/// when history is kept forever (`days == 0`).
pub fn tap_cutoff_us(now: DateTime<Utc>, days: u32) -> Option<i64> {
    (days > 0).then(|| to_us(now - chrono::Duration::days(i64::from(days))))
}

/// Whether a batch that deleted `n` rows may have left more behind.
fn more_after(n: u64) -> bool {
    n >= BATCH as u64
}

/// Up to [`BATCH`] acknowledged inbox rows of the devices from `$1` on, in device and seq
/// order. Read from the pool, outside any write: acknowledged rows never change, so what it
/// finds stays deletable. Device by device (`CROSS JOIN` keeps that order on SQLite): an index
/// range each, never a scan of the un-acknowledged rows.
const INBOX_CANDIDATES: &str = "SELECT i.device_id, i.seq FROM devices d CROSS JOIN inbox i \
     WHERE d.id >= $1 AND i.device_id = d.id AND i.seq <= d.acked_seq \
     ORDER BY d.id, i.seq LIMIT $2";

/// Per device, the `(first, last)` seqs of its candidate rows (given in device and seq
/// order): each range holds only acknowledged rows, so deleting it is safe and bounded.
pub fn ranges(rows: &[(String, i64)]) -> Vec<(String, i64, i64)> {
    let mut out: Vec<(String, i64, i64)> = Vec::new();
    for (device, seq) in rows {
        match out.last_mut() {
            Some((d, first, last)) if d == device => {
                *first = (*first).min(*seq);
                *last = (*last).max(*seq);
            }
            _ => out.push((device.clone(), *seq, *seq)),
        }
    }
    out
}

/// Deletes up to [`BATCH`] codes used or expired before `$1`.
const CODES_SQL: &str = "DELETE FROM codes WHERE code_hash IN \
     (SELECT code_hash FROM codes WHERE expires_at_us < $1 OR used_at_us < $1 LIMIT $2)";

/// The oldest [`BATCH`] taps created before `$1` (an index range, `taps_created`).
macro_rules! old_taps {
    () => {
        "SELECT id FROM taps WHERE created_at_us < $1 ORDER BY created_at_us, id LIMIT $2"
    };
}

/// Does one full pass at `now`, batch after batch, until nothing is left or the server
/// drains.
pub async fn prune(state: &AppState, now: DateTime<Utc>) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let mut from = String::new();
    loop {
        let rows: Vec<(String, i64)> = sqlx::query_as(INBOX_CANDIDATES)
            .bind(&from)
            .bind(BATCH)
            .fetch_all(state.db.pool())
            .await?;
        let found = rows.len() as u64;
        let batch = ranges(&rows);
        if let Some((last, _, _)) = batch.last() {
            // The last device may have more; it is read again from its start.
            from = last.clone();
        }
        let mut deleted = 0;
        if !batch.is_empty() {
            deleted = state
                .writer
                .transact(move |tx| {
                    Box::pin(async move {
                        let mut n = 0;
                        for (device, first, last) in batch {
                            let done = sqlx::query(
                                "DELETE FROM inbox WHERE device_id = $1 AND seq >= $2 \
                                 AND seq <= $3",
                            )
                            .bind(device)
                            .bind(first)
                            .bind(last)
                            .execute(&mut *tx.conn())
                            .await?;
                            n += done.rows_affected();
                        }
                        Ok(n)
                    })
                })
                .await?;
            report.inbox_rows += deleted;
            report.batches += 1;
        }
        // (Nothing deleted from a full batch: a device went away meanwhile; the next pass.)
        if !more_after(found) || deleted == 0 || state.shutdown.is_cancelled() {
            break;
        }
    }
    let codes_before = code_cutoff_us(now);
    loop {
        let n = state
            .writer
            .transact(move |tx| {
                Box::pin(async move {
                    let done = sqlx::query(CODES_SQL)
                        .bind(codes_before)
                        .bind(BATCH)
                        .execute(&mut *tx.conn())
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
        report.codes += n;
        report.batches += 1;
        if !more_after(n) || state.shutdown.is_cancelled() {
            break;
        }
    }
    if let Some(before_us) = tap_cutoff_us(now, state.settings.tap_history_days) {
        loop {
            let (taps, receipts) = state
                .writer
                .transact(move |tx| {
                    Box::pin(async move {
                        // Receipts first: they reference their taps.
                        let receipts = sqlx::query(concat!(
                            "DELETE FROM tap_receipts WHERE tap_id IN (",
                            old_taps!(),
                            ")"
                        ))
                        .bind(before_us)
                        .bind(BATCH)
                        .execute(&mut *tx.conn())
                        .await?;
                        let taps = sqlx::query(concat!(
                            "DELETE FROM taps WHERE id IN (",
                            old_taps!(),
                            ")"
                        ))
                        .bind(before_us)
                        .bind(BATCH)
                        .execute(&mut *tx.conn())
                        .await?;
                        Ok((taps.rows_affected(), receipts.rows_affected()))
                    })
                })
                .await?;
            report.taps += taps;
            report.receipts += receipts;
            report.batches += 1;
            if !more_after(taps) || state.shutdown.is_cancelled() {
                break;
            }
        }
    }
    Ok(report)
}

/// Prunes every `every` (the first pass one interval after start-up) until the server drains.
pub async fn run(state: AppState, every: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = state.shutdown.cancelled() => return,
        }
        match prune(&state, state.clock.now()).await {
            Ok(r) if r.inbox_rows + r.codes + r.taps > 0 => tracing::info!(
                inbox_rows = r.inbox_rows,
                codes = r.codes,
                taps = r.taps,
                receipts = r.receipts,
                batches = r.batches,
                "pruned"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "prune pass failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tap_history_is_kept_forever_or_for_whole_days() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(tap_cutoff_us(now, 0), None);
        assert_eq!(
            tap_cutoff_us(now, 30),
            Some(to_us(Utc.with_ymd_and_hms(2026, 2, 8, 12, 0, 0).unwrap()))
        );
    }

    #[test]
    fn codes_get_a_day_of_grace() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(
            code_cutoff_us(now),
            to_us(Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap())
        );
    }

    #[test]
    fn candidates_become_one_range_per_device() {
        let rows: Vec<(String, i64)> = [("a", 1), ("a", 2), ("a", 3), ("b", 7), ("c", 4), ("c", 5)]
            .iter()
            .map(|(d, s)| ((*d).to_owned(), *s))
            .collect();
        assert_eq!(
            ranges(&rows),
            [
                ("a".to_owned(), 1, 3),
                ("b".to_owned(), 7, 7),
                ("c".to_owned(), 4, 5)
            ]
        );
        assert!(ranges(&[]).is_empty());
    }

    #[test]
    fn a_full_batch_asks_for_another() {
        assert!(more_after(BATCH as u64));
        assert!(!more_after(BATCH as u64 - 1));
        assert!(!more_after(0));
    }
}
