//! Load mode: every device holds its event stream open while taps go out through
//! `TapService.SendTap`, at a fixed rate or flat out, for a fixed time. Afterwards every tap is
//! checked: a tap counts as delivered when its `SendTap` returned OK (the server answers only
//! after the durable commit) and it arrived exactly once on each of its three recipient streams
//! (the partner's phone and watch, the sender's other device).
//!
//! Each tap's note carries its index (`bench <index>`); the send instant is kept by index on the
//! sending side, and every stream notes when each tap arrived, so latency is the time from just
//! before the `SendTap` call to the arrival on each of the partner's two devices.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::event_service_client::EventServiceClient;
use tapline_proto::v1::tap_service_client::TapServiceClient;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::fleet::{Authed, DeviceClients, Fleet, connect_many};
use crate::procfs;
use crate::stats::{Latencies, Summary};
use crate::target::{Server, Target};

/// Bound on one `SendTap` or `AckEvents` call.
const CALL_PATIENCE: Duration = Duration::from_secs(30);
/// Bound on opening a stream and reading its backlog.
const OPEN_PATIENCE: Duration = Duration::from_secs(60);
/// After the last send, how long the bench waits without any new arrival before it stops
/// waiting (what is missing then is reported as lost).
const DRAIN_STALL: Duration = Duration::from_secs(10);
/// Longest wait for deliveries after the last send returned.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// Extra wait after the last expected arrival, so a late duplicate is seen.
const DUPLICATE_GRACE: Duration = Duration::from_millis(200);

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
    /// Each stream acks its newest seq at most this often.
    pub ack_every: Duration,
    /// For a fixed rate: calls in flight at most; past it the schedule slips.
    pub max_in_flight: usize,
}

/// The clock every record is stamped with: nanoseconds since the run began.
struct Shared {
    start: Instant,
    /// Bench taps received on any stream so far.
    received: AtomicU64,
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

/// What one device's stream saw.
#[derive(Debug, Default)]
struct StreamRecord {
    device: usize,
    /// `(tap index, arrival ns)` for every bench tap, in arrival order.
    receipts: Vec<(u64, u64)>,
    /// Events whose seq was not the previous one plus one.
    seq_breaks: u64,
    /// Taps whose note was not the bench's.
    foreign: u64,
    /// Bench taps whose sender id or `from_self` flag was not what the sender implies.
    mislabelled: u64,
    /// Why the stream stopped before the bench stopped it.
    failure: Option<String>,
    acks: AckStats,
}

/// `AckEvents` calls of one stream.
#[derive(Debug, Default, Clone)]
struct AckStats {
    sent: u64,
    failed: u64,
    last_error: Option<String>,
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
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} lost taps / {} lost deliveries, {} duplicates, {} misdelivered, {} seq breaks, \
             {} torn, {} duplicate answers, {} foreign, {} mislabelled, {} stream failures)",
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
            self.stream_failures.len()
        )?;
        for failure in self.stream_failures.iter().take(5) {
            write!(f, "\n    stream: {failure}")?;
        }
        Ok(())
    }
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Against what.
    pub target: Target,
    /// How taps were paced.
    pub pace: Pace,
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
    /// Failed calls by gRPC code.
    pub failures: BTreeMap<String, u64>,
    /// Taps sent OK and received on all three recipient streams.
    pub delivered: u64,
    /// From the first call to the last full delivery of a counted tap.
    pub window: Duration,
    /// `delivered / window`.
    pub delivered_per_sec: f64,
    /// From the last answer to the last arrival.
    pub drain: Duration,
    /// Call to arrival on each of the partner's devices.
    pub latency: Summary,
    /// `SendTap` round trips of OK calls.
    pub round_trip: Summary,
    /// For a fixed rate: how late calls started against the schedule.
    pub lag: Option<Summary>,
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
    /// `AckEvents` calls made and failed.
    pub acks: (u64, u64),
    /// Wall time from the first send to the last arrival (for rates of acks).
    pub wall: Duration,
    /// The exactly-once check.
    pub check: Check,
    /// Load averages before and after.
    pub load: (String, String),
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
    let shared = Arc::new(Shared {
        start: Instant::now(),
        received: AtomicU64::new(0),
    });

    // Every device's stream, open and caught up, before the first tap.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(devices);
    let ids: Arc<Vec<String>> = Arc::new(fleet.devices.iter().map(|d| d.id.clone()).collect());
    let mut streams = JoinSet::new();
    for (d, c) in clients.iter().enumerate() {
        streams.spawn(receive(
            d,
            c.events.clone(),
            shared.clone(),
            ids.clone(),
            stop_rx.clone(),
            ready_tx.clone(),
            spec.ack_every,
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

    let cpu_before = server.cpu_time();
    let own_before = procfs::own_cpu_time().unwrap_or_default();
    let (machine_before, steal_before) = procfs::machine_cpu().unwrap_or_default();
    let wall_before = Instant::now();
    let (records, planned) = match spec.pace {
        Pace::Rate(rate) => send_at_rate(&clients, &shared, rate, spec).await,
        Pace::Flat(senders) => (send_flat_out(&clients, &shared, senders, spec).await, None),
    };
    let issued = records.len() as u64;
    let sent_ok = records.iter().filter(|r| r.outcome == Outcome::Ok).count() as u64;
    let last_answer = Instant::now();

    // Wait until every OK tap has arrived three times (or arrivals stall).
    let expected = 3 * sent_ok;
    let mut seen = shared.received.load(Ordering::Relaxed);
    let mut progress_at = Instant::now();
    while seen < expected
        && progress_at.elapsed() < DRAIN_STALL
        && last_answer.elapsed() < DRAIN_LIMIT
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now_seen = shared.received.load(Ordering::Relaxed);
        if now_seen != seen {
            seen = now_seen;
            progress_at = Instant::now();
        }
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

    let verified = verify(devices, &records, &stream_records);
    let wall = drained.duration_since(wall_before).as_secs_f64().max(1e-9);
    let server_cpu = cpu_after.saturating_sub(cpu_before);
    let window_ns = verified.last_full_ns.saturating_sub(verified.first_call_ns);
    let window = Duration::from_nanos(window_ns);
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
    let acks = stream_records
        .iter()
        .fold((0, 0), |(s, f), r| (s + r.acks.sent, f + r.acks.failed));
    if let Some(e) = stream_records
        .iter()
        .find_map(|r| r.acks.last_error.clone())
    {
        eprintln!("  note: an AckEvents call failed: {e}");
    }
    Ok(LoadReport {
        target: server.target,
        pace: spec.pace,
        couples: fleet.couples(),
        connections,
        duration: spec.duration,
        planned,
        issued,
        sent_ok,
        failures,
        delivered: verified.delivered,
        window,
        delivered_per_sec: if window_ns == 0 {
            0.0
        } else {
            verified.delivered as f64 / window.as_secs_f64()
        },
        drain: Duration::from_nanos(verified.last_full_ns.saturating_sub(verified.last_done_ns)),
        latency: verified.latency.summary(),
        round_trip: verified.round_trip.summary(),
        lag: verified.lag.map(|l| l.summary()),
        server_cpu,
        cpu_us_per_tap: if verified.delivered == 0 {
            0.0
        } else {
            server_cpu.as_secs_f64() * 1e6 / verified.delivered as f64
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
    })
}

/// Sends `rate` taps per second for the run's duration. Tap `i` is due at `i / rate` s; a 1 ms
/// timer sends what is due. When `max_in_flight` calls are outstanding the schedule slips (the
/// lag is recorded); what is still unsent at the end is left out. Returns the records and the
/// number of taps planned.
async fn send_at_rate(
    clients: &Arc<Vec<DeviceClients>>,
    shared: &Arc<Shared>,
    rate: u32,
    spec: &LoadSpec,
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
/// the run's duration is up. Tap `i` goes out from device `i % devices`.
async fn send_flat_out(
    clients: &Arc<Vec<DeviceClients>>,
    shared: &Arc<Shared>,
    senders: usize,
    spec: &LoadSpec,
) -> Vec<SendRecord> {
    let deadline = Instant::now() + spec.duration;
    let next = Arc::new(AtomicU64::new(0));
    let mut loops = JoinSet::new();
    for _ in 0..senders.max(1) {
        let (clients, shared, next) = (clients.clone(), shared.clone(), next.clone());
        loops.spawn(async move {
            let mut records = Vec::new();
            while Instant::now() < deadline {
                let idx = next.fetch_add(1, Ordering::Relaxed);
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
/// ready, then note every tap until told to stop. Acks run beside it. `ids` are the devices'
/// server ids: tap `i` comes from device `i % devices`, which the tap must name.
async fn receive(
    device: usize,
    mut events: EventServiceClient<Authed>,
    shared: Arc<Shared>,
    ids: Arc<Vec<String>>,
    mut stop: watch::Receiver<bool>,
    ready: mpsc::Sender<Result<(), String>>,
    ack_every: Duration,
) -> StreamRecord {
    let mut record = StreamRecord {
        device,
        ..StreamRecord::default()
    };
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
    let acker = tokio::spawn(ack_loop(events, seq_rx, stop.clone(), ack_every));
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => break,
            m = stream.message() => m,
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
        let at = shared.now_ns();
        if event.seq > 0 {
            if event.seq != last_seq + 1 {
                record.seq_breaks += 1;
            }
            last_seq = last_seq.max(event.seq);
            seq_tx.send_replace(last_seq);
        }
        if let Some(Payload::TapReceived(received)) = event.payload {
            let tap = received.tap.unwrap_or_default();
            match index_of(&tap.note) {
                Some(idx) => {
                    record.receipts.push((idx, at));
                    shared.received.fetch_add(1, Ordering::Relaxed);
                    let sender = (idx % ids.len() as u64) as usize;
                    // Slots 0-1 are one account, 2-3 the other: same half, same account.
                    let own = sender / 2 == device / 2;
                    if tap.sender_device_id != ids[sender] || received.from_self != own {
                        record.mislabelled += 1;
                    }
                }
                None => record.foreign += 1,
            }
        }
    }
    drop(seq_tx);
    record.acks = acker.await.unwrap_or_default();
    record
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

/// Acks the newest seq a stream has seen, at most once per `every`, until stopped.
async fn ack_loop(
    mut events: EventServiceClient<Authed>,
    mut seqs: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
    every: Duration,
) -> AckStats {
    let mut stats = AckStats::default();
    let mut acked = 0;
    loop {
        let newest = *seqs.borrow_and_update();
        if newest > acked {
            let call = events.ack_events(pb::AckEventsRequest { seq: newest });
            match tokio::time::timeout(CALL_PATIENCE, call).await {
                Ok(Ok(_)) => {
                    acked = newest;
                    stats.sent += 1;
                }
                Ok(Err(s)) => {
                    stats.failed += 1;
                    stats.last_error = Some(format!("{:?}: {}", s.code(), s.message()));
                }
                Err(_) => {
                    stats.failed += 1;
                    stats.last_error = Some("no answer in time".into());
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return stats,
        }
        tokio::select! {
            changed = seqs.changed() => if changed.is_err() { return stats },
            _ = stop.changed() => return stats,
        }
    }
}

/// The per-tap bookkeeping of [`verify`].
#[derive(Debug, Clone, Copy, Default)]
struct TapState {
    sent: Option<SendRecord>,
    /// Bit `r` set: arrived at recipient role `r` (partner phone, partner watch, own device).
    arrived: u8,
    last_arrival_ns: u64,
}

/// What [`verify`] found.
struct Verified {
    check: Check,
    delivered: u64,
    first_call_ns: u64,
    last_full_ns: u64,
    last_done_ns: u64,
    latency: Latencies,
    round_trip: Latencies,
    lag: Option<Latencies>,
}

/// Matches every arrival with its send: counts full deliveries and every breach of exactly-once.
fn verify(devices: usize, sends: &[SendRecord], streams: &[StreamRecord]) -> Verified {
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
    for stream in streams {
        check.seq_breaks += stream.seq_breaks;
        check.foreign += stream.foreign;
        check.mislabelled += stream.mislabelled;
        if let Some(f) = &stream.failure {
            check.stream_failures.push(f.clone());
        }
        for &(idx, at) in &stream.receipts {
            let Some(tap) = state.get_mut(idx as usize) else {
                check.misdelivered += 1;
                continue;
            };
            let Some(sent) = tap.sent else {
                check.misdelivered += 1;
                continue;
            };
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
            tap.last_arrival_ns = tap.last_arrival_ns.max(at);
            if role < 2 && sent.outcome == Outcome::Ok {
                latency.record(at.saturating_sub(sent.call_ns));
            }
        }
    }
    let mut delivered = 0;
    let mut first_call_ns = u64::MAX;
    let mut last_full_ns = 0;
    for tap in &state {
        let Some(sent) = tap.sent else { continue };
        match sent.outcome {
            Outcome::Ok if tap.arrived == 0b111 => {
                delivered += 1;
                first_call_ns = first_call_ns.min(sent.call_ns);
                last_full_ns = last_full_ns.max(tap.last_arrival_ns);
            }
            Outcome::Ok | Outcome::Duplicate => {
                if sent.outcome == Outcome::Ok {
                    check.lost_taps += 1;
                    check.lost_deliveries += u64::from(3 - tap.arrived.count_ones());
                }
            }
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
        first_call_ns: if delivered == 0 { 0 } else { first_call_ns },
        last_full_ns,
        last_done_ns,
        latency,
        round_trip,
        lag,
    }
}

/// Prints a run's figures.
pub fn print(r: &LoadReport) {
    println!(
        "load {} {} — {} couples ({} devices, {} connections), {} s",
        r.target,
        r.pace,
        r.couples,
        r.couples * 4,
        r.connections,
        r.duration.as_secs_f64()
    );
    let failed: u64 = r.failures.values().sum();
    let mut sent = format!(
        "  sent: {} calls, {} OK, {} failed",
        r.issued, r.sent_ok, failed
    );
    if !r.failures.is_empty() {
        sent.push_str(&format!(" {:?}", r.failures));
    }
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
        r.delivered,
        r.delivered_per_sec,
        r.window.as_secs_f64(),
        r.drain.as_secs_f64() * 1e3
    );
    println!("  send → partner receipt: {}", r.latency);
    println!("  SendTap round trip:     {}", r.round_trip);
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
        "  AckEvents: {} calls ({:.0}/s{}), {} failed",
        r.acks.0,
        r.acks.0 as f64 / r.wall.as_secs_f64().max(1e-9),
        if r.target == Target::Relay {
            ""
        } else {
            ", applied in the server's group commits"
        },
        r.acks.1
    );
    println!("  exactly once: {}", r.check);
    println!("  load average: {} before, {} after", r.load.0, r.load.1);
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

    fn stream(device: usize, receipts: &[(u64, u64)]) -> StreamRecord {
        StreamRecord {
            device,
            receipts: receipts.to_vec(),
            ..StreamRecord::default()
        }
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
        let v = verify(4, &sends, &streams);
        assert!(v.check.passed(), "{}", v.check);
        assert_eq!(v.delivered, 2);
        assert_eq!(v.latency.summary().count, 4, "two partner devices per tap");
        assert_eq!((v.first_call_ns, v.last_full_ns), (0, 5_200));
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
        let v = verify(4, &sends, &streams);
        let c = &v.check;
        assert!(!c.passed());
        assert_eq!(v.delivered, 0);
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
        let v = verify(4, &sends, &streams);
        assert!(v.check.passed(), "{}", v.check);
        assert_eq!(v.delivered, 0, "only OK sends count");
    }
}
