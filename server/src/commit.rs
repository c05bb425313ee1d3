//! Group commit: the one writer of each server instance. Every transaction that appends to an
//! inbox or changes streak or check-in state runs here, on the writer's own thread and
//! connections; request tasks only read, from the pool.
//!
//! A request hands its job to the writer and waits for the answer. The writer takes the first
//! waiting job, then everything else that arrived meanwhile (up to [`MAX_JOBS`]), and applies
//! them in one round:
//!
//! 1. **The hot batch** (taps, acks, receipts, check-in answers, streak calls) in one
//!    transaction on the database's own store ([`crate::store`]), set-based: the lock prologue
//!    ([`crate::couples::prologue`]), then each kind's batch code, then the inbox rows for
//!    every event, one cross-instance doorbell statement, one commit (one fsync on SQLite).
//! 2. **The other writes** (accounts, devices, codes, pairing, settings, check-in asks and
//!    expiries, routines) in one transaction on the writer's general connection, each job in
//!    its own savepoint, so a refused job leaves nothing and the others go on.
//!
//! Only after a commit are the doorbells rung and the jobs answered. So a request is answered
//! only after its durable commit, a commit's cost is shared by everything that arrived while
//! the previous one ran, and on SQLite nothing else ever competes for the write lock.
//!
//! A job that breaks a rule gets its own error without touching the others. A database
//! failure fails its whole transaction: nothing of it was stored, every job in it is answered
//! UNAVAILABLE when the database cannot commit (a retry is safe: taps are idempotent by client
//! id, acks by seq) and INTERNAL otherwise; the writer then drops its connections and opens
//! fresh ones for the next round, and reports [`Health`] until a commit succeeds again.

use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};
use tapline_proto::v1 as pb;
use tokio::sync::{mpsc, oneshot, watch};

use crate::checkins::{self, AnswerJob};
use crate::couples;
use crate::db::{Backend, Db};
use crate::delivery::acks::{self, AckJob};
use crate::delivery::doorbell::Doorbell;
use crate::delivery::{self, Appended, cluster};
use crate::error::{Error, Result};
use crate::receipts::{self, ReceiptJob};
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::streaks::{self, StreakAnswer, StreakJob};
use crate::taps::{self, TapJob};
use crate::txn::{TxFuture, WriteTx};

/// Most jobs in one round. Large, because part of a batch's cost is per device and per couple
/// rather than per tap: at 512 a 20,000/s load saturated the writer at 11,000 taps/s, at 2048
/// it carried 12,700 (BENCHMARKS.md). A batch this size still commits in tens of milliseconds.
pub const MAX_JOBS: usize = 2048;
/// Jobs waiting for the writer before senders wait for room.
const QUEUE: usize = 8192;
/// While the database cannot commit, how often the writer tries a probe write.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long opening the writer's connections may take at start-up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the database can commit, as the writer last saw it (a watch for health checks).
pub type Health = watch::Receiver<bool>;

type Reply<T> = oneshot::Sender<Result<T>>;

/// A finished general-connection job: delivers its answer (with the error that replaced it
/// when its transaction failed).
type Deliver = Box<dyn FnOnce(Option<Error>) + Send>;

/// What a general-connection job did.
enum Ran {
    /// It succeeded; deliver after commit.
    Done(Deliver),
    /// It failed; its savepoint is rolled back and its error delivered.
    Failed(Deliver),
}

type RunTx = Box<dyn for<'a> FnOnce(&'a mut WriteTx) -> TxFuture<'a, Ran> + Send>;

enum Job {
    Tap(TapJob, Reply<pb::SendTapResponse>),
    Ack(AckJob, Reply<()>),
    Receipt(ReceiptJob, Reply<()>),
    Answer(AnswerJob, Reply<pb::AnswerCheckinResponse>),
    Streak(StreakJob, Reply<StreakAnswer>),
    Tx(RunTx),
}

/// The handle requests use to reach the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    health: Health,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts the writer on its own thread and runtime, with its own connections (a batch is
    /// a chain of round trips to the database, and on the request runtime each of them would
    /// wait behind every ready request task). Fails within [`OPEN_TIMEOUT`], naming the cause,
    /// when the database cannot be opened for writing. It stops when every handle is dropped,
    /// after finishing what was queued.
    pub async fn start(
        db: Db,
        doorbell: Doorbell,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Result<Writer> {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let (health_tx, health) = watch::channel(true);
        let (opened_tx, opened) = oneshot::channel();
        let counters = metrics.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("tapline-writer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut w = Worker {
                        db,
                        doorbell,
                        metrics,
                        health: health_tx,
                        links: Links::default(),
                    };
                    let first = tokio::time::timeout(OPEN_TIMEOUT, w.links.open(&w.db))
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::Io(std::io::Error::other(
                                "timed out opening the database for writing",
                            )))
                        });
                    let ok = first.is_ok();
                    let _ = opened_tx.send(first);
                    if ok {
                        w.run(rx).await;
                    }
                })
            })?;
        opened.await.map_err(|_| Error::CommitFailed)??;
        Ok(Writer {
            jobs,
            health,
            metrics: counters,
        })
    }

    /// The server's metrics (batches are counted here; others record through it).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Whether the database could commit at the last attempt.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(make(reply))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Stores and delivers a tap; answers after the commit.
    pub async fn send_tap(&self, job: TapJob) -> Result<pb::SendTapResponse> {
        self.ask(|r| Job::Tap(job, r)).await
    }

    /// Acknowledges everything up to `job.seq` on the device and forgets it.
    pub async fn ack(&self, job: AckJob) -> Result<()> {
        self.ask(|r| Job::Ack(job, r)).await
    }

    /// Records a receipt.
    pub async fn report(&self, job: ReceiptJob) -> Result<()> {
        self.ask(|r| Job::Receipt(job, r)).await
    }

    /// Answers a check-in.
    pub async fn answer(&self, job: AnswerJob) -> Result<pb::AnswerCheckinResponse> {
        self.ask(|r| Job::Answer(job, r)).await
    }

    /// A streak call.
    pub async fn streak(&self, job: StreakJob) -> Result<StreakAnswer> {
        self.ask(|r| Job::Streak(job, r)).await
    }

    /// Runs `f` as one of the writer's general-connection jobs (its own savepoint in the
    /// round's transaction); answers after the commit. What `f` tells devices is appended in
    /// the same transaction.
    pub async fn transact<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut WriteTx) -> TxFuture<'a, T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let run: RunTx = Box::new(move |tx| {
            Box::pin(async move {
                Ok(match f(tx).await {
                    Ok(v) => Ran::Done(Box::new(move |failed: Option<Error>| {
                        let _ = reply.send(failed.map_or(Ok(v), Err));
                    })),
                    Err(e) => Ran::Failed(Box::new(move |_| {
                        let _ = reply.send(Err(e.classify()));
                    })),
                })
            })
        });
        self.jobs
            .send(Job::Tx(run))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        // Dropped unrun: its round could not reach the database.
        answer.await.map_err(|_| Error::Unavailable)?
    }
}

/// The database's own store for the hot batch.
enum Hot {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// The writer's connections, opened on demand and dropped after a failure.
#[derive(Default)]
struct Links {
    hot: Option<Hot>,
    any: Option<AnyConnection>,
}

impl Links {
    async fn open(&mut self, db: &Db) -> Result<()> {
        if self.hot.is_none() {
            self.hot = Some(match db.sqlite_path() {
                Some(path) => Hot::Sqlite(SqliteStore::open(path)?),
                None => Hot::Postgres(PgStore::connect(db.url()).await?),
            });
        }
        if self.any.is_none() {
            self.any = Some(db.connect_one().await?);
        }
        Ok(())
    }

    /// Forgets every connection (after a failure: the next round starts fresh).
    async fn reset(&mut self) {
        if let Some(Hot::Postgres(pg)) = self.hot.take() {
            pg.close().await;
        }
        if let Some(c) = self.any.take() {
            let _ = c.close().await;
        }
    }
}

struct Worker {
    db: Db,
    doorbell: Doorbell,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    health: watch::Sender<bool>,
    links: Links,
}

/// The jobs of one round, by kind.
#[derive(Default)]
struct Round {
    taps: Vec<TapJob>,
    tap_replies: Vec<Reply<pb::SendTapResponse>>,
    acks: Vec<AckJob>,
    ack_replies: Vec<Reply<()>>,
    receipts: Vec<ReceiptJob>,
    receipt_replies: Vec<Reply<()>>,
    answers: Vec<AnswerJob>,
    answer_replies: Vec<Reply<pb::AnswerCheckinResponse>>,
    streaks: Vec<StreakJob>,
    streak_replies: Vec<Reply<StreakAnswer>>,
    txs: Vec<RunTx>,
}

impl Round {
    fn new(jobs: Vec<Job>) -> Round {
        let mut r = Round::default();
        for job in jobs {
            match job {
                Job::Tap(j, reply) => {
                    r.taps.push(j);
                    r.tap_replies.push(reply);
                }
                Job::Ack(j, reply) => {
                    r.acks.push(j);
                    r.ack_replies.push(reply);
                }
                Job::Receipt(j, reply) => {
                    r.receipts.push(j);
                    r.receipt_replies.push(reply);
                }
                Job::Answer(j, reply) => {
                    r.answers.push(j);
                    r.answer_replies.push(reply);
                }
                Job::Streak(j, reply) => {
                    r.streaks.push(j);
                    r.streak_replies.push(reply);
                }
                Job::Tx(run) => r.txs.push(run),
            }
        }
        r
    }

    fn has_hot(&self) -> bool {
        !(self.taps.is_empty()
            && self.acks.is_empty()
            && self.receipts.is_empty()
            && self.answers.is_empty()
            && self.streaks.is_empty())
    }

    /// Answers every hot job with `e` (nothing of the batch was stored).
    fn fail_hot(&mut self, e: &Error) {
        fn fail<T>(replies: &mut Vec<Reply<T>>, e: &Error) {
            for r in replies.drain(..) {
                let _ = r.send(Err(copy(e)));
            }
        }
        fail(&mut self.tap_replies, e);
        fail(&mut self.ack_replies, e);
        fail(&mut self.receipt_replies, e);
        fail(&mut self.answer_replies, e);
        fail(&mut self.streak_replies, e);
    }
}

/// What a failed transaction answers: UNAVAILABLE for an outage, INTERNAL otherwise (the
/// cause is logged once, by the writer).
fn copy(e: &Error) -> Error {
    if e.is_outage() {
        Error::Unavailable
    } else {
        Error::CommitFailed
    }
}

/// Each hot kind's answers, in job order.
struct HotAnswers {
    taps: Vec<Result<pb::SendTapResponse>>,
    acks: Vec<Result<()>>,
    receipts: Vec<Result<()>>,
    answers: Vec<Result<pb::AnswerCheckinResponse>>,
    streaks: Vec<Result<StreakAnswer>>,
    appended: Appended,
}

fn send_all<T>(replies: Vec<Reply<T>>, answers: Vec<Result<T>>) {
    for (reply, answer) in replies.into_iter().zip(answers) {
        let _ = reply.send(answer);
    }
}

impl Worker {
    async fn run(&mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(MAX_JOBS);
        loop {
            let healthy = *self.health.borrow();
            let got = if healthy {
                rx.recv_many(&mut jobs, MAX_JOBS).await
            } else {
                match tokio::time::timeout(PROBE_EVERY, rx.recv_many(&mut jobs, MAX_JOBS)).await {
                    Ok(n) => n,
                    Err(_) => {
                        self.probe().await;
                        continue;
                    }
                }
            };
            if got == 0 {
                break;
            }
            let started = std::time::Instant::now();
            let round = Round::new(std::mem::take(&mut jobs));
            self.round(round).await;
            self.metrics.batch(got, started.elapsed());
        }
        self.links.reset().await;
    }

    /// Notes whether the database could commit.
    fn healthy(&self, ok: bool) {
        self.health.send_if_modified(|h| {
            let changed = *h != ok;
            *h = ok;
            if changed {
                if ok {
                    tracing::info!("database can commit again: serving");
                } else {
                    tracing::error!("database cannot commit: not serving until it can");
                }
            }
            changed
        });
    }

    /// Tries one small write while the database could not commit.
    async fn probe(&mut self) {
        let result = async {
            self.links.open(&self.db).await?;
            let conn = self.links.any.as_mut().ok_or(Error::CommitFailed)?;
            let mut tx = conn.begin().await?;
            let now = crate::db::to_us(chrono::Utc::now());
            sqlx::query(
                "INSERT INTO write_probe (id, at_us) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET at_us = excluded.at_us",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, Error>(())
        }
        .await;
        match result {
            Ok(()) => self.healthy(true),
            Err(e) => {
                tracing::debug!(error = %e, "probe write failed");
                self.links.reset().await;
            }
        }
    }

    async fn round(&mut self, mut round: Round) {
        if let Err(e) = self.links.open(&self.db).await {
            tracing::error!(error = %e, "group commit: cannot open the database");
            let e = e.classify();
            self.healthy(!e.is_outage());
            round.fail_hot(&e);
            // Dropped unrun: each caller hears UNAVAILABLE.
            drop(round.txs);
            return;
        }
        let started = std::time::Instant::now();
        let mut appended = Appended::default();
        let mut revoked = Vec::new();
        let mut ok = true;
        if round.has_hot() {
            let result = match self.links.hot.as_mut() {
                Some(Hot::Sqlite(s)) => hot(s, self.db.instance(), &round).await,
                Some(Hot::Postgres(s)) => hot(s, self.db.instance(), &round).await,
                None => Err(Error::CommitFailed),
            };
            match result {
                Ok(a) => {
                    appended.extend(a.appended);
                    send_all(std::mem::take(&mut round.tap_replies), a.taps);
                    send_all(std::mem::take(&mut round.ack_replies), a.acks);
                    send_all(std::mem::take(&mut round.receipt_replies), a.receipts);
                    send_all(std::mem::take(&mut round.answer_replies), a.answers);
                    send_all(std::mem::take(&mut round.streak_replies), a.streaks);
                }
                Err(e) => {
                    tracing::error!(error = %e, taps = round.taps.len(), acks = round.acks.len(), "group commit failed");
                    ok = false;
                    self.healthy(!e.is_outage());
                    round.fail_hot(&e);
                }
            }
        }
        if !round.txs.is_empty() {
            let txs = std::mem::take(&mut round.txs);
            if ok {
                match self.general(txs).await {
                    Ok((a, r)) => {
                        appended.extend(a);
                        revoked = r;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "group commit (general) failed");
                        ok = false;
                        self.healthy(!e.is_outage());
                    }
                }
            } else {
                // Dropped unrun: each caller hears UNAVAILABLE.
                drop(txs);
            }
        }
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            ok,
            "round committed"
        );
        if ok {
            self.healthy(true);
        } else {
            self.links.reset().await;
        }
        self.doorbell.deliver(appended.0);
        for device in revoked {
            self.doorbell.revoke(&device);
        }
    }

    /// Runs the general-connection jobs in one transaction, each in its own savepoint;
    /// returns what they appended and the devices they signed out. On failure every job was
    /// answered with the error.
    async fn general(&mut self, txs: Vec<RunTx>) -> Result<(Appended, Vec<String>)> {
        let conn = self.links.any.take().ok_or(Error::CommitFailed)?;
        let mut tx = WriteTx::new(conn);
        let mut done: Vec<Deliver> = Vec::new();
        let mut items = Vec::new();
        let mut revoked = Vec::new();
        let backend = self.db.backend();
        let result = async {
            tx.conn()
                .execute(match backend {
                    Backend::Sqlite => "BEGIN IMMEDIATE",
                    Backend::Postgres => "BEGIN",
                })
                .await?;
            for run in txs {
                tx.conn().execute("SAVEPOINT job").await?;
                match run(&mut tx).await? {
                    Ran::Done(deliver) => {
                        tx.conn().execute("RELEASE SAVEPOINT job").await?;
                        let (i, r) = tx.take();
                        items.extend(i);
                        revoked.extend(r);
                        done.push(deliver);
                    }
                    Ran::Failed(deliver) => {
                        tx.take();
                        tx.conn().execute("ROLLBACK TO SAVEPOINT job").await?;
                        tx.conn().execute("RELEASE SAVEPOINT job").await?;
                        deliver(None);
                    }
                }
            }
            let appended = delivery::append_any(tx.conn(), items).await?;
            if backend == Backend::Postgres {
                let mut payloads = cluster::payloads(self.db.instance(), &appended.devices());
                payloads.extend(revoked.iter().map(|d| cluster::revoke_payload(d)));
                cluster::notify_any(tx.conn(), &payloads).await?;
            }
            tx.conn().execute("COMMIT").await?;
            Ok::<_, Error>(appended)
        }
        .await;
        match result {
            Ok(appended) => {
                self.links.any = Some(tx.into_conn());
                for d in done {
                    d(None);
                }
                Ok((appended, revoked))
            }
            Err(e) => {
                // The connection is dropped (the next round opens a fresh one).
                let _ = tx.conn().execute("ROLLBACK").await;
                for d in done {
                    d(Some(copy(&e)));
                }
                Err(e)
            }
        }
    }
}

/// The hot batch of `round` in one transaction on `store`.
async fn hot<S: Store>(store: &mut S, instance: &str, round: &Round) -> Result<HotAnswers> {
    store.begin().await?;
    match hot_body(store, instance, round).await {
        Ok(answers) => match store.commit().await {
            Ok(()) => Ok(answers),
            Err(e) => {
                store.rollback().await;
                Err(e)
            }
        },
        Err(e) => {
            store.rollback().await;
            Err(e)
        }
    }
}

async fn hot_body<S: Store>(store: &mut S, instance: &str, round: &Round) -> Result<HotAnswers> {
    // Steps 1-2 of the lock order for every caller of the batch (acking devices by account).
    let ack_devices: Vec<String> = round.acks.iter().map(|a| a.device_id.clone()).collect();
    let mut accounts: Vec<String> = store
        .cursors(&ack_devices)
        .await?
        .into_iter()
        .map(|c| c.account_id)
        .collect();
    accounts.extend(round.taps.iter().map(|j| j.caller.account_id.clone()));
    accounts.extend(round.receipts.iter().map(|j| j.caller.account_id.clone()));
    accounts.extend(round.answers.iter().map(|j| j.caller.account_id.clone()));
    accounts.extend(round.streaks.iter().map(|j| j.caller.account_id.clone()));
    let members = couples::prologue(store, accounts).await?;
    // The cursors again, now that the devices are locked.
    let cursors = store
        .cursors(&ack_devices)
        .await?
        .into_iter()
        .map(|c| (c.device_id.clone(), c))
        .collect();

    let taps = taps::apply(store, &members, &round.taps).await?;
    let (answers, answer_items, answer_actions) =
        checkins::apply_answers(store, &members, &round.answers).await?;
    let (acks, delivered) = acks::apply(store, &cursors, &round.acks).await?;
    let now = round
        .acks
        .iter()
        .map(|a| a.now)
        .max()
        .unwrap_or_else(chrono::Utc::now);
    let (receipts, receipt_items) =
        receipts::apply(store, &members, &round.receipts, &delivered, now).await?;
    let mut actions = taps.actions;
    actions.extend(answer_actions);
    let (streaks, streak_items) = streaks::apply(store, &members, &actions, &round.streaks).await?;

    let mut items = taps.items;
    items.extend(answer_items);
    items.extend(receipt_items);
    items.extend(streak_items);
    let appended = delivery::append(store, items).await?;
    store
        .notify(&cluster::payloads(instance, &appended.devices()))
        .await?;
    Ok(HotAnswers {
        taps: taps.answers,
        acks,
        receipts,
        answers,
        streaks,
        appended,
    })
}
