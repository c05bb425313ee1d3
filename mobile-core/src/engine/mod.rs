//! The engine under the exported API: the connection, the local store, the outbox sender
//! ([`outbox`]), the event intake and reconnects ([`intake`]), and the runtime they run on.

pub(crate) mod backoff;
pub(crate) mod intake;
pub(crate) mod outbox;
pub(crate) mod runtime;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::event_service_client::EventServiceClient;
use tapline_proto::v1::moment_service_client::MomentServiceClient;
use tapline_proto::v1::pairing_service_client::PairingServiceClient;
use tapline_proto::v1::push_service_client::PushServiceClient;
use tapline_proto::v1::question_service_client::QuestionServiceClient;
use tapline_proto::v1::reconnect_service_client::ReconnectServiceClient;
use tapline_proto::v1::routine_service_client::RoutineServiceClient;
use tapline_proto::v1::settings_service_client::SettingsServiceClient;
use tapline_proto::v1::space_service_client::SpaceServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;
use tapline_proto::v1::tap_service_client::TapServiceClient;
use tapline_proto::v1::together_service_client::TogetherServiceClient;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Request;

use crate::error::{CoreError, CoreResult, RefusalCode};
use crate::model::*;
use crate::store::{Credentials, Store};
use crate::transport::{self, GrpcService, HttpTransport};
use backoff::Sleeper;
use runtime::runtime;

/// Deadline of one unary call.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Events asked for per fetch.
pub(crate) const FETCH_BATCH: u32 = 100;

/// What a subscription's listener thread receives.
pub(crate) enum Delivery {
    /// Boxed: some events are large, connection states are small.
    Event(Box<ClientEvent>),
    /// The connection changed.
    State(ConnectionState),
}

/// The state one client shares between its exported calls and its background tasks.
pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    pub(crate) store: Store,
    pub(crate) grpc: GrpcService,
    pub(crate) host_transport: bool,
    /// Rung when the outbox has something new, or the network is back.
    pub(crate) outbox_wake: Arc<Notify>,
    /// Rung when the network is back, to retry subscriptions at once.
    pub(crate) network_wake: Arc<Notify>,
    pub(crate) listeners: Mutex<Vec<mpsc::UnboundedSender<Delivery>>>,
    /// What reconnect delays sleep on.
    pub(crate) sleeper: Arc<dyn Sleeper>,
    /// Held while a row is sent, so the background sender and a flush never send one twice.
    pub(crate) sending: tokio::sync::Mutex<()>,
    pub(crate) shutdown: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The public view of stored credentials.
pub(crate) fn account_info(c: &Credentials, signed_out: bool) -> AccountInfo {
    AccountInfo {
        account_id: c.account_id.clone(),
        device_id: c.device_id.clone(),
        display_name: c.display_name.clone(),
        time_zone: c.time_zone.clone(),
        signed_out,
    }
}

impl Inner {
    /// Opens the store, makes the transport and starts the outbox sender.
    pub(crate) fn open(
        config: ClientConfig,
        host: Option<Arc<dyn HttpTransport>>,
        sleeper: Arc<dyn Sleeper>,
    ) -> CoreResult<Arc<Inner>> {
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
                transport::native(&url, config.ca_cert_pem.as_deref())?
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
            sleeper,
            sending: tokio::sync::Mutex::new(()),
            shutdown: CancellationToken::new(),
        });
        runtime().spawn(outbox::outbox_loop(
            Arc::downgrade(&inner),
            inner.shutdown.clone(),
        ));
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

    pub(crate) fn anonymous<T>(msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        req.set_timeout(CALL_TIMEOUT);
        req
    }

    pub(crate) fn accounts(&self) -> AccountServiceClient<GrpcService> {
        AccountServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn pairing(&self) -> PairingServiceClient<GrpcService> {
        PairingServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn settings_client(&self) -> SettingsServiceClient<GrpcService> {
        SettingsServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn space(&self) -> SpaceServiceClient<GrpcService> {
        SpaceServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn question_client(&self) -> QuestionServiceClient<GrpcService> {
        QuestionServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn reconnect_client(&self) -> ReconnectServiceClient<GrpcService> {
        ReconnectServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn moment_client(&self) -> MomentServiceClient<GrpcService> {
        MomentServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn together_client(&self) -> TogetherServiceClient<GrpcService> {
        TogetherServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn taps(&self) -> TapServiceClient<GrpcService> {
        TapServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn events(&self) -> EventServiceClient<GrpcService> {
        EventServiceClient::new(self.grpc.clone())
    }

    pub(crate) fn device_info(&self) -> pb::DeviceInfo {
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

    pub(crate) fn save_account(
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
        Ok(account_info(&creds, false))
    }

    pub(crate) fn ensure_signed_out(&self) -> CoreResult<()> {
        if self.store.credentials()?.is_some() {
            return Err(CoreError::Refused(
                RefusalCode::AlreadySignedIn,
                "this device already has an account (another account needs another data \
                 folder); if it was signed out, forget it first"
                    .into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn push_client(&self) -> PushServiceClient<GrpcService> {
        PushServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn streaks(&self) -> StreakServiceClient<GrpcService> {
        StreakServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn checkin_client(&self) -> CheckinServiceClient<GrpcService> {
        CheckinServiceClient::new(self.grpc.clone())
    }
    pub(crate) fn routine_client(&self) -> RoutineServiceClient<GrpcService> {
        RoutineServiceClient::new(self.grpc.clone())
    }

    /// This account's id.
    pub(crate) fn me(&self) -> CoreResult<String> {
        Ok(self.creds()?.account_id)
    }

    /// Adds a listener's channel.
    pub(crate) fn add_listener(&self, tx: mpsc::UnboundedSender<Delivery>) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
    }

    /// Tells the core the network is back: queued sends and subscriptions retry at once.
    pub(crate) fn network_available(&self) {
        let _ = self.store.make_all_due(runtime::now_ms());
        self.outbox_wake.notify_one();
        self.network_wake.notify_waiters();
    }

    /// Remembers that the server no longer knows this device's token.
    pub(crate) fn signed_out(&self) {
        let _ = self.store.set_signed_out();
    }
}
