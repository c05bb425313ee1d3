//! The Tapline server: accounts, pairing, taps and durable per-device delivery over gRPC.
//!
//! [`serve`] runs the gRPC services on a listener until a shutdown future resolves; tests start
//! it on `127.0.0.1:0` with a temporary database.

pub mod accounts;
pub mod apns;
pub mod auth;
pub mod backup;
pub mod checkins;
pub mod clock;
pub mod commit;
pub mod config;
pub mod couples;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod fcm;
pub mod gateway;
pub mod grpc;
pub mod jobs;
pub mod leaving;
pub mod metrics;
pub mod moments;
pub mod pairing;
pub mod presence;
pub mod profile;
pub mod proxy;
pub mod push;
pub mod push_outbox;
pub mod questions;
pub mod ratelimit;
pub mod receipts;
pub mod reconnect;
pub mod retention;
pub mod routines;
pub mod space;
pub mod state;
pub mod store;
pub mod streaks;
pub mod taps;
pub mod tls;
pub mod together;
pub mod txn;
pub mod webpush;

use std::future::Future;
use std::time::Duration;

use tapline_proto::v1::account_service_server::AccountServiceServer;
use tapline_proto::v1::checkin_service_server::CheckinServiceServer;
use tapline_proto::v1::event_service_server::EventServiceServer;
use tapline_proto::v1::moment_service_server::MomentServiceServer;
use tapline_proto::v1::pairing_service_server::PairingServiceServer;
use tapline_proto::v1::push_service_server::PushServiceServer;
use tapline_proto::v1::question_service_server::QuestionServiceServer;
use tapline_proto::v1::reconnect_service_server::ReconnectServiceServer;
use tapline_proto::v1::routine_service_server::RoutineServiceServer;
use tapline_proto::v1::settings_service_server::SettingsServiceServer;
use tapline_proto::v1::space_service_server::SpaceServiceServer;
use tapline_proto::v1::streak_service_server::StreakServiceServer;
use tapline_proto::v1::tap_service_server::TapServiceServer;
use tapline_proto::v1::together_service_server::TogetherServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::db::Db;
pub use crate::error::{Error, Result};
pub use crate::state::{AppState, Limits, MAX_REQUEST_BYTES, Settings, VapidKey};

/// The services health reports on ("" is the whole server).
const NAMES: [&str; 14] = [
    "",
    "tapline.v1.AccountService",
    "tapline.v1.PairingService",
    "tapline.v1.SettingsService",
    "tapline.v1.TapService",
    "tapline.v1.EventService",
    "tapline.v1.StreakService",
    "tapline.v1.CheckinService",
    "tapline.v1.RoutineService",
    "tapline.v1.SpaceService",
    "tapline.v1.TogetherService",
    "tapline.v1.QuestionService",
    "tapline.v1.ReconnectService",
    "tapline.v1.MomentService",
];

/// Serves every service on `listener` until `shutdown` resolves, then drains: health turns
/// NOT_SERVING, live streams end with UNAVAILABLE, and calls get `settings.drain` to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in NAMES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    tokio::spawn(follow_database(health.clone(), state.clone()));
    for (name, provider) in state.push_health.clone() {
        tokio::spawn(follow_push_provider(health.clone(), name, provider));
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
    let draining = state.shutdown.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining");
        for name in NAMES {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        draining.cancel();
    };
    let router = Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(metrics::RpcLayer(state.metrics.clone()))
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
            PushServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
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
        .add_service(
            RoutineServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            SpaceServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            TogetherServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            QuestionServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            ReconnectServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(MomentServiceServer::new(api).max_decoding_message_size(MAX_REQUEST_BYTES));
    let server: std::pin::Pin<Box<dyn Future<Output = _> + Send>> = match &state.settings.tls {
        Some(certs) => {
            tokio::spawn(tls::follow(certs.clone(), state.shutdown.clone()));
            Box::pin(router.serve_with_incoming_shutdown(tls::incoming(listener, certs), signal))
        }
        None => Box::pin(router.serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            signal,
        )),
    };

    if state.db.backend() == db::Backend::Postgres {
        delivery::cluster::start(delivery::cluster::Listener {
            url: state.db.url().to_owned(),
            instance: state.db.instance().into(),
            doorbell: state.doorbell.clone(),
            tokens: state.tokens.clone(),
            shutdown: state.shutdown.clone(),
        })
        .await?;
    }
    if let Some(every) = state.settings.jobs_every {
        tokio::spawn(jobs::run(state.clone(), every));
    }
    if let Some(every) = state.settings.prune_every {
        tokio::spawn(retention::run(state.clone(), every));
    }
    if state.push.any() {
        tracing::info!(providers = ?state.push, "push on");
        tokio::spawn(presence::run(state.clone()));
        let every = state.settings.push_every;
        let providers = std::sync::Arc::new(state.push.clone());
        tokio::spawn(push_outbox::run(state.clone(), providers, every));
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

/// A push provider's health, as its own service name: NOT_SERVING while the provider refuses
/// this server's credentials (an operator must act), SERVING once a push goes through.
async fn follow_push_provider(
    reporter: tonic_health::server::HealthReporter,
    name: &'static str,
    mut ok: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let status = if *ok.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status(name, status).await;
        if ok.changed().await.is_err() {
            return;
        }
    }
}

/// Serves a push gateway (`tapline.v1.PushGatewayService`, and health) on `listener` until
/// `shutdown` resolves.
pub async fn serve_gateway(
    listener: TcpListener,
    gateway: std::sync::Arc<gateway::Gateway>,
    health_of: state::PushHealth,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    for (name, provider) in health_of {
        tokio::spawn(follow_push_provider(health.clone(), name, provider));
    }
    Server::builder()
        .add_service(health_service)
        .add_service(
            tapline_proto::v1::push_gateway_service_server::PushGatewayServiceServer::from_arc(
                gateway,
            )
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}

/// Health follows the database: NOT_SERVING while the group commit cannot commit, SERVING
/// again once it can, until the server drains.
async fn follow_database(reporter: tonic_health::server::HealthReporter, state: AppState) {
    let mut db_health = state.writer.health();
    loop {
        tokio::select! {
            changed = db_health.changed() => if changed.is_err() { return },
            _ = state.shutdown.cancelled() => return,
        }
        let serving = *db_health.borrow_and_update();
        if state.shutdown.is_cancelled() {
            return;
        }
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in NAMES {
            reporter.set_service_status(name, status).await;
        }
    }
}
