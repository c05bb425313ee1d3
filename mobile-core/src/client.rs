//! The client object the apps hold: account and couple calls, the offline outbox, event
//! subscriptions, `sync now` and the glance. Streaks, check-ins and routines are in
//! [`crate::rituals`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use prost::Message;
use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::event_service_client::EventServiceClient;
use tapline_proto::v1::pairing_service_client::PairingServiceClient;
use tapline_proto::v1::settings_service_client::SettingsServiceClient;
use tapline_proto::v1::tap_service_client::TapServiceClient;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request};

use crate::error::{self, CoreError, CoreResult, RefusalCode, TaplineError};
use crate::glance::{self, Glance};
use crate::haptics;
use crate::model::*;
use crate::rituals;
use crate::store::{Credentials, OutboxItem, OutboxKind, Store};
use crate::transport::{self, GrpcService, HttpTransport};

/// Deadline of one unary call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Events asked for per fetch.
const FETCH_BATCH: u32 = 100;
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// First retry delay.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest note, in characters.
const MAX_NOTE_CHARS: usize = 80;

/// The runtime every background task and exported async call runs on.
pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tapline-core")
            .enable_all()
            .build()
            .expect("tokio runtime for tapline-core")
    })
}

/// Runs `fut` to completion on the core's runtime, even if the caller stops waiting (Kotlin
/// cancels by dropping, Swift never cancels): a send or a store write is never cut in half.
pub(crate) async fn run<T: Send + 'static>(
    fut: impl std::future::Future<Output = CoreResult<T>> + Send + 'static,
) -> Result<T, TaplineError> {
    match runtime().spawn(fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(CoreError::Join(e).into()),
    }
}

pub(crate) fn now_ms() -> i64 {
    millis(SystemTime::now())
}

/// Retry delay after `failures` failures: exponential with jitter (between half and all of it).
pub(crate) fn backoff(failures: u32) -> Duration {
    let exp = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF);
    let mut b = [0u8; 4];
    let r = getrandom::fill(&mut b).map_or(0.5, |_| {
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    });
    exp.mul_f64(0.5 + r / 2.0)
}

/// Listens to a subscription. Called from one background thread, in order; an error (or an
/// exception in the app's code) is ignored and never ends the subscription.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// Something happened.
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError>;
    /// The connection changed.
    fn on_connection_state(&self, state: ConnectionState) -> Result<(), TaplineError>;
}

enum Delivery {
    /// Boxed: some events are large, connection states are small.
    Event(Box<ClientEvent>),
    State(ConnectionState),
}

/// A running subscription; cancelling or dropping it stops it.
#[derive(uniffi::Object)]
pub struct Subscription {
    cancel: CancellationToken,
}

#[uniffi::export]
impl Subscription {
    /// Stops the subscription (idempotent).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether it is still running.
    pub fn is_active(&self) -> bool {
        !self.cancel.is_cancelled()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub(crate) struct Inner {
    config: ClientConfig,
    pub(crate) store: Store,
    pub(crate) grpc: GrpcService,
    host_transport: bool,
    /// Rung when the outbox has something new, or the network is back.
    pub(crate) outbox_wake: Arc<Notify>,
    /// Rung when the network is back, to retry subscriptions at once.
    network_wake: Arc<Notify>,
    listeners: Mutex<Vec<mpsc::UnboundedSender<Delivery>>>,
    shutdown: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The Tapline client of one device.
#[derive(uniffi::Object)]
pub struct TaplineClient {
    pub(crate) inner: Arc<Inner>,
}

enum StreamEnd {
    Cancelled,
    Stop(String),
    /// Reconnect after the back-off, or after `after` if the server asked for longer.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

impl StreamEnd {
    fn retry(reason: impl Into<String>) -> StreamEnd {
        StreamEnd::Retry {
            reason: reason.into(),
            after: None,
        }
    }
}

impl Inner {
    fn open(config: ClientConfig, host: Option<Arc<dyn HttpTransport>>) -> CoreResult<Arc<Inner>> {
        let url = config.server_url.trim().to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CoreError::Invalid(format!(
                "server_url: must start with http:// or https:// (got {url:?})"
            )));
        }
        if config.data_dir.trim().is_empty() {
            return Err(CoreError::Invalid(
                "data_dir: must name a folder the core may use".into(),
            ));
        }
        let store = Store::open(&PathBuf::from(&config.data_dir))?;
        let host_transport = host.is_some();
        let grpc = match host {
            Some(t) => transport::host(&url, t),
            None => {
                let _guard = runtime().enter();
                transport::native(&url)?
            }
        };
        let inner = Arc::new(Inner {
            config,
            store,
            grpc,
            host_transport,
            outbox_wake: Arc::new(Notify::new()),
            network_wake: Arc::new(Notify::new()),
            listeners: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
        });
        runtime().spawn(outbox_loop(Arc::downgrade(&inner), inner.shutdown.clone()));
        Ok(inner)
    }

    pub(crate) fn creds(&self) -> CoreResult<Credentials> {
        self.store.credentials()?.ok_or(CoreError::NotSignedIn)
    }

    pub(crate) fn authed<T>(&self, msg: T) -> CoreResult<Request<T>> {
        let creds = self.creds()?;
        let mut req = Request::new(msg);
        req.set_timeout(CALL_TIMEOUT);
        let value = format!("Bearer {}", creds.token)
            .parse()
            .map_err(|_| CoreError::NotSignedIn)?;
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }

    fn anonymous<T>(msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        req.set_timeout(CALL_TIMEOUT);
        req
    }

    fn accounts(&self) -> AccountServiceClient<GrpcService> {
        AccountServiceClient::new(self.grpc.clone())
    }
    fn pairing(&self) -> PairingServiceClient<GrpcService> {
        PairingServiceClient::new(self.grpc.clone())
    }
    fn settings_client(&self) -> SettingsServiceClient<GrpcService> {
        SettingsServiceClient::new(self.grpc.clone())
    }
    fn taps(&self) -> TapServiceClient<GrpcService> {
        TapServiceClient::new(self.grpc.clone())
    }
    fn events(&self) -> EventServiceClient<GrpcService> {
        EventServiceClient::new(self.grpc.clone())
    }

    fn device_info(&self) -> pb::DeviceInfo {
        pb::DeviceInfo {
            kind: self.config.device_kind.to_wire() as i32,
            platform: self.config.platform.to_wire() as i32,
            name: self.config.device_name.clone(),
        }
    }

    pub(crate) fn dispatch(&self, event: ClientEvent) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.retain(|l| l.send(Delivery::Event(Box::new(event.clone()))).is_ok());
    }

    fn save_account(
        &self,
        account: Option<pb::Account>,
        device: Option<pb::Device>,
        token: String,
    ) -> CoreResult<AccountInfo> {
        let account = account.ok_or_else(|| CoreError::Invalid("server sent no account".into()))?;
        let device = device.ok_or_else(|| CoreError::Invalid("server sent no device".into()))?;
        let creds = Credentials {
            token,
            account_id: account.account_id,
            device_id: device.device_id,
            display_name: account.display_name,
            time_zone: account.time_zone,
        };
        self.store.save_credentials(&creds)?;
        Ok(account_info(&creds))
    }

    fn ensure_signed_out(&self) -> CoreResult<()> {
        if self.store.credentials()?.is_some() {
            return Err(TaplineError::refused(
                RefusalCode::AlreadySignedIn,
                "this device already has an account; use another data_dir (profile) for another",
            )
            .into());
        }
        Ok(())
    }

    /// Applies one event from the server; returns what the app should hear.
    fn apply(&self, event: pb::Event, my_account: &str) -> CoreResult<Vec<ClientEvent>> {
        let Some(payload) = event.payload else {
            return Ok(vec![]);
        };
        match payload {
            Payload::CaughtUp(_) => return Ok(vec![ClientEvent::CaughtUp]),
            Payload::Heartbeat(_) => return Ok(vec![]),
            Payload::Reset(r) => {
                // Either way (the cursor was forgotten, or it is ahead of the server's newest
                // event: a restored backup) carry on from the server's last ack, even when that
                // moves the cursor back: the events after it are applied unless their id was
                // seen already, whatever their seq.
                self.store.set_cursor(r.acked_seq)?;
                return Ok(vec![ClientEvent::Reset]);
            }
            _ => {}
        }
        let out = self.store.apply_event(&event.event_id, event.seq, |tx| {
            Ok(match payload {
                Payload::TapReceived(t) => {
                    Store::tx_add_received(tx, &t)?;
                    // No DELIVERED report: the ack that follows storing this event tells the
                    // server, which passes DELIVERED on to the sender.
                    let tap = ReceivedTap::from_wire(&t);
                    tap.map(|tap| ClientEvent::TapReceived { tap })
                        .into_iter()
                        .collect()
                }
                Payload::TapReceipt(r) => {
                    let state = match pb::ReceiptKind::try_from(r.kind) {
                        Ok(pb::ReceiptKind::Delivered) => TapState::Delivered,
                        Ok(pb::ReceiptKind::Felt) => TapState::Felt,
                        Ok(pb::ReceiptKind::Seen) => TapState::Seen,
                        _ => return Ok(vec![]),
                    };
                    let mut changed = Vec::new();
                    for id in std::iter::once(&r.tap_id).chain(&r.also_tap_ids) {
                        if let Some(tap) = Store::tx_advance_tap(tx, id, &state)? {
                            changed.push(ClientEvent::TapStateChanged { tap });
                        }
                    }
                    changed
                }
                Payload::Paired(p) => {
                    let Some(couple) = p.couple else {
                        return Ok(vec![]);
                    };
                    Store::tx_set_couple(tx, Some(&couple))?;
                    vec![ClientEvent::Paired {
                        couple: CoupleInfo::try_from(&couple)?,
                    }]
                }
                Payload::Unpaired(u) => {
                    Store::tx_set_couple(tx, None)?;
                    Store::tx_clear_rituals(tx)?;
                    vec![ClientEvent::Unpaired {
                        by_partner: u.by_account_id != my_account,
                    }]
                }
                Payload::PartnerUpdated(p) => {
                    let Some(partner) = p.partner else {
                        return Ok(vec![]);
                    };
                    if let Some(mut couple) = Store::tx_couple(tx)? {
                        couple.partner = Some(partner.clone());
                        Store::tx_set_couple(tx, Some(&couple))?;
                    }
                    vec![ClientEvent::PartnerUpdated {
                        partner: PartnerInfo::from(&partner),
                    }]
                }
                Payload::StreakUpdated(e) => rituals::on_streak_updated(tx, e, my_account)?,
                Payload::CheckinUpdated(e) => rituals::on_checkin_updated(tx, *e, my_account)?,
                Payload::RoutineFired(e) => rituals::on_routine_fired(tx, *e, my_account)?,
                Payload::RoutinesChanged(e) => rituals::on_routines_changed(e, my_account),
                Payload::CaughtUp(_) | Payload::Heartbeat(_) | Payload::Reset(_) => vec![],
            })
        })?;
        Ok(out.unwrap_or_default())
    }

    async fn ack(&self, seq: u64) {
        if seq == 0 {
            return;
        }
        if let Ok(req) = self.authed(pb::AckEventsRequest { seq }) {
            // A lost ack only means a redelivery, which is dropped by event id.
            let _ = self.events().ack_events(req).await;
        }
    }

    /// Pulls every pending event with unary fetches; returns what the app should hear.
    async fn sync(&self) -> CoreResult<Vec<ClientEvent>> {
        let me = self.creds()?.account_id;
        let mut out = Vec::new();
        loop {
            let after_seq = self.store.cursor()?;
            let req = self.authed(pb::FetchEventsRequest {
                after_seq,
                limit: FETCH_BATCH,
            })?;
            let resp = self.events().fetch_events(req).await?.into_inner();
            for event in resp.events {
                out.extend(self.apply(event, &me)?);
            }
            self.ack(self.store.cursor()?).await;
            if !resp.has_more {
                break;
            }
        }
        self.outbox_wake.notify_one();
        Ok(out)
    }

    /// One live stream, until it ends.
    async fn stream_once(
        &self,
        tx: &mpsc::UnboundedSender<Delivery>,
        cancel: &CancellationToken,
    ) -> StreamEnd {
        let me = match self.creds() {
            Ok(c) => c.account_id,
            Err(_) => return StreamEnd::Stop("not signed in".into()),
        };
        let after_seq = match self.store.cursor() {
            Ok(c) => c,
            Err(e) => return StreamEnd::Stop(format!("local store: {e}")),
        };
        let req = match self.authed(pb::SubscribeRequest { after_seq }) {
            Ok(mut r) => {
                // Streams live long; only the connection has a deadline.
                r.metadata_mut().remove("grpc-timeout");
                r
            }
            Err(e) => return StreamEnd::Stop(e.to_string()),
        };
        let mut events = self.events();
        let mut stream = tokio::select! {
            r = events.subscribe(req) => match r {
                Ok(s) => s.into_inner(),
                Err(status) => return classify(&status),
            },
            _ = cancel.cancelled() => return StreamEnd::Cancelled,
        };
        let mut live = false;
        let mut caught_up = false;
        let mut unacked = 0u32;
        loop {
            let msg = tokio::select! {
                m = stream.message() => m,
                _ = cancel.cancelled() => return StreamEnd::Cancelled,
            };
            let event = match msg {
                Ok(Some(m)) => m.event,
                Ok(None) => return StreamEnd::retry("the server ended the stream"),
                Err(status) => return classify(&status),
            };
            if !live {
                live = true;
                let _ = tx.send(Delivery::State(ConnectionState::Live));
                // The network is back: send what waited.
                self.outbox_wake.notify_one();
            }
            let Some(event) = event else { continue };
            let is_caught_up = matches!(event.payload, Some(Payload::CaughtUp(_)));
            let stored = event.seq > 0;
            match self.apply(event, &me) {
                Ok(events) => {
                    for e in events {
                        let _ = tx.send(Delivery::Event(Box::new(e)));
                    }
                }
                Err(e) => return StreamEnd::retry(format!("could not store an event: {e}")),
            }
            caught_up |= is_caught_up;
            unacked += u32::from(stored);
            // Ack after storing: at once when live, in batches while reading a backlog.
            if unacked > 0 && (caught_up || unacked >= FETCH_BATCH) || is_caught_up {
                if let Ok(cursor) = self.store.cursor() {
                    self.ack(cursor).await;
                }
                unacked = 0;
            }
        }
    }

    async fn attempt(&self, item: OutboxItem) {
        let result: Result<Option<String>, CoreError> = async {
            match item.kind {
                OutboxKind::Tap => {
                    let req = pb::SendTapRequest::decode(item.payload.as_slice())?;
                    let resp = self.taps().send_tap(self.authed(req)?).await?.into_inner();
                    Ok(resp.tap.map(|t| t.tap_id))
                }
                OutboxKind::Receipt => {
                    let req = pb::ReportTapRequest::decode(item.payload.as_slice())?;
                    self.taps().report_tap(self.authed(req)?).await?;
                    Ok(None)
                }
                OutboxKind::Answer => {
                    self.send_answer(&item.payload).await?;
                    Ok(None)
                }
            }
        }
        .await;
        // What the server asked to wait (RetryInfo on an outage), read before the status goes.
        let asked = result.as_ref().err().and_then(CoreError::retry_after);
        let result = result.map_err(TaplineError::from);
        let changed = match result {
            Ok(tap_id) => self.store.mark_sent(&item.client_id, tap_id.as_deref()),
            Err(TaplineError::Unauthenticated) => {
                // Signed out (or not yet signed in): keep it for when there is an account.
                self.store
                    .reschedule(&item.client_id, now_ms() + MAX_BACKOFF.as_millis() as i64)
                    .map(|_| None)
            }
            Err(e) if e.is_transient() => {
                let delay = match e {
                    TaplineError::RateLimited { retry_after_ms } => {
                        Duration::from_millis(retry_after_ms)
                    }
                    _ => backoff(item.attempts).max(asked.unwrap_or_default()),
                };
                self.store
                    .reschedule(&item.client_id, now_ms() + delay.as_millis() as i64)
                    .map(|_| None)
            }
            Err(e) => self.store.mark_failed(&item.client_id, &e.to_string()),
        };
        match item.kind {
            OutboxKind::Tap => {
                if let Ok(Some(tap)) = changed {
                    self.dispatch(ClientEvent::TapStateChanged { tap });
                }
            }
            OutboxKind::Answer => self.answer_moved(&item.client_id),
            OutboxKind::Receipt => {}
        }
    }
}

/// How a stream that failed with `status` ends: for good when a newer stream of this device
/// replaced it or the device is signed out; otherwise it reconnects (no sooner than the server
/// asked).
fn classify(status: &tonic::Status) -> StreamEnd {
    let replaced = match error::reason(status) {
        Some(reason) => reason == pb::ErrorReason::StreamReplaced,
        // No reason (an older server): its code says it.
        None => status.code() == Code::Aborted,
    };
    if replaced {
        return StreamEnd::Stop("replaced by a newer stream for this device".into());
    }
    match error::from_status(status) {
        TaplineError::Unauthenticated => StreamEnd::Stop("this device is signed out".into()),
        _ => StreamEnd::Retry {
            reason: status.message().to_owned(),
            after: CoreError::Status(status.clone()).retry_after(),
        },
    }
}

fn account_info(c: &Credentials) -> AccountInfo {
    AccountInfo {
        account_id: c.account_id.clone(),
        device_id: c.device_id.clone(),
        display_name: c.display_name.clone(),
        time_zone: c.time_zone.clone(),
    }
}

async fn outbox_loop(weak: Weak<Inner>, shutdown: CancellationToken) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        match inner.store.next_due(now_ms()) {
            Ok(Ok(item)) => {
                tokio::select! {
                    _ = inner.attempt(item) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            Ok(Err(next)) => {
                let wait = next.map(|t| Duration::from_millis((t - now_ms()).max(0) as u64));
                let wake = inner.outbox_wake.clone();
                drop(inner);
                let notified = wake.notified();
                tokio::select! {
                    _ = notified => {}
                    _ = async { match wait { Some(w) => tokio::time::sleep(w).await, None => std::future::pending().await } } => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            Err(_) => {
                drop(inner);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

async fn subscription_loop(
    weak: Weak<Inner>,
    tx: mpsc::UnboundedSender<Delivery>,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    let mut polled = false;
    loop {
        let Some(inner) = weak.upgrade() else { break };
        if !polled {
            let _ = tx.send(Delivery::State(ConnectionState::Connecting));
        }
        let end = if inner.host_transport {
            // The host transport cannot hold a stream: poll with fetches.
            match inner.sync().await {
                Ok(events) => {
                    failures = 0;
                    if !polled {
                        let _ = tx.send(Delivery::State(ConnectionState::Live));
                    }
                    for e in events {
                        let _ = tx.send(Delivery::Event(Box::new(e)));
                    }
                    if !polled {
                        // Same contract as a stream: the backlog is in.
                        polled = true;
                        let _ = tx.send(Delivery::Event(Box::new(ClientEvent::CaughtUp)));
                    }
                    let poll =
                        Duration::from_millis(u64::from(inner.config.poll_interval_ms.max(50)));
                    let wake = inner.network_wake.clone();
                    drop(inner);
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => continue,
                        _ = wake.notified() => continue,
                        _ = cancel.cancelled() => StreamEnd::Cancelled,
                    }
                }
                Err(e) => {
                    let after = e.retry_after();
                    match TaplineError::from(e) {
                        TaplineError::Unauthenticated => {
                            StreamEnd::Stop("this device is signed out".into())
                        }
                        e => StreamEnd::Retry {
                            reason: e.to_string(),
                            after,
                        },
                    }
                }
            }
        } else {
            let end = inner.stream_once(&tx, &cancel).await;
            failures = 0;
            end
        };
        match end {
            StreamEnd::Cancelled => break,
            StreamEnd::Stop(reason) => {
                let _ = tx.send(Delivery::State(ConnectionState::Stopped { reason }));
                cancel.cancel();
                break;
            }
            StreamEnd::Retry { reason, after } => {
                failures += 1;
                polled = false;
                let delay = backoff(failures).max(after.unwrap_or_default());
                let _ = tx.send(Delivery::State(ConnectionState::Offline {
                    retry_in_ms: delay.as_millis() as u64,
                    reason,
                }));
                let Some(inner) = weak.upgrade() else { break };
                let wake = inner.network_wake.clone();
                drop(inner);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = wake.notified() => {}
                    _ = cancel.cancelled() => break,
                }
            }
        }
    }
    if let Some(inner) = weak.upgrade() {
        inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|l| !l.same_channel(&tx));
    }
}

fn validate_note(note: Option<String>) -> CoreResult<String> {
    let note = note.unwrap_or_default().trim().to_owned();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(CoreError::Invalid(format!(
            "note: must be at most {MAX_NOTE_CHARS} characters"
        )));
    }
    if note.chars().any(char::is_control) {
        return Err(CoreError::Invalid(
            "note: must not contain control characters or line breaks".into(),
        ));
    }
    Ok(note)
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// A client on the native transport (phones, desktop, tests).
    #[uniffi::constructor]
    pub fn new(config: ClientConfig) -> Result<Arc<Self>, TaplineError> {
        Ok(Arc::new(TaplineClient {
            inner: Inner::open(config, None)?,
        }))
    }

    /// A client that speaks gRPC-Web through the host app's HTTP stack (watches). Live
    /// subscriptions poll every `poll_interval_ms`; `sync_now` pulls on a push.
    #[uniffi::constructor]
    pub fn with_http_transport(
        config: ClientConfig,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Arc<Self>, TaplineError> {
        Ok(Arc::new(TaplineClient {
            inner: Inner::open(config, Some(transport))?,
        }))
    }

    /// This device's account, from the local store.
    pub fn account(&self) -> Option<AccountInfo> {
        self.inner
            .store
            .credentials()
            .ok()
            .flatten()
            .map(|c| account_info(&c))
    }

    /// Creates an account with this device as its first device.
    pub async fn create_account(
        &self,
        display_name: String,
        time_zone: String,
    ) -> Result<AccountInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner.ensure_signed_out()?;
            let req = pb::CreateAccountRequest {
                display_name,
                time_zone,
                device: Some(inner.device_info()),
            };
            let resp = inner
                .accounts()
                .create_account(Inner::anonymous(req))
                .await?
                .into_inner();
            inner.save_account(resp.account, resp.device, resp.token)
        })
        .await
    }

    /// Makes a short code that signs another device (a watch) in to this account.
    pub async fn create_link_code(&self) -> Result<ShortCode, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .accounts()
                .create_link_code(inner.authed(pb::CreateLinkCodeRequest {})?)
                .await?
                .into_inner();
            Ok(ShortCode::from_wire(resp.code, resp.expires_at.as_ref()))
        })
        .await
    }

    /// Signs this device in to an account with a link code from one of its devices.
    pub async fn redeem_link_code(&self, code: String) -> Result<AccountInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner.ensure_signed_out()?;
            let req = pb::RedeemLinkCodeRequest {
                code,
                device: Some(inner.device_info()),
            };
            let resp = inner
                .accounts()
                .redeem_link_code(Inner::anonymous(req))
                .await?
                .into_inner();
            inner.save_account(resp.account, resp.device, resp.token)
        })
        .await
    }

    /// The devices signed in to this account.
    pub async fn devices(&self) -> Result<Vec<DeviceSummary>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .accounts()
                .list_devices(inner.authed(pb::ListDevicesRequest {})?)
                .await?
                .into_inner();
            Ok(resp.devices.iter().map(DeviceSummary::from).collect())
        })
        .await
    }

    /// Signs a device of this account out (this one too, if named).
    pub async fn revoke_device(&self, device_id: String) -> Result<(), TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?;
            inner
                .accounts()
                .revoke_device(inner.authed(pb::RevokeDeviceRequest {
                    device_id: device_id.clone(),
                })?)
                .await?;
            if device_id == me.device_id {
                inner.store.clear_credentials()?;
            }
            Ok(())
        })
        .await
    }

    /// Changes the name and/or time zone; the partner is told.
    pub async fn update_profile(
        &self,
        display_name: Option<String>,
        time_zone: Option<String>,
    ) -> Result<AccountInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let req = pb::UpdateProfileRequest {
                display_name,
                time_zone,
            };
            let resp = inner
                .accounts()
                .update_profile(inner.authed(req)?)
                .await?
                .into_inner();
            let account = resp.account.unwrap_or_default();
            inner
                .store
                .save_profile(&account.display_name, &account.time_zone)?;
            Ok(account_info(&inner.creds()?))
        })
        .await
    }

    /// Makes an invite code for the partner (24 hours, single use).
    pub async fn create_invite(&self) -> Result<ShortCode, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .pairing()
                .create_invite(inner.authed(pb::CreateInviteRequest {})?)
                .await?
                .into_inner();
            Ok(ShortCode::from_wire(resp.code, resp.expires_at.as_ref()))
        })
        .await
    }

    /// Accepts the partner's invite.
    pub async fn accept_invite(&self, code: String) -> Result<CoupleInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .pairing()
                .accept_invite(inner.authed(pb::AcceptInviteRequest { code })?)
                .await?
                .into_inner();
            let couple = resp
                .couple
                .ok_or_else(|| CoreError::Invalid("server sent no couple".into()))?;
            inner.store.set_couple(Some(&couple))?;
            Ok(CoupleInfo::try_from(&couple)?)
        })
        .await
    }

    /// The couple, fresh from the server (and kept for the glance); `None` when not paired.
    pub async fn couple(&self) -> Result<Option<CoupleInfo>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            match inner
                .pairing()
                .get_couple(inner.authed(pb::GetCoupleRequest {})?)
                .await
            {
                Ok(resp) => {
                    let couple = resp
                        .into_inner()
                        .couple
                        .ok_or_else(|| CoreError::Invalid("server sent no couple".into()))?;
                    inner.store.set_couple(Some(&couple))?;
                    Ok(Some(CoupleInfo::try_from(&couple)?))
                }
                Err(s) => match TaplineError::from(CoreError::Status(s)) {
                    TaplineError::NotPaired => {
                        inner.store.set_couple(None)?;
                        Ok(None)
                    }
                    e => Err(e.into()),
                },
            }
        })
        .await
    }

    /// Ends the couple; both partners are told.
    pub async fn unpair(&self) -> Result<(), TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner
                .pairing()
                .unpair(inner.authed(pb::UnpairRequest {})?)
                .await?;
            inner.store.set_couple(None)?;
            Ok(())
        })
        .await
    }

    /// This account's settings.
    pub async fn settings(&self) -> Result<Settings, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .settings_client()
                .get_settings(inner.authed(pb::GetSettingsRequest {})?)
                .await?
                .into_inner();
            Ok(settings_from(resp.settings))
        })
        .await
    }

    /// Turns quiet hours on (or moves them), or off with `None`.
    pub async fn set_quiet_hours(
        &self,
        quiet_hours: Option<QuietHours>,
    ) -> Result<Settings, TaplineError> {
        use pb::update_settings_request::QuietHoursChange;
        let change = match quiet_hours {
            Some(q) => QuietHoursChange::SetQuietHours(q.to_wire()),
            None => QuietHoursChange::ClearQuietHours(true),
        };
        self.update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: Some(change),
            receipts_enabled: None,
        })
        .await
    }

    /// Whether the partner is told when this person felt or saw a tap.
    pub async fn set_receipts_enabled(&self, enabled: bool) -> Result<Settings, TaplineError> {
        self.update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: None,
            receipts_enabled: Some(enabled),
        })
        .await
    }

    /// Queues a tap and returns at once; the outbox sends it (now, or when the network is back).
    pub fn send_tap(
        &self,
        kind: TapKind,
        note: Option<String>,
        rhythm: Option<HapticPattern>,
    ) -> Result<LocalTap, TaplineError> {
        let note = validate_note(note)?;
        let rhythm = match (kind, rhythm) {
            (TapKind::Custom, Some(r)) => Some(haptics::validate(&r).map_err(CoreError::Invalid)?),
            (TapKind::Custom, None) => {
                return Err(
                    CoreError::Invalid("rhythm: is required for a custom tap".into()).into(),
                );
            }
            (_, Some(_)) => {
                return Err(
                    CoreError::Invalid("rhythm: is only allowed on a custom tap".into()).into(),
                );
            }
            (_, None) => None,
        };
        self.inner.creds()?;
        let client_id = uuid::Uuid::now_v7().to_string();
        let req = pb::SendTapRequest {
            client_tap_id: client_id.clone(),
            kind: kind.to_wire() as i32,
            rhythm: rhythm.map(|r| r.to_wire()),
            note,
        };
        let tap = self.inner.store.enqueue_tap(&client_id, &req, now_ms())?;
        self.inner.outbox_wake.notify_one();
        Ok(tap)
    }

    /// Reports a received tap as felt or seen (queued like a tap; sent when possible).
    pub fn report_tap(&self, tap_id: String, kind: ReceiptKind) -> Result<(), TaplineError> {
        if uuid::Uuid::try_parse(&tap_id).is_err() {
            return Err(CoreError::Invalid("tap_id: must be a tap id".into()).into());
        }
        let req = pb::ReportTapRequest {
            tap_id: tap_id.clone(),
            kind: kind.to_wire() as i32,
        };
        let client_id = format!("{kind:?}:{tap_id}").to_lowercase();
        self.inner
            .store
            .enqueue_receipt(&client_id, &req.encode_to_vec(), now_ms())?;
        self.inner.outbox_wake.notify_one();
        Ok(())
    }

    /// The newest taps this device sent, newest first, with their states.
    pub fn local_taps(&self, limit: u32) -> Result<Vec<LocalTap>, TaplineError> {
        Ok(self.inner.store.local_taps(limit)?)
    }

    /// The newest taps received, newest first.
    pub fn received_taps(&self, limit: u32) -> Result<Vec<ReceivedTap>, TaplineError> {
        Ok(self.inner.store.received(limit)?)
    }

    /// Tries every queued item now, ignoring back-off; returns how many taps are still unsent.
    pub async fn flush_outbox(&self) -> Result<u32, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner.store.make_all_due(now_ms())?;
            while let Ok(item) = inner.store.next_due(now_ms())? {
                let before = item.attempts;
                let id = item.client_id.clone();
                inner.attempt(item).await;
                // An item rescheduled again stays for the background sender.
                if inner
                    .store
                    .next_due(now_ms())?
                    .is_ok_and(|i| i.client_id == id && i.attempts > before)
                {
                    break;
                }
            }
            inner.store.unsent_count()
        })
        .await
    }

    /// Tells the core the network is back: queued sends and subscriptions retry at once.
    pub fn network_available(&self) {
        let _ = self.inner.store.make_all_due(now_ms());
        self.inner.outbox_wake.notify_one();
        self.inner.network_wake.notify_waiters();
    }

    /// Starts delivering events and connection changes to `listener` until the returned
    /// subscription is cancelled or dropped. Reconnects by itself, stores each event and moves
    /// the cursor before acking it, and drops duplicates by event id.
    pub fn subscribe(&self, listener: Arc<dyn EventListener>) -> Arc<Subscription> {
        let cancel = self.inner.shutdown.child_token();
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx.clone());
        // One thread calls the listener, in order, never under a lock.
        let spawned = std::thread::Builder::new()
            .name("tapline-listener".into())
            .spawn(move || {
                while let Some(d) = rx.blocking_recv() {
                    // An error or a panic in the app's listener is its own business: keep going.
                    let _ignored =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match d {
                            Delivery::Event(e) => listener.on_event(*e),
                            Delivery::State(s) => listener.on_connection_state(s),
                        }));
                }
            });
        if spawned.is_err() {
            cancel.cancel();
        }
        runtime().spawn(subscription_loop(
            Arc::downgrade(&self.inner),
            tx,
            cancel.clone(),
        ));
        Arc::new(Subscription { cancel })
    }

    /// Pulls pending events with unary calls (what a watch does when a push wakes it), stores
    /// them, acks them, and returns them; queued sends are retried too.
    pub async fn sync_now(&self) -> Result<Vec<ClientEvent>, TaplineError> {
        let inner = self.inner.clone();
        run(async move { inner.sync().await }).await
    }

    /// A no-network snapshot for complications and widgets.
    pub fn glance(&self) -> Glance {
        let store = &self.inner.store;
        let creds = store.credentials().ok().flatten();
        let me = creds.as_ref().map_or("", |c| c.account_id.as_str());
        let couple = store.couple().ok().flatten();
        let streak = store.streak().ok().flatten();
        let received = store.received(20).unwrap_or_default();
        let checkins = rituals::stored_checkins(store, me, true).unwrap_or_default();
        glance::compute(
            glance::Inputs {
                signed_in: creds.is_some(),
                my_time_zone: creds.as_ref().map(|c| c.time_zone.as_str()),
                couple: couple.as_ref(),
                received: &received,
                unsent_count: store.unsent_count().unwrap_or(0),
                streak: streak.as_ref(),
                checkins: &checkins,
            },
            SystemTime::now(),
        )
    }
}

impl TaplineClient {
    async fn update_settings(
        &self,
        req: pb::UpdateSettingsRequest,
    ) -> Result<Settings, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .settings_client()
                .update_settings(inner.authed(req)?)
                .await?
                .into_inner();
            Ok(settings_from(resp.settings))
        })
        .await
    }
}

fn settings_from(s: Option<pb::Settings>) -> Settings {
    let s = s.unwrap_or_default();
    Settings {
        quiet_hours: s
            .quiet_hours
            .as_ref()
            .and_then(|q| QuietHours::from_wire(q.start.as_ref(), q.end.as_ref())),
        receipts_enabled: s.receipts_enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner_updated(event_id: &str, seq: u64, name: &str) -> pb::Event {
        pb::Event {
            seq,
            event_id: event_id.into(),
            created_at: None,
            payload: Some(Payload::PartnerUpdated(pb::PartnerUpdated {
                partner: Some(pb::Partner {
                    display_name: name.into(),
                    ..Default::default()
                }),
            })),
        }
    }

    fn reset(reason: pb::ResetReason, acked_seq: u64, newest_seq: u64) -> pb::Event {
        pb::Event {
            seq: 0,
            event_id: uuid::Uuid::now_v7().to_string(),
            created_at: None,
            payload: Some(Payload::Reset(pb::Reset {
                acked_seq,
                reason: reason as i32,
                newest_seq,
            })),
        }
    }

    #[test]
    fn after_a_reset_for_a_cursor_ahead_new_events_below_the_old_cursor_apply() {
        let dir = std::env::temp_dir().join(format!(
            "tapline-core-client-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let client = TaplineClient::new(ClientConfig {
            server_url: "http://127.0.0.1:9".into(),
            data_dir: dir.display().to_string(),
            device_kind: DeviceKind::Phone,
            platform: Platform::Ios,
            device_name: String::new(),
            poll_interval_ms: 100,
        })
        .unwrap();
        let inner = &client.inner;
        let names = |events: Vec<ClientEvent>| -> Vec<String> {
            events
                .into_iter()
                .filter_map(|e| match e {
                    ClientEvent::PartnerUpdated { partner } => Some(partner.display_name),
                    _ => None,
                })
                .collect()
        };
        // Before the server was restored from a backup, this device had seen up to seq 500.
        assert_eq!(
            names(
                inner
                    .apply(partner_updated("e41", 41, "Sam"), "me")
                    .unwrap()
            ),
            ["Sam"]
        );
        inner
            .apply(partner_updated("e500", 500, "Sam"), "me")
            .unwrap();
        assert_eq!(inner.store.cursor().unwrap(), 500);

        // The restored server acked 40 and has events up to 45: the cursor goes back to 40.
        let out = inner
            .apply(reset(pb::ResetReason::CursorAhead, 40, 45), "me")
            .unwrap();
        assert_eq!(out, vec![ClientEvent::Reset]);
        assert_eq!(inner.store.cursor().unwrap(), 40);

        // Known events are dropped by id; new ones apply although their seq is below 500.
        assert!(
            names(
                inner
                    .apply(partner_updated("e41", 41, "Sam"), "me")
                    .unwrap()
            )
            .is_empty()
        );
        assert_eq!(
            names(
                inner
                    .apply(partner_updated("e42", 42, "Alex"), "me")
                    .unwrap()
            ),
            ["Alex"]
        );
        assert_eq!(
            inner.store.cursor().unwrap(),
            42,
            "the cursor moves on from there"
        );

        // A forgotten cursor moves forward to the last ack.
        inner
            .apply(reset(pb::ResetReason::CursorForgotten, 90, 95), "me")
            .unwrap();
        assert_eq!(inner.store.cursor().unwrap(), 90);
        drop(client);
        let _ = std::fs::remove_dir_all(dir);
    }
}
