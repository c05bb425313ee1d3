//! Taps: fan-out to every device, receipts, quiet hours, idempotency, rate limits.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tonic::Code;

on_both_databases!(
    a_tap_reaches_every_other_device_exactly_once,
    receipts_follow_the_recipients_setting,
    quiet_hours_deliver_silently,
    a_retried_tap_is_stored_once,
    taps_are_rate_limited_per_sender,
    custom_rhythms_arrive_intact,
);

async fn a_tap_reaches_every_other_device_exactly_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut alice_phone, _) = c.alice.subscribe_caught_up(0).await;
    let (mut alice_watch, _) = c.alice_watch.subscribe_caught_up(0).await;
    let (mut bob_phone, _) = c.bob.subscribe_caught_up(0).await;
    let (mut bob_watch, _) = c.bob_watch.subscribe_caught_up(0).await;

    let first = c
        .alice
        .tap(pb::TapKind::Heartbeat, "thinking of you")
        .await
        .unwrap();
    assert!(!first.duplicate);
    let first_tap = first.tap.unwrap();
    let clock = first.partner_clock.unwrap();
    assert_eq!(clock.time_zone, "America/New_York");
    assert_eq!(
        clock.local_time, "2026-03-10T08:00:00-04:00",
        "New York is on daylight time since 8 March"
    );

    let mut last_seq = Vec::new();
    for (events, from_self) in [
        (&mut bob_phone, false),
        (&mut bob_watch, false),
        (&mut alice_watch, true),
    ] {
        let (event, got) = events.next_tap().await;
        let tap = got.tap.unwrap();
        assert_eq!(tap, first_tap);
        assert_eq!(tap.kind, pb::TapKind::Heartbeat as i32);
        assert_eq!(tap.note, "thinking of you");
        assert_eq!(got.from_self, from_self);
        assert_eq!(
            got.silent, from_self,
            "only the sender's own copy is silent"
        );
        last_seq.push(event.seq);
    }

    // The next event on each stream is the second tap: the first came exactly once.
    let second = c
        .alice
        .tap(pb::TapKind::Kiss, "")
        .await
        .unwrap()
        .tap
        .unwrap();
    for (i, events) in [&mut bob_phone, &mut bob_watch, &mut alice_watch]
        .into_iter()
        .enumerate()
    {
        let (event, got) = events.next_tap().await;
        assert_eq!(got.tap.unwrap().tap_id, second.tap_id);
        assert_eq!(
            event.seq,
            last_seq[i] + 1,
            "per-device sequence has no gaps"
        );
    }
    // The sending phone gets none of its own taps: its next event is Bob's.
    let from_bob = c
        .bob_watch
        .tap(pb::TapKind::Squeeze, "")
        .await
        .unwrap()
        .tap
        .unwrap();
    let (on_alice_phone, got) = alice_phone.next_tap().await;
    assert_eq!(got.tap.unwrap().tap_id, from_bob.tap_id);
    // One event, one id, on every device that receives it.
    let (on_alice_watch, _) = alice_watch.next_tap().await;
    let (on_bob_phone, got_bob_phone) = bob_phone.next_tap().await;
    assert!(got_bob_phone.from_self);
    assert_eq!(on_alice_phone.event_id, on_alice_watch.event_id);
    assert_eq!(on_alice_phone.event_id, on_bob_phone.event_id);
    server.finish().await;
}

async fn receipts_follow_the_recipients_setting(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut alice_phone, _) = c.alice.subscribe_caught_up(0).await;
    let (mut alice_watch, _) = c.alice_watch.subscribe_caught_up(0).await;
    let tap = c
        .alice
        .tap(pb::TapKind::Tap, "")
        .await
        .unwrap()
        .tap
        .unwrap();
    let _ = alice_watch.next_tap().await;

    let report = |kind: pb::ReceiptKind| {
        let bob = c.bob.clone();
        let tap_id = tap.tap_id.clone();
        async move {
            bob.taps()
                .report_tap(pb::ReportTapRequest {
                    tap_id,
                    kind: kind as i32,
                })
                .await
        }
    };
    report(pb::ReceiptKind::Felt).await.unwrap();
    report(pb::ReceiptKind::Felt).await.unwrap(); // repeated: no second receipt
    for events in [&mut alice_phone, &mut alice_watch] {
        match events.next_significant().await.payload {
            Some(Payload::TapReceipt(r)) => {
                assert_eq!(r.tap_id, tap.tap_id);
                assert_eq!(r.kind, pb::ReceiptKind::Felt as i32);
            }
            other => panic!("expected a receipt, got {other:?}"),
        }
    }
    // Bob switches receipts off: Alice is told of the settings change, and of no more receipts.
    let settings = c
        .bob
        .settings()
        .update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: None,
            receipts_enabled: Some(false),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(!settings.receipts_enabled);
    match alice_phone.next_significant().await.payload {
        Some(Payload::PartnerUpdated(u)) => {
            // The notice says what changed: receipts, now off; nothing else.
            assert_eq!(u.changed, [pb::PartnerChange::Receipts as i32]);
            assert!(!u.receipts_enabled);
        }
        other => panic!("expected a partner update, got {other:?}"),
    }
    report(pb::ReceiptKind::Seen).await.unwrap();
    // Delivery receipts are not about attention: they pass even with receipts off.
    report(pb::ReceiptKind::Delivered).await.unwrap();
    match alice_phone.next_significant().await.payload {
        Some(Payload::TapReceipt(r)) => assert_eq!(r.kind, pb::ReceiptKind::Delivered as i32),
        other => panic!("expected a delivery receipt, got {other:?}"),
    }
    let marker = c
        .bob
        .tap(pb::TapKind::Tap, "marker")
        .await
        .unwrap()
        .tap
        .unwrap();
    let (_, next) = alice_phone.next_tap().await;
    assert_eq!(
        next.tap.unwrap().tap_id,
        marker.tap_id,
        "no receipt came before the marker"
    );

    // Only the recipient reports; unknown ids are not found.
    assert_status(
        c.alice
            .taps()
            .report_tap(pb::ReportTapRequest {
                tap_id: tap.tap_id.clone(),
                kind: pb::ReceiptKind::Seen as i32,
            })
            .await,
        Code::FailedPrecondition,
        "you sent this tap",
    );
    assert_status(
        c.bob
            .taps()
            .report_tap(pb::ReportTapRequest {
                tap_id: uuid::Uuid::now_v7().to_string(),
                kind: 1,
            })
            .await,
        Code::NotFound,
        "tap",
    );
    assert_status(
        c.bob
            .taps()
            .report_tap(pb::ReportTapRequest {
                tap_id: tap.tap_id.clone(),
                kind: 0,
            })
            .await,
        Code::InvalidArgument,
        "kind: must be delivered, felt or seen",
    );
    server.finish().await;
}

async fn quiet_hours_deliver_silently(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = server.account("Alice", "Europe/London").await;
    let bob = server.account("Bob", "Asia/Tokyo").await;
    server.pair(&alice, &bob).await;
    let quiet = pb::QuietHours {
        start: Some(pb::LocalTimeOfDay {
            hour: 22,
            minute: 0,
        }),
        end: Some(pb::LocalTimeOfDay { hour: 7, minute: 0 }),
    };
    let settings = bob
        .settings()
        .update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: Some(
                pb::update_settings_request::QuietHoursChange::SetQuietHours(quiet),
            ),
            receipts_enabled: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.settings.unwrap().quiet_hours, Some(quiet));
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    // Alice's devices learn Bob's quiet hours, to show them offline.
    let partner = alice
        .pairing()
        .get_couple(pb::GetCoupleRequest {})
        .await
        .unwrap()
        .into_inner()
        .couple
        .unwrap()
        .partner
        .unwrap();
    assert_eq!(
        partner.quiet_start,
        Some(pb::LocalTimeOfDay {
            hour: 22,
            minute: 0
        })
    );
    assert_eq!(
        partner.quiet_end,
        Some(pb::LocalTimeOfDay { hour: 7, minute: 0 })
    );

    // 14:30 UTC is 23:30 in Tokyo: quiet.
    server
        .clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 10, 14, 30, 0).unwrap());
    let sent = alice.tap(pb::TapKind::Hug, "").await.unwrap();
    let clock = sent.partner_clock.unwrap();
    assert!(clock.in_quiet_hours);
    assert_eq!(clock.local_time, "2026-03-10T23:30:00+09:00");
    let (_, got) = bob_events.next_tap().await;
    assert!(got.silent, "delivered, but silently");

    // 22:00 UTC is 07:00 in Tokyo: quiet hours are over.
    server
        .clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 10, 22, 0, 0).unwrap());
    let sent = alice.tap(pb::TapKind::Hug, "").await.unwrap();
    assert!(!sent.partner_clock.unwrap().in_quiet_hours);
    let (_, got) = bob_events.next_tap().await;
    assert!(!got.silent);

    // Clearing quiet hours, and the rules for setting them.
    let cleared = bob
        .settings()
        .update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: Some(
                pb::update_settings_request::QuietHoursChange::ClearQuietHours(true),
            ),
            receipts_enabled: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.settings.unwrap().quiet_hours, None);
    let bad = |start: (u32, u32), end: (u32, u32)| pb::UpdateSettingsRequest {
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
    };
    assert_status(
        bob.settings().update_settings(bad((24, 0), (7, 0))).await,
        Code::InvalidArgument,
        "set_quiet_hours.start",
    );
    assert_status(
        bob.settings().update_settings(bad((22, 0), (7, 60))).await,
        Code::InvalidArgument,
        "set_quiet_hours.end",
    );
    assert_status(
        bob.settings().update_settings(bad((22, 0), (22, 0))).await,
        Code::InvalidArgument,
        "start and end must differ",
    );
    let got = bob
        .settings()
        .get_settings(pb::GetSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(got.quiet_hours, None, "refused updates changed nothing");
    server.finish().await;
}

async fn a_retried_tap_is_stored_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut bob_events, _) = c.bob.subscribe_caught_up(0).await;
    let req = tap_request(pb::TapKind::DoubleTap, "once");
    let first = c.alice.send(req.clone()).await.unwrap();
    let again = c.alice.send(req.clone()).await.unwrap();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(first.tap, again.tap);

    // Concurrent retries of a new tap: exactly one stores it.
    let req2 = tap_request(pb::TapKind::Tap, "race");
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let alice = c.alice.clone();
            let req = req2.clone();
            tokio::spawn(async move { alice.send(req).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        fresh += usize::from(!r.duplicate);
        ids.insert(r.tap.unwrap().tap_id);
    }
    assert_eq!((fresh, ids.len()), (1, 1));

    // Bob receives each once, then the marker.
    let marker = c
        .alice
        .tap(pb::TapKind::Tap, "marker")
        .await
        .unwrap()
        .tap
        .unwrap();
    let notes: Vec<String> = [
        bob_events.next_tap().await,
        bob_events.next_tap().await,
        bob_events.next_tap().await,
    ]
    .into_iter()
    .map(|(_, t)| t.tap.unwrap().note)
    .collect();
    assert_eq!(notes, ["once", "race", "marker"]);
    let _ = marker;

    // The same client id from another device is another tap.
    let from_watch = c.alice_watch.send(req).await.unwrap();
    assert!(!from_watch.duplicate);
    assert_ne!(from_watch.tap.unwrap().tap_id, first.tap.unwrap().tap_id);
    server.finish().await;
}

async fn taps_are_rate_limited_per_sender(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let mut first = None;
    for i in 0..60 {
        let r = c
            .alice
            .tap(pb::TapKind::Tap, "")
            .await
            .unwrap_or_else(|s| panic!("tap {i}: {s:?}"));
        first.get_or_insert(r.tap.unwrap().client_tap_id);
    }
    // Both of Alice's devices share her budget.
    let limited = assert_status(
        c.alice_watch.tap(pb::TapKind::Tap, "").await,
        Code::ResourceExhausted,
        "too many taps",
    );
    let retry_ms: u64 = limited
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&retry_ms), "{retry_ms}");
    // A retry of a stored tap still answers.
    let mut retry = tap_request(pb::TapKind::Tap, "");
    retry.client_tap_id = first.unwrap();
    assert!(c.alice.send(retry).await.unwrap().duplicate);
    // Bob has his own budget; time refills Alice's.
    c.bob.tap(pb::TapKind::Tap, "").await.unwrap();
    server
        .clock
        .advance(chrono::Duration::milliseconds(retry_ms as i64));
    c.alice.tap(pb::TapKind::Tap, "").await.unwrap();
    server.finish().await;
}

async fn custom_rhythms_arrive_intact(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut bob_events, _) = c.bob_watch.subscribe_caught_up(0).await;
    let rhythm = pb::Rhythm {
        segments: vec![
            pb::HapticSegment {
                duration_ms: 120,
                intensity: 255,
            },
            pb::HapticSegment {
                duration_ms: 80,
                intensity: 0,
            },
            pb::HapticSegment {
                duration_ms: 300,
                intensity: 128,
            },
        ],
    };
    let mut req = tap_request(pb::TapKind::Custom, "our song");
    req.rhythm = Some(rhythm.clone());
    c.alice.send(req).await.unwrap();
    let (_, got) = bob_events.next_tap().await;
    let tap = got.tap.unwrap();
    assert_eq!(tap.kind, pb::TapKind::Custom as i32);
    assert_eq!(tap.rhythm, Some(rhythm));
    assert_eq!(tap.note, "our song");
    server.finish().await;
}
