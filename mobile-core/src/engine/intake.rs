//! The event intake: applying server events to the local store exactly once, acking them,
//! pulling backlogs, and the live stream with its reconnects.

use std::sync::Weak;
use std::time::{Duration, Instant};

use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::backoff::{self, Backoff};
use super::{Delivery, FETCH_BATCH, Inner};
use crate::error::{self, CoreError, CoreResult, TaplineError};
use crate::model::*;
use crate::rituals;
use crate::store::Store;

/// How one stream (or one poll) ended.
enum StreamEnd {
    Cancelled,
    /// The server no longer knows this device's token.
    SignedOut,
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

/// Keeps a space update and tells the app, with the gentle haptic to play unless silent.
fn on_space_updated(
    tx: &rusqlite::Transaction<'_>,
    e: pb::SpaceUpdated,
    my_account: &str,
) -> CoreResult<Vec<ClientEvent>> {
    let Some(space) = e.space else {
        return Ok(vec![]);
    };
    Store::tx_apply_space(tx, &space, my_account)?;
    let info = SpaceInfo::from_wire(&space, my_account);
    let change = SpaceChange::from_wire(e.change);
    let haptic = match (e.silent, change, info.mine) {
        (true, _, _) => None,
        (false, SpaceChange::Asked, false) => Some(crate::haptics::space_pattern()),
        (false, SpaceChange::Answered, true) => Some(crate::haptics::space_answer_pattern()),
        _ => None,
    };
    Ok(vec![ClientEvent::SpaceUpdated {
        space: info,
        change,
        silent: e.silent,
        haptic,
        released_tap_ids: e.released_tap_ids,
    }])
}

/// Keeps a together update and tells the app: the gentle together haptic for a partner's
/// proposal unless silent, nothing for the rest (starting and ending are always silent).
fn on_together_updated(
    tx: &rusqlite::Transaction<'_>,
    e: pb::TogetherUpdated,
    my_account: &str,
) -> CoreResult<Vec<ClientEvent>> {
    Store::tx_apply_together(tx, &e)?;
    let change = TogetherChange::from_wire(e.change);
    let together = e
        .together
        .as_ref()
        .map(|t| TogetherInfo::from_wire(t, my_account));
    let meeting = e
        .meeting
        .as_ref()
        .map(|m| MeetingInfo::from_wire(m, my_account));
    let from_partner = together.as_ref().is_some_and(|t| !t.started_by_me);
    let haptic = (!e.silent && change == TogetherChange::Proposed && from_partner)
        .then(crate::haptics::together_pattern);
    Ok(vec![ClientEvent::TogetherUpdated {
        change,
        together,
        meeting,
        silent: e.silent,
        haptic,
        released_tap_ids: e.released_tap_ids,
    }])
}

/// Keeps a reconnect update and tells the app: the gentle step haptic when a step came for
/// this account, unless silent; nothing for the rest.
fn on_reconnect_updated(
    tx: &rusqlite::Transaction<'_>,
    e: pb::ReconnectUpdated,
    my_account: &str,
) -> CoreResult<Vec<ClientEvent>> {
    let Some(plan) = e.plan.as_ref() else {
        return Ok(vec![]);
    };
    Store::tx_set_reconnect(tx, plan)?;
    let change = ReconnectChange::from_wire(e.change);
    let haptic =
        (!e.silent && change == ReconnectChange::Step).then(crate::haptics::reconnect_step_pattern);
    Ok(vec![ClientEvent::ReconnectUpdated {
        change,
        plan: ReconnectInfo::from_wire(plan, my_account),
        step: e.step.as_ref().map(ReconnectStepInfo::from_wire),
        silent: e.silent,
        haptic,
    }])
}

impl Inner {
    /// Applies one event from the server; returns what the app should hear.
    pub(crate) fn apply(&self, event: pb::Event, my_account: &str) -> CoreResult<Vec<ClientEvent>> {
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
                        couple: CoupleInfo::from_wire(&couple)?,
                    }]
                }
                Payload::Unpaired(u) => {
                    Store::tx_set_couple(tx, None)?;
                    Store::tx_clear_rituals(tx)?;
                    vec![ClientEvent::Unpaired {
                        by_partner: u.by_account_id != my_account,
                        partner_deleted: u.account_deleted && u.by_account_id != my_account,
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
                        changed: p
                            .changed
                            .iter()
                            .filter_map(|c| PartnerChange::from_wire(*c))
                            .collect(),
                        receipts_enabled: p.receipts_enabled,
                    }]
                }
                Payload::StreakUpdated(e) => rituals::on_streak_updated(tx, e, my_account)?,
                Payload::CheckinUpdated(e) => rituals::on_checkin_updated(tx, *e, my_account)?,
                Payload::RoutineFired(e) => rituals::on_routine_fired(tx, *e, my_account)?,
                Payload::RoutinesChanged(e) => rituals::on_routines_changed(e, my_account),
                Payload::SpaceUpdated(e) => on_space_updated(tx, *e, my_account)?,
                Payload::TogetherUpdated(e) => on_together_updated(tx, *e, my_account)?,
                Payload::QuestionUpdated(q) => {
                    let Some(progress) = q.progress.as_ref() else {
                        return Ok(vec![]);
                    };
                    Store::tx_set_question_progress(tx, progress)?;
                    vec![ClientEvent::QuestionUpdated {
                        change: QuestionChange::from_wire(q.change),
                        progress: QuestionProgress::from_wire(progress, my_account),
                        revealed: q.revealed.as_ref().map(QuestionInfo::from_wire),
                        silent: q.silent,
                    }]
                }
                Payload::ReconnectUpdated(e) => on_reconnect_updated(tx, *e, my_account)?,
                Payload::MomentKept(e) => match e.moment {
                    Some(m) => vec![ClientEvent::MomentKept {
                        moment: MomentInfo::from_wire(&m, my_account),
                        forgotten: e.forgotten,
                    }],
                    None => vec![],
                },
                Payload::RecapReady(e) => match e.recap {
                    Some(r) => {
                        Store::tx_recap_ready(tx, &r)?;
                        vec![ClientEvent::RecapReady {
                            recap: RecapInfo::from_wire(&r, my_account),
                        }]
                    }
                    None => vec![],
                },
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
    pub(crate) async fn sync(&self) -> CoreResult<Vec<ClientEvent>> {
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
        caught_up_at: &mut Option<Instant>,
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
            if is_caught_up && caught_up_at.is_none() {
                *caught_up_at = Some(Instant::now());
            }
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
        TaplineError::Unauthenticated => StreamEnd::SignedOut,
        _ => StreamEnd::Retry {
            reason: status.message().to_owned(),
            after: CoreError::Status(status.clone()).retry_after(),
        },
    }
}

/// Keeps one subscription going: streams (or polls, on the host transport), reconnecting
/// after a delay that grows while the server stays out of reach.
pub(crate) async fn subscription_loop(
    weak: Weak<Inner>,
    tx: mpsc::UnboundedSender<Delivery>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::default();
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
                    backoff.reset();
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
                            inner.signed_out();
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
            let mut caught_up_at = None;
            let end = inner.stream_once(&tx, &cancel, &mut caught_up_at).await;
            // Only a stream that caught up and stayed up proves the way is clear again.
            if caught_up_at.is_some_and(|t| t.elapsed() >= backoff::STABLE_AFTER) {
                backoff.reset();
            }
            if matches!(&end, StreamEnd::SignedOut) {
                inner.signed_out();
            }
            end
        };
        match end {
            StreamEnd::Cancelled => break,
            StreamEnd::SignedOut => {
                let reason = "this device is signed out".to_owned();
                let _ = tx.send(Delivery::State(ConnectionState::Stopped { reason }));
                cancel.cancel();
                break;
            }
            StreamEnd::Stop(reason) => {
                let _ = tx.send(Delivery::State(ConnectionState::Stopped { reason }));
                cancel.cancel();
                break;
            }
            StreamEnd::Retry { reason, after } => {
                polled = false;
                let delay = backoff.fail(after);
                let _ = tx.send(Delivery::State(ConnectionState::Offline {
                    retry_in_ms: delay.as_millis() as u64,
                    reason,
                }));
                let Some(inner) = weak.upgrade() else { break };
                let wake = inner.network_wake.clone();
                let sleep = inner.sleeper.sleep(delay);
                drop(inner);
                tokio::select! {
                    _ = sleep => {}
                    // The network is back: try now, and from the first delay again.
                    _ = wake.notified() => backoff.reset(),
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::engine::backoff::{RealTime, Sleeper};

    fn config(dir: &std::path::Path) -> ClientConfig {
        ClientConfig {
            // Nothing listens on the discard port: every connection attempt fails at once.
            server_url: "http://127.0.0.1:9".into(),
            data_dir: dir.display().to_string(),
            device_kind: DeviceKind::Phone,
            platform: Platform::Ios,
            device_name: String::new(),
            poll_interval_ms: 100,
            ca_cert_pem: None,
        }
    }

    /// Virtual time: records each delay and returns at once, until `limit` has passed; then
    /// tells the test and never returns.
    struct VirtualTime {
        delays: Mutex<Vec<Duration>>,
        limit: Duration,
        done: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    }

    impl Sleeper for VirtualTime {
        fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            let mut delays = self.delays.lock().unwrap();
            delays.push(d);
            if delays.iter().sum::<Duration>() >= self.limit {
                if let Some(done) = self.done.lock().unwrap().take() {
                    let _ = done.send(());
                }
                return Box::pin(std::future::pending());
            }
            Box::pin(tokio::task::yield_now())
        }
    }

    #[test]
    fn a_minute_long_outage_costs_at_most_twelve_connection_attempts() {
        let dir = std::env::temp_dir().join(format!(
            "tapline-core-backoff-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let clock = Arc::new(VirtualTime {
            delays: Mutex::new(Vec::new()),
            limit: Duration::from_secs(60),
            done: Mutex::new(Some(done_tx)),
        });
        let inner = Inner::open(config(&dir), None, clock.clone()).unwrap();
        // A device with an account, so the loop really tries the server.
        inner
            .store
            .save_credentials(&crate::store::Credentials {
                token: "t".into(),
                account_id: "a".into(),
                device_id: "d".into(),
                display_name: "A".into(),
                time_zone: "UTC".into(),
            })
            .unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        super::super::runtime::runtime().spawn(subscription_loop(
            Arc::downgrade(&inner),
            tx,
            cancel.clone(),
        ));
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the loop kept retrying until a virtual minute had passed");
        cancel.cancel();

        let delays = clock.delays.lock().unwrap().clone();
        // Attempts in the first minute: the first one, and one after each delay that ends
        // inside the minute.
        let mut at = Duration::ZERO;
        let mut attempts = 1;
        for d in &delays {
            at += *d;
            if at < Duration::from_secs(60) {
                attempts += 1;
            }
        }
        assert!(
            attempts <= 12,
            "{attempts} attempts in a minute: {delays:?}"
        );
        assert!(attempts >= 4, "it does keep trying: {delays:?}");
        assert!(
            delays.last().unwrap() >= &Duration::from_secs(8),
            "the delay grew: {delays:?}"
        );
        // Each failed attempt was reported once as offline, with its delay.
        let mut offline = Vec::new();
        while let Ok(d) = rx.try_recv() {
            if let Delivery::State(ConnectionState::Offline { retry_in_ms, .. }) = d {
                offline.push(Duration::from_millis(retry_in_ms));
            }
        }
        assert_eq!(offline.len(), delays.len());
        let _ = std::fs::remove_dir_all(dir);
    }

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
                ..Default::default()
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
        let inner = &Inner::open(config(&dir), None, Arc::new(RealTime)).unwrap();
        let names = |events: Vec<ClientEvent>| -> Vec<String> {
            events
                .into_iter()
                .filter_map(|e| match e {
                    ClientEvent::PartnerUpdated { partner, .. } => Some(partner.display_name),
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
        let _ = std::fs::remove_dir_all(dir);
    }

    fn together_updated(
        seq: u64,
        change: pb::TogetherChange,
        together: pb::Together,
        silent: bool,
    ) -> pb::Event {
        pb::Event {
            seq,
            event_id: format!("t{seq}"),
            created_at: None,
            payload: Some(Payload::TogetherUpdated(Box::new(pb::TogetherUpdated {
                change: change as i32,
                together: Some(together),
                meeting: None,
                silent,
                released_tap_ids: if seq == 4 { vec!["tap".into()] } else { vec![] },
            }))),
        }
    }

    #[test]
    fn together_time_is_kept_and_only_a_partners_proposal_plays() {
        let dir = std::env::temp_dir().join(format!(
            "tapline-core-together-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let inner = &Inner::open(config(&dir), None, Arc::new(RealTime)).unwrap();
        let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let proposed = pb::Together {
            together_id: "t1".into(),
            started_by_account_id: "partner".into(),
            proposed_at: ts(100),
            until: ts(1900),
            minutes: 120,
            ..Default::default()
        };
        let haptic_of = |events: Vec<ClientEvent>| match events.as_slice() {
            [ClientEvent::TogetherUpdated { haptic, .. }] => haptic.clone(),
            other => panic!("{other:?}"),
        };
        use pb::TogetherChange as C;
        let out = inner
            .apply(
                together_updated(1, C::Proposed, proposed.clone(), false),
                "me",
            )
            .unwrap();
        assert_eq!(
            haptic_of(out),
            Some(crate::haptics::together_pattern()),
            "a partner's proposal plays gently"
        );
        // Seen by the proposer: nothing plays.
        let out = inner
            .apply(
                together_updated(2, C::Proposed, proposed.clone(), false),
                "partner",
            )
            .unwrap();
        assert_eq!(haptic_of(out), None);
        let kept = inner.store.together().unwrap().together.unwrap();
        assert_eq!(kept.together_id, "t1");

        let started = pb::Together {
            confirmed_at: ts(200),
            until: ts(7400),
            ..proposed
        };
        let out = inner
            .apply(together_updated(3, C::Started, started.clone(), true), "me")
            .unwrap();
        let [
            ClientEvent::TogetherUpdated {
                together,
                haptic,
                silent,
                ..
            },
        ] = out.as_slice()
        else {
            panic!("{out:?}");
        };
        assert!(together.as_ref().unwrap().in_force && *silent && haptic.is_none());

        let ended = pb::Together {
            ended_at: ts(300),
            end: pb::TogetherEnd::ByHand as i32,
            ended_by_account_id: "me".into(),
            held_taps: 1,
            ..started
        };
        let out = inner
            .apply(together_updated(4, C::Ended, ended, true), "me")
            .unwrap();
        let [
            ClientEvent::TogetherUpdated {
                together,
                released_tap_ids,
                ..
            },
        ] = out.as_slice()
        else {
            panic!("{out:?}");
        };
        let t = together.as_ref().unwrap();
        assert_eq!(
            (t.end, t.ended_by_me, t.held_taps),
            (Some(TogetherEnd::ByHand), true, 1)
        );
        assert_eq!(released_tap_ids, &["tap".to_owned()]);
        assert!(inner.store.together().unwrap().together.is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn event(seq: u64, payload: Payload) -> pb::Event {
        pb::Event {
            seq,
            event_id: format!("e{seq}"),
            created_at: None,
            payload: Some(payload),
        }
    }

    #[test]
    fn a_reconnect_step_plays_gently_and_a_recap_waits_unread() {
        let dir = std::env::temp_dir().join(format!(
            "tapline-core-reconnect-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let inner = &Inner::open(config(&dir), None, Arc::new(RealTime)).unwrap();
        let step = pb::ReconnectStep {
            number: 1,
            kind: pb::ReconnectStepKind::Tap as i32,
            title: "A tap".into(),
            prompt: "Send one, nothing more.".into(),
            came_at: Some(prost_types::Timestamp {
                seconds: 100,
                nanos: 0,
            }),
            came_on: "2026-07-15".into(),
            ..Default::default()
        };
        let plan = pb::ReconnectPlan {
            plan_id: "p1".into(),
            started_by_account_id: "partner".into(),
            state: pb::ReconnectState::Running as i32,
            steps: vec![step.clone()],
            my_steps_come: 1,
            ..Default::default()
        };
        let updated = |seq, change: pb::ReconnectChange, silent| {
            event(
                seq,
                Payload::ReconnectUpdated(Box::new(pb::ReconnectUpdated {
                    change: change as i32,
                    plan: Some(plan.clone()),
                    step: Some(step.clone()),
                    silent,
                })),
            )
        };
        let haptic_of = |events: Vec<ClientEvent>| match events.as_slice() {
            [ClientEvent::ReconnectUpdated { haptic, .. }] => haptic.clone(),
            other => panic!("{other:?}"),
        };
        use pb::ReconnectChange as C;
        let out = inner.apply(updated(1, C::Step, false), "me").unwrap();
        assert_eq!(
            haptic_of(out),
            Some(crate::haptics::reconnect_step_pattern())
        );
        for (seq, change, silent) in [(2, C::Step, true), (3, C::PartnerDone, false)] {
            let out = inner.apply(updated(seq, change, silent), "me").unwrap();
            assert_eq!(haptic_of(out), None, "{change:?} silent={silent}");
        }
        assert_eq!(inner.store.reconnect().unwrap().unwrap().plan_id, "p1");

        let recap = pb::Recap {
            last_date: "2026-07-15".into(),
            ..Default::default()
        };
        let out = inner
            .apply(
                event(
                    4,
                    Payload::RecapReady(Box::new(pb::RecapReady { recap: Some(recap) })),
                ),
                "me",
            )
            .unwrap();
        assert!(matches!(out.as_slice(), [ClientEvent::RecapReady { .. }]));
        assert!(inner.store.unread_recap().unwrap().is_some());

        let out = inner
            .apply(
                event(
                    5,
                    Payload::MomentKept(Box::new(pb::MomentKept {
                        moment: Some(pb::Moment {
                            moment_id: "m".into(),
                            kept_by_account_id: "partner".into(),
                            author_account_id: "me".into(),
                            ..Default::default()
                        }),
                        forgotten: false,
                    })),
                ),
                "me",
            )
            .unwrap();
        let [ClientEvent::MomentKept { moment, forgotten }] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert!(moment.written_by_me && !moment.kept_by_me && !forgotten);
        let _ = std::fs::remove_dir_all(dir);
    }
}
