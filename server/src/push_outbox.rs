//! The durable push outbox: the wake-up jobs the group commit writes beside inbox rows (see
//! [`crate::store::push_wakes`]), and the worker that leases due jobs, hands them to a
//! [`Pusher`] and records the outcome. At least once: a job is deleted only after its push was
//! accepted; a crash mid-send leaves it leased until the lease runs out, then it is sent again.
//! Claims and outcomes go through the group commit, so on SQLite nothing else takes the write
//! lock; on PostgreSQL claims skip rows another instance holds (`FOR UPDATE SKIP LOCKED`).
//!
//! Web Push is the one provider so far ([`crate::webpush`]); APNs and FCM targets are kept
//! but skipped.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::commit::Writer;
use crate::db::{Backend, to_us};
use crate::domain::push::Target;
use crate::error::Result;
use crate::state::AppState;

/// How long a claimed job stays with the worker before another may claim it again.
pub const LEASE: Duration = Duration::from_secs(30);
/// Jobs claimed per round.
pub const CLAIM_BATCH: i64 = 100;

/// A leased job, with the device's targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushJob {
    /// The device to wake.
    pub device_id: String,
    /// The newest event it is about (the app fetches after its cursor anyway).
    pub seq: i64,
    /// A user-visible event is among them (a partner's tap).
    pub urgent: bool,
    /// Claims so far, this one included.
    pub attempts: i64,
    /// The recipient is in their quiet hours now: the push is shown without sound.
    pub quiet: bool,
    /// Where to send it.
    pub targets: Vec<Target>,
}

/// What a provider said about one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Accepted.
    Sent,
    /// Try again after the delay (throttled, the provider down).
    Retry(Duration),
    /// The target is gone for good (unregistered token, expired endpoint): remove it.
    Gone,
    /// This sender does not handle the target's provider (not configured here).
    Skipped,
}

/// Sends one push to one target. Implemented by each provider (and by tests' fakes).
pub trait Pusher: Send + Sync {
    /// Sends `job` to `target`.
    fn send<'a>(
        &'a self,
        job: &'a PushJob,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = PushOutcome> + Send + 'a>>;
}

/// Due jobs with the recipient's zone and quiet hours (on PostgreSQL the claim adds a lock on
/// the job rows only: never a device or an account a batch may hold).
macro_rules! due_jobs_sql {
    () => {
        "SELECT j.device_id, j.seq, j.urgent, j.attempts, a.time_zone, a.quiet_start_min, \
         a.quiet_end_min FROM push_jobs j JOIN devices d ON d.id = j.device_id \
         JOIN accounts a ON a.id = d.account_id \
         WHERE j.due_at_us <= $1 ORDER BY j.due_at_us LIMIT $2"
    };
}

/// Cancels jobs whose device has acked what they were about, then leases up to
/// [`CLAIM_BATCH`] due jobs until `now + LEASE`.
pub async fn claim(writer: &Writer, backend: Backend, now: DateTime<Utc>) -> Result<Vec<PushJob>> {
    let now_us = to_us(now);
    let lease_end = now_us + LEASE.as_micros() as i64;
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let conn = tx.conn();
                // Jobs the device made moot (acked past them, or no target left). On
                // PostgreSQL rows a batch of another instance holds are left for the next
                // round: a claim never waits, so it cannot deadlock with a batch.
                let cancel = match backend {
                    Backend::Postgres => {
                        "DELETE FROM push_jobs WHERE device_id IN (SELECT j.device_id \
                         FROM push_jobs j WHERE j.seq <= \
                         (SELECT acked_seq FROM devices d WHERE d.id = j.device_id) \
                         OR NOT EXISTS (SELECT 1 FROM push_targets t \
                         WHERE t.device_id = j.device_id) FOR UPDATE SKIP LOCKED)"
                    }
                    Backend::Sqlite => {
                        "DELETE FROM push_jobs WHERE seq <= \
                         (SELECT acked_seq FROM devices WHERE devices.id = push_jobs.device_id) \
                         OR NOT EXISTS (SELECT 1 FROM push_targets t \
                         WHERE t.device_id = push_jobs.device_id)"
                    }
                };
                sqlx::query(cancel).execute(&mut *conn).await?;
                let pick = match backend {
                    Backend::Postgres => concat!(due_jobs_sql!(), " FOR UPDATE OF j SKIP LOCKED"),
                    Backend::Sqlite => due_jobs_sql!(),
                };
                let rows = sqlx::query(pick)
                    .bind(now_us)
                    .bind(CLAIM_BATCH)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut jobs = Vec::with_capacity(rows.len());
                for r in &rows {
                    let device_id: String = r.try_get("device_id")?;
                    sqlx::query(
                        "UPDATE push_jobs SET due_at_us = $1, attempts = attempts + 1 \
                         WHERE device_id = $2",
                    )
                    .bind(lease_end)
                    .bind(&device_id)
                    .execute(&mut *conn)
                    .await?;
                    let targets = crate::push::of_device(&mut *conn, &device_id)
                        .await?
                        .into_iter()
                        .map(|(t, _)| t)
                        .collect();
                    let zone = crate::store::parse_zone(&r.try_get::<String, _>("time_zone")?)?;
                    let quiet = crate::store::quiet_hours(
                        r.try_get("quiet_start_min")?,
                        r.try_get("quiet_end_min")?,
                    );
                    let quiet = crate::domain::quiet::person_clock(now, zone, quiet).in_quiet_hours;
                    jobs.push(PushJob {
                        device_id,
                        seq: r.try_get("seq")?,
                        urgent: r.try_get::<i64, _>("urgent")? != 0,
                        attempts: r.try_get::<i64, _>("attempts")? + 1,
                        quiet,
                        targets,
                    });
                }
                Ok(jobs)
            })
        })
        .await
}

/// Records what became of a job: sent (deleted, unless newer events arrived meanwhile: then
/// it is due again at once), retried later, and targets that are gone removed.
pub async fn finish(
    writer: &Writer,
    job: PushJob,
    outcomes: Vec<(Target, PushOutcome)>,
    now: DateTime<Utc>,
) -> Result<()> {
    let now_us = to_us(now);
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let conn = tx.conn();
                for (t, o) in &outcomes {
                    if *o == PushOutcome::Gone {
                        sqlx::query(
                            "DELETE FROM push_targets WHERE device_id = $1 AND provider = $2 \
                             AND address = $3",
                        )
                        .bind(&job.device_id)
                        .bind(t.provider as i64)
                        .bind(&t.address)
                        .execute(&mut *conn)
                        .await?;
                        tracing::info!(device = %job.device_id, provider = ?t.provider, "push target gone, removed");
                    }
                }
                let retry = outcomes
                    .iter()
                    .filter_map(|(_, o)| match o {
                        PushOutcome::Retry(d) => Some(*d),
                        _ => None,
                    })
                    .min();
                let sent = outcomes.iter().any(|(_, o)| *o == PushOutcome::Sent);
                if sent || retry.is_none() {
                    // Woken (or nowhere left to wake it): done with what this job was about.
                    sqlx::query("DELETE FROM push_jobs WHERE device_id = $1 AND seq <= $2")
                        .bind(&job.device_id)
                        .bind(job.seq)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("UPDATE push_jobs SET due_at_us = $1 WHERE device_id = $2")
                        .bind(now_us)
                        .bind(&job.device_id)
                        .execute(&mut *conn)
                        .await?;
                } else if let Some(d) = retry {
                    sqlx::query("UPDATE push_jobs SET due_at_us = $1 WHERE device_id = $2")
                        .bind(now_us + d.as_micros() as i64)
                        .bind(&job.device_id)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .await
}

/// One round: claims due jobs, sends each to every target of its device, records the
/// outcomes. Returns how many jobs were handled.
pub async fn run_once(
    writer: &Writer,
    backend: Backend,
    pusher: &dyn Pusher,
    now: DateTime<Utc>,
) -> Result<usize> {
    let jobs = claim(writer, backend, now).await?;
    let n = jobs.len();
    for job in jobs {
        let mut outcomes = Vec::with_capacity(job.targets.len());
        for t in &job.targets {
            outcomes.push((t.clone(), pusher.send(&job, t).await));
        }
        finish(writer, job, outcomes, now).await?;
    }
    Ok(n)
}

/// Runs a round every `every` until the server drains.
pub async fn run(state: AppState, pusher: std::sync::Arc<dyn Pusher>, every: Duration) {
    let backend = state.db.backend();
    loop {
        match run_once(&state.writer, backend, pusher.as_ref(), state.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(jobs = n, "push round"),
            Err(e) => tracing::warn!(error = %e, "push round failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}
