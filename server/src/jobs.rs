//! Background work on the injectable clock: routine firings and check-in expiries. [`tick`]
//! does everything due "now" once (tests call it after moving the clock); [`run`] calls it
//! periodically until shutdown. Every step is safe to run from several instances at once.

use std::time::Duration;

use crate::domain::schedule::CatchUp;
use crate::error::Result;
use crate::state::AppState;
use crate::{checkins, moments, reconnect, routines, space, together};

/// The `(id, couple_id)` rows that `sql` (one `$1` bound to `now` in µs) finds due: what a
/// tick hands, one by one, to the group commit.
pub async fn due_in_couples(
    pool: &sqlx::AnyPool,
    sql: &'static str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(String, String)>> {
    use sqlx::Row;
    let rows = sqlx::query(sql)
        .bind(crate::db::to_us(now))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("couple_id")?)))
        .collect()
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    /// Routine firings delivered.
    pub fired: u32,
    /// Routine firings skipped (due more than an hour ago, e.g. after downtime).
    pub skipped: u32,
    /// Check-ins expired.
    pub expired: u32,
    /// Spaces ended at their `until` (their held taps delivered).
    pub spaces_ended: u32,
    /// Together times ended at their `until` (kept taps delivered) or proposals lapsed.
    pub together_ended: u32,
    /// Meetings that turned into together time.
    pub meetings_started: u32,
    /// Reconnect plan steps delivered.
    pub reconnect_steps: u32,
    /// Weekly recaps sent.
    pub recaps: u32,
}

/// Does everything due at the clock's "now".
pub async fn tick(state: &AppState) -> Result<TickReport> {
    let now = state.clock.now();
    let mut report = TickReport::default();
    // Each step is one job of the group commit.
    for (id, couple) in checkins::due(state.db.pool(), now).await? {
        let expired = state
            .writer
            .transact(move |tx| {
                Box::pin(async move { checkins::expire(tx, &id, &couple, now).await })
            })
            .await?;
        report.expired += u32::from(expired);
    }
    for (id, couple) in space::due(state.db.pool(), now).await? {
        let ended = state
            .writer
            .transact(move |tx| Box::pin(async move { space::expire(tx, &id, &couple, now).await }))
            .await?;
        report.spaces_ended += u32::from(ended);
    }
    for (id, couple) in together::due(state.db.pool(), now).await? {
        let ended = state
            .writer
            .transact(move |tx| {
                Box::pin(async move { together::expire(tx, &id, &couple, now).await })
            })
            .await?;
        report.together_ended += u32::from(ended);
    }
    for (id, couple) in together::meetings_due(state.db.pool(), now).await? {
        let started = state
            .writer
            .transact(move |tx| {
                Box::pin(async move { together::meet(tx, &id, &couple, now).await })
            })
            .await?;
        report.meetings_started += u32::from(started);
    }
    for due in reconnect::due(state.db.pool(), now).await? {
        let done = state
            .writer
            .transact(move |tx| Box::pin(async move { reconnect::deliver(tx, &due, now).await }))
            .await?;
        report.reconnect_steps += u32::from(done);
    }
    for due in moments::due(state.db.pool(), now).await? {
        // Built before the commit (it settles the streak there first); a recap of an account
        // not in a couple has nothing to sum up.
        let recap = match moments::recap(state, &due.account_id, Some(due.day), now).await {
            Ok(r) => Some(r),
            Err(crate::error::Error::Refused(crate::error::Refusal::NotPaired)) => None,
            Err(e) => return Err(e),
        };
        let sent = state
            .writer
            .transact(move |tx| Box::pin(async move { moments::send(tx, &due, recap, now).await }))
            .await?;
        report.recaps += u32::from(sent);
    }
    for due in routines::due(state.db.pool(), now).await? {
        let done = state
            .writer
            .transact(move |tx| Box::pin(async move { routines::fire(tx, &due, now).await }))
            .await?;
        match done {
            Some(CatchUp::FireNow) => report.fired += 1,
            Some(CatchUp::Skip) => report.skipped += 1,
            _ => {}
        }
    }
    Ok(report)
}

/// Ticks every `every` until the server drains; the first tick at start-up makes up (or skips
/// and records) what was missed while the server was down.
pub async fn run(state: AppState, every: Duration) {
    loop {
        match tick(&state).await {
            Ok(r) if r != TickReport::default() => tracing::info!(
                fired = r.fired,
                skipped = r.skipped,
                expired = r.expired,
                spaces_ended = r.spaces_ended,
                together_ended = r.together_ended,
                meetings_started = r.meetings_started,
                reconnect_steps = r.reconnect_steps,
                recaps = r.recaps,
                "jobs"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "jobs tick failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}
