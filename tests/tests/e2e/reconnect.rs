//! The reconnect plan (issue 14, item 3): proposed by one partner, accepted by the other, then
//! one step a day for each partner at the plan's local time on their own clock, in order, across
//! a daylight-saving change; pausable and endable; quiet hours respected; and the streak's last
//! connected date the core's suggestion reads.

use chrono::{DateTime, TimeZone, Utc};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::reconnect_service_client::ReconnectServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;
use tonic::Code;

on_both_databases!(
    steps_come_at_each_partners_local_time_across_a_dst_change,
    a_plan_can_be_paused_resumed_marked_and_ended,
    a_step_in_quiet_hours_waits_for_their_end,
    a_flight_never_brings_a_second_step_on_one_local_date,
    the_streak_says_its_last_connected_date,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn rc(d: &Device) -> ReconnectServiceClient<Authed> {
    ReconnectServiceClient::new(d.authed_channel())
}

async fn start(d: &Device, time: &str) -> Result<pb::ReconnectPlan, tonic::Status> {
    Ok(rc(d)
        .start_reconnect(pb::StartReconnectRequest {
            local_time: time.into(),
        })
        .await?
        .into_inner()
        .plan
        .expect("plan"))
}

async fn accept(d: &Device, id: &str) -> Result<pb::ReconnectPlan, tonic::Status> {
    Ok(rc(d)
        .accept_reconnect(pb::AcceptReconnectRequest { plan_id: id.into() })
        .await?
        .into_inner()
        .plan
        .expect("plan"))
}

async fn get(d: &Device) -> pb::ReconnectPlan {
    rc(d)
        .get_reconnect(pb::GetReconnectRequest {})
        .await
        .expect("get")
        .into_inner()
        .plan
        .expect("a plan")
}

fn instant(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref()
        .map(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap())
}

/// When each of `d`'s steps came (those that did), in order.
async fn came(d: &Device) -> Vec<(String, DateTime<Utc>)> {
    get(d)
        .await
        .steps
        .iter()
        .filter_map(|s| instant(&s.came_at).map(|t| (s.came_on.clone(), t)))
        .collect()
}

/// Moves the clock to the earlier of the two partners' next steps and ticks, until neither
/// has one left or `until` is reached.
async fn run_steps(server: &TestServer, a: &Device, b: &Device, until: DateTime<Utc>) {
    loop {
        let next = [
            instant(&get(a).await.my_next_step_at),
            instant(&get(b).await.my_next_step_at),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) if t <= until => {
                server.clock.set(t);
                let r = server.tick().await;
                assert!(r.reconnect_steps >= 1, "a step was due at {t}");
            }
            _ => return,
        }
    }
}

async fn next_update(events: &mut Events) -> pb::ReconnectUpdated {
    let e = events
        .wait_for(|p| matches!(p, Payload::ReconnectUpdated(_)))
        .await;
    match e.payload {
        Some(Payload::ReconnectUpdated(u)) => *u,
        _ => unreachable!("waited for a reconnect update"),
    }
}

async fn couple(server: &TestServer, when: DateTime<Utc>) -> (Device, Device) {
    server.clock.set(when);
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "America/New_York").await;
    server.pair(&alice, &bob).await;
    (alice, bob)
}

async fn steps_come_at_each_partners_local_time_across_a_dst_change(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    // New York moves its clocks forward on 2027-03-14; Paris only on 03-28.
    let (alice, bob) = couple(&server, at(2027, 3, 10, 12, 0)).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let proposed = start(&alice, "19:00").await.expect("start");
    assert_eq!(proposed.state, pb::ReconnectState::Proposed as i32);
    assert_eq!(proposed.local_time, "19:00");
    assert!(
        proposed.my_next_step_at.is_none(),
        "nothing comes before it is accepted"
    );
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::ReconnectChange::Proposed as i32);
    assert_eq!(u.plan.as_ref().unwrap().plan_id, proposed.plan_id);

    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    let plan = accept(&bob, &proposed.plan_id).await.expect("accept");
    assert_eq!(plan.state, pb::ReconnectState::Running as i32);
    assert_eq!(
        instant(&plan.my_next_step_at),
        Some(at(2027, 3, 11, 0, 0)),
        "Bob's first: 19:00 in New York (EST) on 03-10"
    );
    let u = next_update(&mut alice_events).await;
    assert_eq!(u.change, pb::ReconnectChange::Accepted as i32);
    assert_eq!(
        instant(&u.plan.unwrap().my_next_step_at),
        Some(at(2027, 3, 10, 18, 0)),
        "Alice's first: 19:00 in Paris (CET) the same day"
    );

    // Alice's first step, with its words, reaches her devices.
    server.clock.set(at(2027, 3, 10, 18, 0));
    assert_eq!(server.tick().await.reconnect_steps, 1);
    let u = next_update(&mut alice_events).await;
    assert_eq!(u.change, pb::ReconnectChange::Step as i32);
    assert!(!u.silent);
    let step = u.step.expect("the step");
    assert_eq!(
        (step.number, step.kind, step.came_on.as_str()),
        (1, pb::ReconnectStepKind::Tap as i32, "2027-03-10")
    );
    assert!(step.prompt.contains("tap"), "{}", step.prompt);

    run_steps(&server, &alice, &bob, at(2027, 3, 20, 0, 0)).await;
    let days =
        |from: u32| -> Vec<String> { (0..7).map(|i| format!("2027-03-{:02}", from + i)).collect() };
    let a = came(&alice).await;
    assert_eq!(a.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), days(10));
    assert_eq!(
        a.iter().map(|c| c.1).collect::<Vec<_>>(),
        (10..17).map(|d| at(2027, 3, d, 18, 0)).collect::<Vec<_>>(),
        "19:00 in Paris every day"
    );
    let b = came(&bob).await;
    assert_eq!(b.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), days(10));
    assert_eq!(
        b.iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![
            at(2027, 3, 11, 0, 0),
            at(2027, 3, 12, 0, 0),
            at(2027, 3, 13, 0, 0),
            at(2027, 3, 14, 0, 0),
            // From 03-14 New York is on EDT: 19:00 is 23:00 UTC.
            at(2027, 3, 14, 23, 0),
            at(2027, 3, 15, 23, 0),
            at(2027, 3, 16, 23, 0),
        ],
        "19:00 in New York every day, before and after the change"
    );
    let kinds: Vec<i32> = get(&bob).await.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        (1..=7).collect::<Vec<i32>>(),
        "the seven steps in order"
    );
    let done = get(&alice).await;
    assert_eq!(done.state, pb::ReconnectState::Finished as i32);
    assert_eq!((done.my_steps_come, done.partner_steps_come), (7, 7));
    assert!(done.my_next_step_at.is_none());
    // Nothing more comes, and a new plan can be started.
    server.clock.set(at(2027, 3, 25, 0, 0));
    assert_eq!(server.tick().await.reconnect_steps, 0);
    start(&bob, "")
        .await
        .expect("a new plan once the last finished");
    server.finish().await;
}

async fn a_plan_can_be_paused_resumed_marked_and_ended(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple(&server, at(2027, 5, 3, 12, 0)).await;
    assert_status(start(&alice, "7pm").await, Code::InvalidArgument, "HH:MM");
    let p = start(&alice, "20:30").await.expect("start");
    let refused = assert_status(start(&bob, "").await, Code::FailedPrecondition, "already");
    assert_eq!(reason_of(&refused), "RECONNECT_ALREADY");
    assert_status(
        accept(&alice, &p.plan_id).await,
        Code::InvalidArgument,
        "your partner accepts",
    );
    accept(&bob, &p.plan_id).await.expect("accept");
    accept(&bob, &p.plan_id)
        .await
        .expect("accepting again changes nothing");

    // 20:30 in Paris (CEST) is 18:30 UTC: Alice's first step.
    server.clock.set(at(2027, 5, 3, 18, 30));
    server.tick().await;
    let mark = |d: &Device, n: u32| {
        let mut c = rc(d);
        let id = p.plan_id.clone();
        async move {
            c.mark_reconnect_step(pb::MarkReconnectStepRequest {
                plan_id: id,
                number: n,
            })
            .await
            .map(|r| r.into_inner().plan.expect("plan"))
        }
    };
    let refused = assert_status(mark(&alice, 2).await, Code::FailedPrecondition, "not come");
    assert_eq!(reason_of(&refused), "RECONNECT_STEP_NOT_YET");
    assert_status(mark(&alice, 8).await, Code::InvalidArgument, "1-7");
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let marked = mark(&alice, 1).await.expect("mark");
    assert!(marked.steps[0].i_done);
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::ReconnectChange::PartnerDone as i32);
    let seen = u.step.expect("the step");
    assert_eq!(seen.number, 1);
    assert!(
        seen.partner_done && !seen.i_done,
        "Bob has not done his own"
    );
    mark(&alice, 1)
        .await
        .expect("marking again changes nothing");

    // Bob pauses: nothing comes for either for three days.
    let paused = rc(&bob)
        .pause_reconnect(pb::PauseReconnectRequest {
            plan_id: p.plan_id.clone(),
            paused: true,
        })
        .await
        .expect("pause")
        .into_inner()
        .plan
        .unwrap();
    assert_eq!(paused.state, pb::ReconnectState::Paused as i32);
    assert_eq!(paused.paused_by_account_id, bob.account_id);
    assert!(paused.my_next_step_at.is_none());
    for day in 4..7 {
        server.clock.set(at(2027, 5, day, 18, 30));
        assert_eq!(server.tick().await.reconnect_steps, 0, "paused on 05-{day}");
        server.clock.set(at(2027, 5, day + 1, 0, 30));
        assert_eq!(server.tick().await.reconnect_steps, 0, "paused on 05-{day}");
    }
    // Resumed on 05-07 at 12:00 UTC: Alice's step 2 comes at 20:30 that day, Bob's step 1 at
    // 20:30 in New York.
    server.clock.set(at(2027, 5, 7, 12, 0));
    let resumed = rc(&alice)
        .pause_reconnect(pb::PauseReconnectRequest {
            plan_id: p.plan_id.clone(),
            paused: false,
        })
        .await
        .expect("resume")
        .into_inner()
        .plan
        .unwrap();
    assert_eq!(resumed.state, pb::ReconnectState::Running as i32);
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::ReconnectChange::Resumed as i32);
    assert_eq!(
        instant(&resumed.my_next_step_at),
        Some(at(2027, 5, 7, 18, 30))
    );
    assert_eq!(
        instant(&get(&bob).await.my_next_step_at),
        Some(at(2027, 5, 8, 0, 30))
    );
    server.clock.set(at(2027, 5, 7, 18, 30));
    server.tick().await;
    assert_eq!(
        came(&alice)
            .await
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>(),
        ["2027-05-03", "2027-05-07"]
    );

    // Alice ends it: nothing more comes; accepting or pausing an ended plan is refused.
    let ended = rc(&alice)
        .end_reconnect(pb::EndReconnectRequest {
            plan_id: p.plan_id.clone(),
        })
        .await
        .expect("end")
        .into_inner()
        .plan
        .unwrap();
    assert_eq!(ended.state, pb::ReconnectState::Ended as i32);
    assert_eq!(ended.ended_by_account_id, alice.account_id);
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::ReconnectChange::Ended as i32);
    server.clock.set(at(2027, 5, 8, 0, 30));
    assert_eq!(server.tick().await.reconnect_steps, 0);
    let refused = assert_status(
        accept(&bob, &p.plan_id).await,
        Code::FailedPrecondition,
        "ended",
    );
    assert_eq!(reason_of(&refused), "RECONNECT_ENDED");
    // Another couple's plan id is not found.
    let carol = server.account("Carol", "Europe/Paris").await;
    let dan = server.account("Dan", "Europe/Paris").await;
    server.pair(&carol, &dan).await;
    assert_status(accept(&carol, &p.plan_id).await, Code::NotFound, "");
    server.finish().await;
}

async fn a_step_in_quiet_hours_waits_for_their_end(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple(&server, at(2027, 1, 10, 12, 0)).await;
    // Alice's quiet hours, 18:00-08:00 in Paris, cover 19:00.
    set_quiet_hours(&alice, (18, 0), (8, 0)).await;
    let p = start(&bob, "19:00").await.expect("start");
    let plan = accept(&alice, &p.plan_id).await.expect("accept");
    assert_eq!(
        instant(&plan.my_next_step_at),
        Some(at(2027, 1, 11, 7, 0)),
        "08:00 in Paris, the end of her quiet hours"
    );
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    server.clock.set(at(2027, 1, 10, 18, 0));
    assert_eq!(server.tick().await.reconnect_steps, 0, "not in quiet hours");
    // Bob's, at 19:00 in New York.
    server.clock.set(at(2027, 1, 11, 0, 0));
    assert_eq!(server.tick().await.reconnect_steps, 1);
    server.clock.set(at(2027, 1, 11, 7, 0));
    assert_eq!(server.tick().await.reconnect_steps, 1);
    let u = next_update(&mut alice_events).await;
    let step = u.step.expect("step");
    assert_eq!((step.number, step.came_on.as_str()), (1, "2027-01-10"));
    assert!(!u.silent, "it comes once quiet hours are over");
    // Her next one is the step of 01-11, at the end of that night's quiet hours.
    assert_eq!(
        instant(&get(&alice).await.my_next_step_at),
        Some(at(2027, 1, 12, 7, 0))
    );
    server.finish().await;
}

async fn a_flight_never_brings_a_second_step_on_one_local_date(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple(&server, at(2027, 6, 15, 5, 0)).await;
    let p = start(&bob, "08:00").await.expect("start");
    accept(&alice, &p.plan_id).await.expect("accept");
    // 08:00 in Paris (CEST) on 06-15: step 1.
    server.clock.set(at(2027, 6, 15, 6, 0));
    assert_eq!(server.tick().await.reconnect_steps, 1);
    // Alice flies to New York, where it is still 06-15 and 08:00 is still to come.
    server.clock.set(at(2027, 6, 15, 9, 0));
    alice
        .accounts()
        .update_profile(pb::UpdateProfileRequest {
            display_name: None,
            time_zone: Some("America/New_York".into()),
        })
        .await
        .expect("fly");
    assert_eq!(
        instant(&get(&alice).await.my_next_step_at),
        Some(at(2027, 6, 16, 12, 0)),
        "08:00 in New York on 06-16, not a second step on 06-15"
    );
    server.clock.set(at(2027, 6, 15, 12, 0));
    server.tick().await;
    assert_eq!(came(&alice).await.len(), 1);
    server.finish().await;
}

async fn the_streak_says_its_last_connected_date(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple(&server, at(2027, 4, 5, 12, 0)).await;
    let streak = |d: &Device| {
        let mut c = StreakServiceClient::new(d.authed_channel());
        async move {
            c.get_streak(pb::GetStreakRequest {})
                .await
                .expect("streak")
                .into_inner()
                .streak
                .expect("streak")
        }
    };
    let s = streak(&alice).await;
    assert_eq!(s.last_connected_date, "");
    assert_eq!(s.first_date, "2027-04-05");
    alice.tap(pb::TapKind::Tap, "").await.expect("tap");
    bob.tap(pb::TapKind::Tap, "").await.expect("tap");
    // Settled once the date is over for both (midnight in New York).
    server.clock.set(at(2027, 4, 6, 4, 30));
    let s = streak(&bob).await;
    assert_eq!(s.last_connected_date, "2027-04-05");
    // Days without taps do not move it.
    server.clock.set(at(2027, 4, 12, 12, 0));
    assert_eq!(streak(&alice).await.last_connected_date, "2027-04-05");
    server.finish().await;
}
