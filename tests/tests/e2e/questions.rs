//! Deeper questions in stages (issue 14, item 2): one question at a time, each partner's answer
//! hidden until both answered, then revealed on both and the next unlocked, in order through
//! three sets; progress shown; pausable; never a streak action.

use chrono::{DateTime, TimeZone, Utc};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::question_service_client::QuestionServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;
use tonic::Code;

on_both_databases!(
    questions_unlock_in_order_once_both_answered,
    a_paused_deck_takes_no_answers_and_answers_are_final,
    questions_are_not_streak_actions,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn questions(d: &Device) -> QuestionServiceClient<Authed> {
    QuestionServiceClient::new(d.authed_channel())
}

async fn answer(
    d: &Device,
    number: u32,
    text: &str,
) -> Result<pb::AnswerQuestionResponse, tonic::Status> {
    Ok(questions(d)
        .answer_question(pb::AnswerQuestionRequest {
            number,
            answer: text.to_owned(),
        })
        .await?
        .into_inner())
}

async fn get(d: &Device) -> pb::GetQuestionsResponse {
    questions(d)
        .get_questions(pb::GetQuestionsRequest {})
        .await
        .expect("get")
        .into_inner()
}

async fn couple_at(server: &TestServer, when: DateTime<Utc>) -> (Device, Device) {
    server.clock.set(when);
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "America/New_York").await;
    server.pair(&alice, &bob).await;
    (alice, bob)
}

async fn next_update(events: &mut Events) -> pb::QuestionUpdated {
    let e = events
        .wait_for(|p| matches!(p, Payload::QuestionUpdated(_)))
        .await;
    match e.payload {
        Some(Payload::QuestionUpdated(u)) => *u,
        _ => unreachable!("waited for a question update"),
    }
}

async fn questions_unlock_in_order_once_both_answered(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 15, 0)).await;
    let start = get(&alice).await;
    let p = start.progress.expect("progress");
    assert_eq!(
        (p.revealed, p.total, p.paused, p.finished),
        (0, 36, false, false)
    );
    let first = p.current.expect("a first question");
    assert_eq!((first.number, first.set, first.number_in_set), (1, 1, 1));
    assert_eq!(first.set_name, "Warm-up");
    assert!(first.text.ends_with('?'));
    assert!(start.revealed.is_empty());

    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    // A later question is locked.
    let e = answer(&alice, 2, "too soon").await.expect_err("locked");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&e), "QUESTION_LOCKED");

    let r = answer(&alice, 1, "  a long walk and strong coffee  ")
        .await
        .expect("answer");
    assert!(r.revealed.is_none(), "Bob has not answered");
    let cur = r.progress.expect("progress").current.expect("current");
    assert_eq!(cur.number, 1, "still the first question");
    assert_eq!(cur.my_answer, "a long walk and strong coffee");
    assert!(cur.i_answered && !cur.partner_answered);
    // Bob is told Alice answered, never what.
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::QuestionChange::PartnerAnswered as i32);
    let seen = u.progress.expect("progress").current.expect("current");
    assert!(seen.partner_answered && !seen.i_answered);
    assert!(seen.partner_answer.is_empty(), "hidden until both answered");
    let bob_view = get(&bob).await.progress.expect("p").current.expect("c");
    assert!(bob_view.partner_answer.is_empty() && bob_view.my_answer.is_empty());

    // Bob answers: both revealed, on both, and question 2 unlocks.
    let r = answer(&bob, 1, "music while cooking")
        .await
        .expect("answer");
    let q = r.revealed.expect("revealed");
    assert_eq!(
        (q.my_answer.as_str(), q.partner_answer.as_str()),
        ("music while cooking", "a long walk and strong coffee")
    );
    assert!(q.revealed_at.is_some());
    let p = r.progress.expect("progress");
    assert_eq!(p.revealed, 1);
    assert_eq!(p.current.expect("next").number, 2);
    let u = next_update(&mut alice_events).await;
    assert_eq!(u.change, pb::QuestionChange::Revealed as i32);
    let q = u.revealed.expect("revealed");
    assert_eq!(q.partner_answer, "music while cooking");
    assert_eq!(q.my_answer, "a long walk and strong coffee");
    let e = answer(&alice, 1, "again")
        .await
        .expect_err("revealed already");
    assert_eq!(reason_of(&e), "QUESTION_LOCKED");

    // Through the first set into the second, in order.
    for n in 2..=13 {
        answer(&alice, n, &format!("alice {n}"))
            .await
            .expect("answer");
        answer(&bob, n, &format!("bob {n}")).await.expect("answer");
    }
    let now = get(&bob).await;
    let p = now.progress.expect("progress");
    assert_eq!(p.revealed, 13);
    let cur = p.current.expect("current");
    assert_eq!((cur.number, cur.set, cur.number_in_set), (14, 2, 2));
    assert_eq!(cur.set_name, "Closer");
    let numbers: Vec<u32> = now.revealed.iter().map(|q| q.number).collect();
    assert_eq!(numbers, (1..=13).collect::<Vec<_>>());
    assert_eq!(now.revealed[12].my_answer, "bob 13");
    assert_eq!(now.revealed[12].partner_answer, "alice 13");
    server.finish().await;
}

async fn a_paused_deck_takes_no_answers_and_answers_are_final(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 15, 0)).await;
    for bad in ["", "   ", &"x".repeat(501)] {
        let e = answer(&alice, 1, bad).await.expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument);
    }
    let e = answer(&alice, 0, "zero").await.expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    answer(&alice, 1, "sunrise").await.expect("answer");
    answer(&alice, 1, "sunrise")
        .await
        .expect("the same again is fine");
    let e = answer(&alice, 1, "sunset").await.expect_err("final");
    assert_eq!(reason_of(&e), "ALREADY_ANSWERED");

    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    let paused = questions(&bob)
        .pause_questions(pb::PauseQuestionsRequest { paused: true })
        .await
        .expect("pause")
        .into_inner()
        .progress
        .expect("progress");
    assert!(paused.paused);
    assert_eq!(paused.paused_by_account_id, bob.account_id);
    let u = next_update(&mut alice_events).await;
    assert_eq!(u.change, pb::QuestionChange::Paused as i32);
    let e = answer(&bob, 1, "moonrise").await.expect_err("paused");
    assert_eq!(reason_of(&e), "QUESTIONS_PAUSED");
    assert!(get(&alice).await.progress.expect("p").paused);

    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    questions(&alice)
        .pause_questions(pb::PauseQuestionsRequest { paused: false })
        .await
        .expect("resume");
    let u = next_update(&mut bob_events).await;
    assert_eq!(u.change, pb::QuestionChange::Resumed as i32);
    let r = answer(&bob, 1, "moonrise").await.expect("answer");
    assert!(r.revealed.is_some());
    server.finish().await;
}

/// Two days on which the two only answer questions: nothing counts for the streak.
async fn questions_are_not_streak_actions(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 3, 1, 15, 0)).await;
    answer(&alice, 1, "a").await.expect("answer");
    answer(&bob, 1, "b").await.expect("answer");
    server.clock.set(at(2027, 3, 2, 15, 0));
    answer(&alice, 2, "a").await.expect("answer");
    answer(&bob, 2, "b").await.expect("answer");
    let s = StreakServiceClient::new(alice.authed_channel())
        .get_streak(pb::GetStreakRequest {})
        .await
        .expect("streak")
        .into_inner()
        .streak
        .expect("streak");
    assert_eq!(s.current, 0);
    assert_eq!(s.me_today.expect("today").actions, 0);
    server.finish().await;
}
