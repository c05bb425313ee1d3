//! Push mode: Web Push wake-ups from the real server to a fake push service inside the bench.
//!
//! The server is started with a VAPID key the bench makes (`--vapid-key-file`,
//! `--vapid-subject`) and `--push-allow-private-endpoints`, so the devices can register
//! endpoints on `http://127.0.0.1`. The fake push service is a plain HTTP/1.1 server on
//! 127.0.0.1 (keep-alive, one task per connection): it reads each request's head and its
//! `Content-Length` body (kept as bytes: nothing is parsed or decrypted while the run goes),
//! notes the instant, and answers `201 Created`. Every device registers its own endpoint, `/wp/<device number>`, so the path
//! says whom a push was for; all share one pair of subscriber keys.
//!
//! Two measurements per database, each on a fresh server:
//!
//! 1. **Commit → push latency.** Every device registers a Web Push target; the phones (even
//!    device numbers) also hold a `Subscribe` stream and ack what they receive, the watches
//!    (odd numbers) have no stream. Taps go out at a fixed rate from all four devices of
//!    every couple in turn, spread so that each watch's two partner taps per round come half
//!    a round apart; every tap reaches one live phone and one offline watch of the partner.
//!    After the run the bench reads each watch's inbox (it never acked, so it is all there)
//!    for the seq each partner tap got, and decrypts each push (RFC 8291, with the
//!    subscriber's keys) for the seq it announces. In arrival order a push covers its
//!    device's events after the previous push's seq up to its own; a push that covers new
//!    partner taps is a wake-up for them, measured as its arrival minus the `SendTap` answer
//!    of the earliest of them (the server answers only after the durable commit, so a push
//!    can arrive before the answer: the figure is signed). Taps that no push covered are
//!    counted, and so are pushes to the phones, which must not happen (any fails the run).
//! 2. **Worker throughput.** Many devices without a stream each get one pending wake-up (one
//!    tap per couple, from the first partner's phone, to its three other devices, all
//!    registered). While the taps go out the fake push service holds its answers (the worker
//!    is stuck on its first posts, the jobs pile up); then it answers, and the rate at which
//!    distinct devices' pushes arrive until all are in is the worker's.

use std::collections::HashSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::event_service_client::EventServiceClient;
use tapline_proto::v1::push_service_client::PushServiceClient;
use tapline_proto::v1::tap_service_client::TapServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use web_push_native::jwt_simple::algorithms::ES256KeyPair;
use web_push_native::p256;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::fleet::{Authed, Fleet, PER_COUPLE, authed, connect_many, patient};
use crate::mix::{Delivered, Tally};
use crate::procfs;
use crate::stats::{Latencies, Summary, ms};
use crate::target::{Env, Server, Stopped, Target};

/// The goals.
const GOAL_P99_MS: f64 = 50.0;
const GOAL_PUSHES_PER_SEC: f64 = 2_000.0;
/// The VAPID subject the server is given.
const VAPID_SUBJECT: &str = "mailto:bench@tapline.invalid";
/// Endpoint paths: `/wp/<device number>`.
const PATH_PREFIX: &str = "/wp/";
/// The fake push service's one answer.
const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n";
/// A request head longer than this ends the connection.
const MAX_HEAD: usize = 64 * 1024;
/// Bound on opening a stream and reading its backlog.
const OPEN_PATIENCE: Duration = Duration::from_secs(60);
/// Longest wait for pushes after the last answer.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// The throughput run stops waiting when no new device was pushed for this long.
const THROUGHPUT_STALL: Duration = Duration::from_secs(15);
/// The server gives up on a post after 10 s: the fake holds its answers no longer than this.
const HOLD_LIMIT: Duration = Duration::from_secs(8);
/// Set-up calls (RegisterPush, preload taps) in flight at once.
const SETUP_PARALLEL: usize = 64;

/// Flags of `tapline-bench push`.
#[derive(Debug, Clone, Args)]
pub struct PushOpts {
    /// Latency run: couples (four devices each; the two phones hold streams, the two watches
    /// have only a Web Push target).
    #[arg(long, default_value_t = 250)]
    pub couples: usize,
    /// Latency run: taps per second, all devices together.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// Latency run: seconds of sending (`0` skips the latency run).
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Latency run, one each (repeatable): what an offline watch does when pushed: none
    /// (stays asleep, never fetches: every later wake-up is the server's to time) or fetch
    /// (as the app's push handler: FetchEvents from its cursor, then AckEvents, no stream).
    /// Default: none, then fetch.
    #[arg(long = "woken", value_enum)]
    pub woken: Vec<Woken>,
    /// Latency run: after the last answer, wait until no push has come for this many seconds
    /// (longer than any grace or collapse period of the server, so late pushes are seen).
    #[arg(long, default_value_t = 8)]
    pub quiet_secs: u64,
    /// Throughput run: devices with one pending wake-up each, rounded up to whole couples of
    /// three recipients (`0` skips the throughput run).
    #[arg(long, default_value_t = 10_000)]
    pub pending_devices: usize,
    /// HTTP/2 connections the devices share.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Couples signed in at once during set-up.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
    /// Calls in flight at most in the latency run (past it the schedule slips).
    #[arg(long, default_value_t = 2048)]
    pub max_in_flight: usize,
}

/// What a pushed watch does in the latency run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Woken {
    /// Nothing: it stays asleep.
    None,
    /// Fetches what is pending and acks it, as the app's push handler does.
    Fetch,
}

impl std::fmt::Display for Woken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Woken::None => "none",
            Woken::Fetch => "fetch",
        })
    }
}

impl PushOpts {
    /// The woken modes to run, each once, in the order given.
    fn wokens(&self) -> Vec<Woken> {
        let mut out = Vec::new();
        for &w in &self.woken {
            if !out.contains(&w) {
                out.push(w);
            }
        }
        if out.is_empty() {
            out = vec![Woken::None, Woken::Fetch];
        }
        out
    }
}

/// What the latency run measured.
#[derive(Debug, Clone)]
pub struct LatencyReport {
    target: Target,
    woken: Woken,
    /// Woken watches' `FetchEvents` and `AckEvents` calls.
    wake_calls: Tally,
    couples: usize,
    rate: u32,
    duration: Duration,
    planned: u64,
    issued: u64,
    sent_ok: u64,
    failed: Tally,
    /// Taps answered OK that reached a watch as a partner's tap: one per tap (the partner's
    /// watch), each owed a wake-up.
    partner_taps: u64,
    /// Posts to the watches' endpoints.
    pushes_offline: u64,
    /// Posts to the phones' endpoints (they hold streams: expected 0).
    pushes_live: u64,
    /// Posts to no device's endpoint.
    pushes_unknown: u64,
    /// Pushes received between registering and the first tap.
    pushes_before: u64,
    /// Watch pushes whose body did not decrypt to a `seq`.
    undecryptable: u64,
    /// Watch pushes that covered at least one partner tap no earlier push covered.
    tap_wakeups: u64,
    /// Watch pushes that covered only other new events (the sender's own copies, receipts).
    other_wakeups: u64,
    /// Watch pushes that covered nothing new.
    repeats: u64,
    /// Partner taps covered by a push whose latency is measured from an earlier tap.
    collapsed: u64,
    /// Partner taps that no push covered.
    never_woken: u64,
    /// Per wake-up: its arrival minus the answer of the earliest partner tap it newly covers.
    per_wakeup: Signed,
    /// The same, from just before that tap's call (an upper bound of commit → push).
    from_call: Summary,
    /// Per partner tap: the arrival of the first push covering it minus its answer.
    per_tap: Signed,
    /// [`LatencyReport::per_wakeup`] for wake-ups of a device with no push in the
    /// [`QUIET_BEFORE`] before the tap.
    quiet: Signed,
    round_trip: Summary,
    /// How late calls started against the schedule.
    lag: Summary,
    /// Bench taps the phones' streams received, and their acks.
    live_taps: u64,
    acks: Tally,
    stream_failures: Vec<String>,
    /// Watches whose inbox could not be read after the run.
    inbox_failures: Vec<String>,
    /// From the last answer to the last push.
    drain: Duration,
    server_cpu: Duration,
    server_cores: f64,
    bench_cores: f64,
    machine_cores: f64,
    load: (String, String),
}

/// Signed durations (a push may arrive before the answer of the tap it is for), in ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signed {
    count: u64,
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Signed {
    fn of(mut ns: Vec<i64>) -> Signed {
        if ns.is_empty() {
            return Signed::default();
        }
        ns.sort_unstable();
        let n = ns.len();
        let q = |p: f64| ns[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1e6;
        Signed {
            count: n as u64,
            min: ns[0] as f64 / 1e6,
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: ns[n - 1] as f64 / 1e6,
        }
    }
}

impl std::fmt::Display for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 0 {
            return f.write_str("no samples");
        }
        write!(
            f,
            "p50 {} p90 {} p99 {} max {} ms (min {}, {} samples)",
            sms(self.p50),
            sms(self.p90),
            sms(self.p99),
            sms(self.max),
            sms(self.min),
            self.count
        )
    }
}

/// [`ms`] for a value that may be negative.
fn sms(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", ms(-v))
    } else {
        ms(v)
    }
}

/// What the throughput run measured.
#[derive(Debug, Clone)]
pub struct ThroughputReport {
    target: Target,
    couples: usize,
    /// Devices owed one wake-up (the taps answered OK, times three).
    expected: u64,
    preload_taps: Tally,
    /// From the first preload tap to the last answer.
    preload: Duration,
    /// Posts received while the answers were held.
    held: u64,
    /// The preload outlasted [`HOLD_LIMIT`]: the answers were released before it ended.
    hold_expired: bool,
    /// Distinct devices pushed.
    distinct: u64,
    /// Every post, repeats included.
    posts: u64,
    /// Posts to endpoints of no device owed a wake-up.
    stray: u64,
    /// From the release (or the first push, if later) to the last distinct device's push.
    window: Duration,
    /// From the release to the first push after it.
    first_after: Option<Duration>,
    server_cpu: Duration,
    server_cores: f64,
    machine_cores: f64,
}

impl ThroughputReport {
    fn cpu_us_per_push(&self) -> f64 {
        if self.distinct == 0 {
            0.0
        } else {
            self.server_cpu.as_secs_f64() * 1e6 / self.distinct as f64
        }
    }

    fn per_sec(&self) -> f64 {
        let w = self.window.as_secs_f64();
        if w > 0.0 {
            self.distinct as f64 / w
        } else {
            0.0
        }
    }
}

/// Both runs on one target.
#[derive(Debug, Clone, Default)]
pub struct PushResults {
    latency: Vec<LatencyReport>,
    throughput: Vec<ThroughputReport>,
}

impl PushResults {
    /// No push reached a device with a live stream.
    pub fn passed(&self) -> bool {
        self.latency.iter().all(|r| r.pushes_live == 0)
    }
}

/// The VAPID key file the servers get, removed on drop.
struct VapidFile(PathBuf);

impl VapidFile {
    fn create() -> Result<VapidFile, String> {
        let pem = ES256KeyPair::generate()
            .to_pem()
            .map_err(|e| format!("VAPID key: {e}"))?;
        let path = std::env::temp_dir().join(format!(
            "tapline-bench-vapid-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, pem).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(VapidFile(path))
    }

    /// The server flags that turn Web Push on, to 127.0.0.1.
    fn server_args(&self) -> Vec<OsString> {
        vec![
            "--vapid-key-file".into(),
            self.0.clone().into(),
            "--vapid-subject".into(),
            VAPID_SUBJECT.into(),
            "--push-allow-private-endpoints".into(),
        ]
    }
}

impl Drop for VapidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs both measurements on each target, prints each run and a closing table.
pub async fn run(env: &Env, targets: &[Target], opts: &PushOpts) -> Result<PushResults, String> {
    let vapid = VapidFile::create()?;
    let mut results = PushResults::default();
    for &target in targets {
        if target == Target::Relay {
            println!("push: the relay sends no pushes; skipped");
            continue;
        }
        if opts.duration_secs > 0 && opts.couples > 0 {
            for woken in opts.wokens() {
                let report = latency_run(env, target, &vapid, opts, woken).await?;
                print_latency(&report);
                println!();
                results.latency.push(report);
            }
        }
        if opts.pending_devices > 0 {
            let report = throughput_run(env, target, &vapid, opts).await?;
            print_throughput(&report);
            println!();
            results.throughput.push(report);
        }
    }
    print_summary(&results);
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// The fake push service.

/// One post the fake push service received.
#[derive(Debug, Clone)]
struct Hit {
    /// The device number in the path (`u32::MAX`: not one of ours).
    device: u32,
    /// Nanoseconds since the run's clock began.
    at_ns: u64,
    /// The encrypted body, when the fake keeps them (decrypted after the run).
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct FakeLog {
    hits: Vec<Hit>,
    seen: HashSet<u32>,
    last_ns: u64,
}

struct FakeState {
    start: Instant,
    /// Keep each post's body.
    keep_bodies: bool,
    log: Mutex<FakeLog>,
    /// Posts so far.
    posts: AtomicU64,
    /// Distinct devices posted to so far.
    distinct: AtomicU64,
    /// `true`: answers wait until it turns `false`.
    hold: watch::Sender<bool>,
    /// Watches to wake on a push to them, by device number.
    wake: std::sync::OnceLock<Vec<Option<Arc<Watch>>>>,
}

impl FakeState {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn note(&self, device: u32, at_ns: u64, body: Vec<u8>) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.hits.push(Hit {
            device,
            at_ns,
            body,
        });
        log.last_ns = log.last_ns.max(at_ns);
        if log.seen.insert(device) {
            self.distinct.fetch_add(1, Ordering::Relaxed);
        }
        self.posts.fetch_add(1, Ordering::Relaxed);
    }
}

/// A push service on 127.0.0.1 answering 201 to every post.
struct FakePush {
    base: String,
    state: Arc<FakeState>,
    accept: tokio::task::JoinHandle<()>,
}

impl FakePush {
    async fn start(start: Instant, keep_bodies: bool) -> Result<FakePush, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("fake push service: {e}"))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(FakeState {
            start,
            keep_bodies,
            log: Mutex::new(FakeLog::default()),
            posts: AtomicU64::new(0),
            distinct: AtomicU64::new(0),
            hold: watch::Sender::new(false),
            wake: std::sync::OnceLock::new(),
        });
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_connection(sock, shared.clone()));
            }
        });
        Ok(FakePush {
            base: format!("http://{addr}"),
            state,
            accept,
        })
    }

    /// Device `d`'s endpoint.
    fn endpoint(&self, d: usize) -> String {
        format!("{}{PATH_PREFIX}{d}", self.base)
    }

    /// Forgets what was received so far; returns how many posts that was.
    fn reset(&self) -> u64 {
        let mut log = self.state.log.lock().unwrap_or_else(|e| e.into_inner());
        let n = log.hits.len() as u64;
        *log = FakeLog::default();
        self.state.posts.store(0, Ordering::Relaxed);
        self.state.distinct.store(0, Ordering::Relaxed);
        n
    }

    fn hold(&self, hold: bool) {
        self.state.hold.send_replace(hold);
    }

    fn posts(&self) -> u64 {
        self.state.posts.load(Ordering::Relaxed)
    }

    fn distinct(&self) -> u64 {
        self.state.distinct.load(Ordering::Relaxed)
    }

    fn last_ns(&self) -> u64 {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_ns
    }

    fn take_hits(&self) -> Vec<Hit> {
        std::mem::take(
            &mut self
                .state
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .hits,
        )
    }
}

impl Drop for FakePush {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One keep-alive HTTP/1.1 connection: each request is noted when its body is in, then
/// answered (once the hold is off).
async fn serve_connection(mut sock: TcpStream, state: Arc<FakeState>) {
    let _ = sock.set_nodelay(true);
    let mut hold = state.hold.subscribe();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let (device, body) = parse_head(&buf[..head_end]);
        while buf.len() < head_end + body {
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let at_ns = state.now_ns();
        let kept = if state.keep_bodies {
            buf[head_end..head_end + body].to_vec()
        } else {
            Vec::new()
        };
        buf.drain(..head_end + body);
        state.note(device, at_ns, kept);
        if let Some(Some(w)) = state.wake.get().and_then(|t| t.get(device as usize)) {
            w.woken.notify_one();
        }
        if *hold.borrow_and_update() && hold.wait_for(|held| !*held).await.is_err() {
            return;
        }
        if sock.write_all(CREATED).await.is_err() {
            return;
        }
    }
}

/// The device number in a request head's path (`u32::MAX` if none) and its `Content-Length`.
fn parse_head(head: &[u8]) -> (u32, usize) {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let device = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.strip_prefix(PATH_PREFIX))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX);
    let body = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    (device, body)
}

// ---------------------------------------------------------------------------------------------
// Set-up shared by both runs.

/// The clients of one device.
#[derive(Clone)]
struct Device {
    taps: TapServiceClient<Authed>,
    events: EventServiceClient<Authed>,
    push: PushServiceClient<Authed>,
}

async fn devices(
    server: &Server,
    fleet: &Fleet,
    connections: usize,
) -> Result<Vec<Device>, String> {
    let n = fleet.devices.len();
    let channels = connect_many(server.addr, connections.clamp(1, n.max(1)), 16).await?;
    fleet
        .devices
        .iter()
        .enumerate()
        .map(|(d, cred)| {
            let a = authed(&channels[d % channels.len()], &cred.token)?;
            Ok(Device {
                taps: TapServiceClient::new(a.clone()),
                events: EventServiceClient::new(a.clone()),
                push: PushServiceClient::new(a),
            })
        })
        .collect()
}

/// The subscriber's private key and auth secret every device registers with (one pair for
/// all: the bench decrypts the pushes after the run).
fn subscriber() -> (p256::SecretKey, [u8; 16]) {
    let secret = p256::SecretKey::from_bytes(&[7u8; 32].into()).expect("a valid P-256 scalar");
    (secret, [5u8; 16])
}

/// Registers a Web Push target for each of `which` (device numbers) at its own endpoint.
async fn register(devices: &[Device], which: &[usize], fake: &FakePush) -> Result<(), String> {
    let (secret, auth) = subscriber();
    let p256dh = secret
        .public_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let permits = Arc::new(Semaphore::new(SETUP_PARALLEL));
    let mut tasks = JoinSet::new();
    for &d in which {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let mut client = devices[d].push.clone();
        let req = pb::RegisterPushRequest {
            target: Some(pb::register_push_request::Target::WebPush(
                pb::WebPushTarget {
                    endpoint: fake.endpoint(d),
                    p256dh: p256dh.clone(),
                    auth: auth.to_vec(),
                },
            )),
        };
        tasks.spawn(async move {
            let _permit = permit;
            patient(client.register_push(req)).await.map_err(|s| {
                format!(
                    "RegisterPush for device {d}: {:?}: {}",
                    s.code(),
                    s.message()
                )
            })
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// One `SendTap`; the instants are nanoseconds on `start`'s clock.
async fn send_tap(
    mut client: TapServiceClient<Authed>,
    note: String,
    start: Instant,
) -> (u64, u64, Result<(), tonic::Status>) {
    let req = pb::SendTapRequest {
        client_tap_id: uuid::Uuid::now_v7().to_string(),
        kind: pb::TapKind::Heartbeat as i32,
        rhythm: None,
        note,
    };
    let call_ns = start.elapsed().as_nanos() as u64;
    let answer = patient(client.send_tap(req)).await;
    let done_ns = start.elapsed().as_nanos() as u64;
    (call_ns, done_ns, answer.map(|_| ()))
}

/// Reports the server's warnings, as the other modes do.
fn report_log(target: Target, stopped: &Stopped) {
    if stopped.notable_lines > 0 {
        println!(
            "  {target} logged {} warning/error lines, the first:",
            stopped.notable_lines
        );
        for line in stopped.kept.iter().take(3) {
            let short: String = line.chars().take(300).collect();
            println!("    {short}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Commit → push latency.

/// A device with a live stream (the phones).
fn is_live(device: usize) -> bool {
    device.is_multiple_of(2)
}

/// The sender of tap `k` among `couples` couples: every couple's first partner's phone, then
/// every second partner's phone, then the first partners' watches, then the second's, so each
/// watch's two partner taps per round are half a round apart.
fn sender_of(k: u64, couples: usize) -> usize {
    const SLOTS: [usize; PER_COUPLE] = [0, 2, 1, 3];
    let c = couples as u64;
    PER_COUPLE * (k % c) as usize + SLOTS[((k / c) % PER_COUPLE as u64) as usize]
}

/// One tap as sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    idx: u64,
    call_ns: u64,
    done_ns: u64,
    lag_ns: u64,
    /// `None`: answered OK; else the failure's code.
    failed: Option<tonic::Code>,
}

impl Sent {
    fn ok(&self) -> bool {
        self.failed.is_none()
    }
}

/// One event in a watch's inbox, read after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InboxEvent {
    seq: u64,
    /// A bench tap from the partner: its index.
    partner_tap: Option<u64>,
}

/// What one phone's stream saw.
#[derive(Debug, Default)]
struct StreamTally {
    taps: u64,
    acks: Tally,
    failure: Option<String>,
}

async fn latency_run(
    env: &Env,
    target: Target,
    vapid: &VapidFile,
    opts: &PushOpts,
    woken: Woken,
) -> Result<LatencyReport, String> {
    let server =
        Server::start_with(env, target, Delivered::default(), &vapid.server_args()).await?;
    let outcome = latency_on(&server, target, opts, woken).await;
    let stopped = server.stop().await;
    report_log(target, &stopped);
    outcome
}

async fn latency_on(
    server: &Server,
    target: Target,
    opts: &PushOpts,
    woken: Woken,
) -> Result<LatencyReport, String> {
    let start = Instant::now();
    let fake = FakePush::start(start, true).await?;
    let fleet = Fleet::create(target, server.addr, opts.couples, opts.setup_concurrency).await?;
    let n = fleet.devices.len();
    let couples = fleet.couples();
    let devices = devices(server, &fleet, opts.connections).await?;
    let all: Vec<usize> = (0..n).collect();
    register(&devices, &all, &fake).await?;

    // The phones' streams, open and caught up before the first tap.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(n.max(1));
    let mut streams = JoinSet::new();
    for d in (0..n).filter(|&d| is_live(d)) {
        streams.spawn(live_stream(
            d,
            devices[d].events.clone(),
            stop_rx.clone(),
            ready_tx.clone(),
        ));
    }
    drop(ready_tx);
    for _ in 0..n.div_ceil(2) {
        match tokio::time::timeout(OPEN_PATIENCE, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(format!("opening a stream: {e}")),
            Ok(None) | Err(_) => return Err("streams did not all open".into()),
        }
    }
    // The watches, woken by the fake push service when they fetch.
    let watches: Vec<Arc<Watch>> = (0..n)
        .filter(|&d| !is_live(d))
        .map(|d| Arc::new(Watch::new(d)))
        .collect();
    let mut wakers = JoinSet::new();
    if woken == Woken::Fetch {
        let mut table: Vec<Option<Arc<Watch>>> = vec![None; n];
        for w in &watches {
            table[w.device] = Some(w.clone());
            wakers.spawn(wake_loop(
                w.clone(),
                devices[w.device].events.clone(),
                stop_rx.clone(),
                start,
            ));
        }
        let _ = fake.state.wake.set(table);
    }
    // Whatever set-up caused (nothing is expected) is not part of the run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pushes_before = fake.reset();

    let load_before = procfs::load_average();
    let cpu_before = server.cpu_time();
    let own_before = procfs::own_cpu_time().unwrap_or_default();
    let (machine_before, _) = procfs::machine_cpu().unwrap_or_default();
    let wall_before = Instant::now();

    let rate = u64::from(opts.rate.max(1));
    let planned = rate * opts.duration_secs;
    let records: Arc<Mutex<Vec<Sent>>> = Arc::new(Mutex::new(Vec::with_capacity(planned as usize)));
    let in_flight = Arc::new(Semaphore::new(opts.max_in_flight.max(1)));
    let begin = Instant::now();
    let begin_ns = begin.duration_since(start).as_nanos() as u64;
    let mut timer = tokio::time::interval(Duration::from_millis(1));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut issued = 0u64;
    while issued < planned {
        timer.tick().await;
        let due =
            ((begin.elapsed().as_nanos() as u64).saturating_mul(rate) / 1_000_000_000).min(planned);
        while issued < due {
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let idx = issued;
            issued += 1;
            let sender = sender_of(idx, couples);
            let client = devices[sender].taps.clone();
            let scheduled_ns = begin_ns + idx * 1_000_000_000 / rate;
            let records = records.clone();
            tokio::spawn(async move {
                let (call_ns, done_ns, answer) = send_tap(client, note_for(idx), start).await;
                let sent = Sent {
                    idx,
                    call_ns,
                    done_ns,
                    lag_ns: call_ns.saturating_sub(scheduled_ns),
                    failed: answer.err().map(|s| s.code()),
                };
                records.lock().unwrap_or_else(|e| e.into_inner()).push(sent);
                drop(permit);
            });
        }
    }
    let _ = in_flight
        .acquire_many(u32::try_from(opts.max_in_flight.max(1)).unwrap_or(u32::MAX))
        .await;
    let last_answer_ns = start.elapsed().as_nanos() as u64;

    // Until the pushes are quiet, and long enough after the last answer that a push held
    // back by a grace or collapse period has come too.
    let quiet_ns = opts.quiet_secs * 1_000_000_000;
    let give_up = Instant::now() + DRAIN_LIMIT;
    loop {
        let now_ns = start.elapsed().as_nanos() as u64;
        let quiet_since = fake.last_ns().max(last_answer_ns);
        if now_ns.saturating_sub(quiet_since) >= quiet_ns || Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = Instant::now();
    let cpu_after = server.cpu_time();
    let own_after = procfs::own_cpu_time().unwrap_or_default();
    let (machine_after, _) = procfs::machine_cpu().unwrap_or_default();
    // What came in while the phones were live; then the streams close.
    let hits = fake.take_hits();
    let _ = stop_tx.send(true);
    let mut live_taps = 0;
    let mut acks = Tally::default();
    let mut stream_failures = Vec::new();
    while let Some(done) = streams.join_next().await {
        let t = done.map_err(|e| format!("stream task: {e}"))?;
        live_taps += t.taps;
        acks.merge(&t.acks);
        stream_failures.extend(t.failure);
    }

    while wakers.join_next().await.is_some() {}
    // Which seq each partner tap got on each watch: what the watches fetched when woken,
    // and the rest of their inboxes (never acked).
    let inbox_failures = read_inboxes(&devices, &watches).await;

    let mut sends = std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()));
    sends.sort_unstable_by_key(|s| s.idx);
    let mut failed = Tally::default();
    let mut round_trip = Latencies::default();
    let mut lag = Latencies::default();
    for s in &sends {
        lag.record(s.lag_ns);
        match s.failed {
            None => {
                failed.ok += 1;
                round_trip.record(s.done_ns - s.call_ns);
            }
            Some(code) => *failed.failed.entry(format!("{code:?}")).or_insert(0) += 1,
        }
    }
    let (secret, auth) = subscriber();
    let auth = web_push_native::Auth::from(auth);
    let mut pushes: Vec<Vec<(u64, Option<u64>)>> = vec![Vec::new(); n];
    let mut m = Matched::default();
    for h in &hits {
        m.last_push_ns = m.last_push_ns.max(h.at_ns);
        let d = h.device as usize;
        if d >= n {
            m.pushes_unknown += 1;
        } else if is_live(d) {
            m.pushes_live += 1;
        } else {
            m.pushes_offline += 1;
            pushes[d].push((h.at_ns, pushed_seq(&h.body, &secret, &auth)));
        }
    }
    let mut wake_calls = Tally::default();
    for w in &watches {
        let log = w.log();
        wake_calls.merge(&log.calls);
        m.add_watch(&sends, &log.inbox, &log.fetches, &mut pushes[w.device]);
    }
    let wall = drained.duration_since(wall_before).as_secs_f64().max(1e-9);
    let server_cpu = cpu_after.saturating_sub(cpu_before);
    Ok(LatencyReport {
        target,
        woken,
        wake_calls,
        couples,
        rate: opts.rate,
        duration: Duration::from_secs(opts.duration_secs),
        planned,
        issued,
        sent_ok: failed.ok,
        failed,
        partner_taps: m.partner_taps,
        pushes_offline: m.pushes_offline,
        pushes_live: m.pushes_live,
        pushes_unknown: m.pushes_unknown,
        pushes_before,
        undecryptable: m.undecryptable,
        tap_wakeups: m.tap_wakeups,
        other_wakeups: m.other_wakeups,
        repeats: m.repeats,
        collapsed: m.collapsed,
        never_woken: m.never_woken,
        per_wakeup: Signed::of(std::mem::take(&mut m.per_wakeup)),
        from_call: m.from_call.summary(),
        per_tap: Signed::of(std::mem::take(&mut m.per_tap)),
        quiet: Signed::of(std::mem::take(&mut m.quiet)),
        round_trip: round_trip.summary(),
        lag: lag.summary(),
        live_taps,
        acks,
        stream_failures,
        inbox_failures,
        drain: Duration::from_nanos(m.last_push_ns.saturating_sub(last_answer_ns)),
        server_cpu,
        server_cores: server_cpu.as_secs_f64() / wall,
        bench_cores: own_after.saturating_sub(own_before).as_secs_f64() / wall,
        machine_cores: machine_after.saturating_sub(machine_before).as_secs_f64() / wall,
        load: (load_before, procfs::load_average()),
    })
}

/// The note of latency tap `idx`.
fn note_for(idx: u64) -> String {
    format!("bench push {idx}")
}

/// The index in a latency tap's note.
fn index_of(note: &str) -> Option<u64> {
    note.strip_prefix("bench push ")?.parse().ok()
}

/// The `seq` a push announces, from its decrypted body.
fn pushed_seq(body: &[u8], secret: &p256::SecretKey, auth: &web_push_native::Auth) -> Option<u64> {
    let plain = web_push_native::decrypt(body.to_vec(), secret, auth).ok()?;
    serde_json::from_slice::<serde_json::Value>(&plain)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// The rest of every watch's inbox, from where its own fetches left it (a watch that is
/// never woken has all of it), `SETUP_PARALLEL / 2` at a time. Failures are returned apart.
async fn read_inboxes(devices: &[Device], watches: &[Arc<Watch>]) -> Vec<String> {
    let permits = Arc::new(Semaphore::new(SETUP_PARALLEL / 2));
    let mut tasks = JoinSet::new();
    for w in watches {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (w, events) = (w.clone(), devices[w.device].events.clone());
        tasks.spawn(async move {
            let _permit = permit;
            w.fetch(events, false, Instant::now())
                .await
                .map_err(|e| format!("device {}: {e}", w.device))
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(e.to_string()),
        }
    }
    failures
}

/// What a watch has fetched of its inbox.
#[derive(Debug, Default)]
struct WatchLog {
    /// The newest seq fetched.
    cursor: u64,
    /// Every event fetched, in seq order.
    inbox: Vec<InboxEvent>,
    /// Fetches made when woken: (when done, cursor then).
    fetches: Vec<(u64, u64)>,
    /// `FetchEvents` and `AckEvents` calls when woken.
    calls: Tally,
}

/// An offline watch: its number, a wake-up signal from the fake push service, and what it
/// fetched.
struct Watch {
    device: usize,
    woken: tokio::sync::Notify,
    log: Mutex<WatchLog>,
}

impl Watch {
    fn new(device: usize) -> Watch {
        Watch {
            device,
            woken: tokio::sync::Notify::new(),
            log: Mutex::new(WatchLog::default()),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, WatchLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the app does on a wake-up (the core's `handle_push`): `FetchEvents` from its
    /// cursor until nothing more is waiting, then, when `ack`, `AckEvents` up to the newest.
    /// The instants are on `start`'s clock.
    async fn fetch(
        &self,
        mut events: EventServiceClient<Authed>,
        ack: bool,
        start: Instant,
    ) -> Result<(), String> {
        let mut after = self.log().cursor;
        loop {
            let answer = patient(events.fetch_events(pb::FetchEventsRequest {
                after_seq: after,
                limit: 500,
            }))
            .await;
            if ack {
                self.log().calls.record(&answer);
            }
            let page =
                answer.map_err(|s| format!("FetchEvents: {:?}: {}", s.code(), s.message()))?;
            let mut log = self.log();
            for e in &page.events {
                if e.seq <= log.cursor {
                    continue;
                }
                log.cursor = e.seq;
                log.inbox.push(InboxEvent {
                    seq: e.seq,
                    partner_tap: match &e.payload {
                        Some(Payload::TapReceived(r)) if !r.from_self => {
                            r.tap.as_ref().and_then(|t| index_of(&t.note))
                        }
                        _ => None,
                    },
                });
            }
            after = log.cursor;
            drop(log);
            if !page.has_more {
                break;
            }
        }
        if ack {
            let answer = patient(events.ack_events(pb::AckEventsRequest { seq: after })).await;
            let mut log = self.log();
            log.calls.record(&answer);
            log.fetches.push((start.elapsed().as_nanos() as u64, after));
        }
        Ok(())
    }
}

/// A woken watch: fetches and acks after every push (one fetch at a time; pushes during a
/// fetch make one more), until stopped.
async fn wake_loop(
    watch: Arc<Watch>,
    events: EventServiceClient<Authed>,
    mut stop: watch::Receiver<bool>,
    start: Instant,
) {
    loop {
        tokio::select! {
            _ = watch.woken.notified() => {}
            _ = stop.changed() => return,
        }
        // A failure is counted in the watch's calls; the next push tries again.
        let _ = watch.fetch(events.clone(), true, start).await;
    }
}

/// A phone: subscribes, reads its backlog, then counts bench taps and acks the newest seq
/// (one call in flight, at once) until stopped.
async fn live_stream(
    device: usize,
    mut events: EventServiceClient<Authed>,
    mut stop: watch::Receiver<bool>,
    ready: mpsc::Sender<Result<(), String>>,
) -> StreamTally {
    let mut tally = StreamTally::default();
    let opening = async {
        let mut stream = events
            .subscribe(pb::SubscribeRequest { after_seq: 0 })
            .await
            .map_err(|s| format!("subscribe: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        let mut last = 0u64;
        loop {
            match stream.message().await {
                Ok(Some(pb::SubscribeResponse { event: Some(e) })) => match e.payload {
                    Some(Payload::CaughtUp(c)) => return Ok((stream, last.max(c.last_seq))),
                    _ => last = last.max(e.seq),
                },
                Ok(Some(_)) => {}
                Ok(None) => return Err("the stream ended before caught_up".to_owned()),
                Err(s) => return Err(format!("backlog: {:?}: {}", s.code(), s.message())),
            }
        }
    };
    let (mut stream, last) = match tokio::time::timeout(OPEN_PATIENCE, opening).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => {
            let _ = ready.send(Err(format!("device {device}: {e}"))).await;
            tally.failure = Some(e);
            return tally;
        }
        Err(_) => {
            let e = format!("device {device}: no caught_up in time");
            let _ = ready.send(Err(e.clone())).await;
            tally.failure = Some(e);
            return tally;
        }
    };
    let (seq_tx, seq_rx) = watch::channel(last);
    let acker = tokio::spawn(ack_loop(events, seq_rx, stop.clone()));
    let _ = ready.send(Ok(())).await;
    drop(ready);
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => break,
            m = stream.message() => m,
        };
        match message {
            Ok(Some(pb::SubscribeResponse { event: Some(e) })) => {
                if matches!(e.payload, Some(Payload::TapReceived(_))) {
                    tally.taps += 1;
                }
                if e.seq > 0 {
                    seq_tx.send_if_modified(|s| {
                        let newer = e.seq > *s;
                        *s = (*s).max(e.seq);
                        newer
                    });
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                tally.failure = Some(format!("device {device}: the stream ended"));
                break;
            }
            Err(s) => {
                tally.failure = Some(format!("device {device}: {:?}: {}", s.code(), s.message()));
                break;
            }
        }
    }
    drop(seq_tx);
    tally.acks = acker.await.unwrap_or_default();
    tally
}

/// Acks the newest seq seen, one call at a time, until stopped.
async fn ack_loop(
    mut events: EventServiceClient<Authed>,
    mut seqs: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
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
        tokio::select! {
            changed = seqs.changed() => if changed.is_err() { return tally },
            _ = stop.changed() => return tally,
        }
    }
}

/// A device counts as quiet for a tap when no push reached it in this long before the tap's
/// answer.
const QUIET_BEFORE: Duration = Duration::from_secs(10);

/// What the matching found, over all watches.
#[derive(Default)]
struct Matched {
    partner_taps: u64,
    pushes_offline: u64,
    pushes_live: u64,
    pushes_unknown: u64,
    undecryptable: u64,
    tap_wakeups: u64,
    other_wakeups: u64,
    repeats: u64,
    collapsed: u64,
    never_woken: u64,
    per_wakeup: Vec<i64>,
    from_call: Latencies,
    per_tap: Vec<i64>,
    quiet: Vec<i64>,
    last_push_ns: u64,
}

impl Matched {
    /// One watch: `inbox` in seq order, `fetched` the (completion, cursor) of the fetches it
    /// made when woken, in order, `pushes` as (arrival, announced seq). In arrival order, a
    /// push covers the events after what the watch had (the previous push's seq, or what it
    /// fetched before the push arrived) up to its own; its latency is measured from the
    /// earliest-answered partner tap among them. Partner taps fetched without a push of
    /// their own count as collapsed. `sends` is sorted by index.
    fn add_watch(
        &mut self,
        sends: &[Sent],
        inbox: &[InboxEvent],
        fetched: &[(u64, u64)],
        pushes: &mut [(u64, Option<u64>)],
    ) {
        let sent = |idx: u64| {
            sends
                .binary_search_by_key(&idx, |s| s.idx)
                .ok()
                .map(|i| &sends[i])
                .filter(|s| s.ok())
        };
        let taps: Vec<(u64, &Sent)> = inbox
            .iter()
            .filter_map(|e| Some((e.seq, sent(e.partner_tap?)?)))
            .collect();
        self.partner_taps += taps.len() as u64;
        pushes.sort_unstable_by_key(|&(at, _)| at);
        let quiet_ns = QUIET_BEFORE.as_nanos() as u64;
        let (mut covered, mut next, mut f) = (0u64, 0usize, 0usize);
        let mut previous: Option<u64> = None;
        // What a fetch brought: the watch has it, without a push of its own.
        let skip_fetched = |covered: &mut u64, next: &mut usize, upto: u64| {
            *covered = (*covered).max(upto);
            let from = *next;
            while *next < taps.len() && taps[*next].0 <= *covered {
                *next += 1;
            }
            (*next - from) as u64
        };
        for &(at, seq) in pushes.iter() {
            while f < fetched.len() && fetched[f].0 <= at {
                self.collapsed += skip_fetched(&mut covered, &mut next, fetched[f].1);
                f += 1;
            }
            let prev = previous.replace(at);
            let Some(seq) = seq else {
                self.undecryptable += 1;
                continue;
            };
            if seq <= covered {
                self.repeats += 1;
                continue;
            }
            covered = seq;
            let from = next;
            while next < taps.len() && taps[next].0 <= seq {
                next += 1;
            }
            let new = &taps[from..next];
            let Some(first) = new.iter().map(|&(_, s)| s).min_by_key(|s| s.done_ns) else {
                self.other_wakeups += 1;
                continue;
            };
            self.tap_wakeups += 1;
            let latency = at as i64 - first.done_ns as i64;
            self.per_wakeup.push(latency);
            self.from_call.record(at.saturating_sub(first.call_ns));
            if prev.is_none_or(|p| p + quiet_ns < first.done_ns) {
                self.quiet.push(latency);
            }
            self.collapsed += new.len() as u64 - 1;
            self.per_tap
                .extend(new.iter().map(|&(_, s)| at as i64 - s.done_ns as i64));
        }
        if let Some(&(_, last)) = fetched.last() {
            self.collapsed += skip_fetched(&mut covered, &mut next, last);
        }
        self.never_woken += (taps.len() - next) as u64;
    }
}

fn print_latency(r: &LatencyReport) {
    println!(
        "push {} latency, woken watches: {} — {} couples ({} phones with a live stream that acks, {} watches with only a Web Push target), {}/s for {} s",
        r.target,
        r.woken,
        r.couples,
        r.couples * 2,
        r.couples * 2,
        r.rate,
        r.duration.as_secs()
    );
    println!(
        "  sent: {} calls, {} OK, {} failed{}; {} of {} scheduled taps left unsent; schedule slip {}",
        r.issued,
        r.sent_ok,
        r.failed.failures(),
        if r.failed.failed.is_empty() {
            String::new()
        } else {
            format!(" {:?}", r.failed.failed)
        },
        r.planned.saturating_sub(r.issued),
        r.planned,
        r.lag
    );
    println!(
        "  offline devices: {} partner taps reached a watch; {} pushes to the watches: {} woke for new partner taps ({} more taps collapsed into them), {} for other events only (own copies, receipts), {} repeats, {} undecryptable",
        r.partner_taps,
        r.pushes_offline,
        r.tap_wakeups,
        r.collapsed,
        r.other_wakeups,
        r.repeats,
        r.undecryptable
    );
    println!(
        "  partner taps never woken for: {}{}",
        r.never_woken,
        if r.inbox_failures.is_empty() {
            String::new()
        } else {
            format!(
                " ({} watch inboxes unreadable: {})",
                r.inbox_failures.len(),
                r.inbox_failures[0]
            )
        }
    );
    if r.woken == Woken::Fetch {
        println!(
            "  woken watches: FetchEvents and AckEvents {} OK, {} failed{}",
            r.wake_calls.ok,
            r.wake_calls.failures(),
            r.wake_calls
                .last_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (last: {e})"))
        );
    }
    println!(
        "  pushes to live devices: {} (expected 0: {}); to unknown endpoints: {}; before the first tap: {}",
        r.pushes_live,
        if r.pushes_live == 0 { "OK" } else { "FAILED" },
        r.pushes_unknown,
        r.pushes_before
    );
    println!(
        "  SendTap answer → push, per wake-up (from its earliest new tap): {}",
        r.per_wakeup
    );
    println!(
        "  SendTap call → push, the same wake-ups:                        {}",
        r.from_call
    );
    println!(
        "  SendTap answer → push, per partner tap:                        {}",
        r.per_tap
    );
    println!(
        "  SendTap answer → push, wake-ups of a device with no push in the {} s before: {}",
        QUIET_BEFORE.as_secs(),
        r.quiet
    );
    println!(
        "  goal p99 ≤ {} ms (per wake-up): {}",
        GOAL_P99_MS,
        verdict(r.per_wakeup.count > 0 && r.per_wakeup.p99 <= GOAL_P99_MS)
    );
    println!("  SendTap round trip: {}", r.round_trip);
    println!(
        "  live streams: {} bench taps received, AckEvents {} OK, {} failed{}",
        r.live_taps,
        r.acks.ok,
        r.acks.failures(),
        if r.stream_failures.is_empty() {
            String::new()
        } else {
            format!(
                "; {} streams failed: {}",
                r.stream_failures.len(),
                r.stream_failures[0]
            )
        }
    );
    println!(
        "  last push {:.0} ms after the last answer; server {:.2} s CPU ({:.2} cores), bench {:.2} cores, machine {:.2} cores busy",
        r.drain.as_secs_f64() * 1e3,
        r.server_cpu.as_secs_f64(),
        r.server_cores,
        r.bench_cores,
        r.machine_cores
    );
    println!("  load average: {} before, {} after", r.load.0, r.load.1);
}

// ---------------------------------------------------------------------------------------------
// 2. Worker throughput.

async fn throughput_run(
    env: &Env,
    target: Target,
    vapid: &VapidFile,
    opts: &PushOpts,
) -> Result<ThroughputReport, String> {
    let server =
        Server::start_with(env, target, Delivered::default(), &vapid.server_args()).await?;
    let outcome = throughput_on(&server, target, opts).await;
    let stopped = server.stop().await;
    report_log(target, &stopped);
    outcome
}

async fn throughput_on(
    server: &Server,
    target: Target,
    opts: &PushOpts,
) -> Result<ThroughputReport, String> {
    let start = Instant::now();
    let fake = FakePush::start(start, false).await?;
    let couples = opts.pending_devices.div_ceil(3);
    let set_up = Instant::now();
    let fleet = Fleet::create(target, server.addr, couples, opts.setup_concurrency).await?;
    let devices = devices(server, &fleet, opts.connections).await?;
    // The first partner's phone taps; its three recipients are registered, it is not.
    let recipients: Vec<usize> = (0..couples)
        .flat_map(|c| (1..PER_COUPLE).map(move |s| PER_COUPLE * c + s))
        .collect();
    register(&devices, &recipients, &fake).await?;
    println!(
        "push {target} throughput: {couples} couples signed in, {} targets registered in {:.1} s",
        recipients.len(),
        set_up.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    fake.reset();

    // The preload: one tap per couple, answers held at the fake meanwhile (no longer than
    // the server waits for one).
    fake.hold(true);
    let preload_start = Instant::now();
    let expiry = {
        let state = fake.state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(HOLD_LIMIT).await;
            state.hold.send_replace(false);
        })
    };
    let permits = Arc::new(Semaphore::new(SETUP_PARALLEL * 4));
    let mut tasks = JoinSet::new();
    for c in 0..couples {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let client = devices[PER_COUPLE * c].taps.clone();
        tasks.spawn(async move {
            let _permit = permit;
            send_tap(client, format!("bench wake {c}"), start).await.2
        });
    }
    let mut preload_taps = Tally::default();
    while let Some(done) = tasks.join_next().await {
        preload_taps.record(&done.map_err(|e| e.to_string())?);
    }
    let preload = preload_start.elapsed();
    let held = fake.posts();
    let cpu_before = server.cpu_time();
    let (machine_before, _) = procfs::machine_cpu().unwrap_or_default();
    let release_ns = start.elapsed().as_nanos() as u64;
    let release = Instant::now();
    expiry.abort();
    let hold_expired = !fake.state.hold.send_replace(false);

    let expected = 3 * preload_taps.ok;
    let give_up = release
        + DRAIN_LIMIT.max(Duration::from_secs(
            // A slow worker: allow 100 pushes/s at least.
            expected / 100,
        ));
    let mut last_distinct = fake.distinct();
    let mut progress_at = Instant::now();
    while fake.distinct() < expected && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let d = fake.distinct();
        if d != last_distinct {
            (last_distinct, progress_at) = (d, Instant::now());
        } else if progress_at.elapsed() > THROUGHPUT_STALL {
            break;
        }
    }
    let done = Instant::now();
    let cpu_after = server.cpu_time();
    let (machine_after, _) = procfs::machine_cpu().unwrap_or_default();
    // A moment for repeats to show.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let hits = fake.take_hits();
    let owed: HashSet<u32> = recipients.iter().map(|&d| d as u32).collect();
    let mut seen: HashSet<u32> = HashSet::new();
    let mut first_ns = None;
    let mut last_new_ns = 0;
    let mut stray = 0;
    for h in &hits {
        if !owed.contains(&h.device) {
            stray += 1;
            continue;
        }
        if h.at_ns >= release_ns {
            first_ns = Some(first_ns.map_or(h.at_ns, |f: u64| f.min(h.at_ns)));
        }
        if seen.insert(h.device) {
            last_new_ns = last_new_ns.max(h.at_ns);
        }
    }
    // Posts held until the release count from it; without any, from the first push.
    let window_start = match first_ns {
        Some(first) if held == 0 => first,
        _ => release_ns,
    };
    let wall = done.duration_since(release).as_secs_f64().max(1e-9);
    let server_cpu = cpu_after.saturating_sub(cpu_before);
    Ok(ThroughputReport {
        target,
        couples,
        expected,
        preload_taps,
        preload,
        held,
        hold_expired,
        distinct: seen.len() as u64,
        posts: hits.len() as u64,
        stray,
        window: Duration::from_nanos(last_new_ns.saturating_sub(window_start)),
        first_after: first_ns.map(|f| Duration::from_nanos(f.saturating_sub(release_ns))),
        server_cpu,
        server_cores: server_cpu.as_secs_f64() / wall,
        machine_cores: machine_after.saturating_sub(machine_before).as_secs_f64() / wall,
    })
}

fn print_throughput(r: &ThroughputReport) {
    println!(
        "push {} worker throughput — {} devices without a stream, one pending wake-up each ({} couples, one tap each)",
        r.target, r.expected, r.couples
    );
    println!(
        "  preload: {} taps OK, {} failed, in {:.2} s; {} posts arrived (and were held) meanwhile",
        r.preload_taps.ok,
        r.preload_taps.failures(),
        r.preload.as_secs_f64(),
        r.held
    );
    if r.hold_expired {
        println!(
            "  note: the preload took longer than {} s, so the fake answered before it ended (the rate below includes the end of the preload)",
            HOLD_LIMIT.as_secs()
        );
    }
    println!(
        "  after the release: {} of {} devices pushed ({} posts in all, {} stray) in {:.2} s = {:.0} pushes/s{}",
        r.distinct,
        r.expected,
        r.posts,
        r.stray,
        r.window.as_secs_f64(),
        r.per_sec(),
        match r.first_after {
            Some(f) if r.held == 0 => format!(
                " (the first push {} ms after the release)",
                ms(f.as_secs_f64() * 1e3)
            ),
            _ => String::new(),
        }
    );
    println!(
        "  goal ≥ {} pushes/s: {}",
        GOAL_PUSHES_PER_SEC,
        verdict(r.distinct == r.expected && r.per_sec() >= GOAL_PUSHES_PER_SEC)
    );
    println!(
        "  server {:.2} s CPU = {:.0} µs per push ({:.2} cores); machine {:.2} cores busy",
        r.server_cpu.as_secs_f64(),
        r.cpu_us_per_push(),
        r.server_cores,
        r.machine_cores
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

/// The closing Markdown tables.
fn print_summary(results: &PushResults) {
    if !results.latency.is_empty() {
        println!(
            "| target | woken watches | answer → push per wake-up p50 / p99 / max ms | call → push p99 ms | first wake-up of a quiet device p50 / p99 ms | partner taps to watches / wake-ups for them / never woken | pushes to live phones |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|");
        for r in &results.latency {
            let (w, q) = (&r.per_wakeup, &r.quiet);
            println!(
                "| {} | {} | {} / {} / {} | {} | {} / {} | {} / {} / {} | {} |",
                r.target,
                r.woken,
                sms(w.p50),
                sms(w.p99),
                sms(w.max),
                ms(r.from_call.p99),
                sms(q.p50),
                sms(q.p99),
                r.partner_taps,
                r.tap_wakeups,
                r.never_woken,
                r.pushes_live
            );
        }
        println!();
    }
    if !results.throughput.is_empty() {
        println!("| target | devices pushed | pushes/s | server µs CPU per push |");
        println!("|---|---:|---:|---:|");
        for r in &results.throughput {
            println!(
                "| {} | {} of {} | {:.0} | {:.0} |",
                r.target,
                r.distinct,
                r.expected,
                r.per_sec(),
                r.cpu_us_per_push()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(idx: u64, done_ns: u64) -> Sent {
        Sent {
            idx,
            call_ns: done_ns.saturating_sub(10),
            done_ns,
            lag_ns: 0,
            failed: None,
        }
    }

    #[test]
    fn the_head_gives_the_device_and_the_body_length() {
        let head = b"POST /wp/17 HTTP/1.1\r\nhost: x\r\nContent-Length: 123\r\n\r\n";
        assert_eq!(parse_head(head), (17, 123));
        assert_eq!(parse_head(b"POST /other HTTP/1.1\r\n\r\n"), (u32::MAX, 0));
    }

    #[test]
    fn a_push_covers_the_events_up_to_its_seq() {
        let sends = [
            sent(0, 100),
            sent(1, 200),
            sent(2, 1_000),
            sent(3, 30_000_000_000),
        ];
        let ev = |seq, partner_tap| InboxEvent { seq, partner_tap };
        let inbox = [
            ev(5, Some(0)),
            ev(6, None),
            ev(7, Some(1)),
            ev(8, Some(2)),
            ev(9, None),
            ev(10, Some(3)),
            ev(11, Some(99)),
        ];
        let mut pushes = [
            (250, Some(7)),   // taps 0 and 1: from tap 0, 150
            (260, Some(7)),   // a repeat
            (900, Some(8)),   // tap 2, before its answer: -100
            (950, None),      // undecryptable
            (2_000, Some(9)), // only a receipt
        ];
        let mut m = Matched::default();
        m.add_watch(&sends, &inbox, &[], &mut pushes);
        assert_eq!(m.partner_taps, 4, "tap 99 was not sent");
        assert_eq!(m.per_wakeup, [150, -100]);
        assert_eq!(m.per_tap, [150, 50, -100]);
        assert_eq!(m.quiet, [150], "a push came just before the second");
        assert_eq!(
            (m.tap_wakeups, m.other_wakeups, m.repeats, m.undecryptable),
            (2, 1, 1, 1)
        );
        assert_eq!(
            (m.collapsed, m.never_woken),
            (1, 1),
            "tap 3 was never woken for"
        );
        let s = Signed::of(m.per_wakeup.clone());
        assert_eq!((s.count, s.min, s.max), (2, -100e-6, 150e-6));
    }

    #[test]
    fn what_a_woken_watch_fetched_needs_no_push_of_its_own() {
        let sends = [sent(0, 100), sent(1, 200), sent(2, 300), sent(3, 400)];
        let ev = |seq, partner_tap| InboxEvent { seq, partner_tap };
        let inbox = [
            ev(1, Some(0)),
            ev(2, Some(1)),
            ev(3, Some(2)),
            ev(4, Some(3)),
        ];
        // Pushed for seq 1, fetched through 2; pushed for 3 (new from tap 2); the last fetch
        // brought 4 without a push.
        let fetched = [(160, 2), (360, 4)];
        let mut pushes = [(150, Some(1)), (350, Some(3))];
        let mut m = Matched::default();
        m.add_watch(&sends, &inbox, &fetched, &mut pushes);
        assert_eq!(m.per_wakeup, [50, 50]);
        assert_eq!((m.collapsed, m.never_woken), (2, 0));
    }

    #[test]
    fn senders_spread_each_couple_over_the_round() {
        let order: Vec<usize> = (0..8).map(|k| sender_of(k, 2)).collect();
        assert_eq!(order, [0, 4, 2, 6, 1, 5, 3, 7]);
        assert_eq!(sender_of(8, 2), 0);
        assert_eq!(index_of(&note_for(42)), Some(42));
    }

    #[tokio::test]
    async fn the_fake_push_service_answers_keep_alive_posts() {
        let fake = FakePush::start(Instant::now(), true).await.unwrap();
        let addr = fake.base.strip_prefix("http://").unwrap().to_owned();
        let mut sock = TcpStream::connect(addr).await.unwrap();
        for d in [4u32, 5] {
            let req = format!("POST /wp/{d} HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc");
            sock.write_all(req.as_bytes()).await.unwrap();
            let mut answer = vec![0; CREATED.len()];
            sock.read_exact(&mut answer).await.unwrap();
            assert_eq!(answer, CREATED);
        }
        assert_eq!((fake.posts(), fake.distinct()), (2, 2));
        let hits = fake.take_hits();
        assert_eq!(hits.iter().map(|h| h.device).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(hits[1].body, b"abc");
    }
}
