//! The durable push outbox: the wake-up jobs the group commit writes beside inbox rows (see
//! [`crate::store::push_wakes`]), and the worker that leases due jobs, hands them to a
//! [`Pusher`] and records the outcome. At least once: a job is deleted only after its push was
//! accepted; a crash mid-send leaves it leased until the lease runs out, then it is sent again.
//! Claims and outcomes go through the group commit, so on SQLite nothing else takes the write
//! lock; on PostgreSQL claims skip rows another instance holds (`FOR UPDATE SKIP LOCKED`).
//!
//! Providers: Web Push ([`crate::webpush`]), APNs ([`crate::apns`]), FCM ([`crate::fcm`]),
//! or a push gateway holding the APNs/FCM credentials ([`crate::gateway`]); [`Providers`]
//! routes each target to the one configured here. The worker is woken when a commit leaves
//! events for a device without a live stream here (see [`crate::presence`]).

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
/// After a push, how long the rest of a burst waits to become one more wake-up (cancelled
/// if the woken app acks first).
pub const COLLAPSE_WINDOW: Duration = Duration::from_secs(5);
/// Apple's budget for background wake-ups: about one per device per 20 minutes.
pub const BACKGROUND_EVERY: Duration = Duration::from_secs(20 * 60);
/// The wait after a provider said its credentials are wrong (an operator must act).
pub const MISCONFIGURED_RETRY: Duration = Duration::from_secs(5 * 60);

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
    /// The couple (the collapse id: one notification per couple on the lock screen).
    pub couple_id: String,
    /// The partner's display name (the one argument of the localizable text).
    pub partner_name: String,
    /// The newest waiting partner tap's kind (`pb::TapKind`), when `urgent`.
    pub tap_kind: Option<i32>,
    /// When the device's APNs target last got a background wake-up (µs; 0 never).
    pub last_background_us: i64,
    /// Where to send it.
    pub targets: Vec<Target>,
}

impl PushJob {
    /// What the notification says, as a localizable key and its arguments (never a note, an
    /// answer or a prompt): `None` for a background wake-up.
    pub fn alert(&self) -> Option<(String, Vec<String>)> {
        let kind = self.tap_kind.filter(|_| self.urgent)?;
        let name = tapline_proto::v1::TapKind::try_from(kind)
            .map(|k| k.as_str_name().trim_start_matches("TAP_KIND_").to_owned())
            .unwrap_or_else(|_| "UNSPECIFIED".into());
        Some((format!("TAP_{name}"), vec![self.partner_name.clone()]))
    }
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
    /// The provider says the token stopped being valid at this time (µs): remove it unless
    /// the device registered it again since (APNs 410 Unregistered).
    GoneSince(i64),
    /// This push will never be taken (a malformed request): drop it, keep the target.
    Dropped,
    /// This sender does not handle the target's provider (not configured here), or the
    /// device does not accept this kind of push.
    Skipped,
}

impl PushOutcome {
    /// The outcome's name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            PushOutcome::Sent => "sent",
            PushOutcome::Retry(_) => "retry",
            PushOutcome::Gone | PushOutcome::GoneSince(_) => "gone",
            PushOutcome::Dropped => "dropped",
            PushOutcome::Skipped => "skipped",
        }
    }
}

/// A provider's name in metrics.
fn provider_name(p: tapline_proto::v1::PushProvider) -> &'static str {
    use tapline_proto::v1::PushProvider as P;
    match p {
        P::WebPush => "webpush",
        P::Apns => "apns",
        P::Fcm => "fcm",
        P::Unspecified => "unspecified",
    }
}

/// The HTTP client settings every provider shares: rustls with the ring provider, redirects
/// never followed, and a deadline per request.
pub fn http_client(timeout: Duration) -> reqwest::ClientBuilder {
    // The process-wide TLS provider (ring); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
}

/// A response's `Retry-After`, in seconds (the HTTP-date form is not used by push services).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Back-off after a failed attempt: 30 s doubling, at most an hour.
pub fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(30u64.saturating_mul(1 << attempts.clamp(0, 7) as u32))
        .min(Duration::from_secs(3600))
}

/// The providers configured on this server, each target routed to its own.
#[derive(Default, Clone)]
pub struct Providers {
    /// Web Push.
    pub web_push: Option<std::sync::Arc<dyn Pusher>>,
    /// APNs, direct or through a gateway.
    pub apns: Option<std::sync::Arc<dyn Pusher>>,
    /// FCM, direct or through a gateway.
    pub fcm: Option<std::sync::Arc<dyn Pusher>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("web_push", &self.web_push.is_some())
            .field("apns", &self.apns.is_some())
            .field("fcm", &self.fcm.is_some())
            .finish()
    }
}

impl Providers {
    /// Whether any provider is configured (else no worker runs).
    pub fn any(&self) -> bool {
        self.web_push.is_some() || self.apns.is_some() || self.fcm.is_some()
    }
}

impl Pusher for Providers {
    fn send<'a>(
        &'a self,
        job: &'a PushJob,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = PushOutcome> + Send + 'a>> {
        use tapline_proto::v1::PushProvider as P;
        let to = match target.provider {
            P::WebPush => &self.web_push,
            P::Apns => &self.apns,
            P::Fcm => &self.fcm,
            P::Unspecified => &None,
        };
        match to {
            Some(p) => p.send(job, target),
            None => Box::pin(async { PushOutcome::Skipped }),
        }
    }
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

/// One claim's jobs with the recipient's zone and quiet hours (on PostgreSQL the claim adds a lock on
/// the job rows only: never a device or an account a batch may hold).
macro_rules! due_jobs_sql {
    () => {
        "SELECT j.device_id, j.seq, j.urgent, j.attempts, a.time_zone, a.quiet_start_min, \
         a.quiet_end_min, COALESCE(a.couple_id, '') AS couple_id, \
         COALESCE((SELECT p.display_name FROM accounts p WHERE p.couple_id = a.couple_id \
         AND p.id <> a.id), '') AS partner_name, \
         COALESCE((SELECT t.last_background_us FROM push_targets t \
         WHERE t.device_id = j.device_id AND t.provider = 1), 0) AS last_background_us, \
         (SELECT i.payload FROM inbox i WHERE i.device_id = j.device_id AND i.seq <= j.seq \
         AND i.seq > d.acked_seq AND i.tap_id IS NOT NULL ORDER BY i.seq DESC LIMIT 1) AS tap_payload \
         FROM push_jobs j JOIN devices d ON d.id = j.device_id \
         JOIN accounts a ON a.id = d.account_id WHERE j.lease_id = $1"
    };
}

/// The due jobs of devices without a live stream, oldest first.
macro_rules! pick_sql {
    () => {
        "SELECT j.device_id FROM push_jobs j WHERE j.due_at_us <= $1 AND j.seq > j.pushed_seq \
         AND NOT EXISTS (SELECT 1 FROM live_streams l WHERE l.device_id = j.device_id \
         AND l.live_until_us > $1) ORDER BY j.due_at_us LIMIT $2"
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
                         OR (j.seq <= j.pushed_seq AND j.due_at_us <= $1) OR NOT EXISTS (SELECT 1 FROM push_targets t \
                         WHERE t.device_id = j.device_id) FOR UPDATE SKIP LOCKED)"
                    }
                    Backend::Sqlite => {
                        "DELETE FROM push_jobs WHERE seq <= \
                         (SELECT acked_seq FROM devices WHERE devices.id = push_jobs.device_id) \
                         OR (seq <= pushed_seq AND due_at_us <= $1) OR NOT EXISTS (SELECT 1 FROM push_targets t \
                         WHERE t.device_id = push_jobs.device_id)"
                    }
                };
                sqlx::query(cancel).bind(now_us).execute(&mut *conn).await?;
                // A device that went live since: its stream delivers and acks (cancelling the
                // job); if the stream goes away first, the job comes due after the grace.
                // On PostgreSQL rows a batch holds are skipped, as above: a claim never waits.
                let defer = match backend {
                    Backend::Postgres => {
                        "UPDATE push_jobs SET due_at_us = $1 WHERE device_id IN \
                         (SELECT j.device_id FROM push_jobs j JOIN live_streams l \
                         ON l.device_id = j.device_id WHERE j.due_at_us <= $2 \
                         AND l.live_until_us > $2 FOR UPDATE OF j SKIP LOCKED)"
                    }
                    Backend::Sqlite => {
                        "UPDATE push_jobs SET due_at_us = $1 WHERE due_at_us <= $2 AND device_id IN \
                         (SELECT device_id FROM live_streams WHERE live_until_us > $2)"
                    }
                };
                sqlx::query(defer)
                .bind(now_us + crate::store::PUSH_GRACE_US)
                .bind(now_us)
                .execute(&mut *conn)
                .await?;
                // Lease the due jobs in one statement, then read them back by the lease's id.
                let lease = match backend {
                    Backend::Postgres => concat!(
                        "UPDATE push_jobs SET due_at_us = $3, attempts = attempts + 1, \
                         lease_id = $4 WHERE device_id IN (",
                        pick_sql!(),
                        " FOR UPDATE OF j SKIP LOCKED)"
                    ),
                    Backend::Sqlite => concat!(
                        "UPDATE push_jobs SET due_at_us = $3, attempts = attempts + 1, \
                         lease_id = $4 WHERE device_id IN (",
                        pick_sql!(),
                        ")"
                    ),
                };
                let lease_id = lease_id();
                let leased = sqlx::query(lease)
                    .bind(now_us)
                    .bind(CLAIM_BATCH)
                    .bind(lease_end)
                    .bind(lease_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if leased == 0 {
                    return Ok(Vec::new());
                }
                let rows = sqlx::query(due_jobs_sql!())
                    .bind(lease_id)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut targets = crate::push::of_lease(&mut *conn, lease_id).await?;
                let mut jobs = Vec::with_capacity(rows.len());
                for r in &rows {
                    let device_id: String = r.try_get("device_id")?;
                    let targets = targets.remove(&device_id).unwrap_or_default();
                    let zone = crate::store::parse_zone(&r.try_get::<String, _>("time_zone")?)?;
                    let quiet = crate::store::quiet_hours(
                        r.try_get("quiet_start_min")?,
                        r.try_get("quiet_end_min")?,
                    );
                    let quiet = crate::domain::quiet::person_clock(now, zone, quiet).in_quiet_hours;
                    let tap_kind = r
                        .try_get::<Option<Vec<u8>>, _>("tap_payload")?
                        .and_then(|b| tap_kind(&b));
                    jobs.push(PushJob {
                        device_id,
                        seq: r.try_get("seq")?,
                        urgent: r.try_get::<i64, _>("urgent")? != 0,
                        attempts: r.try_get("attempts")?,
                        quiet,
                        couple_id: r.try_get("couple_id")?,
                        partner_name: r.try_get("partner_name")?,
                        tap_kind,
                        last_background_us: r.try_get("last_background_us")?,
                        targets,
                    });
                }
                Ok(jobs)
            })
        })
        .await
}

/// A random id for one claim (never 0, the column's default).
fn lease_id() -> i64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (i64::from_le_bytes(b) & i64::MAX).max(1)
}

/// The tap kind of a stored `TapReceived` event.
fn tap_kind(payload: &[u8]) -> Option<i32> {
    use prost::Message;
    use tapline_proto::v1::event::Payload;
    match tapline_proto::v1::Event::decode(payload).ok()?.payload? {
        Payload::TapReceived(t) => t.tap.map(|t| t.kind),
        _ => None,
    }
}

/// Records what became of a job, if the lease is still this claim's (`attempts` is the lease's
/// token: a worker that outlived its lease changes nothing of the job, since another claim has
/// it now): sent (the rest of the burst waits out [`COLLAPSE_WINDOW`]),
/// retried later, or given up; targets that are gone are removed, and an APNs background
/// wake-up's time is kept for the throttle.
pub async fn finish(
    writer: &Writer,
    job: PushJob,
    outcomes: Vec<(Target, PushOutcome)>,
    now: DateTime<Utc>,
) -> Result<()> {
    finish_all(writer, vec![(job, outcomes)], now).await
}

/// [`finish`] for a round's jobs, in one transaction.
pub async fn finish_all(
    writer: &Writer,
    mut done: Vec<(PushJob, Vec<(Target, PushOutcome)>)>,
    now: DateTime<Utc>,
) -> Result<()> {
    // In device order, as the batches write jobs: no lock cycle on PostgreSQL.
    done.sort_by(|a, b| a.0.device_id.cmp(&b.0.device_id));
    let now_us = to_us(now);
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let conn = tx.conn();
                for (job, outcomes) in &done {
                    record(conn, job, outcomes, now_us).await?;
                }
                Ok(())
            })
        })
        .await
}

async fn record(
    conn: &mut sqlx::AnyConnection,
    job: &PushJob,
    outcomes: &[(Target, PushOutcome)],
    now_us: i64,
) -> Result<()> {
    for (t, o) in outcomes {
        if let PushOutcome::GoneSince(at_us) = *o {
            // Only a token registered before the provider stopped taking it.
            sqlx::query(
                "DELETE FROM push_targets WHERE device_id = $1 AND provider = $2 \
                     AND address = $3 AND registered_at_us < $4",
            )
            .bind(&job.device_id)
            .bind(t.provider as i64)
            .bind(&t.address)
            .bind(at_us)
            .execute(&mut *conn)
            .await?;
        }
        if *o == PushOutcome::Sent
            && t.provider == tapline_proto::v1::PushProvider::Apns
            && job.alert().is_none()
        {
            sqlx::query(
                "UPDATE push_targets SET last_background_us = $1 \
                     WHERE device_id = $2 AND provider = $3",
            )
            .bind(now_us)
            .bind(&job.device_id)
            .bind(t.provider as i64)
            .execute(&mut *conn)
            .await?;
        }
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
    if sent {
        // Woken: the rest of the burst waits out the collapse window (and is
        // cancelled if the app acks); nothing more, and the row goes then.
        sqlx::query(
            "UPDATE push_jobs SET pushed_seq = $1, due_at_us = $2 \
                 WHERE device_id = $3 AND attempts = $4",
        )
        .bind(job.seq)
        .bind(now_us + COLLAPSE_WINDOW.as_micros() as i64)
        .bind(&job.device_id)
        .bind(job.attempts)
        .execute(&mut *conn)
        .await?;
    } else if retry.is_none() {
        // Nowhere left to wake it: done with what this job was about.
        sqlx::query(
            "DELETE FROM push_jobs WHERE device_id = $1 AND seq <= $2 \
                 AND attempts = $3",
        )
        .bind(&job.device_id)
        .bind(job.seq)
        .bind(job.attempts)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE push_jobs SET due_at_us = $1 WHERE device_id = $2 \
                 AND attempts = $3",
        )
        .bind(now_us)
        .bind(&job.device_id)
        .bind(job.attempts)
        .execute(&mut *conn)
        .await?;
    } else if let Some(d) = retry {
        sqlx::query(
            "UPDATE push_jobs SET due_at_us = $1 WHERE device_id = $2 \
                 AND attempts = $3",
        )
        .bind(now_us + d.as_micros() as i64)
        .bind(&job.device_id)
        .bind(job.attempts)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
    // Each job's targets in turn, the jobs side by side (a slow provider holds one job).
    let sends = jobs.into_iter().map(|job| async move {
        let mut outcomes = Vec::with_capacity(job.targets.len());
        for t in &job.targets {
            let outcome = match throttled(&job, t, now) {
                Some(wait) => PushOutcome::Retry(wait),
                None => pusher.send(&job, t).await,
            };
            outcomes.push((t.clone(), outcome));
        }
        (job, outcomes)
    });
    let done = futures_util::future::join_all(sends).await;
    for (_, outcomes) in &done {
        for (t, o) in outcomes {
            writer.metrics().push(provider_name(t.provider), o.name());
        }
    }
    finish_all(writer, done, now).await?;
    Ok(n)
}

/// How long a background APNs wake-up must wait for Apple's budget ([`BACKGROUND_EVERY`]);
/// `None` when it may go now. User-visible pushes are never held.
pub fn throttled(job: &PushJob, target: &Target, now: DateTime<Utc>) -> Option<Duration> {
    if target.provider != tapline_proto::v1::PushProvider::Apns || job.alert().is_some() {
        return None;
    }
    let next = job.last_background_us + BACKGROUND_EVERY.as_micros() as i64;
    let wait = next - to_us(now);
    (job.last_background_us > 0 && wait > 0).then(|| Duration::from_micros(wait as u64))
}

/// Runs rounds until the server drains: at once when a commit leaves events for a device
/// without a live stream here, else every `every` (retries, other instances' jobs).
pub async fn run(state: AppState, pusher: std::sync::Arc<dyn Pusher>, every: Duration) {
    let backend = state.db.backend();
    loop {
        if state.shutdown.is_cancelled() {
            return;
        }
        match run_once(&state.writer, backend, pusher.as_ref(), state.clock.now()).await {
            // A full batch: more may be due.
            Ok(n) if n as i64 >= CLAIM_BATCH => continue,
            Ok(0) => {}
            Ok(n) => tracing::debug!(jobs = n, "push round"),
            Err(e) => tracing::warn!(error = %e, "push round failed; retrying"),
        }
        tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            _ = state.doorbell.offline_events() => {}
        }
    }
}
