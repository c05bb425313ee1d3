//! "I need a moment" (issue 14, item 1): a space asked for, answered with one tap, arriving
//! silently in the partner's quiet hours; taps to the asker held and delivered together when
//! it ends (by hand, at its `until`, or when the couple ends); the streak neither fed nor
//! broken.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::space_service_client::SpaceServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;
use tonic::Code;

on_both_databases!(
    a_space_in_quiet_hours_arrives_silently_and_the_asker_is_told,
    taps_are_held_during_a_space_and_delivered_together_when_it_ends,
    a_space_ends_by_itself_at_its_until,
    a_space_neither_feeds_nor_breaks_the_streak,
    space_requests_are_checked,
    ending_the_couple_delivers_what_was_held,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn space(d: &Device) -> SpaceServiceClient<Authed> {
    SpaceServiceClient::new(d.authed_channel())
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn ask(reason: pb::SpaceReason, until: Option<DateTime<Utc>>) -> pb::AskForSpaceRequest {
    pb::AskForSpaceRequest {
        client_id: uuid::Uuid::now_v7().to_string(),
        reason: reason as i32,
        until: until.map(ts),
    }
}

/// Alice in Paris, Bob in London, paired at `when`.
async fn couple_at(server: &TestServer, when: DateTime<Utc>) -> (Device, Device) {
    server.clock.set(when);
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "Europe/London").await;
    server.pair(&alice, &bob).await;
    (alice, bob)
}

fn space_update(e: &pb::Event) -> Option<&pb::SpaceUpdated> {
    match &e.payload {
        Some(Payload::SpaceUpdated(u)) => Some(u),
        _ => None,
    }
}

async fn next_space_update(events: &mut Events) -> pb::SpaceUpdated {
    let e = events
        .wait_for(|p| matches!(p, Payload::SpaceUpdated(_)))
        .await;
    space_update(&e).cloned().expect("a space update")
}

async fn a_space_in_quiet_hours_arrives_silently_and_the_asker_is_told(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 1, 10, 12, 0)).await;
    set_quiet_hours(&bob, (22, 0), (7, 0)).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;

    // 23:00 in London: Bob is in his quiet hours.
    server.clock.set(at(2027, 1, 10, 23, 0));
    let asked = space(&alice)
        .ask_for_space(ask(pb::SpaceReason::Overwhelmed, None))
        .await
        .expect("ask")
        .into_inner();
    assert!(asked.arrives_silently, "Alice is told it arrives silently");
    assert!(asked.partner_clock.expect("clock").in_quiet_hours);
    let s = asked.space.expect("space");
    assert!(s.open_ended);
    assert_eq!(
        s.until.expect("until").seconds,
        (at(2027, 1, 10, 23, 0) + Duration::hours(48)).timestamp()
    );
    let u = next_space_update(&mut bob_events).await;
    assert_eq!(u.change, pb::SpaceChange::Asked as i32);
    assert!(u.silent, "no haptic in Bob's quiet hours");
    assert_eq!(
        u.space.expect("space").reason,
        pb::SpaceReason::Overwhelmed as i32
    );

    // Bob answers with one tap; Alice (not in quiet hours) is told, with a haptic.
    let answered = space(&bob)
        .answer_space(pb::AnswerSpaceRequest {
            space_id: s.space_id.clone(),
            answer: pb::SpaceAnswer::TakeYourTime as i32,
        })
        .await
        .expect("answer")
        .into_inner();
    assert_eq!(
        answered.space.expect("space").answer,
        pb::SpaceAnswer::TakeYourTime as i32
    );
    let u = next_space_update(&mut alice_events).await;
    assert_eq!(u.change, pb::SpaceChange::Answered as i32);
    assert!(!u.silent);
    assert_eq!(
        u.space.expect("space").answer,
        pb::SpaceAnswer::TakeYourTime as i32
    );
    // Outside his quiet hours (08:00) the request would buzz: a second space by Bob shows it.
    server.clock.set(at(2027, 1, 11, 8, 0));
    let bobs = space(&bob)
        .ask_for_space(ask(pb::SpaceReason::CallMeLater, None))
        .await
        .expect("ask")
        .into_inner();
    assert!(!bobs.arrives_silently);
    let u = next_space_update(&mut alice_events).await;
    assert_eq!(u.change, pb::SpaceChange::Asked as i32);
    assert!(!u.silent);
    server.finish().await;
}

async fn taps_are_held_during_a_space_and_delivered_together_when_it_ends(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 9, 0)).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    space(&alice)
        .ask_for_space(ask(pb::SpaceReason::NeedSpace, Some(at(2027, 3, 1, 12, 0))))
        .await
        .expect("ask");
    next_space_update(&mut bob_events).await;

    let mut sent = Vec::new();
    for note in ["thinking of you", "here when you're ready"] {
        let r = bob.tap(pb::TapKind::Hug, note).await.expect("tap");
        assert!(r.held, "Bob is told the tap is kept for Alice");
        assert_eq!(
            r.held_until.expect("until").seconds,
            at(2027, 3, 1, 12, 0).timestamp()
        );
        sent.push(r.tap.expect("tap").tap_id);
    }
    // Alice's inbox has no tap yet: everything up to "caught up" is the ask and nothing else.
    let (mut alice_events, backlog) = alice.subscribe_caught_up(0).await;
    assert!(
        backlog.iter().all(|e| tap_of(e).is_none()),
        "no tap reaches Alice during her space: {backlog:?}"
    );
    let got = space(&alice)
        .get_space(pb::GetSpaceRequest {})
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.mine.expect("in force").held_taps, 2);
    assert!(got.partners.is_none());
    let seen_by_bob = space(&bob)
        .get_space(pb::GetSpaceRequest {})
        .await
        .expect("get")
        .into_inner();
    assert!(seen_by_bob.partners.is_some() && seen_by_bob.mine.is_none());

    // Alice ends it: both taps arrive together, marked released, then the end.
    server.clock.set(at(2027, 3, 1, 10, 0));
    let ended = space(&alice)
        .end_space(pb::EndSpaceRequest {})
        .await
        .expect("end")
        .into_inner()
        .space
        .expect("space");
    assert_eq!(ended.held_taps, 2);
    assert_eq!(
        ended.ended_at.expect("ended").seconds,
        at(2027, 3, 1, 10, 0).timestamp()
    );
    let mut delivered = Vec::new();
    for _ in 0..2 {
        let (_, t) = alice_events.next_tap().await;
        assert!(t.released && !t.silent);
        delivered.push(t.tap.expect("tap").tap_id);
    }
    assert_eq!(delivered, sent, "in the order sent, each once");
    let u = next_space_update(&mut alice_events).await;
    assert_eq!(u.change, pb::SpaceChange::Ended as i32);
    // Bob, the sender, is told they were delivered.
    let u = next_space_update(&mut bob_events).await;
    assert_eq!(u.change, pb::SpaceChange::Ended as i32);
    assert_eq!(u.released_tap_ids, sent);

    // After the space, taps go straight through again.
    let r = bob.tap(pb::TapKind::Tap, "").await.expect("tap");
    assert!(!r.held);
    let (_, t) = alice_events.next_tap().await;
    assert!(!t.released);
    server.finish().await;
}

async fn a_space_ends_by_itself_at_its_until(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 9, 0)).await;
    space(&alice)
        .ask_for_space(ask(
            pb::SpaceReason::CallMeLater,
            Some(at(2027, 3, 1, 10, 0)),
        ))
        .await
        .expect("ask");
    let held = bob.tap(pb::TapKind::Kiss, "").await.expect("tap");
    assert!(held.held);
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;

    server.clock.set(at(2027, 3, 1, 9, 59));
    assert_eq!(server.tick().await.spaces_ended, 0, "not yet");
    server.clock.set(at(2027, 3, 1, 10, 0));
    assert_eq!(server.tick().await.spaces_ended, 1);
    assert_eq!(server.tick().await.spaces_ended, 0, "ended once");
    let (_, t) = alice_events.next_tap().await;
    assert!(t.released);
    assert_eq!(t.tap.expect("tap").tap_id, held.tap.expect("tap").tap_id);
    let u = next_space_update(&mut alice_events).await;
    assert_eq!(
        u.space.expect("space").ended_at.expect("ended").seconds,
        at(2027, 3, 1, 10, 0).timestamp()
    );
    server.finish().await;
}

/// Two connected days; on the third Alice asks for space and only Bob taps (held): the date
/// is a space day, the streak holds at 2, and asking counted as no action of Alice's.
async fn a_space_neither_feeds_nor_breaks_the_streak(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 4, 1, 8, 0)).await;
    for day in 1..=2 {
        server.clock.set(at(2027, 4, day, 12, 0));
        alice.tap(pb::TapKind::Tap, "").await.expect("tap");
        bob.tap(pb::TapKind::Tap, "").await.expect("tap");
    }
    server.clock.set(at(2027, 4, 3, 9, 0));
    space(&alice)
        .ask_for_space(ask(pb::SpaceReason::NeedSpace, Some(at(2027, 4, 3, 20, 0))))
        .await
        .expect("ask");
    assert!(bob.tap(pb::TapKind::Hug, "").await.expect("tap").held);
    server.clock.set(at(2027, 4, 3, 20, 0));
    server.tick().await;
    // 04-05 noon: 04-03 and 04-04 are settled.
    server.clock.set(at(2027, 4, 5, 12, 0));
    let streaks = StreakServiceClient::new(alice.authed_channel());
    let days = streaks
        .clone()
        .get_streak_history(pb::GetStreakHistoryRequest {
            year: 2027,
            month: 4,
        })
        .await
        .expect("history")
        .into_inner()
        .days;
    let third = days.iter().find(|d| d.date == "2027-04-03").expect("04-03");
    assert_eq!(
        (third.status, third.my_actions, third.partner_actions),
        (pb::DayStatus::Space as i32, 0, 1),
        "a space day: asking is no action, and it does not break"
    );
    let fourth = days.iter().find(|d| d.date == "2027-04-04").expect("04-04");
    assert_eq!(
        fourth.status,
        pb::DayStatus::Missed as i32,
        "the day after is a real miss"
    );
    let s = streaks
        .clone()
        .get_streak(pb::GetStreakRequest {})
        .await
        .expect("streak")
        .into_inner()
        .streak
        .expect("streak");
    assert_eq!((s.current, s.longest), (0, 2));
    server.finish().await;
}

async fn space_requests_are_checked(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let loner = server.account("Lone", "Europe/Paris").await;
    let s = space(&loner)
        .ask_for_space(ask(pb::SpaceReason::NeedSpace, None))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&s), "NOT_PAIRED");
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 9, 0)).await;
    let now = at(2027, 3, 1, 9, 0);
    for (req, field) in [
        (ask(pb::SpaceReason::Unspecified, None), "reason"),
        (
            ask(pb::SpaceReason::NeedSpace, Some(now + Duration::hours(49))),
            "until",
        ),
        (
            ask(pb::SpaceReason::NeedSpace, Some(now + Duration::minutes(1))),
            "until",
        ),
        (
            pb::AskForSpaceRequest {
                client_id: "not-a-uuid".into(),
                ..ask(pb::SpaceReason::NeedSpace, None)
            },
            "client_id",
        ),
    ] {
        assert_status(
            space(&alice).ask_for_space(req).await,
            Code::InvalidArgument,
            field,
        );
    }
    let first = ask(pb::SpaceReason::NeedSpace, None);
    let a = space(&alice)
        .ask_for_space(first.clone())
        .await
        .expect("ask")
        .into_inner();
    let again = space(&alice)
        .ask_for_space(first)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(
        a.space.as_ref().expect("space").space_id,
        again.space.as_ref().expect("space").space_id,
        "a retry is the same space"
    );
    let s = space(&alice)
        .ask_for_space(ask(pb::SpaceReason::Overwhelmed, None))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason_of(&s).as_str()),
        (Code::FailedPrecondition, "SPACE_ALREADY_ASKED")
    );
    let id = a.space.expect("space").space_id;
    assert_status(
        space(&alice)
            .answer_space(pb::AnswerSpaceRequest {
                space_id: id.clone(),
                answer: pb::SpaceAnswer::ImHere as i32,
            })
            .await,
        Code::InvalidArgument,
        "your own space",
    );
    assert_status(
        space(&bob)
            .answer_space(pb::AnswerSpaceRequest {
                space_id: id.clone(),
                answer: 0,
            })
            .await,
        Code::InvalidArgument,
        "answer",
    );
    assert_status(
        space(&bob).end_space(pb::EndSpaceRequest {}).await,
        Code::NotFound,
        "space",
    );
    space(&alice)
        .end_space(pb::EndSpaceRequest {})
        .await
        .expect("end");
    let s = space(&bob)
        .answer_space(pb::AnswerSpaceRequest {
            space_id: id,
            answer: pb::SpaceAnswer::ImHere as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(reason_of(&s), "SPACE_ENDED");
    // Someone else's space is not found, not answerable.
    let (carol, dan) = (
        server.account("Carol", "Europe/Paris").await,
        server.account("Dan", "Europe/Paris").await,
    );
    server.pair(&carol, &dan).await;
    let theirs = space(&carol)
        .ask_for_space(ask(pb::SpaceReason::NeedSpace, None))
        .await
        .expect("ask")
        .into_inner()
        .space
        .expect("space");
    assert_status(
        space(&bob)
            .answer_space(pb::AnswerSpaceRequest {
                space_id: theirs.space_id,
                answer: pb::SpaceAnswer::ImHere as i32,
            })
            .await,
        Code::NotFound,
        "space",
    );
    server.finish().await;
}

async fn ending_the_couple_delivers_what_was_held(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 9, 0)).await;
    space(&alice)
        .ask_for_space(ask(pb::SpaceReason::NeedSpace, None))
        .await
        .expect("ask");
    let held = bob.tap(pb::TapKind::Tap, "sorry").await.expect("tap");
    assert!(held.held);
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    bob.pairing()
        .unpair(pb::UnpairRequest {})
        .await
        .expect("unpair");
    let (_, t) = alice_events.next_tap().await;
    assert!(t.released);
    assert_eq!(t.tap.expect("tap").note, "sorry");
    let u = next_space_update(&mut alice_events).await;
    assert_eq!(u.change, pb::SpaceChange::Ended as i32);
    alice_events
        .wait_for(|p| matches!(p, Payload::Unpaired(_)))
        .await;
    server.finish().await;
}
