//! Load mode: every device holds its event stream open while taps go out through
//! `TapService.SendTap`, at a fixed rate or flat out, for a fixed time. Afterwards every tap is
//! checked: a tap counts as delivered when its `SendTap` returned OK (the server answers only
//! after the durable commit) and it arrived exactly once on each of its three recipient streams
//! (the partner's phone and watch, the sender's other device).
//!
//! Each tap's note carries its index (`bench <index>`); the send instant is kept by index on the
//! sending side, and every stream notes when each tap arrived, so latency is the time from just
//! before the `SendTap` call to the arrival on each of the partner's two devices.
//!
//! In the realistic mix ([`crate::mix`]) every tap must also come back as exactly one DELIVERED
//! receipt on each of its sender's two devices, and every FELT or SEEN report answered OK as
//! one receipt of that kind on each; the streams note when, so the time from the call to the
//! first DELIVERED receipt at the sender is measured as well.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::event_service_client::EventServiceClient;
use tapline_proto::v1::tap_service_client::TapServiceClient;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::fleet::{Authed, DeviceClients, Fleet, connect_many, patient};
use crate::mix::{self, CheckinReport, Checkins, Delivered, Mix, TAPS_PER_ANSWER, Tally};
use crate::procfs;
use crate::stats::{Latencies, Summary};
use crate::target::{Server, Stopped, Target};

/// Bound on one `SendTap` or `AckEvents` call.
const CALL_PATIENCE: Duration = Duration::from_secs(30);
/// Bound on opening a stream and reading its backlog.
const OPEN_PATIENCE: Duration = Duration::from_secs(60);
/// After the last send, how long the bench waits without any new arrival before it stops
/// waiting (what is missing then is reported as lost).
const DRAIN_STALL: Duration = Duration::from_secs(10);
/// Longest wait for deliveries after the last send returned.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// After the taps, how long the bench waits without any new receipt (or report answered)
/// before it stops waiting for receipts.
const RECEIPT_STALL: Duration = Duration::from_secs(5);
/// Extra wait after the last expected arrival, so a late duplicate is seen.
const DUPLICATE_GRACE: Duration = Duration::from_millis(200);
/// A guess of the taps a flat-out run sends per second, to open enough check-ins at set-up
/// (couples that run out open more during the run).
const FLAT_GUESS_PER_SEC: u64 = 5_000;
/// Couples opening their check-ins at once during set-up.
const CHECKIN_SETUP_PARALLEL: usize = 16;

/// How taps are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// An open-loop schedule of this many taps per second (sent from a 1 ms timer).
    Rate(u32),
    /// This many concurrent senders, each sending its next tap as soon as the last returns.
    Flat(usize),
}

impl fmt::Display for Pace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pace::Rate(r) => write!(f, "{r}/s"),
            Pace::Flat(n) => write!(f, "flat out ({n} senders)"),
        }
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Pacing.
    pub pace: Pace,
    /// How long taps are sent.
    pub duration: Duration,
    /// HTTP/2 connections the devices share (device `d` uses connection `d % connections`).
    pub connections: usize,
    /// In the plain mix, each stream acks its newest seq at most this often (the realistic mix
    /// acks as soon as a stream has nothing more ready).
    pub ack_every: Duration,
    /// For a fixed rate: calls in flight at most; past it the schedule slips.
    pub max_in_flight: usize,
    /// What the devices do beside sending taps.
    pub mix: Mix,
    /// Where DELIVERED receipts come from in the realistic mix.
    pub delivered: Delivered,
}

impl LoadSpec {
    /// Taps the run is expected to send (for flat out, a guess).
    fn expected_taps(&self) -> u64 {
        let per_sec = match self.pace {
            Pace::Rate(r) => u64::from(r),
            Pace::Flat(_) => FLAT_GUESS_PER_SEC,
        };
        per_sec * self.duration.as_secs().max(1)
    }

    /// How often a stream may ack.
    fn ack_interval(&self) -> Duration {
        match self.mix {
            Mix::Plain => self.ack_every,
            Mix::Realistic => Duration::ZERO,
        }
    }
}

/// The clock every record is stamped with (nanoseconds since the run began), and the counters
/// the drain watches.
struct Shared {
    start: Instant,
    /// Bench taps received on any stream so far.
    received: AtomicU64,
    /// `TapReceipt` events received on any stream so far.
    receipts: AtomicU64,
    /// `ReportTap` calls queued by the streams, and those answered (or failed).
    reports_queued: AtomicU64,
    reports_done: AtomicU64,
    /// FELT or SEEN reports answered OK (each owes a receipt to both sender devices).
    attention_ok: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn ns_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }
}

/// How one `SendTap` call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// OK but `duplicate: true`: the server took a fresh id for a retry.
    Duplicate,
    Failed(tonic::Code),
    TimedOut,
}

/// One tap as sent.
#[derive(Debug, Clone, Copy)]
struct SendRecord {
    idx: u64,
    sender: u32,
    /// Just before the call.
    call_ns: u64,
    /// When the answer came.
    done_ns: u64,
    /// For a fixed rate: how late the call started after its scheduled instant.
    lag_ns: Option<u64>,
    outcome: Outcome,
}

/// A bench tap on a stream.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    idx: u64,
    at_ns: u64,
    /// The server's tap id, as a number (receipts name it).
    tap: u128,
}

/// A `TapReceipt` on a stream.
#[derive(Debug, Clone, Copy)]
struct Receipt {
    tap: u128,
    kind: i32,
    at_ns: u64,
}

/// The `ReportTap` calls of one device.
#[derive(Debug, Default, Clone)]
struct Reports {
    calls: Tally,
    /// FELT and SEEN reports answered OK: (tap index, kind).
    attention: Vec<(u64, pb::ReceiptKind)>,
}

/// A receipt a device owes the server for a tap it received.
struct ReportJob {
    tap_id: String,
    idx: u64,
    kind: pb::ReceiptKind,
}

/// What one device's stream saw.
#[derive(Debug, Default, Clone)]
struct StreamRecord {
    device: usize,
    /// Every bench tap, in arrival order.
    arrivals: Vec<Arrival>,
    /// Every receipt, in arrival order.
    receipts: Vec<Receipt>,
    /// Events whose seq was not the previous one plus one.
    seq_breaks: u64,
    /// Taps whose note was not the bench's.
    foreign: u64,
    /// Bench taps whose sender id or `from_self` flag was not what the sender implies.
    mislabelled: u64,
    /// Why the stream stopped before the bench stopped it.
    failure: Option<String>,
    acks: Tally,
    reports: Reports,
}

/// The exactly-once check of a run. Any non-zero count fails it.
#[derive(Debug, Default, Clone)]
pub struct Check {
    /// Taps sent OK that did not reach all three recipients.
    pub lost_taps: u64,
    /// Missing (tap, recipient) arrivals among those.
    pub lost_deliveries: u64,
    /// A tap that arrived twice on one stream.
    pub duplicates: u64,
    /// A tap that arrived on a stream that is not one of its recipients.
    pub misdelivered: u64,
    /// Events whose seq broke the gap-free 1, 2, 3 ... numbering of a stream.
    pub seq_breaks: u64,
    /// A failed send that reached some recipients but not all (a torn transaction).
    pub partial: u64,
    /// `duplicate: true` answers to fresh tap ids.
    pub duplicate_answers: u64,
    /// Taps on the streams that the bench did not send.
    pub foreign: u64,
    /// Taps naming the wrong sender device, or with `from_self` wrong for the recipient.
    pub mislabelled: u64,
    /// Streams that ended or failed during the run.
    pub stream_failures: Vec<String>,
    /// Receipts owed and not received: in the realistic mix, a DELIVERED receipt for every tap
    /// sent OK, and one per FELT or SEEN report answered OK, on each of the sender's devices.
    pub lost_receipts: u64,
    /// A receipt of one kind for one tap twice on one stream.
    pub duplicate_receipts: u64,
    /// Receipts for a tap the bench did not see delivered, of no known kind, or on a device
    /// that did not send the tap's account.
    pub stray_receipts: u64,
}

impl Check {
    /// True when every tap arrived exactly once where it should.
    pub fn passed(&self) -> bool {
        self.lost_taps == 0
            && self.lost_deliveries == 0
            && self.duplicates == 0
            && self.misdelivered == 0
            && self.seq_breaks == 0
            && self.partial == 0
            && self.duplicate_answers == 0
            && self.foreign == 0
            && self.mislabelled == 0
            && self.stream_failures.is_empty()
            && self.lost_receipts == 0
            && self.duplicate_receipts == 0
            && self.stray_receipts == 0
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} lost taps / {} lost deliveries, {} duplicates, {} misdelivered, {} seq breaks, \
             {} torn, {} duplicate answers, {} foreign, {} mislabelled, {} stream failures; \
             receipts: {} lost, {} duplicated, {} stray)",
            if self.passed() { "OK" } else { "FAILED" },
            self.lost_taps,
            self.lost_deliveries,
            self.duplicates,
            self.misdelivered,
            self.seq_breaks,
            self.partial,
            self.duplicate_answers,
            self.foreign,
            self.mislabelled,
            self.stream_failures.len(),
            self.lost_receipts,
            self.duplicate_receipts,
            self.stray_receipts
        )?;
        for failure in self.stream_failures.iter().take(5) {
            write!(f, "\n    stream: {failure}")?;
        }
        Ok(())
    }
}

/// Taps that met a criterion, and the span from the first one's call to the last one's
/// completion.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    /// How many.
    pub taps: u64,
    first_ns: u64,
    last_ns: u64,
}

impl Throughput {
    fn add(&mut self, call_ns: u64, done_ns: u64) {
        self.first_ns = if self.taps == 0 {
            call_ns
        } else {
            self.first_ns.min(call_ns)
        };
        self.last_ns = self.last_ns.max(done_ns);
        self.taps += 1;
    }

    /// From the first call to the last completion.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.last_ns.saturating_sub(self.first_ns))
    }

    /// `taps / window`.
    pub fn per_sec(&self) -> f64 {
        let w = self.window().as_secs_f64();
        if w > 0.0 { self.taps as f64 / w } else { 0.0 }
    }
}

/// The receipts the senders' devices received in a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiptCounts {
    /// DELIVERED receipts.
    pub delivered: u64,
    /// FELT and SEEN receipts.
    pub attention: u64,
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Against what.
    pub target: Target,
    /// How taps were paced.
    pub pace: Pace,
    /// What the devices did beside sending taps.
    pub mix: Mix,
    /// Where DELIVERED receipts came from (realistic mix).
    pub delivered_by: Delivered,
    /// Couples (four devices each).
    pub couples: usize,
    /// HTTP/2 connections used.
    pub connections: usize,
    /// How long taps were sent.
    pub duration: Duration,
    /// For a fixed rate: taps scheduled.
    pub planned: Option<u64>,
    /// Calls made.
    pub issued: u64,
    /// Calls answered OK.
    pub sent_ok: u64,
    /// Failed `SendTap` calls by gRPC code.
    pub failures: BTreeMap<String, u64>,
    /// Taps sent OK and received on all three recipient streams.
    pub delivered: Throughput,
    /// Realistic mix: of those, the taps whose DELIVERED receipt also reached both of the
    /// sender's devices (the span ends at the last such receipt).
    pub with_receipts: Option<Throughput>,
    /// From the last answer to the last arrival.
    pub drain: Duration,
    /// Call to arrival on each of the partner's devices.
    pub latency: Summary,
    /// Call to the first DELIVERED receipt on one of the sender's devices.
    pub delivered_back: Summary,
    /// `SendTap` round trips of OK calls.
    pub round_trip: Summary,
    /// For a fixed rate: how late calls started against the schedule.
    pub lag: Option<Summary>,
    /// Receipts received by the senders' devices.
    pub receipts: ReceiptCounts,
    /// `ReportTap` calls.
    pub reports: Tally,
    /// Realistic mix: the check-ins opened and answered.
    pub checkins: Option<CheckinReport>,
    /// From the first send until the last `SendTap` and `AnswerCheckin` returned.
    pub sending: Duration,
    /// Server CPU (user + system) from the first send to the last arrival.
    pub server_cpu: Duration,
    /// `server_cpu / delivered`, in microseconds.
    pub cpu_us_per_tap: f64,
    /// Server CPU over wall time in that window (cores busy).
    pub server_cores: f64,
    /// The bench's own CPU over wall time (it shares the machine).
    pub bench_cores: f64,
    /// All the machine's busy CPU over wall time: server, bench, PostgreSQL, anything else,
    /// and time stolen by the hypervisor.
    pub machine_cores: f64,
    /// CPU stolen by the hypervisor over wall time (cores this VM wanted and did not get).
    pub steal_cores: f64,
    /// Peak server RSS (`VmHWM`) at the end, KiB.
    pub peak_rss_kib: u64,
    /// Server RSS at the end, KiB.
    pub rss_kib: u64,
    /// `AckEvents` calls.
    pub acks: Tally,
    /// Wall time from the first send to the last arrival (for rates of acks and receipts).
    pub wall: Duration,
    /// The exactly-once check.
    pub check: Check,
    /// Load averages before and after.
    pub load: (String, String),
    /// PostgreSQL: deadlocks its database had counted when the sending began.
    deadlocks_at_start: Option<u64>,
    /// PostgreSQL: `deadlock detected` errors during the run (set by [`LoadReport::settle`]).
    pub deadlocks: Option<u64>,
}

impl LoadReport {
    /// The rate the targets judge: fully delivered taps per second, in the realistic mix only
    /// those whose DELIVERED receipts came back too.
    pub fn rate(&self) -> f64 {
        self.with_receipts.unwrap_or(self.delivered).per_sec()
    }

    /// Failed `SendTap`, `ReportTap` and `AnswerCheckin` calls.
    pub fn failed_calls(&self) -> u64 {
        let answers = self.checkins.as_ref().map_or(0, |c| c.answers.failures());
        self.failures.values().sum::<u64>() + self.reports.failures() + answers
    }

    /// Takes what is known only once the server stopped: PostgreSQL's final deadlock count.
    pub fn settle(&mut self, stopped: &Stopped) {
        self.deadlocks = self
            .deadlocks_at_start
            .zip(stopped.deadlocks)
            .map(|(start, end)| end.saturating_sub(start));
    }

    /// Per second of the run's wall time.
    fn per_wall(&self, n: u64) -> f64 {
        n as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// A run of `target` at `pace` in `mix` that measured nothing yet (for the summary's tests).
#[cfg(test)]
pub fn blank_report(target: Target, pace: Pace, mix: Mix) -> LoadReport {
    LoadReport {
        target,
        pace,
        mix,
        delivered_by: Delivered::Ack,
        couples: 0,
        connections: 0,
        duration: Duration::ZERO,
        planned: None,
        issued: 0,
        sent_ok: 0,
        failures: BTreeMap::new(),
        delivered: Throughput::default(),
        with_receipts: (mix == Mix::Realistic).then(Throughput::default),
        drain: Duration::ZERO,
        latency: Summary::default(),
        delivered_back: Summary::default(),
        round_trip: Summary::default(),
        lag: None,
        receipts: ReceiptCounts::default(),
        reports: Tally::default(),
        checkins: None,
        sending: Duration::ZERO,
        server_cpu: Duration::ZERO,
        cpu_us_per_tap: 0.0,
        server_cores: 0.0,
        bench_cores: 0.0,
        machine_cores: 0.0,
        steal_cores: 0.0,
        peak_rss_kib: 0,
        rss_kib: 0,
        acks: Tally::default(),
        wall: Duration::ZERO,
        check: Check::default(),
        load: (String::new(), String::new()),
        deadlocks_at_start: None,
        deadlocks: None,
    }
}

/// `taps` taps over one second (for the summary's tests).
#[cfg(test)]
pub fn one_second_of(taps: u64) -> Throughput {
    Throughput {
        taps,
        first_ns: 0,
        last_ns: 1_000_000_000,
    }
}

/// Drives one load run against a running server whose fleet is signed in.
pub async fn run(server: &Server, fleet: &Fleet, spec: &LoadSpec) -> Result<LoadReport, String> {
    let load_before = procfs::load_average();
    let devices = fleet.devices.len();
    if devices == 0 {
        return Err("no devices".into());
    }
    let channels = connect_many(server.addr, spec.connections.clamp(1, devices), 16).await?;
    let clients: Arc<Vec<DeviceClients>> = Arc::new(
        fleet
            .devices
            .iter()
            .enumerate()
            .map(|(d, cred)| DeviceClients::new(&channels[d % channels.len()], cred))
            .collect::<Result<_, _>>()?,
    );
    // Enough check-ins for the run's answers, opened before the streams (they are backlog).
    let (checkins, opened_at_setup) = match spec.mix {
        Mix::Plain => (None, 0),
        Mix::Realistic => {
            let couples = fleet.couples().max(1) as u64;
            let per_couple = (spec.expected_taps() / TAPS_PER_ANSWER).div_ceil(2 * couples) + 1;
            let c = Checkins::open(clients.clone(), per_couple as usize, CHECKIN_SETUP_PARALLEL)
                .await?;
            (Some(Arc::new(c)), per_couple * couples)
        }
    };
    let shared = Arc::new(Shared {
        start: Instant::now(),
        received: AtomicU64::new(0),
        receipts: AtomicU64::new(0),
        reports_queued: AtomicU64::new(0),
        reports_done: AtomicU64::new(0),
        attention_ok: AtomicU64::new(0),
    });

    // Every device's stream, open and caught up, before the first tap.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(devices);
    let ids: Arc<Vec<String>> = Arc::new(fleet.devices.iter().map(|d| d.id.clone()).collect());
    let mut streams = JoinSet::new();
    for (d, c) in clients.iter().enumerate() {
        streams.spawn(receive(
            d,
            c.clone(),
            shared.clone(),
            ids.clone(),
            stop_rx.clone(),
            ready_tx.clone(),
            spec.clone(),
        ));
    }
    drop(ready_tx);
    for _ in 0..devices {
        match tokio::time::timeout(OPEN_PATIENCE, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(format!("opening a stream: {e}")),
            Ok(None) | Err(_) => return Err("streams did not all open".into()),
        }
    }

    let deadlocks_at_start = server.deadlocks().await;
    let cpu_before = server.cpu_time();
    let own_before = procfs::own_cpu_time().unwrap_or_default();
    let (machine_before, steal_before) = procfs::machine_cpu().unwrap_or_default();
    let wall_before = Instant::now();
    let answering = checkins.as_ref();
    let (records, planned) = match spec.pace {
        Pace::Rate(rate) => send_at_rate(&clients, &shared, rate, spec, answering).await,
        Pace::Flat(senders) => (
            send_flat_out(&clients, &shared, senders, spec, answering).await,
            None,
        ),
    };
    let checkins = match checkins {
        Some(c) => Some(c.finish(opened_at_setup).await),
        None => None,
    };
    let issued = records.len() as u64;
    let sent_ok = records.iter().filter(|r| r.outcome == Outcome::Ok).count() as u64;
    let last_answer = Instant::now();

    // Wait until every OK tap has arrived three times (or arrivals stall), then, in the
    // realistic mix, for the reports to be answered and the receipts to come back.
    let give_up = last_answer + DRAIN_LIMIT;
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    drain(
        || count(&shared.received) >= 3 * sent_ok,
        || count(&shared.received),
        DRAIN_STALL,
        give_up,
    )
    .await;
    if spec.mix == Mix::Realistic {
        drain(
            || {
                count(&shared.reports_done) >= count(&shared.reports_queued)
                    && count(&shared.receipts) >= 2 * (sent_ok + count(&shared.attention_ok))
            },
            || count(&shared.receipts) + count(&shared.reports_done),
            RECEIPT_STALL,
            give_up,
        )
        .await;
    }
    let drained = Instant::now();
    let cpu_after = server.cpu_time();
    let own_after = procfs::own_cpu_time().unwrap_or_default();
    let (machine_after, steal_after) = procfs::machine_cpu().unwrap_or_default();
    tokio::time::sleep(DUPLICATE_GRACE).await;
    let memory = server.memory();

    let _ = stop_tx.send(true);
    let mut stream_records = Vec::with_capacity(devices);
    while let Some(done) = streams.join_next().await {
        stream_records.push(done.map_err(|e| format!("stream task: {e}"))?);
    }
    let connections = channels.len();
    drop(channels);

    let verified = verify(
        devices,
        &records,
        &stream_records,
        spec.mix == Mix::Realistic,
    );
    let wall = drained.duration_since(wall_before).as_secs_f64().max(1e-9);
    let server_cpu = cpu_after.saturating_sub(cpu_before);
    let mut failures = BTreeMap::new();
    for r in &records {
        let key = match r.outcome {
            Outcome::Ok => continue,
            Outcome::Duplicate => "duplicate answer".to_owned(),
            Outcome::Failed(code) => format!("{code:?}"),
            Outcome::TimedOut => "timed out".to_owned(),
        };
        *failures.entry(key).or_insert(0) += 1;
    }
    let (mut acks, mut reports) = (Tally::default(), Tally::default());
    let mut receipts = ReceiptCounts::default();
    for r in &stream_records {
        acks.merge(&r.acks);
        reports.merge(&r.reports.calls);
        for receipt in &r.receipts {
            if receipt.kind == pb::ReceiptKind::Delivered as i32 {
                receipts.delivered += 1;
            } else {
                receipts.attention += 1;
            }
        }
    }
    if let Some(e) = &acks.last_error {
        eprintln!("  note: an AckEvents call failed: {e}");
    }
    let delivered = verified.delivered;
    Ok(LoadReport {
        target: server.target,
        pace: spec.pace,
        mix: spec.mix,
        delivered_by: spec.delivered,
        couples: fleet.couples(),
        connections,
        duration: spec.duration,
        planned,
        issued,
        sent_ok,
        failures,
        delivered,
        with_receipts: verified.with_receipts,
        drain: Duration::from_nanos(delivered.last_ns.saturating_sub(verified.last_done_ns)),
        latency: verified.latency.summary(),
        delivered_back: verified.delivered_back.summary(),
        round_trip: verified.round_trip.summary(),
        lag: verified.lag.map(|l| l.summary()),
        receipts,
        reports,
        checkins,
        sending: last_answer.duration_since(wall_before),
        server_cpu,
        cpu_us_per_tap: if delivered.taps == 0 {
            0.0
        } else {
            server_cpu.as_secs_f64() * 1e6 / delivered.taps as f64
        },
        server_cores: server_cpu.as_secs_f64() / wall,
        bench_cores: own_after.saturating_sub(own_before).as_secs_f64() / wall,
        machine_cores: machine_after.saturating_sub(machine_before).as_secs_f64() / wall,
        steal_cores: steal_after.saturating_sub(steal_before).as_secs_f64() / wall,
        peak_rss_kib: memory.peak_kib,
        rss_kib: memory.rss_kib,
        acks,
        wall: drained.duration_since(wall_before),
        check: verified.check,
        load: (load_before, procfs::load_average()),
        deadlocks_at_start,
        deadlocks: None,
    })
}

/// Waits until `done()`, or until `progress()` has not moved for `stall`, or until `give_up`.
async fn drain(
    done: impl Fn() -> bool,
    progress: impl Fn() -> u64,
    stall: Duration,
    give_up: Instant,
) {
    let mut seen = progress();
    let mut moved_at = Instant::now();
    while !done() && moved_at.elapsed() < stall && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now_seen = progress();
        if now_seen != seen {
            seen = now_seen;
            moved_at = Instant::now();
        }
    }
}

/// Sends `rate` taps per second for the run's duration. Tap `i` is due at `i / rate` s; a 1 ms
/// timer sends what is due. When `max_in_flight` calls are outstanding the schedule slips (the
/// lag is recorded); what is still unsent at the end is left out. Every tap sent is told to
/// `answering`, if any. Returns the records and the number of taps planned.
async fn send_at_rate(
    clients: &Arc<Vec<DeviceClients>>,
    shared: &Arc<Shared>,
    rate: u32,
    spec: &LoadSpec,
    answering: Option<&Arc<Checkins>>,
) -> (Vec<SendRecord>, Option<u64>) {
    let rate = u64::from(rate.max(1));
    let planned = (spec.duration.as_secs_f64() * rate as f64) as u64;
    let devices = clients.len() as u64;
    let records = Arc::new(Mutex::new(Vec::with_capacity(planned as usize)));
    let in_flight = Arc::new(Semaphore::new(spec.max_in_flight.max(1)));
    let begin = Instant::now();
    let begin_ns = shared.ns_at(begin);
    let deadline = begin + spec.duration;
    let mut timer = tokio::time::interval(Duration::from_millis(1));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut issued = 0u64;
    'schedule: while issued < planned {
        timer.tick().await;
        let due =
            ((begin.elapsed().as_nanos() as u64).saturating_mul(rate) / 1_000_000_000).min(planned);
        while issued < due {
            let permit = tokio::select! {
                p = in_flight.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break 'schedule,
                },
                _ = tokio::time::sleep_until(deadline.into()) => break 'schedule,
            };
            let idx = issued;
            issued += 1;
            if let Some(checkins) = answering {
                checkins.after_tap(idx);
            }
            let sender = (idx % devices) as usize;
            let client = clients[sender].taps.clone();
            let scheduled_ns = begin_ns + idx * 1_000_000_000 / rate;
            let (shared, records) = (shared.clone(), records.clone());
            tokio::spawn(async move {
                let record = send_one(client, idx, sender, Some(scheduled_ns), &shared).await;
                records
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(record);
                drop(permit);
            });
        }
    }
    // Every call in flight holds a permit: taking them all waits for the last answer.
    let all = u32::try_from(spec.max_in_flight.max(1)).unwrap_or(u32::MAX);
    let _ = in_flight.acquire_many(all).await;
    let records = std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()));
    (records, Some(planned))
}

/// `senders` loops, each sending its next tap as soon as the previous one is answered, until
/// the run's duration is up. Tap `i` goes out from device `i % devices`; every tap sent is told
/// to `answering`, if any.
async fn send_flat_out(
    clients: &Arc<Vec<DeviceClients>>,
    shared: &Arc<Shared>,
    senders: usize,
    spec: &LoadSpec,
    answering: Option<&Arc<Checkins>>,
) -> Vec<SendRecord> {
    let deadline = Instant::now() + spec.duration;
    let next = Arc::new(AtomicU64::new(0));
    let mut loops = JoinSet::new();
    for _ in 0..senders.max(1) {
        let (clients, shared, next) = (clients.clone(), shared.clone(), next.clone());
        let answering = answering.cloned();
        loops.spawn(async move {
            let mut records = Vec::new();
            while Instant::now() < deadline {
                let idx = next.fetch_add(1, Ordering::Relaxed);
                if let Some(checkins) = &answering {
                    checkins.after_tap(idx);
                }
                let sender = (idx % clients.len() as u64) as usize;
                let client = clients[sender].taps.clone();
                records.push(send_one(client, idx, sender, None, &shared).await);
            }
            records
        });
    }
    let mut records = Vec::new();
    while let Some(done) = loops.join_next().await {
        if let Ok(mut r) = done {
            records.append(&mut r);
        }
    }
    records
}

/// One `SendTap` of tap `idx` from device `sender`.
async fn send_one(
    mut client: TapServiceClient<Authed>,
    idx: u64,
    sender: usize,
    scheduled_ns: Option<u64>,
    shared: &Shared,
) -> SendRecord {
    let req = pb::SendTapRequest {
        client_tap_id: uuid::Uuid::now_v7().to_string(),
        kind: pb::TapKind::Heartbeat as i32,
        rhythm: None,
        note: note_for(idx),
    };
    let call_ns = shared.now_ns();
    let answer = tokio::time::timeout(CALL_PATIENCE, client.send_tap(req)).await;
    let done_ns = shared.now_ns();
    let outcome = match answer {
        Ok(Ok(resp)) if resp.get_ref().duplicate => Outcome::Duplicate,
        Ok(Ok(_)) => Outcome::Ok,
        Ok(Err(status)) => Outcome::Failed(status.code()),
        Err(_) => Outcome::TimedOut,
    };
    SendRecord {
        idx,
        sender: sender as u32,
        call_ns,
        done_ns,
        lag_ns: scheduled_ns.map(|s| call_ns.saturating_sub(s)),
        outcome,
    }
}

/// The note that identifies tap `idx`.
fn note_for(idx: u64) -> String {
    format!("bench {idx}")
}

/// The index in a bench tap's note.
fn index_of(note: &str) -> Option<u64> {
    note.strip_prefix("bench ")?.parse().ok()
}

/// One device's stream for the whole run: subscribe, read the backlog up to `caught_up`, say
/// ready, then note every tap and receipt until told to stop. Whenever the stream has nothing
/// more ready, the newest seq goes to the acker beside it (which acks at once in the realistic
/// mix), and the receipts the mix reports for the partner taps go to the reporter beside it.
/// `ids` are the devices' server ids: tap `i` comes from device `i % devices`, which the tap
/// must name.
async fn receive(
    device: usize,
    clients: DeviceClients,
    shared: Arc<Shared>,
    ids: Arc<Vec<String>>,
    mut stop: watch::Receiver<bool>,
    ready: mpsc::Sender<Result<(), String>>,
    spec: LoadSpec,
) -> StreamRecord {
    let mut record = StreamRecord {
        device,
        ..StreamRecord::default()
    };
    let mut events = clients.events;
    let (mut stream, mut last_seq) = match open(&mut events).await {
        Ok(opened) => opened,
        Err(e) => {
            let _ = ready.send(Err(format!("device {device}: {e}"))).await;
            record.failure = Some(e);
            return record;
        }
    };
    let _ = ready.send(Ok(())).await;
    drop(ready);

    let (seq_tx, seq_rx) = watch::channel(last_seq);
    let acker = tokio::spawn(ack_loop(events, seq_rx, stop.clone(), spec.ack_interval()));
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let reporter = tokio::spawn(report_loop(
        clients.taps,
        report_rx,
        shared.clone(),
        stop.clone(),
    ));
    loop {
        let message = match ready_now(stream.message()) {
            Some(m) => m,
            None => {
                // Everything ready has been taken in (stored, for the core): ack the newest.
                seq_tx.send_if_modified(|acked| std::mem::replace(acked, last_seq) != last_seq);
                tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    m = stream.message() => m,
                }
            }
        };
        let event = match message {
            Ok(Some(pb::SubscribeResponse { event: Some(e) })) => e,
            Ok(Some(_)) => continue,
            Ok(None) => {
                record.failure = Some(format!("device {device}: the stream ended"));
                break;
            }
            Err(s) => {
                record.failure = Some(format!("device {device}: {:?}: {}", s.code(), s.message()));
                break;
            }
        };
        let at_ns = shared.now_ns();
        if event.seq > 0 {
            if event.seq != last_seq + 1 {
                record.seq_breaks += 1;
            }
            last_seq = last_seq.max(event.seq);
        }
        match event.payload {
            Some(Payload::TapReceived(received)) => {
                let tap = received.tap.unwrap_or_default();
                let Some(idx) = index_of(&tap.note) else {
                    record.foreign += 1;
                    continue;
                };
                record.arrivals.push(Arrival {
                    idx,
                    at_ns,
                    tap: tap_number(&tap.tap_id),
                });
                shared.received.fetch_add(1, Ordering::Relaxed);
                let sender = (idx % ids.len() as u64) as usize;
                // Slots 0-1 are one account, 2-3 the other: same half, same account.
                let own = sender / 2 == device / 2;
                if tap.sender_device_id != ids[sender] || received.from_self != own {
                    record.mislabelled += 1;
                }
                if !own {
                    for kind in mix::reports(spec.mix, spec.delivered, device, idx) {
                        shared.reports_queued.fetch_add(1, Ordering::Relaxed);
                        let tap_id = tap.tap_id.clone();
                        let _ = report_tx.send(ReportJob { tap_id, idx, kind });
                    }
                }
            }
            Some(Payload::TapReceipt(receipt)) => {
                // One event may name several taps (DELIVERED after one ack).
                for id in std::iter::once(&receipt.tap_id).chain(&receipt.also_tap_ids) {
                    record.receipts.push(Receipt {
                        tap: tap_number(id),
                        kind: receipt.kind,
                        at_ns,
                    });
                    shared.receipts.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
    drop((seq_tx, report_tx));
    record.acks = acker.await.unwrap_or_default();
    record.reports = reporter.await.unwrap_or_default();
    record
}

/// Polls `f` once: its output if it is ready now, else `None` (nothing waits for it).
fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// A tap id as a number (0 if it is not a UUID, which matches no tap).
fn tap_number(id: &str) -> u128 {
    uuid::Uuid::parse_str(id).map_or(0, |u| u.as_u128())
}

/// Subscribes from the start and reads the backlog (pairing, streak news) up to `caught_up`.
async fn open(
    events: &mut EventServiceClient<Authed>,
) -> Result<(tonic::Streaming<pb::SubscribeResponse>, u64), String> {
    let opening = async {
        let mut stream = events
            .subscribe(pb::SubscribeRequest { after_seq: 0 })
            .await
            .map_err(|s| format!("subscribe: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        let mut last_seq = 0;
        loop {
            match stream.message().await {
                Ok(Some(pb::SubscribeResponse { event: Some(e) })) => match e.payload {
                    Some(Payload::CaughtUp(c)) => return Ok((stream, last_seq.max(c.last_seq))),
                    _ => last_seq = last_seq.max(e.seq),
                },
                Ok(Some(_)) => {}
                Ok(None) => return Err("the stream ended before caught_up".to_owned()),
                Err(s) => return Err(format!("backlog: {:?}: {}", s.code(), s.message())),
            }
        }
    };
    tokio::time::timeout(OPEN_PATIENCE, opening)
        .await
        .map_err(|_| "no caught_up in time".to_owned())?
}

/// Acks the newest seq a stream has seen, at most once per `every` (at once when zero; one
/// call in flight), until stopped.
async fn ack_loop(
    mut events: EventServiceClient<Authed>,
    mut seqs: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
    every: Duration,
) -> Tally {
    let mut tally = Tally::default();
    let mut acked = 0;
    loop {
        let newest = *seqs.borrow_and_update();
        if newest > acked {
            let answer = patient(events.ack_events(pb::AckEventsRequest { seq: newest })).await;
            if answer.is_ok() {
                acked = newest;
            }
            tally.record(&answer);
        }
        if !every.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return tally,
            }
        }
        tokio::select! {
            changed = seqs.changed() => if changed.is_err() { return tally },
            _ = stop.changed() => return tally,
        }
    }
}

/// Makes one device's `ReportTap` calls in order, one at a time (the core's outbox), until
/// stopped.
async fn report_loop(
    mut taps: TapServiceClient<Authed>,
    mut jobs: mpsc::UnboundedReceiver<ReportJob>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Reports {
    let mut reports = Reports::default();
    loop {
        let job = tokio::select! {
            biased;
            _ = stop.changed() => break,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => break,
            },
        };
        let call = patient(taps.report_tap(pb::ReportTapRequest {
            tap_id: job.tap_id,
            kind: job.kind as i32,
        }));
        let answer = tokio::select! {
            biased;
            _ = stop.changed() => break,
            answer = call => answer,
        };
        if answer.is_ok() && job.kind != pb::ReceiptKind::Delivered {
            reports.attention.push((job.idx, job.kind));
            shared.attention_ok.fetch_add(1, Ordering::Relaxed);
        }
        reports.calls.record(&answer);
        shared.reports_done.fetch_add(1, Ordering::Relaxed);
    }
    reports
}

/// The per-tap bookkeeping of [`verify`].
#[derive(Debug, Clone, Copy, Default)]
struct TapState {
    sent: Option<SendRecord>,
    /// Bit `r` set: arrived at recipient role `r` (partner phone, partner watch, own device).
    arrived: u8,
    last_arrival_ns: u64,
    /// Receipts received, by [`receipt_bit`].
    receipts: u8,
    /// The first and the last DELIVERED receipt at a sender device.
    first_back_ns: Option<u64>,
    last_back_ns: u64,
}

/// The DELIVERED bits of [`receipt_bit`] (one per sender device).
const DELIVERED_BITS: u8 = 0b11;

/// Where [`TapState::receipts`] notes a receipt of `kind` for a tap from `sender` arriving on
/// `device`: two bits per kind (DELIVERED, FELT, SEEN), one per device of the sender's account;
/// `None` for another device or an unknown kind.
fn receipt_bit(sender: usize, device: usize, kind: i32) -> Option<u8> {
    let at = Fleet::account_devices(sender)
        .iter()
        .position(|&d| d == device)?;
    let k = match pb::ReceiptKind::try_from(kind).ok()? {
        pb::ReceiptKind::Delivered => 0,
        pb::ReceiptKind::Felt => 1,
        pb::ReceiptKind::Seen => 2,
        pb::ReceiptKind::Unspecified => return None,
    };
    Some(1 << (2 * k + at))
}

/// What [`verify`] found.
struct Verified {
    check: Check,
    delivered: Throughput,
    with_receipts: Option<Throughput>,
    last_done_ns: u64,
    latency: Latencies,
    delivered_back: Latencies,
    round_trip: Latencies,
    lag: Option<Latencies>,
}

/// Matches every arrival with its send and every receipt with its tap: counts full deliveries
/// and every breach of exactly-once. With `expect_receipts` (the realistic mix), every tap sent
/// OK owes a DELIVERED receipt to both of its sender's devices, and every FELT or SEEN report
/// answered OK a receipt of that kind.
fn verify(
    devices: usize,
    sends: &[SendRecord],
    streams: &[StreamRecord],
    expect_receipts: bool,
) -> Verified {
    let taps = sends.iter().map(|s| s.idx + 1).max().unwrap_or(0) as usize;
    let mut state = vec![TapState::default(); taps];
    let mut round_trip = Latencies::default();
    let mut lag = sends
        .iter()
        .any(|s| s.lag_ns.is_some())
        .then(Latencies::default);
    let mut check = Check::default();
    let mut last_done_ns = 0;
    for s in sends {
        state[s.idx as usize].sent = Some(*s);
        if let (Some(l), Some(ns)) = (lag.as_mut(), s.lag_ns) {
            l.record(ns);
        }
        match s.outcome {
            Outcome::Ok => {
                round_trip.record(s.done_ns.saturating_sub(s.call_ns));
                last_done_ns = last_done_ns.max(s.done_ns);
            }
            Outcome::Duplicate => check.duplicate_answers += 1,
            Outcome::Failed(_) | Outcome::TimedOut => {}
        }
    }
    let mut latency = Latencies::default();
    let mut by_id: HashMap<u128, usize> = HashMap::with_capacity(taps);
    for stream in streams {
        check.seq_breaks += stream.seq_breaks;
        check.foreign += stream.foreign;
        check.mislabelled += stream.mislabelled;
        if let Some(f) = &stream.failure {
            check.stream_failures.push(f.clone());
        }
        for a in &stream.arrivals {
            let Some(tap) = state.get_mut(a.idx as usize) else {
                check.misdelivered += 1;
                continue;
            };
            let Some(sent) = tap.sent else {
                check.misdelivered += 1;
                continue;
            };
            by_id.insert(a.tap, a.idx as usize);
            let sender = sent.sender as usize;
            let role = match (sender < devices)
                .then(|| Fleet::recipients(sender))
                .and_then(|r| r.iter().position(|&d| d == stream.device))
            {
                Some(role) => role,
                None => {
                    check.misdelivered += 1;
                    continue;
                }
            };
            let bit = 1u8 << role;
            if tap.arrived & bit != 0 {
                check.duplicates += 1;
                continue;
            }
            tap.arrived |= bit;
            tap.last_arrival_ns = tap.last_arrival_ns.max(a.at_ns);
            if role < 2 && sent.outcome == Outcome::Ok {
                latency.record(a.at_ns.saturating_sub(sent.call_ns));
            }
        }
    }
    for stream in streams {
        for r in &stream.receipts {
            let found = by_id.get(&r.tap).map(|&i| &mut state[i]).and_then(|tap| {
                let sender = tap.sent?.sender as usize;
                Some((receipt_bit(sender, stream.device, r.kind)?, tap))
            });
            let Some((bit, tap)) = found else {
                check.stray_receipts += 1;
                continue;
            };
            if tap.receipts & bit != 0 {
                check.duplicate_receipts += 1;
                continue;
            }
            tap.receipts |= bit;
            if bit & DELIVERED_BITS != 0 {
                tap.first_back_ns = Some(tap.first_back_ns.map_or(r.at_ns, |t| t.min(r.at_ns)));
                tap.last_back_ns = tap.last_back_ns.max(r.at_ns);
            }
        }
    }
    if expect_receipts {
        for stream in streams {
            for &(idx, kind) in &stream.reports.attention {
                let Some((tap, sent)) = state.get(idx as usize).and_then(|t| Some((t, t.sent?)))
                else {
                    continue;
                };
                let sender = sent.sender as usize;
                let owed: u8 = Fleet::account_devices(sender)
                    .iter()
                    .filter_map(|&d| receipt_bit(sender, d, kind as i32))
                    .sum();
                check.lost_receipts += u64::from((owed & !tap.receipts).count_ones());
            }
        }
    }
    let mut delivered = Throughput::default();
    let mut with_receipts = Throughput::default();
    let mut delivered_back = Latencies::default();
    for tap in &state {
        let Some(sent) = tap.sent else { continue };
        match sent.outcome {
            Outcome::Ok => {
                if tap.arrived == 0b111 {
                    delivered.add(sent.call_ns, tap.last_arrival_ns);
                } else {
                    check.lost_taps += 1;
                    check.lost_deliveries += u64::from(3 - tap.arrived.count_ones());
                }
                if let Some(back) = tap.first_back_ns {
                    delivered_back.record(back.saturating_sub(sent.call_ns));
                }
                let back = tap.receipts & DELIVERED_BITS;
                if expect_receipts {
                    check.lost_receipts += u64::from(2 - back.count_ones());
                }
                if tap.arrived == 0b111 && back == DELIVERED_BITS {
                    with_receipts.add(sent.call_ns, tap.last_arrival_ns.max(tap.last_back_ns));
                }
            }
            Outcome::Duplicate => {}
            // A failed call may still have committed, but then it reached everyone.
            Outcome::Failed(_) | Outcome::TimedOut => {
                if tap.arrived != 0 && tap.arrived != 0b111 {
                    check.partial += 1;
                }
            }
        }
    }
    Verified {
        check,
        delivered,
        with_receipts: expect_receipts.then_some(with_receipts),
        last_done_ns,
        latency,
        delivered_back,
        round_trip,
        lag,
    }
}

/// Prints a run's figures.
pub fn print(r: &LoadReport) {
    let mix = match r.mix {
        Mix::Plain => "plain mix".to_owned(),
        Mix::Realistic => format!("realistic mix, DELIVERED by {}", r.delivered_by),
    };
    println!(
        "load {} {}, {mix} — {} couples ({} devices, {} connections), {} s",
        r.target,
        r.pace,
        r.couples,
        r.couples * 4,
        r.connections,
        r.duration.as_secs_f64()
    );
    let mut sent = format!(
        "  sent: {} calls, {} OK, {} failed{}",
        r.issued,
        r.sent_ok,
        r.failures.values().sum::<u64>(),
        failures(&r.failures)
    );
    if let Some(planned) = r.planned {
        sent.push_str(&format!(
            "; {} of {} scheduled taps left unsent",
            planned.saturating_sub(r.issued),
            planned
        ));
    }
    println!("{sent}");
    if let Some(lag) = &r.lag {
        println!("  schedule slip (call start after its slot): {lag}");
    }
    println!(
        "  fully delivered: {} taps = {:.0} taps/s over {:.2} s (last arrival {:.0} ms after the last answer)",
        r.delivered.taps,
        r.delivered.per_sec(),
        r.delivered.window().as_secs_f64(),
        r.drain.as_secs_f64() * 1e3
    );
    if let Some(w) = &r.with_receipts {
        println!(
            "  with both DELIVERED receipts back: {} taps = {:.0} taps/s over {:.2} s",
            w.taps,
            w.per_sec(),
            w.window().as_secs_f64()
        );
    }
    println!("  send → partner receipt:   {}", r.latency);
    println!("  send → DELIVERED back:    {}", r.delivered_back);
    println!("  SendTap round trip:       {}", r.round_trip);
    println!(
        "  receipts at the senders' devices: {} DELIVERED ({:.0}/s), {} FELT/SEEN ({:.0}/s); ReportTap: {}",
        r.receipts.delivered,
        r.per_wall(r.receipts.delivered),
        r.receipts.attention,
        r.per_wall(r.receipts.attention),
        calls(&r.reports),
    );
    if let Some(c) = &r.checkins {
        println!(
            "  check-ins: AnswerCheckin {} ({:.0} answers/s); {} opened at set-up, {} during the run",
            calls(&c.answers),
            c.answers.ok as f64 / r.sending.as_secs_f64().max(1e-9),
            c.opened_at_setup,
            c.opened_in_run
        );
    }
    println!(
        "  server: {:.2} s CPU = {:.0} µs per tap ({:.2} cores busy), RSS {:.1} MiB, peak {:.1} MiB; bench {:.2} cores; machine {:.2} cores busy, of which {:.2} stolen by the hypervisor",
        r.server_cpu.as_secs_f64(),
        r.cpu_us_per_tap,
        r.server_cores,
        r.rss_kib as f64 / 1024.0,
        r.peak_rss_kib as f64 / 1024.0,
        r.bench_cores,
        r.machine_cores,
        r.steal_cores,
    );
    println!(
        "  AckEvents: {} ({:.0}/s{})",
        calls(&r.acks),
        r.per_wall(r.acks.ok),
        if r.target == Target::Relay {
            ""
        } else {
            ", applied in the server's group commits"
        },
    );
    if r.target == Target::Postgres {
        match r.deadlocks {
            Some(n) => println!("  PostgreSQL: {n} deadlocks detected during the run"),
            None => println!("  PostgreSQL: deadlocks unknown (pg_stat_database unreadable)"),
        }
    }
    println!("  exactly once: {}", r.check);
    println!("  load average: {} before, {} after", r.load.0, r.load.1);
}

/// `N OK, M failed {code: n, ...}`.
fn calls(t: &Tally) -> String {
    format!(
        "{} OK, {} failed{}",
        t.ok,
        t.failures(),
        failures(&t.failed)
    )
}

/// ` {code: n, ...}`, or nothing.
fn failures(by_code: &BTreeMap<String, u64>) -> String {
    if by_code.is_empty() {
        String::new()
    } else {
        format!(" {by_code:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(idx: u64, sender: u32, outcome: Outcome) -> SendRecord {
        SendRecord {
            idx,
            sender,
            call_ns: 1_000 * idx,
            done_ns: 1_000 * idx + 500,
            lag_ns: None,
            outcome,
        }
    }

    /// A stream that saw taps `(index, at)`; tap `i`'s server id is `i + 1`.
    fn stream(device: usize, arrivals: &[(u64, u64)]) -> StreamRecord {
        StreamRecord {
            device,
            arrivals: arrivals
                .iter()
                .map(|&(idx, at_ns)| Arrival {
                    idx,
                    at_ns,
                    tap: u128::from(idx) + 1,
                })
                .collect(),
            ..StreamRecord::default()
        }
    }

    /// `stream` with receipts `(tap index, kind, at)` too.
    fn with_receipts(
        mut s: StreamRecord,
        receipts: &[(u64, pb::ReceiptKind, u64)],
    ) -> StreamRecord {
        s.receipts = receipts
            .iter()
            .map(|&(idx, kind, at_ns)| Receipt {
                tap: u128::from(idx) + 1,
                kind: kind as i32,
                at_ns,
            })
            .collect();
        s
    }

    #[test]
    fn notes_carry_the_index() {
        assert_eq!(index_of(&note_for(123_456)), Some(123_456));
        assert_eq!(index_of("thinking of you"), None);
        assert!(note_for(u64::MAX).chars().count() <= 80);
    }

    #[test]
    fn every_tap_once_on_its_three_streams_passes() {
        // Tap 0 from device 0 (to 2, 3, 1); tap 1 from device 3 (to 0, 1, 2).
        let sends = [sent(0, 0, Outcome::Ok), sent(1, 3, Outcome::Ok)];
        let streams = [
            stream(0, &[(1, 5_000)]),
            stream(1, &[(0, 4_000), (1, 5_100)]),
            stream(2, &[(0, 2_000), (1, 5_200)]),
            stream(3, &[(0, 2_500)]),
        ];
        let v = verify(4, &sends, &streams, false);
        assert!(v.check.passed(), "{}", v.check);
        assert_eq!(v.delivered.taps, 2);
        assert_eq!(v.latency.summary().count, 4, "two partner devices per tap");
        assert_eq!(v.delivered.window(), Duration::from_nanos(5_200));
        assert!(v.with_receipts.is_none());
    }

    #[test]
    fn losses_duplicates_and_strays_fail() {
        let sends = [
            sent(0, 0, Outcome::Ok),
            sent(1, 0, Outcome::Failed(tonic::Code::Unavailable)),
        ];
        let streams = [
            // Tap 0: missing on device 1, twice on device 2, once on device 3, and on device 0,
            // its own sender. Tap 1 (failed) reached only device 2: torn.
            stream(0, &[(0, 10)]),
            stream(2, &[(0, 10), (0, 20), (1, 30)]),
            stream(3, &[(0, 10), (7, 10)]),
        ];
        let v = verify(4, &sends, &streams, false);
        let c = &v.check;
        assert!(!c.passed());
        assert_eq!(v.delivered.taps, 0);
        assert_eq!((c.lost_taps, c.lost_deliveries), (1, 1));
        assert_eq!(c.duplicates, 1);
        assert_eq!(
            c.misdelivered, 2,
            "the sender's own stream, and an unknown index"
        );
        assert_eq!(c.partial, 1);
    }

    #[test]
    fn a_failed_send_that_reached_no_one_or_everyone_is_fine() {
        let sends = [
            sent(0, 0, Outcome::TimedOut),
            sent(1, 0, Outcome::Failed(tonic::Code::Internal)),
        ];
        let streams = [
            stream(1, &[(1, 10)]),
            stream(2, &[(1, 10)]),
            stream(3, &[(1, 10)]),
        ];
        let v = verify(4, &sends, &streams, false);
        assert!(v.check.passed(), "{}", v.check);
        assert_eq!(v.delivered.taps, 0, "only OK sends count");
    }

    #[test]
    fn every_tap_owes_one_delivered_receipt_to_each_sender_device() {
        use pb::ReceiptKind::{Delivered, Felt};
        // Tap 0 from device 0: delivered to 2, 3, 1; receipts back on 0 and 1, FELT reported.
        let sends = [sent(0, 0, Outcome::Ok)];
        let mut phone = stream(2, &[(0, 100)]);
        phone.reports.attention.push((0, Felt));
        let all = |own: &[(u64, pb::ReceiptKind, u64)]| {
            [
                with_receipts(stream(0, &[]), own),
                with_receipts(stream(1, &[(0, 120)]), own),
                phone.clone(),
                stream(3, &[(0, 110)]),
            ]
        };
        let v = verify(
            4,
            &sends,
            &all(&[(0, Delivered, 300), (0, Felt, 400)]),
            true,
        );
        assert!(v.check.passed(), "{}", v.check);
        assert_eq!(v.with_receipts.map(|w| w.taps), Some(1));
        assert_eq!(v.delivered_back.summary().count, 1);

        // No receipts at all: two DELIVERED and two FELT receipts are missing.
        let v = verify(4, &sends, &all(&[]), true);
        assert_eq!(v.check.lost_receipts, 4, "{}", v.check);
        assert_eq!(v.with_receipts.map(|w| w.taps), Some(0));
        // The same in the plain mix is fine.
        assert!(verify(4, &sends, &all(&[]), false).check.passed());

        // Twice on one device, and one on the partner's phone, which did not send it.
        let mut streams = all(&[(0, Delivered, 300), (0, Delivered, 301), (0, Felt, 400)]);
        streams[2] = with_receipts(phone.clone(), &[(0, Delivered, 302)]);
        let v = verify(4, &sends, &streams, true);
        assert_eq!(
            (v.check.duplicate_receipts, v.check.stray_receipts),
            (2, 1),
            "{}",
            v.check
        );
    }
}
