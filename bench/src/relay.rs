//! The bare relay: the ceiling of the stack without a database. The same generated
//! `tapline.v1` services on the same tonic server set-up as `tapline-server` (HTTP/1.1 and
//! HTTP/2 on one port, the gRPC-Web layer, health, TCP_NODELAY, 64 KiB request limit), but
//! `SendTap` only numbers the event per device and hands it to the recipients' live streams in
//! memory. No authentication lookup, no storage, no durability, no backlog: a device without a
//! live stream misses the tap (the bench opens every stream before it sends).
//!
//! The rest of the realistic mix is kept in memory the same way: receipts go to the sender's
//! two devices once per tap and kind (DELIVERED when a recipient device acks past the tap with
//! `--delivered ack`, or when it reports it with `--delivered report`; FELT and SEEN when
//! reported), and check-ins are opened and answered as on the server (each partner answers
//! once, a different second answer is refused), with a `CheckinUpdated` event to all four
//! devices of the couple each time.
//!
//! A device's token names it: `relay-<couple>-<slot>` (slots as in [`crate::fleet`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tapline_proto::v1 as pb;
use tapline_proto::v1::checkin_service_server::{CheckinService, CheckinServiceServer};
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::event_service_server::{EventService, EventServiceServer};
use tapline_proto::v1::tap_service_server::{TapService, TapServiceServer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::mix::Delivered;

/// Largest request accepted, as on the real server.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Longest text answer, as on the real server.
const MAX_TEXT_CHARS: u32 = tapline_proto::limits::ANSWER_TEXT_CHARS as u32;

/// The token of a relay device.
pub fn token(couple: u32, slot: u8) -> String {
    format!("relay-{couple}-{slot}")
}

/// The id of a relay device.
pub fn device_id(couple: u32, slot: u8) -> String {
    format!("dev-{couple}-{slot}")
}

/// The id of a relay account: partner `side` (0 or 1) of `couple`.
fn account_id(couple: u32, side: u8) -> String {
    format!("acct-{couple}-{side}")
}

/// A device key: couple and slot.
type Key = (u32, u8);
/// What a live stream carries.
type Outbound = Result<pb::SubscribeResponse, Status>;

/// One device's state: its last sequence number, its live stream, if any, and (when DELIVERED
/// follows acks) the partner taps it was sent and has not acked yet, by seq.
#[derive(Default)]
struct Slot {
    seq: u64,
    live: Option<mpsc::UnboundedSender<Outbound>>,
    unacked: VecDeque<(u64, u128)>,
}

/// A tap handed out: whose it is, and the receipt kinds already sent back (bit `kind`).
struct Tap {
    couple: u32,
    /// The slot of the sender's phone (its account's devices are it and the next).
    sender_phone: u8,
    receipts: u8,
}

/// A check-in: its prompt (see [`prompt`]), who opened it, each partner's answer.
struct Checkin {
    couple: u32,
    prompt: usize,
    opened_by: u8,
    opened_at: prost_types::Timestamp,
    answers: [Option<pb::Answer>; 2],
}

/// Everything the relay holds.
#[derive(Default)]
struct State {
    devices: HashMap<Key, Slot>,
    taps: HashMap<u128, Tap>,
    checkins: HashMap<u128, Checkin>,
    /// `AskPartner` is idempotent on (couple, side, client_checkin_id).
    asked: HashMap<(u32, u8, String), u128>,
}

/// The relay's services over shared in-memory state.
#[derive(Clone, Default)]
pub struct Relay {
    state: Arc<Mutex<State>>,
    delivered: Delivered,
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

/// A UUID argument as a number.
fn uuid_arg(field: &str, value: &str) -> Result<u128, Status> {
    uuid::Uuid::parse_str(value)
        .map(|u| u.as_u128())
        .map_err(|_| Status::invalid_argument(format!("{field}: must be a UUID")))
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

/// The relay's prompt catalogue, one of each answer type: a check-in of category `n` gets
/// prompt `n % 4`.
fn prompt(n: usize) -> pb::Prompt {
    use pb::prompt::AnswerType;
    let options = |o: &[&str]| o.iter().map(|s| s.to_string()).collect();
    let (id, answer_type) = match n % 4 {
        0 => (
            "relay-scale",
            AnswerType::Scale(pb::ScaleAnswerType {
                low_label: "low".into(),
                high_label: "high".into(),
            }),
        ),
        1 => (
            "relay-choice",
            AnswerType::Choice(pb::ChoiceAnswerType {
                options: options(&["yes", "not yet"]),
            }),
        ),
        2 => (
            "relay-emoji",
            AnswerType::Emoji(pb::EmojiAnswerType {
                options: options(&["🙂", "😴", "🔥"]),
            }),
        ),
        _ => (
            "relay-text",
            AnswerType::TextAnswer(pb::TextAnswerType {
                max_chars: MAX_TEXT_CHARS,
            }),
        ),
    };
    pb::Prompt {
        prompt_id: id.into(),
        category: n as i32,
        text: "How are you?".into(),
        answer_type: Some(answer_type),
        quick_replies: Vec::new(),
    }
}

/// Whether `answer` is one `prompt` takes.
fn fits(prompt: &pb::Prompt, answer: &pb::Answer) -> bool {
    use pb::answer::Value;
    use pb::prompt::AnswerType;
    match (&prompt.answer_type, &answer.value) {
        (Some(AnswerType::Scale(_)), Some(Value::Scale(v))) => (1..=5).contains(v),
        (Some(AnswerType::Choice(c)), Some(Value::Choice(i))) => (*i as usize) < c.options.len(),
        (Some(AnswerType::Emoji(e)), Some(Value::Emoji(x))) => e.options.contains(x),
        (Some(AnswerType::TextAnswer(t)), Some(Value::Text(x))) => {
            (1..=t.max_chars as usize).contains(&x.chars().count())
        }
        _ => false,
    }
}

impl Relay {
    /// The relay's services, with DELIVERED receipts as `delivered` says.
    pub fn new(delivered: Delivered) -> Relay {
        Relay {
            state: Arc::default(),
            delivered,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Numbers an event for device `to` and hands it to its live stream; returns its seq.
    fn append(
        &mut self,
        to: Key,
        event_id: &str,
        at: prost_types::Timestamp,
        payload: Payload,
    ) -> u64 {
        let slot = self.devices.entry(to).or_default();
        slot.seq += 1;
        if let Some(live) = &slot.live {
            let event = pb::Event {
                seq: slot.seq,
                event_id: event_id.to_owned(),
                created_at: Some(at),
                payload: Some(payload),
            };
            if live
                .send(Ok(pb::SubscribeResponse { event: Some(event) }))
                .is_err()
            {
                slot.live = None;
            }
        }
        slot.seq
    }

    /// Tells the sender's two devices that `tap` was `kind`, the first time only.
    fn receipt(&mut self, tap: u128, kind: pb::ReceiptKind) {
        self.receipts(&[tap], kind);
    }

    /// [`Self::receipt`] for several taps at once: as the server does, one event per sender
    /// (and per 200 taps) names every tap that is new to this receipt.
    fn receipts(&mut self, taps: &[u128], kind: pb::ReceiptKind) {
        let bit = 1u8 << (kind as i32);
        let mut by_sender: std::collections::BTreeMap<(u32, u8), Vec<u128>> = Default::default();
        for tap in taps {
            let Some(t) = self.taps.get_mut(tap) else {
                continue;
            };
            if t.receipts & bit != 0 {
                continue;
            }
            t.receipts |= bit;
            by_sender
                .entry((t.couple, t.sender_phone))
                .or_default()
                .push(*tap);
        }
        for ((couple, phone), taps) in by_sender {
            for chunk in taps.chunks(200) {
                let at = now();
                let ids: Vec<String> = chunk
                    .iter()
                    .map(|t| uuid::Uuid::from_u128(*t).to_string())
                    .collect();
                let payload = Payload::TapReceipt(pb::TapReceipt {
                    tap_id: ids[0].clone(),
                    kind: kind as i32,
                    at: Some(at),
                    also_tap_ids: ids[1..].to_vec(),
                });
                let event_id = uuid::Uuid::now_v7().to_string();
                for slot in [phone, phone + 1] {
                    self.append((couple, slot), &event_id, at, payload.clone());
                }
            }
        }
    }

    /// Check-in `id` as partner `side` sees it.
    fn view(&self, id: u128, side: u8) -> Option<pb::Checkin> {
        let c = self.checkins.get(&id)?;
        let [mine, theirs] = if side == 0 {
            [&c.answers[0], &c.answers[1]]
        } else {
            [&c.answers[1], &c.answers[0]]
        };
        let revealed = mine.is_some() && theirs.is_some();
        Some(pb::Checkin {
            checkin_id: uuid::Uuid::from_u128(id).to_string(),
            prompt: Some(prompt(c.prompt)),
            status: if revealed {
                pb::CheckinStatus::Revealed
            } else {
                pb::CheckinStatus::Open
            } as i32,
            opened_by_account_id: account_id(c.couple, c.opened_by),
            opened_at: Some(c.opened_at),
            my_answer: mine.clone(),
            partner_answered: theirs.is_some(),
            partner_answer: if revealed { theirs.clone() } else { None },
            ..pb::Checkin::default()
        })
    }

    /// A `CheckinUpdated` event (one id) to all four devices of the check-in's couple, each
    /// partner with their own view.
    fn checkin_updated(&mut self, id: u128) {
        let Some(couple) = self.checkins.get(&id).map(|c| c.couple) else {
            return;
        };
        let (at, event_id) = (now(), uuid::Uuid::now_v7().to_string());
        for side in 0..2u8 {
            let view = self.view(id, side);
            for slot in [2 * side, 2 * side + 1] {
                let payload = Payload::CheckinUpdated(Box::new(pb::CheckinUpdated {
                    checkin: view.clone(),
                }));
                self.append((couple, slot), &event_id, at, payload);
            }
        }
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
        uuid_arg("client_tap_id", &req.client_tap_id)?;
        // The same rule as the real server, so the relay does the same work per tap.
        if let Err(v) = tapline_proto::limits::note(&req.note) {
            return Err(Status::invalid_argument(v.to_string()));
        }
        let at = now();
        let id = uuid::Uuid::now_v7();
        let tap = pb::Tap {
            tap_id: id.to_string(),
            client_tap_id: req.client_tap_id,
            sender_account_id: account_id(couple, slot / 2),
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
        let derive = self.delivered == Delivered::Ack;
        let mut state = self.lock();
        state.taps.insert(
            id.as_u128(),
            Tap {
                couple,
                sender_phone: slot & 2,
                receipts: 0,
            },
        );
        for (to, from_self) in recipients {
            let payload = Payload::TapReceived(pb::TapReceived {
                tap: Some(tap.clone()),
                silent: from_self,
                from_self,
                released: false,
            });
            let seq = state.append((couple, to), &event_id, at, payload);
            if derive && !from_self {
                let slot = state.devices.entry((couple, to)).or_default();
                slot.unacked.push_back((seq, id.as_u128()));
            }
        }
        drop(state);
        Ok(Response::new(pb::SendTapResponse {
            tap: Some(tap),
            duplicate: false,
            partner_clock: None,
            ..Default::default()
        }))
    }

    /// Records a receipt from the tap's recipient; the sender's devices hear of each kind once.
    async fn report_tap(
        &self,
        req: Request<pb::ReportTapRequest>,
    ) -> Result<Response<pb::ReportTapResponse>, Status> {
        let (couple, slot) = caller(&req)?;
        let req = req.into_inner();
        let tap = uuid_arg("tap_id", &req.tap_id)?;
        let kind = match pb::ReceiptKind::try_from(req.kind) {
            Ok(pb::ReceiptKind::Unspecified) | Err(_) => {
                return Err(Status::invalid_argument(
                    "kind: must be delivered, felt or seen",
                ));
            }
            Ok(k) => k,
        };
        let mut state = self.lock();
        let t = state
            .taps
            .get(&tap)
            .filter(|t| t.couple == couple)
            .ok_or_else(|| Status::not_found("tap"))?;
        if t.sender_phone == slot & 2 {
            return Err(Status::failed_precondition(
                "you sent this tap; only your partner can report it",
            ));
        }
        state.receipt(tap, kind);
        Ok(Response::new(pb::ReportTapResponse {}))
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
        let mut state = self.lock();
        let slot = state.devices.entry(key).or_default();
        let caught_up = pb::Event {
            seq: 0,
            event_id: uuid::Uuid::now_v7().to_string(),
            created_at: Some(now()),
            payload: Some(Payload::CaughtUp(pb::CaughtUp { last_seq: slot.seq })),
        };
        let _ = tx.send(Ok(pb::SubscribeResponse {
            event: Some(caught_up),
        }));
        slot.live = Some(tx);
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn fetch_events(
        &self,
        _req: Request<pb::FetchEventsRequest>,
    ) -> Result<Response<pb::FetchEventsResponse>, Status> {
        Err(Status::unimplemented("the relay keeps no inbox"))
    }

    /// Nothing is kept, so there is nothing to forget; with `--delivered ack`, the partner taps
    /// acked for the first time are reported DELIVERED to their senders.
    async fn ack_events(
        &self,
        req: Request<pb::AckEventsRequest>,
    ) -> Result<Response<pb::AckEventsResponse>, Status> {
        let key = caller(&req)?;
        let upto = req.get_ref().seq;
        let mut state = self.lock();
        let slot = state.devices.entry(key).or_default();
        let mut acked = Vec::new();
        while let Some(&(seq, tap)) = slot.unacked.front()
            && seq <= upto
        {
            slot.unacked.pop_front();
            acked.push(tap);
        }
        state.receipts(&acked, pb::ReceiptKind::Delivered);
        Ok(Response::new(pb::AckEventsResponse {}))
    }
}

#[tonic::async_trait]
impl CheckinService for Relay {
    async fn list_prompts(
        &self,
        _req: Request<pb::ListPromptsRequest>,
    ) -> Result<Response<pb::ListPromptsResponse>, Status> {
        Ok(Response::new(pb::ListPromptsResponse {
            prompts: (0..4).map(prompt).collect(),
        }))
    }

    /// Opens a check-in for the couple (its prompt named, or picked by category).
    async fn ask_partner(
        &self,
        req: Request<pb::AskPartnerRequest>,
    ) -> Result<Response<pb::AskPartnerResponse>, Status> {
        let (couple, slot) = caller(&req)?;
        let side = slot / 2;
        let req = req.into_inner();
        uuid_arg("client_checkin_id", &req.client_checkin_id)?;
        let chosen = match req.prompt_id.as_str() {
            "" => req.category.max(0) as usize,
            named => (0..4)
                .find(|&n| prompt(n).prompt_id == named)
                .ok_or_else(|| Status::invalid_argument("prompt_id: unknown prompt"))?,
        };
        let mut state = self.lock();
        let asked = (couple, side, req.client_checkin_id);
        let id = match state.asked.get(&asked) {
            Some(&id) => id,
            None => {
                let id = uuid::Uuid::now_v7().as_u128();
                let checkin = Checkin {
                    couple,
                    prompt: chosen,
                    opened_by: side,
                    opened_at: now(),
                    answers: [None, None],
                };
                state.checkins.insert(id, checkin);
                state.asked.insert(asked, id);
                state.checkin_updated(id);
                id
            }
        };
        Ok(Response::new(pb::AskPartnerResponse {
            checkin: state.view(id, side),
        }))
    }

    /// Takes one answer per partner: the same again changes nothing, another is refused.
    async fn answer_checkin(
        &self,
        req: Request<pb::AnswerCheckinRequest>,
    ) -> Result<Response<pb::AnswerCheckinResponse>, Status> {
        let (couple, slot) = caller(&req)?;
        let side = slot / 2;
        let req = req.into_inner();
        let id = uuid_arg("checkin_id", &req.checkin_id)?;
        let answer = req
            .answer
            .ok_or_else(|| Status::invalid_argument("answer: is required"))?;
        let mut state = self.lock();
        let c = state
            .checkins
            .get_mut(&id)
            .filter(|c| c.couple == couple)
            .ok_or_else(|| Status::not_found("check-in"))?;
        if !fits(&prompt(c.prompt), &answer) {
            return Err(Status::invalid_argument("answer: does not fit the prompt"));
        }
        match &c.answers[side as usize] {
            Some(given) if *given == answer => {}
            Some(_) => {
                return Err(Status::failed_precondition(
                    "you already answered this check-in differently",
                ));
            }
            None => {
                c.answers[side as usize] = Some(answer);
                state.checkin_updated(id);
            }
        }
        Ok(Response::new(pb::AnswerCheckinResponse {
            checkin: state.view(id, side),
        }))
    }

    async fn list_checkins(
        &self,
        _req: Request<pb::ListCheckinsRequest>,
    ) -> Result<Response<pb::ListCheckinsResponse>, Status> {
        Err(Status::unimplemented("the relay lists no check-ins"))
    }
}

/// Runs the relay on `listen` until SIGTERM or SIGINT. Writes its address to stderr as the
/// real server does (`{"fields":{"listen":...}}`), so the bench starts both the same way.
pub async fn serve(listen: SocketAddr, delivered: Delivered) -> Result<(), String> {
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

    let relay = Relay::new(delivered);
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
        .add_service(
            EventServiceServer::new(relay.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(CheckinServiceServer::new(relay).max_decoding_message_size(MAX_REQUEST_BYTES))
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

    #[test]
    fn the_bench_answers_fit_every_relay_prompt_and_only_those() {
        for n in 0..4 {
            let p = prompt(n);
            assert!(
                fits(&p, &crate::mix::answer_for(Some(&p))),
                "{}",
                p.prompt_id
            );
            let other = crate::mix::answer_for(Some(&prompt(n + 1)));
            assert!(!fits(&p, &other), "{}", p.prompt_id);
        }
        let too_high = pb::Answer {
            value: Some(pb::answer::Value::Scale(6)),
        };
        assert!(!fits(&prompt(0), &too_high));
    }
}
