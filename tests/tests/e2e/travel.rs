//! Routines and travel (issue 14, fairness): a routine fires at most once per partner per local
//! date after a change of zone, and a move that jumps past today's time fires it at the change.

use chrono::{DateTime, TimeZone, Utc};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::routine_service_client::RoutineServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;

on_both_databases!(
    flying_west_after_the_firing_gives_no_second_firing_that_date,
    flying_east_past_the_time_fires_at_the_change,
    a_shared_checkin_stays_open_a_day_for_the_partner_nudged_later,
    a_relived_date_both_acted_on_is_connected_and_the_streak_comes_back,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

/// Alice in `zone`, paired with Bob in Europe/London, with a reminder every day at 08:00.
async fn setup(server: &TestServer, zone: &str) -> (Device, Device) {
    let alice = server.account("Alice", zone).await;
    let bob = server.account("Bob", "Europe/London").await;
    server.pair(&alice, &bob).await;
    RoutineServiceClient::new(alice.authed_channel())
        .create_routine(pb::CreateRoutineRequest {
            spec: Some(pb::RoutineSpec {
                name: "Morning".into(),
                kind: pb::RoutineKind::Reminder as i32,
                checkin_category: 0,
                reminder_text: "Good morning!".into(),
                days: (1..=7).collect(),
                time: Some(pb::LocalTimeOfDay { hour: 8, minute: 0 }),
                paused: false,
            }),
        })
        .await
        .expect("routine");
    (alice, bob)
}

async fn fly(d: &Device, zone: &str) {
    d.accounts()
        .update_profile(pb::UpdateProfileRequest {
            display_name: None,
            time_zone: Some(zone.into()),
        })
        .await
        .expect("new zone");
}

/// Alice's firings (not skipped) as instants, oldest first.
async fn fired(server: &TestServer, alice: &Device) -> Vec<DateTime<Utc>> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT fired_at_us FROM routine_firings WHERE account_id = $1 AND fired_at_us IS NOT NULL \
         ORDER BY fired_at_us",
    )
    .bind(&alice.account_id)
    .fetch_all(server.state.db.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|us| DateTime::from_timestamp_micros(us).unwrap())
        .collect()
}

/// Ticks the jobs every 30 minutes from `from` to `to`.
async fn run_clock(server: &TestServer, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut t = from;
    while t <= to {
        server.clock.set(t);
        server.tick().await;
        t += chrono::Duration::minutes(30);
    }
}

/// Paris → New York after the 08:00 firing of 2027-06-15: 08:00 in New York that same date
/// does not fire again; 06-16 08:00 New York does.
async fn flying_west_after_the_firing_gives_no_second_firing_that_date(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    server.clock.set(at(2027, 6, 14, 12, 0));
    let (alice, _bob) = setup(&server, "Europe/Paris").await;
    let (mut events, _) = alice.subscribe_caught_up(0).await;
    run_clock(&server, at(2027, 6, 15, 5, 0), at(2027, 6, 15, 6, 0)).await;
    events
        .wait_for(|p| matches!(p, Payload::RoutineFired(_)))
        .await;
    assert_eq!(fired(&server, &alice).await, [at(2027, 6, 15, 6, 0)]);

    // Lands in New York at 05:00 local (09:00 UTC), still 06-15 there.
    server.clock.set(at(2027, 6, 15, 9, 0));
    fly(&alice, "America/New_York").await;
    run_clock(&server, at(2027, 6, 15, 9, 0), at(2027, 6, 16, 13, 0)).await;
    assert_eq!(
        fired(&server, &alice).await,
        [at(2027, 6, 15, 6, 0), at(2027, 6, 16, 12, 0)],
        "06-15 once (in Paris), then 06-16 08:00 in New York"
    );
    server.finish().await;
}

/// New York → Tokyo: 06-15 fired in New York; at 07:00 New York on 06-16 she is in Tokyo where
/// 06-16 08:00 has passed: it fires at the change, then 06-17 08:00 Tokyo.
async fn flying_east_past_the_time_fires_at_the_change(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    server.clock.set(at(2027, 6, 14, 20, 0));
    let (alice, _bob) = setup(&server, "America/New_York").await;
    run_clock(&server, at(2027, 6, 15, 11, 0), at(2027, 6, 15, 12, 0)).await;
    assert_eq!(fired(&server, &alice).await, [at(2027, 6, 15, 12, 0)]);

    let change = at(2027, 6, 16, 11, 0);
    server.clock.set(change);
    fly(&alice, "Asia/Tokyo").await;
    run_clock(&server, change, at(2027, 6, 17, 0, 0)).await;
    assert_eq!(
        fired(&server, &alice).await,
        [at(2027, 6, 15, 12, 0), change, at(2027, 6, 16, 23, 0)],
        "06-15 in New York, 06-16 at the change, 06-17 08:00 in Tokyo"
    );
    server.finish().await;
}

/// Bob in Los Angeles is nudged at 08:00 his time (15:00 UTC) and opens the shared check-in;
/// Alice in Sydney is nudged 7 hours later (08:00 there). She has until 24 hours after her own
/// nudge, not after his: past his 24 hours the check-in is still open and her answer counts,
/// and Bob's devices were told the new expiry.
async fn a_shared_checkin_stays_open_a_day_for_the_partner_nudged_later(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    server.clock.set(at(2027, 6, 14, 12, 0));
    let alice = server.account("Alice", "Australia/Sydney").await;
    let bob = server.account("Bob", "America/Los_Angeles").await;
    server.pair(&alice, &bob).await;
    RoutineServiceClient::new(bob.authed_channel())
        .create_routine(pb::CreateRoutineRequest {
            spec: Some(pb::RoutineSpec {
                name: "Morning energy".into(),
                kind: pb::RoutineKind::Checkin as i32,
                checkin_category: pb::PromptCategory::Energy as i32,
                reminder_text: String::new(),
                days: (1..=7).collect(),
                time: Some(pb::LocalTimeOfDay { hour: 8, minute: 0 }),
                paused: false,
            }),
        })
        .await
        .expect("routine");
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    run_clock(&server, at(2027, 6, 14, 15, 0), at(2027, 6, 14, 15, 0)).await;
    let opened = bob_events
        .wait_for(|p| matches!(p, Payload::RoutineFired(_)))
        .await;
    let Some(Payload::RoutineFired(f)) = opened.payload else {
        unreachable!()
    };
    let shared = f.checkin.unwrap();
    assert_eq!(
        shared.expires_at.unwrap().seconds,
        at(2027, 6, 15, 15, 0).timestamp()
    );

    run_clock(&server, at(2027, 6, 14, 22, 0), at(2027, 6, 14, 22, 0)).await;
    let told = bob_events
        .wait_for(|p| matches!(p, Payload::CheckinUpdated(_)))
        .await;
    let Some(Payload::CheckinUpdated(u)) = told.payload else {
        unreachable!()
    };
    let moved = u.checkin.unwrap();
    assert_eq!(moved.checkin_id, shared.checkin_id, "one shared check-in");
    assert_eq!(
        moved.expires_at.unwrap().seconds,
        at(2027, 6, 15, 22, 0).timestamp(),
        "24 h after Alice's own nudge"
    );

    // Past Bob's 24 hours, before Alice's: still open, and her answer counts.
    run_clock(&server, at(2027, 6, 15, 16, 0), at(2027, 6, 15, 16, 0)).await;
    let answered = CheckinServiceClient::new(alice.authed_channel())
        .answer_checkin(pb::AnswerCheckinRequest {
            checkin_id: shared.checkin_id.clone(),
            answer: shared.prompt.as_ref().unwrap().quick_replies[0]
                .answer
                .clone(),
        })
        .await
        .expect("still open for Alice")
        .into_inner()
        .checkin
        .unwrap();
    assert_eq!(answered.status, pb::CheckinStatus::Open as i32);
    server.finish().await;
}

async fn streak_of(d: &Device) -> pb::Streak {
    StreakServiceClient::new(d.authed_channel())
        .get_streak(pb::GetStreakRequest {})
        .await
        .expect("streak")
        .into_inner()
        .streak
        .expect("a streak")
}

/// The refinement's case: Alice in Tokyo, Bob in London, three connected days. On 05-06 only
/// Bob taps; Alice, already into her 05-07, flies to Honolulu, lands in 05-06 again after
/// Bob's midnight (so 05-06 was settled as missed and the streak broke) and taps. The date
/// counts as connected, both are told the streak is back, and it is four days.
async fn a_relived_date_both_acted_on_is_connected_and_the_streak_comes_back(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    server.clock.set(at(2027, 5, 2, 12, 0));
    let alice = server.account("Alice", "Asia/Tokyo").await;
    let bob = server.account("Bob", "Europe/London").await;
    server.pair(&alice, &bob).await;
    for day in 3..=5 {
        server.clock.set(at(2027, 5, day, 10, 0));
        alice.tap(pb::TapKind::Tap, "").await.expect("tap");
        bob.tap(pb::TapKind::Tap, "").await.expect("tap");
    }
    assert_eq!(streak_of(&bob).await.current, 3);
    server.clock.set(at(2027, 5, 6, 12, 0));
    bob.tap(pb::TapKind::Tap, "").await.expect("tap");

    // 23:30 UTC: 00:30 on 05-07 in London, 08:30 on 05-07 in Tokyo: 05-06 is over for both.
    server.clock.set(at(2027, 5, 6, 23, 30));
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let s = streak_of(&bob).await;
    assert_eq!((s.current, s.longest), (0, 3), "05-06 was missed");
    fly(&alice, "Pacific/Honolulu").await;
    // 05-07 00:00 UTC is 14:00 on 05-06 in Honolulu.
    server.clock.set(at(2027, 5, 7, 0, 0));
    alice.tap(pb::TapKind::Tap, "").await.expect("tap");

    let event = bob_events
        .wait_for(|p| {
            matches!(p, Payload::StreakUpdated(u) if u.change == pb::StreakChange::Restored as i32)
        })
        .await;
    let Some(Payload::StreakUpdated(u)) = event.payload else {
        unreachable!()
    };
    assert_eq!(u.date, "2027-05-06");
    assert_eq!(u.streak.expect("streak").current, 4);
    let s = streak_of(&alice).await;
    assert_eq!((s.current, s.longest), (4, 4));
    let days = StreakServiceClient::new(bob.authed_channel())
        .get_streak_history(pb::GetStreakHistoryRequest {
            year: 2027,
            month: 5,
        })
        .await
        .expect("history")
        .into_inner()
        .days;
    let relived = days
        .iter()
        .find(|d| d.date == "2027-05-06")
        .expect("05-06 in the history");
    assert_eq!(
        (relived.status, relived.my_actions, relived.partner_actions),
        (pb::DayStatus::Connected as i32, 1, 1)
    );
    server.finish().await;
}
