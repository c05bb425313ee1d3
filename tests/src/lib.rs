//! Harness for the end-to-end tests: the real server on an ephemeral port, a temporary SQLite
//! file or a fresh PostgreSQL database, a manual clock, and typed clients acting as devices.
//!
//! PostgreSQL comes from `TAPLINE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached the PostgreSQL tests
//! say so and pass, unless `CI` is set, where they fail.

pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Connection;
use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::event_service_client::EventServiceClient;
use tapline_proto::v1::pairing_service_client::PairingServiceClient;
use tapline_proto::v1::push_service_client::PushServiceClient;
use tapline_proto::v1::settings_service_client::SettingsServiceClient;
use tapline_proto::v1::tap_service_client::TapServiceClient;
use tapline_server::{AppState, Db, ManualClock, Settings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

/// How long a test waits for something that should happen at once before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// The instant every test clock starts at: Tuesday 2026-03-10 12:00 UTC.
pub fn start_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

/// A database made for one test and removed by [`TestServer::finish`].
#[derive(Debug)]
struct TestDb {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

/// The PostgreSQL admin connection the tests create their databases through.
pub fn postgres_admin_url() -> String {
    std::env::var("TAPLINE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestDb {
    /// A database whose files live under `place` when given: the SQLite file, or (PostgreSQL)
    /// a tablespace there.
    async fn create_in(backend: Backend, place: Option<&std::path::Path>) -> Option<TestDb> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = place
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_else(std::env::temp_dir)
                    .join(format!("tapline-e2e-{tag}"));
                Some(TestDb {
                    url: format!("sqlite://{}/tapline.db", dir.display()),
                    cleanup: Cleanup::Dir(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
                    Ok(c) => c,
                    Err(e) if std::env::var_os("CI").is_none() => {
                        eprintln!(
                            "PostgreSQL at {admin_url} unreachable ({e}); skipping this PostgreSQL test (set CI=1 to fail instead)"
                        );
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL at {admin_url} unreachable under CI: {e}"),
                };
                let name = format!("tapline_e2e_{tag}");
                let mut create = format!("CREATE DATABASE {name}");
                if let Some(place) = place {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE TABLESPACE {name} LOCATION '{}'",
                        place.display()
                    )))
                    .execute(&mut admin)
                    .await
                    .expect("create test tablespace");
                    create.push_str(&format!(" TABLESPACE {name}"));
                }
                sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                Some(TestDb {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Postgres { admin_url, name },
                })
            }
        }
    }

    async fn remove(self) {
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP TABLESPACE IF EXISTS {name}"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            }
        }
    }
}

/// A running server with its database and clock.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The clock the server reads; tests move it.
    pub clock: Arc<ManualClock>,
    /// The settings it was started with.
    pub settings: Settings,
    /// Set when the server serves TLS: how clients verify it (they connect to `localhost`).
    pub client_tls: Option<tonic::transport::ClientTlsConfig>,
    /// Its state (to inspect live streams).
    pub state: AppState,
    db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<tapline_server::Result<()>>>,
}

impl TestServer {
    /// Starts a server on `backend` with default settings (but no background jobs: tests
    /// call [`TestServer::tick`]), or `None` when PostgreSQL is unavailable outside CI.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(
            backend,
            Settings {
                jobs_every: None,
                prune_every: None,
                ..Settings::default()
            },
        )
        .await
    }

    /// Runs the background jobs once at the clock's "now" (routine firings, expiries).
    pub async fn tick(&self) -> tapline_server::jobs::TickReport {
        tapline_server::jobs::tick(&self.state)
            .await
            .expect("jobs tick")
    }

    /// Another server process on the same database, sharing the clock (for multi-instance
    /// tests). Stop it with [`TestServer::stop`] before finishing the first.
    pub async fn second_instance(
        &self,
    ) -> (
        AppState,
        oneshot::Sender<()>,
        JoinHandle<tapline_server::Result<()>>,
        SocketAddr,
    ) {
        let (addr, state, stop, task) = launch(
            &self.db.url,
            self.clock.clone(),
            self.settings.clone(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await;
        (state, stop, task, addr)
    }

    /// Starts a server with these settings.
    pub async fn start_with(backend: Backend, settings: Settings) -> Option<TestServer> {
        Self::start_in(backend, settings, None).await
    }

    /// Starts a server whose database files live under `place` (the SQLite file, or a
    /// PostgreSQL tablespace there), e.g. a small filesystem to fill.
    pub async fn start_in(
        backend: Backend,
        settings: Settings,
        place: Option<&std::path::Path>,
    ) -> Option<TestServer> {
        if std::env::var_os("TAPLINE_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_env("TAPLINE_TEST_LOG"))
                .with_test_writer()
                .try_init();
        }
        let db = TestDb::create_in(backend, place).await?;
        let clock = Arc::new(ManualClock::new(start_instant()));
        let (addr, state, stop, task) = launch(
            &db.url,
            clock.clone(),
            settings.clone(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await;
        Some(TestServer {
            addr,
            clock,
            settings,
            client_tls: None,
            state,
            db,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops the server and waits for it to finish draining.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("server stops within the drain bound")
                .expect("server task")
                .expect("server ran cleanly");
        }
    }

    /// Stops the server and starts a new one on the same database and address.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (addr, state, stop, task) = launch(
            &self.db.url,
            self.clock.clone(),
            self.settings.clone(),
            self.addr,
        )
        .await;
        self.addr = addr;
        self.state = state;
        self.stop = Some(stop);
        self.task = Some(task);
    }

    /// Stops the server and starts a new one on the same address over the database at `url`
    /// from now on (a restored copy). A SQLite file must lie in this server's folder (next
    /// to [`TestServer::database_url`]) so that [`TestServer::finish`] removes it; a new file
    /// rather than the old one replaced, because the stopped server's handles on the old file
    /// close only when its state is dropped, after the new server has started.
    pub async fn restart_on(&mut self, url: &str) {
        self.stop().await;
        self.db.url = url.to_owned();
        self.restart().await;
    }

    /// Stops the server and removes its database.
    pub async fn finish(mut self) {
        self.stop().await;
        let db = std::mem::replace(
            &mut self.db,
            TestDb {
                url: String::new(),
                cleanup: Cleanup::Dir(Default::default()),
            },
        );
        db.remove().await;
    }

    /// The URL of the server's database.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// Waits until the server's health (the whole server, "") says `serving`, through the
    /// standard `grpc.health.v1.Health/Watch` stream; fails after [`PATIENCE`].
    pub async fn wait_health(&self, serving: bool) {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let want = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        } as i32;
        let mut stream = HealthClient::new(self.channel().await)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health watch")
            .into_inner();
        tokio::time::timeout(PATIENCE, async {
            while let Some(r) = stream.message().await.expect("health stream") {
                if r.status == want {
                    return;
                }
            }
            panic!("health stream ended");
        })
        .await
        .unwrap_or_else(|_| panic!("health never became serving={serving}"));
    }

    /// The health of one named service now (`grpc.health.v1.Health/Check`).
    pub async fn health_of(
        &self,
        service: &str,
    ) -> tonic_health::pb::health_check_response::ServingStatus {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let r = HealthClient::new(self.channel().await)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        tonic_health::pb::health_check_response::ServingStatus::try_from(r.status)
            .expect("a known status")
    }

    /// A channel to the server.
    pub async fn channel(&self) -> Channel {
        let endpoint = match &self.client_tls {
            Some(tls) => Channel::from_shared(format!("https://localhost:{}", self.addr.port()))
                .unwrap()
                .tls_config(tls.clone())
                .expect("client TLS"),
            None => Channel::from_shared(format!("http://{}", self.addr)).unwrap(),
        };
        endpoint
            .connect()
            .await
            .expect("connect to the test server")
    }

    /// Creates an account with a phone.
    pub async fn account(&self, name: &str, zone: &str) -> Device {
        let mut client = AccountServiceClient::new(self.channel().await);
        let resp = client
            .create_account(pb::CreateAccountRequest {
                display_name: name.into(),
                time_zone: zone.into(),
                device: Some(device_info(
                    pb::DeviceKind::Phone,
                    pb::Platform::Ios,
                    &format!("{name}'s phone"),
                )),
            })
            .await
            .expect("create account")
            .into_inner();
        Device::new(
            self,
            resp.token,
            resp.device.unwrap().device_id,
            resp.account.unwrap().account_id,
        )
        .await
    }

    /// Links a watch to `phone`'s account through a link code.
    pub async fn link_watch(&self, phone: &Device) -> Device {
        let code = phone
            .accounts()
            .create_link_code(pb::CreateLinkCodeRequest {})
            .await
            .expect("link code")
            .into_inner()
            .code;
        let resp = AccountServiceClient::new(self.channel().await)
            .redeem_link_code(pb::RedeemLinkCodeRequest {
                code,
                device: Some(device_info(
                    pb::DeviceKind::Watch,
                    pb::Platform::Watchos,
                    "watch",
                )),
            })
            .await
            .expect("redeem link code")
            .into_inner();
        Device::new(
            self,
            resp.token,
            resp.device.unwrap().device_id,
            resp.account.unwrap().account_id,
        )
        .await
    }

    /// Pairs two accounts through an invite.
    pub async fn pair(&self, inviter: &Device, invitee: &Device) -> pb::Couple {
        let code = inviter
            .pairing()
            .create_invite(pb::CreateInviteRequest {})
            .await
            .expect("invite")
            .into_inner()
            .code;
        invitee
            .pairing()
            .accept_invite(pb::AcceptInviteRequest { code })
            .await
            .expect("accept invite")
            .into_inner()
            .couple
            .unwrap()
    }

    /// Two paired partners, Alice (Europe/Paris) and Bob (America/New_York), each with a phone
    /// and a watch.
    pub async fn couple(&self) -> Couple {
        let alice = self.account("Alice", "Europe/Paris").await;
        let alice_watch = self.link_watch(&alice).await;
        let bob = self.account("Bob", "America/New_York").await;
        let bob_watch = self.link_watch(&bob).await;
        self.pair(&alice, &bob).await;
        Couple {
            alice,
            alice_watch,
            bob,
            bob_watch,
        }
    }
}

async fn launch(
    url: &str,
    clock: Arc<ManualClock>,
    settings: Settings,
    addr: SocketAddr,
) -> (
    SocketAddr,
    AppState,
    oneshot::Sender<()>,
    JoinHandle<tapline_server::Result<()>>,
) {
    let db = Db::connect(url).await.expect("open the test database");
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(db, clock, settings)
        .await
        .expect("start the group commit");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(tapline_server::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    (addr, state, stop, task)
}

/// What a device says about itself.
pub fn device_info(kind: pb::DeviceKind, platform: pb::Platform, name: &str) -> pb::DeviceInfo {
    pb::DeviceInfo {
        kind: kind as i32,
        platform: platform as i32,
        name: name.into(),
    }
}

/// Two partners with a phone and a watch each.
pub struct Couple {
    /// Alice's phone.
    pub alice: Device,
    /// Alice's watch.
    pub alice_watch: Device,
    /// Bob's phone.
    pub bob: Device,
    /// Bob's watch.
    pub bob_watch: Device,
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// A channel that sends the device's token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// A signed-in device.
#[derive(Clone)]
pub struct Device {
    /// Its bearer token.
    pub token: String,
    /// Its id.
    pub id: String,
    /// Its account.
    pub account_id: String,
    channel: Channel,
}

impl Device {
    async fn new(server: &TestServer, token: String, id: String, account_id: String) -> Device {
        Device {
            token,
            id,
            account_id,
            channel: server.channel().await,
        }
    }

    /// Connects again (after a server restart).
    pub async fn reconnect(&mut self, server: &TestServer) {
        self.channel = server.channel().await;
    }

    /// Connects to another server instance (same database).
    pub async fn connect_to(&mut self, addr: SocketAddr) {
        self.channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect");
    }

    /// The same device presenting another token.
    pub fn with_token(&self, token: &str) -> Device {
        Device {
            token: token.into(),
            ..self.clone()
        }
    }

    /// A channel that sends this device's token (for clients of any service).
    pub fn authed_channel(&self) -> Authed {
        self.authed()
    }

    fn authed(&self) -> Authed {
        let value = format!("Bearer {}", self.token)
            .parse()
            .unwrap_or_else(|_| "Bearer x".parse().unwrap());
        InterceptedService::new(self.channel.clone(), Bearer(value))
    }

    /// Account client.
    pub fn accounts(&self) -> AccountServiceClient<Authed> {
        AccountServiceClient::new(self.authed())
    }
    /// Pairing client.
    pub fn pairing(&self) -> PairingServiceClient<Authed> {
        PairingServiceClient::new(self.authed())
    }
    /// Settings client.
    pub fn settings(&self) -> SettingsServiceClient<Authed> {
        SettingsServiceClient::new(self.authed())
    }
    /// Push target client.
    pub fn push(&self) -> PushServiceClient<Authed> {
        PushServiceClient::new(self.authed())
    }
    /// Tap client.
    pub fn taps(&self) -> TapServiceClient<Authed> {
        TapServiceClient::new(self.authed())
    }
    /// Event client.
    pub fn events(&self) -> EventServiceClient<Authed> {
        EventServiceClient::new(self.authed())
    }

    /// Sends a tap of `kind` with a fresh client id.
    pub async fn tap(&self, kind: pb::TapKind, note: &str) -> Result<pb::SendTapResponse, Status> {
        self.send(tap_request(kind, note)).await
    }

    /// Sends this tap request.
    pub async fn send(&self, req: pb::SendTapRequest) -> Result<pb::SendTapResponse, Status> {
        self.taps()
            .send_tap(req)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Opens the event stream after `after_seq`.
    pub async fn subscribe(&self, after_seq: u64) -> Events {
        let stream = self
            .events()
            .subscribe(pb::SubscribeRequest { after_seq })
            .await
            .expect("subscribe")
            .into_inner();
        Events { stream }
    }

    /// Opens the event stream and reads up to `caught_up`, returning the backlog.
    pub async fn subscribe_caught_up(&self, after_seq: u64) -> (Events, Vec<pb::Event>) {
        let mut events = self.subscribe(after_seq).await;
        let backlog = events.until_caught_up().await;
        (events, backlog)
    }
}

/// A tap request with a fresh client id.
pub fn tap_request(kind: pb::TapKind, note: &str) -> pb::SendTapRequest {
    pb::SendTapRequest {
        client_tap_id: uuid::Uuid::now_v7().to_string(),
        kind: kind as i32,
        rhythm: None,
        note: note.into(),
    }
}

/// A live event stream.
pub struct Events {
    stream: Streaming<pb::SubscribeResponse>,
}

impl Events {
    /// The next event; fails the test if none comes within [`PATIENCE`] or the stream ends.
    pub async fn next(&mut self) -> pb::Event {
        match self.try_next().await {
            Ok(Some(e)) => e,
            Ok(None) => panic!("the event stream ended"),
            Err(s) => panic!("the event stream failed: {s:?}"),
        }
    }

    /// The next item: an event, the end of the stream, or its error status.
    pub async fn try_next(&mut self) -> Result<Option<pb::Event>, Status> {
        let msg = tokio::time::timeout(PATIENCE, self.stream.message())
            .await
            .expect("an event within the patience bound")?;
        Ok(msg.map(|m| m.event.expect("every message carries an event")))
    }

    /// The next event whose payload matches, skipping others.
    pub async fn wait_for(&mut self, pred: impl Fn(&Payload) -> bool) -> pb::Event {
        loop {
            let e = self.next().await;
            if e.payload.as_ref().is_some_and(&pred) {
                return e;
            }
        }
    }

    /// The next event that is not a heartbeat.
    pub async fn next_significant(&mut self) -> pb::Event {
        loop {
            let e = self.next().await;
            if !matches!(e.payload, Some(Payload::Heartbeat(_))) {
                return e;
            }
        }
    }

    /// The events before `caught_up` (heartbeats left out).
    pub async fn until_caught_up(&mut self) -> Vec<pb::Event> {
        let mut backlog = Vec::new();
        loop {
            let e = self.next_significant().await;
            if matches!(e.payload, Some(Payload::CaughtUp(_))) {
                return backlog;
            }
            backlog.push(e);
        }
    }

    /// The next event, which must be a received tap.
    pub async fn next_tap(&mut self) -> (pb::Event, pb::TapReceived) {
        let e = self.next_significant().await;
        match e.payload.clone() {
            Some(Payload::TapReceived(t)) => (e, t),
            other => panic!("expected a tap, got {other:?}"),
        }
    }

    /// The status the stream ends with.
    pub async fn end_status(&mut self) -> Status {
        loop {
            match self.try_next().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(s) => return s,
            }
        }
    }
}

/// The tap inside an event, if it is one.
pub fn tap_of(e: &pb::Event) -> Option<&pb::Tap> {
    match &e.payload {
        Some(Payload::TapReceived(t)) => t.tap.as_ref(),
        _ => None,
    }
}

/// The stable reason of a status (`ErrorInfo.reason`), or "" without one.
pub fn reason_of(s: &Status) -> String {
    use tonic_types::StatusExt;
    s.get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Sets `d`'s quiet hours from `start` to `end` (hour, minute), local time.
pub async fn set_quiet_hours(d: &Device, start: (u32, u32), end: (u32, u32)) {
    d.settings()
        .update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: Some(
                pb::update_settings_request::QuietHoursChange::SetQuietHours(pb::QuietHours {
                    start: Some(pb::LocalTimeOfDay {
                        hour: start.0,
                        minute: start.1,
                    }),
                    end: Some(pb::LocalTimeOfDay {
                        hour: end.0,
                        minute: end.1,
                    }),
                }),
            ),
            receipts_enabled: None,
        })
        .await
        .expect("quiet hours");
}

/// Asserts that `result` failed with `code` and a message containing `needle`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    needle: &str,
) -> Status {
    match result {
        Ok(v) => panic!("expected {code:?} ({needle}), got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "wrong code; message: {}", s.message());
            assert!(
                s.message().contains(needle),
                "message {:?} should mention {needle:?}",
                s.message()
            );
            s
        }
    }
}

/// Defines each scenario twice: `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}
