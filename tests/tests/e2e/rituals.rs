//! Streaks, check-ins and routines, with time moved by the test clock.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::routine_service_client::RoutineServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;
use tonic::Code;

on_both_databases!(
    answers_stay_hidden_until_both_have_answered,
    expiry_reveals_a_lone_answer,
    a_morning_routine_fires_at_eight_in_both_zones,
    daylight_saving_gap_and_overlap,
    quiet_hours_hold_a_routine_back,
    no_double_firing_after_a_restart_or_across_instances,
    freezes_are_earned_and_used,
    a_pause_neither_counts_nor_breaks,
    calm_mode_says_nothing_about_streaks,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

trait Rituals {
    fn checkins(&self) -> CheckinServiceClient<Authed>;
    fn routines(&self) -> RoutineServiceClient<Authed>;
    fn streaks(&self) -> StreakServiceClient<Authed>;
}

impl Rituals for Device {
    fn checkins(&self) -> CheckinServiceClient<Authed> {
        CheckinServiceClient::new(self.authed_channel())
    }
    fn routines(&self) -> RoutineServiceClient<Authed> {
        RoutineServiceClient::new(self.authed_channel())
    }
    fn streaks(&self) -> StreakServiceClient<Authed> {
        StreakServiceClient::new(self.authed_channel())
    }
}

/// Alice in `zone_a` and Bob in `zone_b`, paired at `when`.
async fn couple_at(
    server: &TestServer,
    when: DateTime<Utc>,
    zone_a: &str,
    zone_b: &str,
) -> (Device, Device) {
    server.clock.set(when);
    let alice = server.account("Alice", zone_a).await;
    let bob = server.account("Bob", zone_b).await;
    server.pair(&alice, &bob).await;
    (alice, bob)
}

fn scale(v: u32) -> pb::Answer {
    pb::Answer {
        value: Some(pb::answer::Value::Scale(v)),
    }
}

fn checkin_of(e: &pb::Event) -> pb::Checkin {
    match &e.payload {
        Some(Payload::CheckinUpdated(c)) => c.checkin.clone().unwrap(),
        other => panic!("expected a check-in, got {other:?}"),
    }
}

async fn ask(d: &Device, prompt: &str) -> pb::Checkin {
    d.checkins()
        .ask_partner(pb::AskPartnerRequest {
            client_checkin_id: uuid::Uuid::now_v7().to_string(),
            category: 0,
            prompt_id: prompt.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .checkin
        .unwrap()
}

async fn answer(d: &Device, id: &str, a: pb::Answer) -> Result<pb::Checkin, tonic::Status> {
    d.checkins()
        .answer_checkin(pb::AnswerCheckinRequest {
            checkin_id: id.into(),
            answer: Some(a),
        })
        .await
        .map(|r| r.into_inner().checkin.unwrap())
}

async fn answers_stay_hidden_until_both_have_answered(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(
        &server,
        at(2026, 1, 10, 18, 0),
        "Europe/Paris",
        "Asia/Tokyo",
    )
    .await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let prompts = alice
        .checkins()
        .list_prompts(pb::ListPromptsRequest { category: 0 })
        .await
        .unwrap()
        .into_inner()
        .prompts;
    assert!(prompts.len() >= 60);
    let energy = prompts
        .iter()
        .find(|p| {
            p.category == pb::PromptCategory::Energy as i32
                && matches!(p.answer_type, Some(pb::prompt::AnswerType::Scale(_)))
        })
        .unwrap();
    assert!((2..=4).contains(&energy.quick_replies.len()));

    // 06:00 UTC on the 11th: 07:00 in Paris, 15:00 in Tokyo, the same date for both.
    server.clock.set(at(2026, 1, 11, 6, 0));
    let asked = ask(&alice, &energy.prompt_id).await;
    assert_eq!(asked.status, pb::CheckinStatus::Open as i32);
    let opened = checkin_of(
        &bob_events
            .wait_for(|p| matches!(p, Payload::CheckinUpdated(_)))
            .await,
    );
    assert_eq!(opened.checkin_id, asked.checkin_id);

    let mine = answer(&alice, &asked.checkin_id, scale(4)).await.unwrap();
    assert_eq!(mine.my_answer, Some(scale(4)));
    assert!(!mine.partner_answered);
    let seen_by_bob = checkin_of(
        &bob_events
            .wait_for(|p| matches!(p, Payload::CheckinUpdated(_)))
            .await,
    );
    assert!(seen_by_bob.partner_answered, "Bob knows Alice answered...");
    assert_eq!(seen_by_bob.partner_answer, None, "...but not what");

    assert_status(
        answer(&bob, &asked.checkin_id, scale(9)).await,
        Code::InvalidArgument,
        "answer:",
    );
    let revealed = answer(&bob, &asked.checkin_id, scale(2)).await.unwrap();
    assert_eq!(revealed.status, pb::CheckinStatus::Revealed as i32);
    assert_eq!(revealed.partner_answer, Some(scale(4)));
    // A retry of the same answer changes nothing; another answer is refused.
    assert_eq!(
        answer(&bob, &asked.checkin_id, scale(2))
            .await
            .unwrap()
            .status,
        pb::CheckinStatus::Revealed as i32
    );
    assert_status(
        answer(&bob, &asked.checkin_id, scale(3)).await,
        Code::FailedPrecondition,
        "already answered",
    );
    // Another couple cannot see it.
    let carol = server.account("Carol", "UTC").await;
    let dave = server.account("Dave", "UTC").await;
    server.pair(&carol, &dave).await;
    assert_status(
        answer(&carol, &asked.checkin_id, scale(1)).await,
        Code::NotFound,
        "check-in",
    );
    // Both answers counted for the streak: today is connected.
    let streak = alice
        .streaks()
        .get_streak(pb::GetStreakRequest {})
        .await
        .unwrap()
        .into_inner()
        .streak
        .unwrap();
    assert_eq!(streak.current, 1);
    server.finish().await;
}

async fn expiry_reveals_a_lone_answer(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(
        &server,
        at(2026, 1, 10, 18, 0),
        "Europe/Paris",
        "America/New_York",
    )
    .await;
    let asked = ask(&alice, "energy-01").await;
    answer(&bob, &asked.checkin_id, scale(5)).await.unwrap();
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    server
        .clock
        .advance(Duration::hours(24) - Duration::seconds(1));
    assert_eq!(server.tick().await.expired, 0, "not before 24 hours");
    server.clock.advance(Duration::seconds(1));
    assert_eq!(server.tick().await.expired, 1);
    assert_eq!(server.tick().await.expired, 0, "once");
    let expired = checkin_of(
        &alice_events
            .wait_for(|p| matches!(p, Payload::CheckinUpdated(_)))
            .await,
    );
    assert_eq!(expired.status, pb::CheckinStatus::Expired as i32);
    assert!(expired.i_missed && !expired.partner_missed);
    assert_eq!(
        expired.partner_answer,
        Some(scale(5)),
        "a lone answer is revealed"
    );
    assert_status(
        answer(&alice, &asked.checkin_id, scale(3)).await,
        Code::FailedPrecondition,
        "expired",
    );
    server.finish().await;
}

fn routine_spec(
    kind: pb::RoutineKind,
    hour: u32,
    minute: u32,
    days: &[pb::Weekday],
) -> pb::RoutineSpec {
    pb::RoutineSpec {
        name: "Morning check-in".into(),
        kind: kind as i32,
        checkin_category: if kind == pb::RoutineKind::Checkin {
            pb::PromptCategory::Energy as i32
        } else {
            0
        },
        reminder_text: if kind == pb::RoutineKind::Reminder {
            "Date night!".into()
        } else {
            String::new()
        },
        days: days.iter().map(|d| *d as i32).collect(),
        time: Some(pb::LocalTimeOfDay { hour, minute }),
        paused: false,
    }
}

const EVERY_DAY: [pb::Weekday; 7] = [
    pb::Weekday::Monday,
    pb::Weekday::Tuesday,
    pb::Weekday::Wednesday,
    pb::Weekday::Thursday,
    pb::Weekday::Friday,
    pb::Weekday::Saturday,
    pb::Weekday::Sunday,
];

async fn create_routine(d: &Device, spec: pb::RoutineSpec) -> pb::Routine {
    d.routines()
        .create_routine(pb::CreateRoutineRequest { spec: Some(spec) })
        .await
        .unwrap()
        .into_inner()
        .routine
        .unwrap()
}

async fn next_firing(d: &Device) -> DateTime<Utc> {
    let routines = d
        .routines()
        .list_routines(pb::ListRoutinesRequest {})
        .await
        .unwrap()
        .into_inner()
        .routines;
    let ts = routines[0].next_firing.unwrap();
    Utc.timestamp_opt(ts.seconds, 0).unwrap()
}

fn fired_of(e: &pb::Event) -> pb::RoutineFired {
    match &e.payload {
        Some(Payload::RoutineFired(f)) => (**f).clone(),
        other => panic!("expected a routine firing, got {other:?}"),
    }
}

async fn a_morning_routine_fires_at_eight_in_both_zones(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    // January: Paris is UTC+1, New York UTC-5.
    let (alice, bob) = couple_at(
        &server,
        at(2026, 1, 10, 5, 0),
        "Europe/Paris",
        "America/New_York",
    )
    .await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    create_routine(
        &alice,
        routine_spec(pb::RoutineKind::Checkin, 8, 0, &EVERY_DAY),
    )
    .await;
    assert!(
        matches!(
            bob_events.next_significant().await.payload,
            Some(Payload::RoutinesChanged(_))
        ),
        "Bob is told"
    );
    assert_eq!(next_firing(&alice).await, at(2026, 1, 10, 7, 0));
    assert_eq!(next_firing(&bob).await, at(2026, 1, 10, 13, 0));

    server.clock.set(at(2026, 1, 10, 6, 59));
    assert_eq!(server.tick().await.fired, 0);
    server.clock.set(at(2026, 1, 10, 7, 0));
    assert_eq!(server.tick().await.fired, 1, "08:00 in Paris");
    let for_alice = fired_of(
        &alice_events
            .wait_for(|p| matches!(p, Payload::RoutineFired(_)))
            .await,
    );
    let checkin = for_alice.checkin.unwrap();

    server.clock.set(at(2026, 1, 10, 13, 0));
    assert_eq!(server.tick().await.fired, 1, "08:00 in New York");
    let for_bob = fired_of(
        &bob_events
            .wait_for(|p| matches!(p, Payload::RoutineFired(_)))
            .await,
    );
    assert_eq!(
        for_bob.checkin.unwrap().checkin_id,
        checkin.checkin_id,
        "one check-in that both answer"
    );
    assert_eq!(server.tick().await.fired, 0, "never twice");
    assert_eq!(next_firing(&alice).await, at(2026, 1, 11, 7, 0));
    server.finish().await;
}

async fn daylight_saving_gap_and_overlap(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2026, 3, 7, 12, 0), "UTC", "America/New_York").await;
    // 02:30 does not exist in New York on 8 March 2026: it fires at 03:00 EDT (07:00 UTC).
    create_routine(
        &alice,
        routine_spec(pb::RoutineKind::Reminder, 2, 30, &[pb::Weekday::Sunday]),
    )
    .await;
    assert_eq!(next_firing(&bob).await, at(2026, 3, 8, 7, 0));
    server.clock.set(at(2026, 3, 8, 6, 59));
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    server.tick().await;
    server.clock.set(at(2026, 3, 8, 7, 0));
    server.tick().await;
    let fired = fired_of(
        &bob_events
            .wait_for(|p| matches!(p, Payload::RoutineFired(_)))
            .await,
    );
    assert_eq!(
        fired.routine.unwrap().spec.unwrap().reminder_text,
        "Date night!"
    );

    // 01:30 happens twice on 1 November 2026: it fires once, at the first (05:30 UTC).
    server.clock.set(at(2026, 10, 31, 12, 0));
    let routines = bob
        .routines()
        .list_routines(pb::ListRoutinesRequest {})
        .await
        .unwrap()
        .into_inner()
        .routines;
    let update = pb::UpdateRoutineRequest {
        routine_id: routines[0].routine_id.clone(),
        spec: Some(routine_spec(
            pb::RoutineKind::Reminder,
            1,
            30,
            &[pb::Weekday::Sunday],
        )),
    };
    alice.routines().update_routine(update).await.unwrap();
    assert_eq!(next_firing(&bob).await, at(2026, 11, 1, 5, 30));
    let mut bob_fired = 0;
    for t in [
        at(2026, 11, 1, 5, 30),
        at(2026, 11, 1, 6, 30),
        at(2026, 11, 1, 7, 0),
    ] {
        server.clock.set(t);
        let r = server.tick().await;
        // Alice (UTC) fires at 01:30 UTC, before these instants: only Bob's firings count here.
        bob_fired += r.fired;
    }
    assert_eq!(bob_fired, 1, "the repeated hour fires once");
    assert_eq!(
        next_firing(&bob).await,
        at(2026, 11, 8, 6, 30),
        "next Sunday, 01:30 EST"
    );
    server.finish().await;
}

async fn quiet_hours_hold_a_routine_back(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(
        &server,
        at(2026, 1, 10, 5, 0),
        "Europe/London",
        "Europe/London",
    )
    .await;
    create_routine(
        &alice,
        routine_spec(pb::RoutineKind::Checkin, 8, 0, &EVERY_DAY),
    )
    .await;
    assert_eq!(next_firing(&bob).await, at(2026, 1, 10, 8, 0));
    bob.settings()
        .update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: Some(
                pb::update_settings_request::QuietHoursChange::SetQuietHours(pb::QuietHours {
                    start: Some(pb::LocalTimeOfDay {
                        hour: 22,
                        minute: 0,
                    }),
                    end: Some(pb::LocalTimeOfDay {
                        hour: 9,
                        minute: 15,
                    }),
                }),
            ),
            receipts_enabled: None,
        })
        .await
        .unwrap();
    assert_eq!(
        next_firing(&bob).await,
        at(2026, 1, 10, 9, 15),
        "waits for the end of Bob's quiet hours"
    );
    assert_eq!(
        next_firing(&alice).await,
        at(2026, 1, 10, 8, 0),
        "Alice's is unchanged"
    );
    server.clock.set(at(2026, 1, 10, 8, 0));
    assert_eq!(server.tick().await.fired, 1, "only Alice");
    server.clock.set(at(2026, 1, 10, 9, 15));
    assert_eq!(server.tick().await.fired, 1, "Bob, after his quiet hours");
    assert_eq!(next_firing(&bob).await, at(2026, 1, 11, 9, 15));
    server.finish().await;
}

async fn no_double_firing_after_a_restart_or_across_instances(backend: Backend) {
    let Some(mut server) = TestServer::start(backend).await else {
        return;
    };
    let (mut alice, _bob) = couple_at(&server, at(2026, 1, 10, 5, 0), "UTC", "UTC").await;
    create_routine(
        &alice,
        routine_spec(pb::RoutineKind::Reminder, 8, 0, &EVERY_DAY),
    )
    .await;

    // Down over 08:00, back 30 minutes late: made up once.
    server.stop().await;
    server.clock.set(at(2026, 1, 10, 8, 30));
    server.restart().await;
    let r = server.tick().await;
    assert_eq!((r.fired, r.skipped), (2, 0));
    assert_eq!(server.tick().await.fired, 0);

    // Down over the next 08:00, back two hours late: skipped and recorded.
    server.stop().await;
    server.clock.set(at(2026, 1, 11, 10, 0));
    server.restart().await;
    let r = server.tick().await;
    assert_eq!((r.fired, r.skipped), (0, 2));
    alice.reconnect(&server).await;
    let routine = alice
        .routines()
        .list_routines(pb::ListRoutinesRequest {})
        .await
        .unwrap()
        .into_inner()
        .routines
        .remove(0);
    assert!(routine.recent_firings.iter().filter(|f| f.skipped).count() == 2);

    // Two instances tick at once over the next firing: each partner gets it once.
    let (second, stop, task, _) = server.second_instance().await;
    server.clock.set(at(2026, 1, 12, 8, 0));
    let (a, b) = tokio::join!(
        tapline_server::jobs::tick(&server.state),
        tapline_server::jobs::tick(&second)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.fired + b.fired,
        2,
        "two partners, one firing each: {a:?} {b:?}"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    server.finish().await;
}

/// Both partners tap once at 18:00 UTC (19:00 Paris, 13:00 New York in January).
async fn both_tap(server: &TestServer, alice: &Device, bob: &Device, day: u32) {
    server.clock.set(at(2026, 1, day, 18, 0));
    alice.tap(pb::TapKind::Tap, "").await.unwrap();
    bob.tap(pb::TapKind::Tap, "").await.unwrap();
}

async fn streak(d: &Device) -> pb::Streak {
    d.streaks()
        .get_streak(pb::GetStreakRequest {})
        .await
        .unwrap()
        .into_inner()
        .streak
        .unwrap()
}

async fn month(d: &Device) -> Vec<(String, i32)> {
    d.streaks()
        .get_streak_history(pb::GetStreakHistoryRequest {
            year: 2026,
            month: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .days
        .into_iter()
        .map(|d| (d.date, d.status))
        .collect()
}

async fn freezes_are_earned_and_used(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(
        &server,
        at(2026, 1, 1, 12, 0),
        "Europe/Paris",
        "America/New_York",
    )
    .await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    for day in 1..=7 {
        both_tap(&server, &alice, &bob, day).await;
    }
    let s = streak(&alice).await;
    assert_eq!((s.current, s.longest, s.freezes_held), (7, 7, 1));
    let mut milestones = Vec::new();
    while milestones.len() < 2 {
        if let Some(Payload::StreakUpdated(u)) = alice_events
            .wait_for(|p| matches!(p, Payload::StreakUpdated(_)))
            .await
            .payload
            && u.change == pb::StreakChange::Milestone as i32
        {
            milestones.push(u.milestone_days);
        }
    }
    assert_eq!(milestones, [3, 7]);

    // Nobody acts on 8 January; both do on the 9th: a freeze covers the 8th.
    both_tap(&server, &alice, &bob, 9).await;
    let s = streak(&bob).await;
    assert_eq!(
        (s.current, s.freezes_held),
        (8, 0),
        "the streak survived without growing on the frozen day"
    );
    let days = month(&alice).await;
    assert_eq!(
        days[7],
        ("2026-01-08".to_owned(), pb::DayStatus::Frozen as i32)
    );
    assert_eq!(days[8].1, pb::DayStatus::Connected as i32);

    // Two missed days with no freeze: broken, longest kept.
    both_tap(&server, &alice, &bob, 12).await;
    let s = streak(&alice).await;
    assert_eq!((s.current, s.longest), (1, 8));
    assert_eq!(month(&alice).await[9].1, pb::DayStatus::Missed as i32);
    server.finish().await;
}

async fn a_pause_neither_counts_nor_breaks(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(
        &server,
        at(2026, 1, 1, 12, 0),
        "Europe/Paris",
        "America/New_York",
    )
    .await;
    for day in 1..=3 {
        both_tap(&server, &alice, &bob, day).await;
    }
    let pause = |from: &str, to: &str| {
        let bob = bob.clone();
        let (from, to) = (from.to_owned(), to.to_owned());
        async move {
            bob.streaks()
                .schedule_pause(pb::SchedulePauseRequest {
                    from_date: from,
                    to_date: to,
                })
                .await
        }
    };
    assert_status(
        pause("2026-01-02", "2026-01-05").await,
        Code::InvalidArgument,
        "past",
    );
    assert_status(
        pause("2026-01-04", "2026-01-20").await,
        Code::InvalidArgument,
        "at most 14 days",
    );
    assert_status(
        pause("4 Jan", "2026-01-05").await,
        Code::InvalidArgument,
        "from_date: must be a date",
    );
    let paused = pause("2026-01-04", "2026-01-05")
        .await
        .unwrap()
        .into_inner()
        .pause
        .unwrap();
    let later = pause("2026-01-10", "2026-01-11")
        .await
        .unwrap()
        .into_inner()
        .pause
        .unwrap();
    alice
        .streaks()
        .cancel_pause(pb::CancelPauseRequest {
            pause_id: later.pause_id,
        })
        .await
        .unwrap();
    // Nobody acts on the 4th and 5th; both act on the 6th.
    both_tap(&server, &alice, &bob, 6).await;
    let s = streak(&alice).await;
    assert_eq!(s.current, 4, "paused days neither count nor break");
    let days = month(&alice).await;
    assert_eq!(days[3].1, pb::DayStatus::Paused as i32);
    assert_eq!(days[4].1, pb::DayStatus::Paused as i32);
    assert_status(
        alice
            .streaks()
            .cancel_pause(pb::CancelPauseRequest {
                pause_id: paused.pause_id,
            })
            .await,
        Code::FailedPrecondition,
        "started",
    );
    server.finish().await;
}

async fn calm_mode_says_nothing_about_streaks(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(
        &server,
        at(2026, 1, 1, 12, 0),
        "Europe/Paris",
        "America/New_York",
    )
    .await;
    both_tap(&server, &alice, &bob, 1).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let calm = alice
        .streaks()
        .set_calm_mode(pb::SetCalmModeRequest { calm: true })
        .await
        .unwrap()
        .into_inner()
        .streak
        .unwrap();
    assert!(
        calm.calm && calm.current == 0,
        "nothing about the streak is sent"
    );
    match bob_events
        .wait_for(|p| matches!(p, Payload::StreakUpdated(_)))
        .await
        .payload
    {
        Some(Payload::StreakUpdated(u)) => assert!(u.streak.unwrap().calm),
        _ => unreachable!(),
    }
    server.clock.set(at(2026, 1, 2, 18, 0));
    let first = alice
        .tap(pb::TapKind::Tap, "one")
        .await
        .unwrap()
        .tap
        .unwrap();
    bob.tap(pb::TapKind::Tap, "").await.unwrap();
    let marker = alice
        .tap(pb::TapKind::Tap, "marker")
        .await
        .unwrap()
        .tap
        .unwrap();
    let (_, got) = bob_events.next_tap().await;
    assert_eq!(got.tap.unwrap().tap_id, first.tap_id);
    let (_, got) = bob_events.next_tap().await;
    assert_eq!(
        got.tap.unwrap().tap_id,
        marker.tap_id,
        "no streak news in between"
    );
    // What the two did today is still told (it is not pressure); the streak's numbers are not.
    let today = alice
        .streaks()
        .get_streak(pb::GetStreakRequest {})
        .await
        .unwrap()
        .into_inner()
        .streak
        .unwrap();
    assert!(today.calm && today.current == 0 && today.longest == 0);
    assert_eq!(today.me_today.unwrap().actions, 2, "Alice's two taps");
    assert_eq!(today.partner_today.unwrap().actions, 1, "Bob's one");
    // History is kept: back from calm mode, the days were counted.
    let back = bob
        .streaks()
        .set_calm_mode(pb::SetCalmModeRequest { calm: false })
        .await
        .unwrap()
        .into_inner()
        .streak
        .unwrap();
    assert!(!back.calm);
    assert_eq!(back.current, 2);
    server.finish().await;
}
