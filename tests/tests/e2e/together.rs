//! Together time and the next time we meet (issue 14, items 5 and 6): proposed by one partner
//! and confirmed by the other; taps between the two kept and delivered quietly when it ends
//! (by hand, at its end, or when the couple ends); a proposal lapsing unconfirmed; a day of
//! together time counting as connected; a meeting in a named zone turning into together time
//! when its moment comes.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::streak_service_client::StreakServiceClient;
use tapline_proto::v1::together_service_client::TogetherServiceClient;
use tonic::Code;

on_both_databases!(
    together_time_keeps_taps_quietly_until_it_ends,
    together_time_ends_at_its_end_and_a_proposal_lapses,
    a_day_of_together_time_counts_as_connected,
    together_requests_are_checked,
    the_next_meeting_turns_into_together_time,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn together(d: &Device) -> TogetherServiceClient<Authed> {
    TogetherServiceClient::new(d.authed_channel())
}

fn secs(t: Option<prost_types::Timestamp>) -> i64 {
    t.expect("a timestamp").seconds
}

async fn start(d: &Device, minutes: u32) -> Result<pb::Together, tonic::Status> {
    Ok(together(d)
        .start_together(pb::StartTogetherRequest {
            client_id: uuid::Uuid::now_v7().to_string(),
            minutes,
        })
        .await?
        .into_inner()
        .together
        .expect("together"))
}

async fn confirm(d: &Device, id: &str) -> Result<pb::Together, tonic::Status> {
    Ok(together(d)
        .confirm_together(pb::ConfirmTogetherRequest {
            together_id: id.to_owned(),
        })
        .await?
        .into_inner()
        .together
        .expect("together"))
}

async fn end(d: &Device) -> Result<pb::Together, tonic::Status> {
    Ok(together(d)
        .end_together(pb::EndTogetherRequest {})
        .await?
        .into_inner()
        .together
        .expect("together"))
}

async fn get(d: &Device) -> pb::GetTogetherResponse {
    together(d)
        .get_together(pb::GetTogetherRequest {})
        .await
        .expect("get")
        .into_inner()
}

/// Alice in Paris, Bob in London, paired at `when`.
async fn couple_at(server: &TestServer, when: DateTime<Utc>) -> (Device, Device) {
    server.clock.set(when);
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "Europe/London").await;
    server.pair(&alice, &bob).await;
    (alice, bob)
}

async fn next_update(events: &mut Events) -> pb::TogetherUpdated {
    let e = events
        .wait_for(|p| matches!(p, Payload::TogetherUpdated(_)))
        .await;
    match e.payload {
        Some(Payload::TogetherUpdated(u)) => *u,
        _ => unreachable!("waited for a together update"),
    }
}

/// The next tap event, past the others (streak updates come with taps).
async fn next_tap(events: &mut Events) -> pb::TapReceived {
    let e = events
        .wait_for(|p| matches!(p, Payload::TapReceived(_)))
        .await;
    match e.payload {
        Some(Payload::TapReceived(t)) => t,
        _ => unreachable!("waited for a tap"),
    }
}

async fn together_time_keeps_taps_quietly_until_it_ends(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 9, 0)).await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;

    let proposed = start(&alice, 90).await.expect("start");
    assert!(proposed.confirmed_at.is_none());
    assert_eq!(proposed.minutes, 90);
    assert_eq!(
        secs(proposed.until),
        at(2027, 3, 1, 9, 30).timestamp(),
        "a proposal waits 30 minutes"
    );
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::TogetherChange::Proposed as i32);
    assert!(!u.silent, "Bob is not in quiet hours: it buzzes");
    // A tap before Bob confirms goes straight through.
    assert!(!alice.tap(pb::TapKind::Tap, "").await.expect("tap").held);
    next_tap(&mut bob_events).await;

    server.clock.set(at(2027, 3, 1, 9, 10));
    let confirmed = confirm(&bob, &proposed.together_id).await.expect("confirm");
    assert_eq!(
        secs(confirmed.until),
        at(2027, 3, 1, 10, 40).timestamp(),
        "90 minutes from the confirmation"
    );
    let u = next_update(&mut alice_events).await;
    assert_eq!(u.change, pb::TogetherChange::Started as i32);
    assert!(u.silent, "phones down: no haptic");

    // Taps both ways are kept, and each sender is told until when.
    let mut sent = Vec::new();
    for (from, note) in [(&alice, "miss you already"), (&bob, "look up")] {
        let r = from.tap(pb::TapKind::Hug, note).await.expect("tap");
        assert!(r.held && r.held_together, "kept for together time: {r:?}");
        assert_eq!(secs(r.held_until), at(2027, 3, 1, 10, 40).timestamp());
        sent.push(r.tap.expect("tap").tap_id);
    }
    assert_eq!(get(&bob).await.together.expect("in force").held_taps, 2);
    // Nothing reached either inbox: a fresh look at Bob's backlog has only the first tap.
    let (_, backlog) = bob.subscribe_caught_up(0).await;
    assert_eq!(
        backlog.iter().filter(|e| tap_of(e).is_some()).count(),
        1,
        "only the tap sent before together time: {backlog:?}"
    );

    server.clock.set(at(2027, 3, 1, 10, 0));
    let ended = end(&bob).await.expect("end");
    assert_eq!(ended.end, pb::TogetherEnd::ByHand as i32);
    assert_eq!(ended.held_taps, 2);
    assert_eq!(ended.ended_by_account_id, bob.account_id);
    // Each tap reaches its recipient quietly, marked released; then the end, naming both.
    let t = next_tap(&mut alice_events).await;
    assert!(t.released && t.silent, "delivered quietly: {t:?}");
    assert_eq!(t.tap.expect("tap").tap_id, sent[1]);
    let u = next_update(&mut alice_events).await;
    assert_eq!(u.change, pb::TogetherChange::Ended as i32);
    assert!(u.silent);
    assert_eq!(u.released_tap_ids, sent, "in the order sent");
    assert!(get(&alice).await.together.is_none());
    // Afterwards taps go straight through again.
    let r = bob.tap(pb::TapKind::Tap, "").await.expect("tap");
    assert!(!r.held && !r.held_together);
    let t = next_tap(&mut alice_events).await;
    assert!(!t.released);
    server.finish().await;
}

async fn together_time_ends_at_its_end_and_a_proposal_lapses(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 9, 0)).await;
    let lapsing = start(&alice, 0).await.expect("start");
    assert_eq!(lapsing.minutes, 120, "two hours by default");
    server.clock.set(at(2027, 3, 1, 9, 29));
    assert_eq!(server.tick().await.together_ended, 0, "still waiting");
    server.clock.set(at(2027, 3, 1, 9, 30));
    assert_eq!(server.tick().await.together_ended, 1);
    let e = confirm(&bob, &lapsing.together_id)
        .await
        .expect_err("too late");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&e), "TOGETHER_ENDED");

    let t = start(&bob, 30).await.expect("start again");
    confirm(&alice, &t.together_id).await.expect("confirm");
    let held = bob.tap(pb::TapKind::Kiss, "").await.expect("tap");
    assert!(held.held_together);
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    server.clock.set(at(2027, 3, 1, 9, 59));
    assert_eq!(server.tick().await.together_ended, 0, "not yet");
    server.clock.set(at(2027, 3, 1, 10, 0));
    assert_eq!(server.tick().await.together_ended, 1);
    assert_eq!(server.tick().await.together_ended, 0, "ended once");
    let tap = next_tap(&mut alice_events).await;
    assert!(tap.released && tap.silent);
    assert_eq!(tap.tap.expect("tap").tap_id, held.tap.expect("tap").tap_id);
    let u = next_update(&mut alice_events).await;
    let ended = u.together.expect("together");
    assert_eq!(ended.end, pb::TogetherEnd::AtUntil as i32);
    assert_eq!(secs(ended.ended_at), at(2027, 3, 1, 10, 0).timestamp());
    server.finish().await;
}

/// Day 1 connected by taps; on day 2 the two spend the evening together and nobody taps: the
/// date counts as connected and the streak grows to 2. Day 3 has nothing: missed.
async fn a_day_of_together_time_counts_as_connected(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 4, 1, 8, 0)).await;
    server.clock.set(at(2027, 4, 1, 12, 0));
    alice.tap(pb::TapKind::Tap, "").await.expect("tap");
    bob.tap(pb::TapKind::Tap, "").await.expect("tap");
    server.clock.set(at(2027, 4, 2, 18, 0));
    let t = start(&alice, 180).await.expect("start");
    confirm(&bob, &t.together_id).await.expect("confirm");
    server.clock.set(at(2027, 4, 2, 21, 0));
    assert_eq!(server.tick().await.together_ended, 1);

    server.clock.set(at(2027, 4, 4, 12, 0));
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
    let status = |date: &str| days.iter().find(|d| d.date == date).expect(date).status;
    assert_eq!(status("2027-04-02"), pb::DayStatus::Connected as i32);
    assert_eq!(status("2027-04-03"), pb::DayStatus::Missed as i32);
    let s = streaks
        .clone()
        .get_streak(pb::GetStreakRequest {})
        .await
        .expect("streak")
        .into_inner()
        .streak
        .expect("streak");
    assert_eq!(s.longest, 2, "the together day counted");
    server.finish().await;
}

async fn together_requests_are_checked(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 9, 0)).await;
    for minutes in [5, 1441] {
        let e = start(&alice, minutes).await.expect_err("out of bounds");
        assert_eq!(e.code(), Code::InvalidArgument, "{minutes}");
    }
    let e = end(&alice).await.expect_err("nothing to end");
    assert_eq!(e.code(), Code::NotFound);

    let t = start(&alice, 60).await.expect("start");
    let e = start(&bob, 60).await.expect_err("one at a time");
    assert_eq!(reason_of(&e), "TOGETHER_ALREADY");
    let e = confirm(&alice, &t.together_id)
        .await
        .expect_err("not one's own");
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = confirm(&bob, &uuid::Uuid::now_v7().to_string())
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);
    // Withdrawn by Alice, declined by Bob.
    assert_eq!(
        end(&alice).await.expect("withdraw").end,
        pb::TogetherEnd::Withdrawn as i32
    );
    start(&alice, 60).await.expect("again");
    assert_eq!(
        end(&bob).await.expect("decline").end,
        pb::TogetherEnd::Declined as i32
    );

    // Unpairing while together delivers what was kept.
    let t = start(&alice, 60).await.expect("again");
    confirm(&bob, &t.together_id).await.expect("confirm");
    let kept = alice.tap(pb::TapKind::Hug, "").await.expect("tap");
    assert!(kept.held_together);
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    alice
        .pairing()
        .unpair(pb::UnpairRequest {})
        .await
        .expect("unpair");
    let tap = next_tap(&mut bob_events).await;
    assert!(tap.released);
    assert_eq!(tap.tap.expect("tap").tap_id, kept.tap.expect("tap").tap_id);
    let e = start(&alice, 60).await.expect_err("unpaired");
    assert_eq!(reason_of(&e), "NOT_PAIRED");
    server.finish().await;
}

/// Alice (Paris) and Bob (London) will meet in Tokyo at 19:30 on 2027-05-20: both see the
/// same instant; it can be replaced and cleared; when it comes it turns into together time.
async fn the_next_meeting_turns_into_together_time(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 5, 1, 9, 0)).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let set = |date: &str, time: &str, zone: &str, minutes: u32| pb::SetMeetingRequest {
        local_date: date.into(),
        local_time: time.into(),
        time_zone: zone.into(),
        together_minutes: minutes,
    };
    for bad in [
        set("2027-04-30", "10:00", "Asia/Tokyo", 0),
        set("2027-05-20", "7pm", "Asia/Tokyo", 0),
        set("2027-05-20", "19:30", "Mars/Olympus", 0),
        set("2027-05-20", "19:30", "Asia/Tokyo", 2000),
        set("2030-05-20", "19:30", "Asia/Tokyo", 0),
    ] {
        let e = together(&alice)
            .set_meeting(bad.clone())
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}");
    }
    // Without a zone: Alice's own.
    let m = together(&alice)
        .set_meeting(set("2027-05-18", "08:00", "", 0))
        .await
        .expect("set")
        .into_inner()
        .meeting
        .expect("meeting");
    assert_eq!(m.time_zone, "Europe/Paris");
    assert_eq!(m.together_minutes, 180, "three hours by default");
    assert_eq!(secs(m.starts_at), at(2027, 5, 18, 6, 0).timestamp());
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::TogetherChange::MeetingSet as i32);

    // Replaced by Bob, in Tokyo, with the zone in any case.
    let m = together(&bob)
        .set_meeting(set("2027-05-20", "19:30", "asia/tokyo", 120))
        .await
        .expect("set")
        .into_inner()
        .meeting
        .expect("meeting");
    assert_eq!(m.time_zone, "Asia/Tokyo");
    assert_eq!(secs(m.starts_at), at(2027, 5, 20, 10, 30).timestamp());
    let seen = get(&alice).await.meeting.expect("Alice sees it");
    assert_eq!(seen.meeting_id, m.meeting_id);
    assert_eq!(
        (seen.local_date.as_str(), seen.local_time.as_str()),
        ("2027-05-20", "19:30")
    );

    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    server.clock.set(at(2027, 5, 20, 10, 29));
    assert_eq!(server.tick().await.meetings_started, 0, "not yet");
    server.clock.set(at(2027, 5, 20, 10, 31));
    assert_eq!(server.tick().await.meetings_started, 1);
    assert_eq!(server.tick().await.meetings_started, 0, "once");
    let u = next_update(&mut alice_events).await;
    assert_eq!(u.change, pb::TogetherChange::Started as i32);
    assert!(u.silent);
    assert_eq!(
        u.meeting.expect("from the meeting").meeting_id,
        m.meeting_id
    );
    let t = u.together.expect("together");
    assert_eq!(t.meeting_id, m.meeting_id);
    assert_eq!(secs(t.confirmed_at), at(2027, 5, 20, 10, 30).timestamp());
    assert_eq!(secs(t.until), at(2027, 5, 20, 12, 30).timestamp());
    let now = get(&bob).await;
    assert!(now.meeting.is_none(), "the meeting is used up");
    assert!(
        alice
            .tap(pb::TapKind::Hug, "")
            .await
            .expect("tap")
            .held_together
    );
    server
        .clock
        .set(at(2027, 5, 20, 12, 30) + Duration::seconds(1));
    assert_eq!(server.tick().await.together_ended, 1);

    // Clearing: true once, then false.
    together(&alice)
        .set_meeting(set("2027-06-01", "12:00", "Europe/London", 0))
        .await
        .expect("set");
    let clear = || async {
        together(&bob)
            .clear_meeting(pb::ClearMeetingRequest {})
            .await
            .expect("clear")
            .into_inner()
            .cleared
    };
    assert!(clear().await);
    assert!(!clear().await);
    assert!(get(&alice).await.meeting.is_none());
    server.finish().await;
}
