//! The Tapline server: accounts, pairing, taps and durable per-device delivery over gRPC.
//!
//! [`serve`] runs the gRPC services on a listener until a shutdown future resolves; tests start
//! it on `127.0.0.1:0` with a temporary database.

pub mod accounts;
pub mod auth;
pub mod checkins;
pub mod clock;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod jobs;
pub mod pairing;
pub mod ratelimit;
pub mod routines;
pub mod sql;
pub mod streaks;
pub mod taps;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tapline_proto::v1::account_service_server::AccountServiceServer;
use tapline_proto::v1::checkin_service_server::CheckinServiceServer;
use tapline_proto::v1::event_service_server::EventServiceServer;
use tapline_proto::v1::pairing_service_server::PairingServiceServer;
use tapline_proto::v1::routine_service_server::RoutineServiceServer;
use tapline_proto::v1::settings_service_server::SettingsServiceServer;
use tapline_proto::v1::streak_service_server::StreakServiceServer;
use tapline_proto::v1::tap_service_server::TapServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::db::Db;
pub use crate::error::{Error, Result};
use crate::ratelimit::RateLimiter;

/// Largest request message accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Tunables of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Taps one account may send per minute.
    pub taps_per_minute: u32,
    /// Invite or link-code attempts per key per 15 minutes.
    pub code_attempts_per_15_min: u32,
    /// Interval between heartbeats on an idle stream.
    pub heartbeat: Duration,
    /// How long open streams and calls may take to finish at shutdown.
    pub drain: Duration,
    /// How often the background jobs (routines, check-in expiry) run; `None` runs none (tests
    /// call [`jobs::tick`] themselves).
    pub jobs_every: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            taps_per_minute: 60,
            code_attempts_per_15_min: 10,
            heartbeat: delivery::stream::DEFAULT_HEARTBEAT,
            drain: Duration::from_secs(5),
            jobs_every: Some(Duration::from_secs(1)),
        }
    }
}

/// The rate limiters.
#[derive(Debug)]
pub struct Limits {
    /// Taps per account.
    pub taps: RateLimiter,
    /// Invite and link-code attempts.
    pub code_guesses: RateLimiter,
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The source of "now".
    pub clock: Arc<dyn Clock>,
    /// Rings live streams after commit.
    pub doorbell: delivery::doorbell::Doorbell,
    /// Rate limiters.
    pub limits: Arc<Limits>,
    /// Tunables.
    pub settings: Arc<Settings>,
    /// Cancelled when the server starts draining.
    pub shutdown: CancellationToken,
    /// The group commit for taps and acks.
    pub writer: delivery::writer::Writer,
    /// Recently resolved bearer tokens.
    pub tokens: Arc<auth::TokenCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over an open database, a clock and settings.
    pub fn new(db: Db, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        let limits = Limits {
            taps: RateLimiter::new(settings.taps_per_minute, Duration::from_secs(60)),
            code_guesses: RateLimiter::new(
                settings.code_attempts_per_15_min,
                Duration::from_secs(15 * 60),
            ),
        };
        let doorbell = delivery::doorbell::Doorbell::default();
        AppState {
            writer: delivery::writer::Writer::start(db.clone(), doorbell.clone()),
            tokens: Default::default(),
            db,
            clock,
            doorbell,
            limits: Arc::new(limits),
            settings: Arc::new(settings),
            shutdown: CancellationToken::new(),
        }
    }
}

/// Serves every service on `listener` until `shutdown` resolves, then drains: health turns
/// NOT_SERVING, live streams end with UNAVAILABLE, and calls get `settings.drain` to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let names = [
        "",
        "tapline.v1.AccountService",
        "tapline.v1.PairingService",
        "tapline.v1.SettingsService",
        "tapline.v1.TapService",
        "tapline.v1.EventService",
        "tapline.v1.StreakService",
        "tapline.v1.CheckinService",
        "tapline.v1.RoutineService",
    ];
    for name in names {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tapline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tapline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;

    let api = grpc::Api::new(state.clone());
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let draining = state.shutdown.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining");
        for name in names {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        draining.cancel();
    };
    let server = Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            AccountServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            PairingServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            SettingsServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            TapServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            EventServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            StreakServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            CheckinServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(RoutineServiceServer::new(api).max_decoding_message_size(MAX_REQUEST_BYTES))
        .serve_with_incoming_shutdown(incoming, signal);

    if state.db.backend() == db::Backend::Postgres {
        delivery::cluster::start(state.clone()).await?;
    }
    if let Some(every) = state.settings.jobs_every {
        tokio::spawn(jobs::run(state.clone(), every));
    }
    let drain = state.settings.drain;
    let timed_out = async {
        state.shutdown.cancelled().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        served = server => served?,
        _ = timed_out => tracing::warn!(?drain, "drain timed out; closing the remaining connections"),
    }
    tracing::info!("stopped");
    Ok(())
}
