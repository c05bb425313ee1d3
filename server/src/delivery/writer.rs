//! Group commit: one writer task per server instance applies the hot writes (taps and acks)
//! in batches, one transaction per batch.
//!
//! A request hands its job to the writer and waits for the answer. The writer takes the first
//! waiting job, then everything else that arrived meanwhile (up to [`MAX_JOBS`]), applies them
//! all in one transaction with set-based statements, commits once (one fsync on SQLite, one
//! commit and at most one `NOTIFY` statement on PostgreSQL), rings the doorbells, and only then
//! answers each job. So a request is answered only after its durable commit, the cost of a
//! commit is shared by everything that arrived while the previous one was running, and the
//! batch grows with the load instead of throughput being capped by fsync.
//!
//! A job that breaks a rule (not paired, an ack beyond the newest event) gets its own error
//! without touching the batch. A database failure fails the whole batch: nothing of it was
//! stored, every job in it gets an internal error, and each client's retry is safe (taps are
//! idempotent by client id, acks by seq).

use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use tapline_proto::v1 as pb;
use tokio::sync::{mpsc, oneshot};

use super::doorbell::Doorbell;
use super::{Appended, append_locked, lock_devices, ring_cluster};
use crate::auth::Caller;
use crate::db::{self, Db};
use crate::domain::taps::NewTap;
use crate::error::{Error, Result};
use crate::sql::{Conn, Param, PerRow, Val, per_row, pg_id_numbers};

/// Most jobs in one batch. Large, because part of a batch's cost is per device and per couple
/// rather than per tap: at 512 a 20,000/s load saturated the writer at 11,000 taps/s, at 2048
/// it carried 12,700 (BENCHMARKS.md). A batch this size still commits in tens of milliseconds.
pub const MAX_JOBS: usize = 2048;
/// Jobs waiting for the writer before senders wait for room.
const QUEUE: usize = 8192;

/// A tap to store and deliver.
#[derive(Debug)]
pub struct TapJob {
    /// The sender.
    pub caller: Caller,
    /// The validated tap.
    pub new: NewTap,
    /// When it was sent.
    pub now: DateTime<Utc>,
}

enum Job {
    Tap(TapJob, oneshot::Sender<Result<pb::SendTapResponse>>),
    Ack {
        device_id: String,
        seq: u64,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// The handle requests use to reach the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer on its own thread and runtime, with its own database connection: a
    /// batch is a chain of round trips to the database, and on the request runtime each of
    /// them would wait behind every ready request task. It stops when every handle is
    /// dropped, after finishing what was queued.
    pub fn start(db: Db, doorbell: Doorbell) -> Writer {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => {
                let spawned = std::thread::Builder::new()
                    .name("tapline-writer".into())
                    .spawn(move || runtime.block_on(run(rx, db, doorbell)));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the group commit thread");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot start the group commit runtime"),
        }
        Writer { jobs }
    }

    /// Stores and delivers a tap; answers after the commit.
    pub async fn send_tap(&self, job: TapJob) -> Result<pb::SendTapResponse> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Tap(job, reply)).await?;
        answer.await.map_err(|_| Error::CommitFailed)?
    }

    /// Acknowledges everything up to `seq` on `device_id` and forgets it. Acking an older seq
    /// again is a no-op; acking beyond the newest event is refused.
    pub async fn ack(&self, device_id: &str, seq: u64) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Ack {
            device_id: device_id.to_owned(),
            seq,
            reply,
        })
        .await?;
        answer.await.map_err(|_| Error::CommitFailed)?
    }

    async fn submit(&self, job: Job) -> Result<()> {
        self.jobs.send(job).await.map_err(|_| Error::ShuttingDown)
    }
}

/// The group commit's own connection: a SQLite handle on this thread, or a pool of one
/// PostgreSQL connection.
enum Link {
    Sqlite {
        conn: rusqlite::Connection,
        /// Runs while the link lives.
        _checkpointer: crate::sql::Checkpointer,
    },
    Postgres(AnyPool),
}

async fn run(mut rx: mpsc::Receiver<Job>, db: Db, doorbell: Doorbell) {
    let mut jobs = Vec::with_capacity(MAX_JOBS);
    let mut link: Option<Link> = None;
    while rx.recv_many(&mut jobs, MAX_JOBS).await > 0 {
        let jobs = std::mem::take(&mut jobs);
        if link.is_none() {
            match open(&db).await {
                Ok(l) => link = Some(l),
                Err(e) => tracing::error!(error = %e, "group commit: cannot connect"),
            }
        }
        apply(&db, link.as_mut(), &doorbell, jobs).await;
    }
    if let Some(Link::Postgres(pool)) = link {
        pool.close().await;
    }
}

async fn open(db: &Db) -> Result<Link> {
    Ok(match db.sqlite_path() {
        Some(path) => Link::Sqlite {
            conn: crate::sql::open_sqlite(path)?,
            _checkpointer: crate::sql::Checkpointer::start(path)?,
        },
        None => Link::Postgres(db.open_batch_pool().await?),
    })
}

/// Applies one batch in one transaction and answers every job in it.
async fn apply(db: &Db, link: Option<&mut Link>, doorbell: &Doorbell, jobs: Vec<Job>) {
    let mut taps = Vec::new();
    let mut tap_replies = Vec::new();
    let mut acks = Vec::new();
    for job in jobs {
        match job {
            Job::Tap(job, reply) => {
                taps.push(job);
                tap_replies.push(reply);
            }
            Job::Ack {
                device_id,
                seq,
                reply,
            } => acks.push((device_id, seq, reply)),
        }
    }
    let started = std::time::Instant::now();
    let result = match link {
        Some(link) => write(db, link, &taps, &acks).await,
        None => Err(Error::CommitFailed),
    };
    tracing::debug!(
        taps = taps.len(),
        acks = acks.len(),
        micros = started.elapsed().as_micros() as u64,
        "batch committed"
    );
    match result {
        Ok((tap_answers, ack_answers, appended)) => {
            doorbell.deliver(appended.0);
            for (reply, answer) in tap_replies.into_iter().zip(tap_answers) {
                let _ = reply.send(answer);
            }
            for ((_, _, reply), answer) in acks.into_iter().zip(ack_answers) {
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, taps = taps.len(), acks = acks.len(), "group commit failed");
            for reply in tap_replies {
                let _ = reply.send(Err(Error::CommitFailed));
            }
            for (_, _, reply) in acks {
                let _ = reply.send(Err(Error::CommitFailed));
            }
        }
    }
}

type Answers = (Vec<Result<pb::SendTapResponse>>, Vec<Result<()>>, Appended);

async fn write(
    db: &Db,
    link: &mut Link,
    taps: &[TapJob],
    acks: &[(String, u64, oneshot::Sender<Result<()>>)],
) -> Result<Answers> {
    match link {
        Link::Sqlite { conn: c, .. } => {
            c.execute_batch("BEGIN IMMEDIATE")?;
            let result = match batch(&mut Conn::Sqlite(c), db.instance(), taps, acks).await {
                Ok(answers) => c
                    .execute_batch("COMMIT")
                    .map(|()| answers)
                    .map_err(Error::from),
                Err(e) => Err(e),
            };
            if !c.is_autocommit() {
                // Nothing of a failed batch stays.
                let _ = c.execute_batch("ROLLBACK");
            }
            result
        }
        Link::Postgres(pool) => {
            let mut tx = db.begin_on(pool).await?;
            let answers = batch(&mut Conn::Sqlx(&mut tx), db.instance(), taps, acks).await?;
            tx.commit().await?;
            Ok(answers)
        }
    }
}

/// Everything a batch writes, inside its transaction.
async fn batch(
    conn: &mut Conn<'_>,
    instance: &str,
    taps: &[TapJob],
    acks: &[(String, u64, oneshot::Sender<Result<()>>)],
) -> Result<Answers> {
    let (tap_answers, items) = crate::taps::apply_batch(conn, taps).await?;
    // Every device row this batch writes, locked in one ordered statement after the couples.
    let devices = items.iter().map(|(d, _)| d.as_str());
    lock_devices(conn, devices.chain(acks.iter().map(|(d, _, _)| d.as_str()))).await?;
    let appended = append_locked(conn, items).await?;
    let ack_answers = apply_acks(conn, acks).await?;
    ring_cluster(conn, instance, &appended).await?;
    Ok((tap_answers, ack_answers, appended))
}

/// Moves a device's acknowledged seq.
const SET_ACKED: PerRow = per_row!(
    "UPDATE devices SET acked_seq =",
    sqlite: "$2 WHERE id = $1",
    postgres: concat!("v.n FROM ", pg_id_numbers!(), " WHERE devices.id = v.dev"),
);

/// Forgets a device's acknowledged events: an index range.
const FORGET_ACKED: PerRow = per_row!(
    "DELETE FROM inbox",
    sqlite: "WHERE device_id = $1 AND seq <= $2",
    postgres: concat!("i USING ", pg_id_numbers!(), " WHERE i.device_id = v.dev AND i.seq <= v.n"),
);

async fn apply_acks(
    conn: &mut Conn<'_>,
    acks: &[(String, u64, oneshot::Sender<Result<()>>)],
) -> Result<Vec<Result<()>>> {
    let sqlite = conn.is_sqlite();
    if acks.is_empty() {
        return Ok(Vec::new());
    }
    let mut devices: Vec<&str> = acks.iter().map(|(d, _, _)| d.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    let sql = format!(
        "SELECT id, acked_seq, next_seq FROM devices WHERE id IN ({})",
        db::json_list(sqlite)
    );
    let devices = db::json_strs(devices.iter().copied());
    let mut cursors = std::collections::HashMap::new();
    for row in conn.fetch_all(&sql, &[Param::Text(&devices)]).await? {
        let id: String = row.get("id")?;
        let acked = row.get::<i64>("acked_seq")? as u64;
        let next = row.get::<i64>("next_seq")? as u64;
        cursors.insert(id, (acked, acked, next));
    }
    let mut answers = Vec::with_capacity(acks.len());
    for (device, seq, _) in acks {
        let Some((_, acked, next)) = cursors.get_mut(device.as_str()) else {
            answers.push(Err(Error::Unauthenticated));
            continue;
        };
        if *seq > *next {
            answers.push(Err(Error::invalid(
                "seq",
                format!("must not be beyond the newest event ({next})"),
            )));
            continue;
        }
        if *seq > *acked {
            *acked = *seq;
        }
        answers.push(Ok(()));
    }
    // One update and one prune for every device that moved, whatever the number of acks.
    let moved: Vec<Vec<Val>> = cursors
        .iter()
        .filter(|(_, (was, acked, _))| acked != was)
        .map(|(d, (_, acked, _))| vec![Val::from(d), Val::Int(*acked as i64)])
        .collect();
    conn.per_row(SET_ACKED, &moved).await?;
    conn.per_row(FORGET_ACKED, &moved).await?;
    Ok(answers)
}
