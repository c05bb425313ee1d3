//! The bare relay: the ceiling of the stack without a database. The same generated
//! `tapline.v1` services on the same tonic server set-up as `tapline-server` (HTTP/1.1 and
//! HTTP/2 on one port, the gRPC-Web layer, health, TCP_NODELAY, 64 KiB request limit), but
//! `SendTap` only numbers the event per device and hands it to the recipients' live streams in
//! memory. No authentication lookup, no storage, no durability, no backlog: a device without a
//! live stream misses the tap (the bench opens every stream before it sends).
//!
//! A device's token names it: `relay-<couple>-<slot>` (slots as in [`crate::fleet`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::event_service_server::{EventService, EventServiceServer};
use tapline_proto::v1::tap_service_server::{TapService, TapServiceServer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Largest request accepted, as on the real server.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Longest note accepted, as on the real server.
const MAX_NOTE_CHARS: usize = 80;

/// The token of a relay device.
pub fn token(couple: u32, slot: u8) -> String {
    format!("relay-{couple}-{slot}")
}

/// The id of a relay device.
pub fn device_id(couple: u32, slot: u8) -> String {
    format!("dev-{couple}-{slot}")
}

/// A device key: couple and slot.
type Key = (u32, u8);
/// What a live stream carries.
type Outbound = Result<pb::SubscribeResponse, Status>;

/// One device's state: its last sequence number and its live stream, if any.
#[derive(Default)]
struct Slot {
    seq: u64,
    live: Option<mpsc::UnboundedSender<Outbound>>,
}

/// The relay's services over shared in-memory state.
#[derive(Clone, Default)]
pub struct Relay {
    devices: Arc<Mutex<HashMap<Key, Slot>>>,
}

fn caller<T>(req: &Request<T>) -> Result<Key, Status> {
    let value = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Status::unauthenticated("missing token"))?;
    parse_token(value).ok_or_else(|| Status::unauthenticated("unknown token"))
}

fn parse_token(header: &str) -> Option<Key> {
    let rest = header.strip_prefix("Bearer relay-")?;
    let (couple, slot) = rest.split_once('-')?;
    let slot: u8 = slot.parse().ok()?;
    (slot < 4).then_some(())?;
    Some((couple.parse().ok()?, slot))
}

fn now() -> prost_types::Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

impl Relay {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[tonic::async_trait]
impl TapService for Relay {
    async fn send_tap(
        &self,
        req: Request<pb::SendTapRequest>,
    ) -> Result<Response<pb::SendTapResponse>, Status> {
        let (couple, slot) = caller(&req)?;
        let req = req.into_inner();
        if uuid::Uuid::parse_str(&req.client_tap_id).is_err() {
            return Err(Status::invalid_argument("client_tap_id: must be a UUID"));
        }
        if req.note.chars().count() > MAX_NOTE_CHARS {
            return Err(Status::invalid_argument("note: at most 80 characters"));
        }
        let at = now();
        let tap = pb::Tap {
            tap_id: uuid::Uuid::now_v7().to_string(),
            client_tap_id: req.client_tap_id,
            sender_account_id: format!("acct-{couple}-{}", slot / 2),
            sender_device_id: device_id(couple, slot),
            kind: req.kind,
            rhythm: req.rhythm,
            note: req.note,
            sent_at: Some(at),
        };
        let event_id = uuid::Uuid::now_v7().to_string();
        let partner_phone = (slot & 2) ^ 2;
        let recipients = [
            (partner_phone, false),
            (partner_phone + 1, false),
            (slot ^ 1, true),
        ];
        let mut devices = self.lock();
        for (to, from_self) in recipients {
            let state = devices.entry((couple, to)).or_default();
            state.seq += 1;
            let event = pb::Event {
                seq: state.seq,
                event_id: event_id.clone(),
                created_at: Some(at),
                payload: Some(Payload::TapReceived(pb::TapReceived {
                    tap: Some(tap.clone()),
                    silent: from_self,
                    from_self,
                })),
            };
            if let Some(live) = &state.live {
                let msg = Ok(pb::SubscribeResponse { event: Some(event) });
                if live.send(msg).is_err() {
                    state.live = None;
                }
            }
        }
        drop(devices);
        Ok(Response::new(pb::SendTapResponse {
            tap: Some(tap),
            duplicate: false,
            partner_clock: None,
        }))
    }

    async fn report_tap(
        &self,
        _req: Request<pb::ReportTapRequest>,
    ) -> Result<Response<pb::ReportTapResponse>, Status> {
        Err(Status::unimplemented("the relay only sends taps"))
    }
}

#[tonic::async_trait]
impl EventService for Relay {
    type SubscribeStream = UnboundedReceiverStream<Outbound>;

    /// Says `caught_up` at the device's current sequence number, then relays live events.
    /// A newer stream for the same device ends the older one.
    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let key = caller(&req)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut devices = self.lock();
        let state = devices.entry(key).or_default();
        let caught_up = pb::Event {
            seq: 0,
            event_id: uuid::Uuid::now_v7().to_string(),
            created_at: Some(now()),
            payload: Some(Payload::CaughtUp(pb::CaughtUp {
                last_seq: state.seq,
            })),
        };
        let _ = tx.send(Ok(pb::SubscribeResponse {
            event: Some(caught_up),
        }));
        state.live = Some(tx);
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn fetch_events(
        &self,
        _req: Request<pb::FetchEventsRequest>,
    ) -> Result<Response<pb::FetchEventsResponse>, Status> {
        Err(Status::unimplemented("the relay keeps no inbox"))
    }

    /// Nothing is kept, so there is nothing to forget; the round trip is what is measured.
    async fn ack_events(
        &self,
        req: Request<pb::AckEventsRequest>,
    ) -> Result<Response<pb::AckEventsResponse>, Status> {
        caller(&req)?;
        Ok(Response::new(pb::AckEventsResponse {}))
    }
}

/// Runs the relay on `listen` until SIGTERM or SIGINT. Writes its address to stderr as the
/// real server does (`{"fields":{"listen":...}}`), so the bench starts both the same way.
pub async fn serve(listen: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let line = serde_json::json!({
        "level": "INFO",
        "fields": { "message": "bare relay serving", "listen": addr.to_string() },
        "target": "tapline_bench::relay",
    });
    eprintln!("{line}");

    let relay = Relay::default();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(health_service)
        .add_service(
            TapServiceServer::new(relay.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(EventServiceServer::new(relay).max_decoding_message_size(MAX_REQUEST_BYTES))
        .serve_with_incoming_shutdown(incoming, stop_signal())
        .await
        .map_err(|e| format!("relay: {e}"))
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_device() {
        assert_eq!(
            parse_token(&format!("Bearer {}", token(7, 3))),
            Some((7, 3))
        );
        assert_eq!(parse_token("Bearer relay-7-4"), None);
        assert_eq!(parse_token("Bearer tpl_abc"), None);
        assert_eq!(parse_token("relay-1-1"), None);
    }
}
