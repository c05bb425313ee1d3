//! Moments and the weekly recap (moments.proto): a partner's note or answer kept once and seen
//! by both, let go only by the one who kept it; the recap's seven dates on each partner's own
//! calendar with the taps, check-ins and mood and energy answers of each date; the weekly recap
//! delivered at each partner's chosen local time, after quiet hours.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::keep_moment_request::Source;
use tapline_proto::v1::moment_service_client::MomentServiceClient;
use tonic::{Code, Status};

on_both_databases!(
    a_note_or_an_answer_is_kept_once_and_the_author_is_told,
    both_see_the_moments_in_pages_and_only_the_keeper_lets_one_go,
    the_recap_series_match_the_answers_given,
    the_weekly_recap_comes_at_each_partners_chosen_time,
    a_recap_in_quiet_hours_waits_for_their_end,
    a_move_or_new_quiet_hours_replan_the_recap,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn instant(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref()
        .map(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap())
}

fn moments(d: &Device) -> MomentServiceClient<Authed> {
    MomentServiceClient::new(d.authed_channel())
}

fn checkins(d: &Device) -> CheckinServiceClient<Authed> {
    CheckinServiceClient::new(d.authed_channel())
}

/// Alice in Paris and Bob in New York, paired at `when`.
async fn couple_at(server: &TestServer, when: DateTime<Utc>) -> (Device, Device) {
    server.clock.set(when);
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "America/New_York").await;
    server.pair(&alice, &bob).await;
    (alice, bob)
}

async fn keep(d: &Device, source: Option<Source>) -> Result<pb::KeepMomentResponse, Status> {
    moments(d)
        .keep_moment(pb::KeepMomentRequest { source })
        .await
        .map(tonic::Response::into_inner)
}

async fn keep_tap(d: &Device, tap_id: &str) -> Result<pb::KeepMomentResponse, Status> {
    keep(d, Some(Source::TapId(tap_id.into()))).await
}

async fn keep_checkin(d: &Device, checkin_id: &str) -> Result<pb::KeepMomentResponse, Status> {
    keep(d, Some(Source::CheckinId(checkin_id.into()))).await
}

/// The moment kept, which must be a new one.
#[track_caller]
fn kept(result: Result<pb::KeepMomentResponse, Status>) -> pb::Moment {
    let r = result.expect("keep");
    assert!(!r.already_kept, "kept for the first time");
    r.moment.expect("the moment")
}

#[track_caller]
fn assert_nothing_to_keep<T: std::fmt::Debug>(result: Result<T, Status>) {
    let s = assert_status(result, Code::FailedPrecondition, "");
    assert_eq!(reason_of(&s), "NOTHING_TO_KEEP", "{}", s.message());
}

async fn list(d: &Device, page_size: u32, token: &str) -> Result<pb::ListMomentsResponse, Status> {
    moments(d)
        .list_moments(pb::ListMomentsRequest {
            page_size,
            page_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The ids of every moment `d` sees, read in pages of `page_size`, with the number of pages.
async fn ids_in_pages(d: &Device, page_size: u32) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut token) = (Vec::new(), 0, String::new());
    loop {
        let page = list(d, page_size, &token).await.expect("list moments");
        pages += 1;
        assert!(
            page.moments.len() <= page_size as usize,
            "a page holds at most {page_size}"
        );
        ids.extend(page.moments.into_iter().map(|m| m.moment_id));
        if page.next_page_token.is_empty() {
            return (ids, pages);
        }
        assert!(pages < 100, "paging never ends");
        token = page.next_page_token;
    }
}

async fn all_ids(d: &Device) -> Vec<String> {
    let page = list(d, 100, "").await.expect("list moments");
    assert!(page.next_page_token.is_empty(), "one page holds them all");
    page.moments.into_iter().map(|m| m.moment_id).collect()
}

async fn forget(d: &Device, moment_id: &str) -> Result<pb::ForgetMomentResponse, Status> {
    moments(d)
        .forget_moment(pb::ForgetMomentRequest {
            moment_id: moment_id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn next_moment_kept(events: &mut Events) -> pb::MomentKept {
    let e = events
        .wait_for(|p| matches!(p, Payload::MomentKept(_)))
        .await;
    match e.payload {
        Some(Payload::MomentKept(k)) => *k,
        _ => unreachable!("waited for a kept moment"),
    }
}

async fn ask(d: &Device, prompt_id: &str) -> pb::Checkin {
    checkins(d)
        .ask_partner(pb::AskPartnerRequest {
            client_checkin_id: uuid::Uuid::now_v7().to_string(),
            category: 0,
            prompt_id: prompt_id.into(),
        })
        .await
        .expect("ask partner")
        .into_inner()
        .checkin
        .expect("the check-in")
}

async fn answer(d: &Device, checkin: &pb::Checkin, value: pb::answer::Value) -> pb::Checkin {
    checkins(d)
        .answer_checkin(pb::AnswerCheckinRequest {
            checkin_id: checkin.checkin_id.clone(),
            answer: Some(pb::Answer { value: Some(value) }),
        })
        .await
        .expect("answer")
        .into_inner()
        .checkin
        .expect("the check-in")
}

fn scale(v: u32) -> pb::answer::Value {
    pb::answer::Value::Scale(v)
}

/// Both partners answer `checkin` (the first one given answers first).
async fn both_answer(
    checkin: &pb::Checkin,
    (first, a): (&Device, pb::answer::Value),
    (second, b): (&Device, pb::answer::Value),
) {
    answer(first, checkin, a).await;
    let revealed = answer(second, checkin, b).await;
    assert_eq!(revealed.status, pb::CheckinStatus::Revealed as i32);
}

async fn a_note_or_an_answer_is_kept_once_and_the_author_is_told(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let t0 = at(2027, 5, 4, 9, 0);
    let (alice, bob) = couple_at(&server, t0).await;
    let carol = server.account("Carol", "UTC").await;
    let dan = server.account("Dan", "UTC").await;
    server.pair(&carol, &dan).await;
    let tap_id = |r: pb::SendTapResponse| r.tap.expect("tap").tap_id;
    let bob_note = bob
        .tap(pb::TapKind::Tap, "thinking of you")
        .await
        .expect("tap")
        .tap
        .expect("tap");
    server.clock.advance(Duration::minutes(1));
    let bob_plain = tap_id(bob.tap(pb::TapKind::Tap, "").await.expect("tap"));
    let alice_note = tap_id(alice.tap(pb::TapKind::Tap, "miss you").await.expect("tap"));
    let dan_note = tap_id(dan.tap(pb::TapKind::Tap, "hi Carol").await.expect("tap"));
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;

    // Two hours later Alice keeps Bob's note: his words, kept by her.
    let t1 = t0 + Duration::hours(2);
    server.clock.set(t1);
    let note = kept(keep_tap(&alice, &bob_note.tap_id).await);
    assert!(!note.moment_id.is_empty());
    assert_eq!(note.kind, pb::MomentKind::Note as i32);
    assert_eq!(note.text, "thinking of you");
    assert_eq!(note.prompt_text, "");
    assert_eq!(note.author_account_id, bob.account_id);
    assert_eq!(note.kept_by_account_id, alice.account_id);
    assert_eq!(note.source_id, bob_note.tap_id);
    assert_eq!(instant(&note.happened_at), Some(t0), "when Bob sent it");
    assert_eq!(note.happened_at, bob_note.sent_at);
    assert_eq!(instant(&note.kept_at), Some(t1));
    // Bob is told, with the moment as Alice sees it.
    let told = next_moment_kept(&mut bob_events).await;
    assert!(!told.forgotten);
    assert_eq!(told.moment.as_ref(), Some(&note));
    // Keeping it again returns it unchanged.
    server.clock.advance(Duration::minutes(1));
    let again = keep_tap(&alice, &bob_note.tap_id)
        .await
        .expect("keep again");
    assert!(again.already_kept);
    assert_eq!(again.moment.as_ref(), Some(&note));

    // What cannot be kept.
    assert_nothing_to_keep(keep_tap(&alice, &alice_note).await);
    assert_nothing_to_keep(keep_tap(&alice, &bob_plain).await);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_status(keep_tap(&alice, &unknown).await, Code::NotFound, "");
    assert_status(keep_tap(&alice, &dan_note).await, Code::NotFound, "");
    assert_status(keep_tap(&carol, &bob_note.tap_id).await, Code::NotFound, "");
    assert_status(keep_tap(&alice, "x").await, Code::InvalidArgument, "");
    assert_status(keep_tap(&alice, "").await, Code::InvalidArgument, "");
    assert_status(keep(&alice, None).await, Code::InvalidArgument, "");

    // A scale answer: nothing to keep until it is revealed to the one keeping it.
    let t2 = t0 + Duration::hours(3);
    server.clock.set(t2);
    let mood = ask(&bob, "mood-01").await;
    assert_nothing_to_keep(keep_checkin(&alice, &mood.checkin_id).await);
    answer(&bob, &mood, scale(4)).await;
    assert_nothing_to_keep(keep_checkin(&alice, &mood.checkin_id).await);
    assert_nothing_to_keep(keep_checkin(&bob, &mood.checkin_id).await);
    answer(&alice, &mood, scale(2)).await;
    let t3 = t2 + Duration::minutes(10);
    server.clock.set(t3);
    let bobs_mood = kept(keep_checkin(&alice, &mood.checkin_id).await);
    assert_eq!(bobs_mood.kind, pb::MomentKind::Answer as i32);
    assert_eq!(bobs_mood.text, "4 of 5");
    assert_eq!(bobs_mood.prompt_text, "How's your heart doing right now?");
    assert_eq!(bobs_mood.author_account_id, bob.account_id);
    assert_eq!(bobs_mood.kept_by_account_id, alice.account_id);
    assert_eq!(bobs_mood.source_id, mood.checkin_id);
    assert_eq!(instant(&bobs_mood.happened_at), Some(t2), "when it opened");
    assert_eq!(instant(&bobs_mood.kept_at), Some(t3));
    // Bob keeps Alice's answer to the same check-in: another moment.
    let alices_mood = kept(keep_checkin(&bob, &mood.checkin_id).await);
    assert_ne!(alices_mood.moment_id, bobs_mood.moment_id);
    assert_eq!(
        (
            alices_mood.kind,
            alices_mood.text.as_str(),
            alices_mood.author_account_id.as_str(),
            alices_mood.kept_by_account_id.as_str(),
        ),
        (
            pb::MomentKind::Answer as i32,
            "2 of 5",
            alice.account_id.as_str(),
            bob.account_id.as_str(),
        )
    );
    // Alice's devices hear of Bob's keeping, never of her own.
    let told = next_moment_kept(&mut alice_events).await;
    assert_eq!(told.moment.as_ref(), Some(&alices_mood));
    assert!(!told.forgotten);
    assert_status(
        keep_checkin(&carol, &mood.checkin_id).await,
        Code::NotFound,
        "",
    );
    assert_status(keep_checkin(&alice, &unknown).await, Code::NotFound, "");
    assert_status(keep_checkin(&alice, "x").await, Code::InvalidArgument, "");

    // Every answer type in words; appreciation and gratitude prompts are appreciations.
    let thanks = ask(&alice, "appreciation-01").await;
    both_answer(
        &thanks,
        (&alice, pb::answer::Value::Text("your laugh".into())),
        (
            &bob,
            pb::answer::Value::Text("  the way you listen ".into()),
        ),
    )
    .await;
    let m = kept(keep_checkin(&alice, &thanks.checkin_id).await);
    assert_eq!(
        (m.kind, m.text.as_str(), m.prompt_text.as_str()),
        (
            pb::MomentKind::Appreciation as i32,
            "the way you listen",
            "Something about you I appreciated today:"
        )
    );
    let glad = ask(&bob, "gratitude-04").await;
    both_answer(
        &glad,
        (&bob, pb::answer::Value::Choice(3)),
        (&alice, pb::answer::Value::Choice(1)),
    )
    .await;
    let m = kept(keep_checkin(&alice, &glad.checkin_id).await);
    assert_eq!(
        (m.kind, m.text.as_str()),
        (pb::MomentKind::Appreciation as i32, "Us")
    );
    let m = kept(keep_checkin(&bob, &glad.checkin_id).await);
    assert_eq!(
        (m.kind, m.text.as_str()),
        (pb::MomentKind::Appreciation as i32, "Home")
    );
    let weather = ask(&alice, "mood-02").await;
    both_answer(
        &weather,
        (&bob, pb::answer::Value::Emoji("🌈".into())),
        (&alice, pb::answer::Value::Emoji("⛅".into())),
    )
    .await;
    let m = kept(keep_checkin(&alice, &weather.checkin_id).await);
    assert_eq!(
        (m.kind, m.text.as_str(), m.prompt_text.as_str()),
        (
            pb::MomentKind::Answer as i32,
            "🌈",
            "Pick the weather that matches your mood."
        )
    );

    // Expired: the partner's lone answer can be kept; one's own lone answer cannot.
    let battery = ask(&bob, "energy-01").await;
    answer(&bob, &battery, scale(5)).await;
    let rest = ask(&alice, "energy-03").await;
    answer(&alice, &rest, scale(3)).await;
    server.clock.advance(Duration::hours(24));
    assert_eq!(server.tick().await.expired, 2);
    let m = kept(keep_checkin(&alice, &battery.checkin_id).await);
    assert_eq!(
        (m.kind, m.text.as_str(), m.author_account_id.as_str()),
        (
            pb::MomentKind::Answer as i32,
            "5 of 5",
            bob.account_id.as_str()
        )
    );
    assert_nothing_to_keep(keep_checkin(&alice, &rest.checkin_id).await);
    server.finish().await;
}

async fn both_see_the_moments_in_pages_and_only_the_keeper_lets_one_go(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 2, 2, 10, 0)).await;
    // 51 notes, each kept by the other partner a second after the last keep: alternately Bob
    // keeps Alice's and Alice keeps Bob's.
    let mut notes = Vec::new();
    for i in 0..51 {
        let (from, to) = if i % 2 == 0 {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        let tap = from
            .tap(pb::TapKind::Tap, &format!("note {i}"))
            .await
            .expect("tap")
            .tap
            .expect("tap");
        notes.push((to, tap.tap_id));
    }
    let mut kept_order = Vec::new();
    for (keeper, tap_id) in &notes {
        server.clock.advance(Duration::seconds(1));
        kept_order.push(kept(keep_tap(keeper, tap_id).await));
    }
    let newest_first: Vec<String> = kept_order
        .iter()
        .rev()
        .map(|m| m.moment_id.clone())
        .collect();

    // Page size 0 is 50: the newest 50, then the oldest alone on the last page.
    let first = list(&alice, 0, "").await.expect("list");
    assert_eq!(first.moments.len(), 50);
    assert!(!first.next_page_token.is_empty());
    let newest = &kept_order[50];
    assert_eq!(first.moments[0], *newest, "the whole moment, newest first");
    assert_eq!(first.moments[0].text, "note 50");
    let last = list(&alice, 0, &first.next_page_token).await.expect("list");
    assert!(last.next_page_token.is_empty());
    let alice_ids: Vec<String> = first
        .moments
        .iter()
        .chain(&last.moments)
        .map(|m| m.moment_id.clone())
        .collect();
    assert_eq!(alice_ids, newest_first);
    // Bob sees the same, in pages of 7: each moment exactly once, in 8 pages.
    assert_eq!(ids_in_pages(&bob, 7).await, (newest_first.clone(), 8));
    assert_eq!(all_ids(&bob).await, newest_first);
    assert_status(list(&bob, 101, "").await, Code::InvalidArgument, "");
    assert_status(list(&bob, 10, "garbage").await, Code::InvalidArgument, "");
    // Another couple sees none of them.
    let carol = server.account("Carol", "UTC").await;
    let dan = server.account("Dan", "UTC").await;
    server.pair(&carol, &dan).await;
    assert!(all_ids(&carol).await.is_empty());

    // Note 49 was Alice's to keep (Bob wrote it): Bob cannot let it go, Alice can.
    let m = &kept_order[49];
    assert_eq!(
        (m.kept_by_account_id.as_str(), m.author_account_id.as_str()),
        (alice.account_id.as_str(), bob.account_id.as_str())
    );
    assert_status(forget(&bob, &m.moment_id).await, Code::InvalidArgument, "");
    assert_status(forget(&alice, "x").await, Code::InvalidArgument, "");
    // Carol cannot let go of the couple's moments, whatever she is answered.
    let _ = forget(&carol, &m.moment_id).await;
    let _ = forget(&carol, &kept_order[50].moment_id).await;
    assert_eq!(all_ids(&alice).await, newest_first, "still kept");
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    forget(&alice, &m.moment_id).await.expect("forget");
    let told = next_moment_kept(&mut bob_events).await;
    assert!(told.forgotten);
    assert_eq!(told.moment.expect("the moment").moment_id, m.moment_id);
    let remaining: Vec<String> = newest_first
        .iter()
        .filter(|id| **id != m.moment_id)
        .cloned()
        .collect();
    assert_eq!(all_ids(&alice).await, remaining);
    assert_eq!(all_ids(&bob).await, remaining);
    forget(&alice, &m.moment_id)
        .await
        .expect("forgetting again changes nothing");
    assert_eq!(all_ids(&bob).await, remaining);
    server.finish().await;
}

/// A recap day in short: date, status, then taps sent, taps received, check-ins, my mood,
/// the partner's mood, my energy, the partner's energy.
type Row = (String, pb::DayStatus, [u32; 7]);

fn rows(recap: &pb::Recap) -> Vec<Row> {
    recap
        .days
        .iter()
        .map(|d| {
            (
                d.date.clone(),
                pb::DayStatus::try_from(d.status).expect("a known status"),
                [
                    d.taps_sent,
                    d.taps_received,
                    d.checkins,
                    d.my_mood,
                    d.partner_mood,
                    d.my_energy,
                    d.partner_energy,
                ],
            )
        })
        .collect()
}

fn row(date: &str, status: pb::DayStatus, values: [u32; 7]) -> Row {
    (date.into(), status, values)
}

fn day<'a>(recap: &'a pb::Recap, date: &str) -> &'a pb::RecapDay {
    recap
        .days
        .iter()
        .find(|d| d.date == date)
        .unwrap_or_else(|| panic!("{date} in the recap {:?}", recap.days))
}

async fn recap(d: &Device, last_date: &str) -> Result<pb::Recap, Status> {
    Ok(moments(d)
        .get_recap(pb::GetRecapRequest {
            last_date: last_date.into(),
        })
        .await?
        .into_inner()
        .recap
        .expect("the recap"))
}

fn moment_ids(recap: &pb::Recap) -> Vec<&str> {
    recap.moments.iter().map(|m| m.moment_id.as_str()).collect()
}

/// A week of January 2027 (Paris UTC+1, New York UTC-5): taps and mood and energy answers at
/// known instants, some of which fall on different local dates for the two.
async fn the_recap_series_match_the_answers_given(backend: Backend) {
    use pb::DayStatus::{Connected, Missed, Open};
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = couple_at(&server, at(2027, 1, 10, 12, 0)).await;
    let tap = |d: &Device, note: &str| {
        let d = d.clone();
        let note = note.to_owned();
        async move {
            d.tap(pb::TapKind::Tap, &note)
                .await
                .expect("tap")
                .tap
                .expect("tap")
                .tap_id
        }
    };
    // 01-10, before the week: a note Alice keeps that day.
    let hello = tap(&bob, "hello").await;
    server.clock.set(at(2027, 1, 10, 12, 30));
    let kept_sunday = kept(keep_tap(&alice, &hello).await);

    // 01-11 10:00 UTC: Alice taps (11:00 in Paris, 05:00 in New York).
    server.clock.set(at(2027, 1, 11, 10, 0));
    tap(&alice, "").await;
    // 14:00 UTC: a mood and an energy check-in, both answered.
    server.clock.set(at(2027, 1, 11, 14, 0));
    let heart = ask(&bob, "mood-01").await;
    both_answer(&heart, (&alice, scale(4)), (&bob, scale(2))).await;
    let battery = ask(&bob, "energy-01").await;
    both_answer(&battery, (&alice, scale(3)), (&bob, scale(5))).await;
    // 01-12 02:00 UTC: Bob taps late on his 01-11 (21:00), on Alice's 01-12 (03:00).
    server.clock.set(at(2027, 1, 12, 2, 0));
    tap(&bob, "").await;
    // 01-12: two mood check-ins, the later one the latest answer of the date.
    server.clock.set(at(2027, 1, 12, 9, 0));
    let heart2 = ask(&alice, "mood-01").await;
    both_answer(&heart2, (&alice, scale(5)), (&bob, scale(3))).await;
    server.clock.set(at(2027, 1, 12, 12, 0));
    let settled = ask(&alice, "mood-03").await;
    both_answer(&settled, (&alice, scale(2)), (&bob, scale(4))).await;
    // An energy check-in only Alice answers for now.
    server.clock.set(at(2027, 1, 12, 13, 0));
    let rested = ask(&bob, "energy-03").await;
    answer(&alice, &rested, scale(1)).await;
    server.clock.set(at(2027, 1, 12, 13, 30));
    let kept_tuesday = kept(keep_checkin(&alice, &heart.checkin_id).await);
    // 01-13 02:30 UTC: a mood check-in opened on Bob's 01-12 (21:30) and Alice's 01-13.
    server.clock.set(at(2027, 1, 13, 2, 30));
    let smile = ask(&bob, "mood-06").await;
    both_answer(&smile, (&alice, scale(3)), (&bob, scale(1))).await;

    // Now: 03:30 in Paris on 01-13, 21:30 in New York on 01-12; each recap ends on the caller's
    // own today. Bob does not see Alice's energy answer, which he has not matched yet.
    server.clock.set(at(2027, 1, 13, 2, 31));
    let a = recap(&alice, "").await.expect("recap");
    assert_eq!(
        (a.first_date.as_str(), a.last_date.as_str()),
        ("2027-01-07", "2027-01-13")
    );
    let b = recap(&bob, "").await.expect("recap");
    assert_eq!(
        (b.first_date.as_str(), b.last_date.as_str()),
        ("2027-01-06", "2027-01-12")
    );
    let mine = |d: &pb::RecapDay| [d.my_mood, d.partner_mood, d.my_energy, d.partner_energy];
    assert_eq!(mine(day(&a, "2027-01-12")), [2, 4, 1, 0]);
    assert_eq!(mine(day(&a, "2027-01-13")), [3, 1, 0, 0]);
    assert_eq!(
        mine(day(&b, "2027-01-12")),
        [1, 3, 0, 0],
        "Alice's 1 stays hidden"
    );
    assert_eq!(day(&b, "2027-01-12").checkins, 4);

    // 01-13 12:00 UTC: Bob answers the energy check-in of 01-12 (07:00 in New York); two more
    // check-ins that are not mood or energy scales: an i-feel scale and a mood choice.
    server.clock.set(at(2027, 1, 13, 12, 0));
    answer(&bob, &rested, scale(2)).await;
    let close = ask(&alice, "ifeel-04").await;
    both_answer(&close, (&alice, scale(5)), (&bob, scale(5))).await;
    let word = ask(&alice, "mood-04").await;
    both_answer(
        &word,
        (&alice, pb::answer::Value::Choice(1)),
        (&bob, pb::answer::Value::Choice(1)),
    )
    .await;
    // 01-14: nothing, but Alice taps at 23:30 UTC: 00:30 on her 01-15, 18:30 on Bob's 01-14.
    server.clock.set(at(2027, 1, 14, 23, 30));
    tap(&alice, "").await;
    // 01-15 16:00 UTC: Bob taps.
    server.clock.set(at(2027, 1, 15, 16, 0));
    tap(&bob, "").await;
    // 01-16: nothing. 01-17 15:00 UTC: Alice taps a note, which Bob keeps.
    server.clock.set(at(2027, 1, 17, 15, 0));
    let soon = tap(&alice, "see you soon").await;
    server.clock.set(at(2027, 1, 17, 15, 5));
    let kept_today = kept(keep_tap(&bob, &soon).await);

    let now = at(2027, 1, 17, 15, 10);
    server.clock.set(now);
    let a = recap(&alice, "").await.expect("recap");
    assert_eq!(
        (a.first_date.as_str(), a.last_date.as_str()),
        ("2027-01-11", "2027-01-17")
    );
    assert_eq!(
        rows(&a),
        vec![
            // [sent, received, check-ins, mood: mine, partner's, energy: mine, partner's]
            row("2027-01-11", Connected, [1, 0, 2, 4, 2, 3, 5]),
            row("2027-01-12", Connected, [0, 1, 3, 2, 4, 1, 2]),
            row("2027-01-13", Connected, [0, 0, 3, 3, 1, 0, 0]),
            row("2027-01-14", Missed, [0, 0, 0, 0, 0, 0, 0]),
            row("2027-01-15", Connected, [1, 1, 0, 0, 0, 0, 0]),
            row("2027-01-16", Missed, [0, 0, 0, 0, 0, 0, 0]),
            row("2027-01-17", Open, [1, 0, 0, 0, 0, 0, 0]),
        ],
        "Alice's week"
    );
    assert_eq!(
        (a.connected_days, a.taps_sent, a.taps_received, a.checkins),
        (4, 3, 2, 8)
    );
    let b = recap(&bob, "").await.expect("recap");
    assert_eq!(
        (b.first_date.as_str(), b.last_date.as_str()),
        ("2027-01-11", "2027-01-17")
    );
    assert_eq!(
        rows(&b),
        vec![
            // [sent, received, check-ins, mood: mine, partner's, energy: mine, partner's]
            row("2027-01-11", Connected, [1, 1, 2, 2, 4, 5, 3]),
            row("2027-01-12", Connected, [0, 0, 4, 1, 3, 2, 1]),
            row("2027-01-13", Connected, [0, 0, 2, 0, 0, 0, 0]),
            row("2027-01-14", Missed, [0, 1, 0, 0, 0, 0, 0]),
            row("2027-01-15", Connected, [1, 0, 0, 0, 0, 0, 0]),
            row("2027-01-16", Missed, [0, 0, 0, 0, 0, 0, 0]),
            row("2027-01-17", Open, [0, 1, 0, 0, 0, 0, 0]),
        ],
        "Bob's week"
    );
    assert_eq!(
        (b.connected_days, b.taps_sent, b.taps_received, b.checkins),
        (4, 2, 3, 8)
    );
    // The moments kept during the week, newest first, for both; not the one of 01-10.
    let week = vec![
        kept_today.moment_id.as_str(),
        kept_tuesday.moment_id.as_str(),
    ];
    assert_eq!(moment_ids(&a), week);
    assert_eq!(moment_ids(&b), week);
    assert_eq!(a.moments[0], kept_today);
    assert_eq!(instant(&a.made_at), Some(now));

    // An earlier week, named by its last date.
    let earlier = recap(&alice, "2027-01-16").await.expect("recap");
    assert_eq!(
        (earlier.first_date.as_str(), earlier.last_date.as_str()),
        ("2027-01-10", "2027-01-16")
    );
    assert_eq!(day(&earlier, "2027-01-10").taps_received, 1);
    assert_eq!(
        moment_ids(&earlier),
        [
            kept_tuesday.moment_id.as_str(),
            kept_sunday.moment_id.as_str()
        ]
    );
    assert_eq!(rows(&earlier)[1..], rows(&a)[..6]);
    for bad in ["2027-13-01", "2027-02-30", "x", "17/01/2027"] {
        assert_status(recap(&alice, bad).await, Code::InvalidArgument, "");
    }
    server.finish().await;
}

async fn set_schedule(
    d: &Device,
    enabled: bool,
    weekday: u32,
    local_time: &str,
) -> Result<pb::RecapSchedule, Status> {
    Ok(moments(d)
        .set_recap_schedule(pb::SetRecapScheduleRequest {
            enabled,
            weekday,
            local_time: local_time.into(),
        })
        .await?
        .into_inner()
        .schedule
        .expect("the schedule"))
}

async fn get_schedule(d: &Device) -> pb::RecapSchedule {
    moments(d)
        .get_recap_schedule(pb::GetRecapScheduleRequest {})
        .await
        .expect("get schedule")
        .into_inner()
        .schedule
        .expect("the schedule")
}

async fn next_recap(events: &mut Events) -> pb::Recap {
    let e = events
        .wait_for(|p| matches!(p, Payload::RecapReady(_)))
        .await;
    match e.payload {
        Some(Payload::RecapReady(r)) => r.recap.expect("the recap"),
        _ => unreachable!("waited for a recap"),
    }
}

/// `from` taps `events`' owner, whose next tap or recap must be that tap: no recap came before.
async fn no_recap_before_a_tap(from: &Device, events: &mut Events) {
    let sent = from.tap(pb::TapKind::Tap, "").await.expect("tap");
    let e = events
        .wait_for(|p| matches!(p, Payload::TapReceived(_) | Payload::RecapReady(_)))
        .await;
    assert_eq!(
        tap_of(&e).map(|t| t.tap_id.as_str()),
        Some(sent.tap.expect("tap").tap_id.as_str()),
        "no recap came: {e:?}"
    );
}

async fn the_weekly_recap_comes_at_each_partners_chosen_time(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    // Wednesday 2027-01-06: 13:00 in Paris, 07:00 in New York.
    server.clock.set(at(2027, 1, 6, 12, 0));
    let alice = server.account("Alice", "Europe/Paris").await;
    let alice_watch = server.link_watch(&alice).await;
    let bob = server.account("Bob", "America/New_York").await;
    server.pair(&alice, &bob).await;

    let off = get_schedule(&alice).await;
    assert!(
        !off.enabled && off.next_at.is_none(),
        "off until chosen: {off:?}"
    );
    for (weekday, time) in [
        (0, "19:00"),
        (8, "19:00"),
        (7, "25:00"),
        (7, "7pm"),
        (7, ""),
    ] {
        assert_status(
            set_schedule(&alice, true, weekday, time).await,
            Code::InvalidArgument,
            "",
        );
    }
    let ignored = set_schedule(&alice, false, 0, "")
        .await
        .expect("when off, weekday and time are ignored");
    assert!(!ignored.enabled && ignored.next_at.is_none());

    // Sunday 19:00 on each one's clock.
    let a = set_schedule(&alice, true, 7, "19:00").await.expect("set");
    assert_eq!(
        (a.enabled, a.weekday, a.local_time.as_str()),
        (true, 7, "19:00")
    );
    assert_eq!(instant(&a.next_at), Some(at(2027, 1, 10, 18, 0)));
    assert_eq!(get_schedule(&alice).await, a);
    // Strictly after now: Wednesday 07:00 in New York is now, so next week; 07:01 is today.
    let b = set_schedule(&bob, true, 3, "07:00").await.expect("set");
    assert_eq!(instant(&b.next_at), Some(at(2027, 1, 13, 12, 0)));
    let b = set_schedule(&bob, true, 3, "07:01").await.expect("set");
    assert_eq!(instant(&b.next_at), Some(at(2027, 1, 6, 12, 1)));
    let b = set_schedule(&bob, true, 7, "19:00").await.expect("set");
    assert_eq!(instant(&b.next_at), Some(at(2027, 1, 11, 0, 0)));
    assert_eq!(get_schedule(&bob).await, b);
    server.clock.set(at(2027, 1, 6, 12, 1));
    assert_eq!(
        server.tick().await.recaps,
        0,
        "Bob's Wednesday time was replaced"
    );

    // Friday: Bob taps Alice.
    server.clock.set(at(2027, 1, 8, 12, 0));
    bob.tap(pb::TapKind::Tap, "").await.expect("tap");
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    let (mut watch_events, _) = alice_watch.subscribe_caught_up(0).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;

    // Sunday 19:00 in Paris: Alice's week ending that Sunday, on both her devices.
    server.clock.set(at(2027, 1, 10, 17, 59));
    assert_eq!(server.tick().await.recaps, 0, "not before her time");
    let sent_at = at(2027, 1, 10, 18, 0);
    server.clock.set(sent_at);
    assert_eq!(server.tick().await.recaps, 1);
    assert_eq!(server.tick().await.recaps, 0, "once");
    let r = next_recap(&mut alice_events).await;
    assert_eq!(
        (r.first_date.as_str(), r.last_date.as_str()),
        ("2027-01-04", "2027-01-10")
    );
    assert_eq!(r.days.len(), 7);
    assert_eq!((r.taps_sent, r.taps_received), (0, 1));
    assert_eq!(day(&r, "2027-01-08").taps_received, 1);
    assert_eq!(instant(&r.made_at), Some(sent_at));
    assert_eq!(next_recap(&mut watch_events).await, r);
    assert_eq!(
        instant(&get_schedule(&alice).await.next_at),
        Some(at(2027, 1, 17, 18, 0)),
        "a week later"
    );
    // Bob got nothing at Alice's time.
    no_recap_before_a_tap(&alice, &mut bob_events).await;

    // Sunday 19:00 in New York: Bob's own week, with the tap he just received.
    server.clock.set(at(2027, 1, 11, 0, 0));
    assert_eq!(server.tick().await.recaps, 1);
    let r = next_recap(&mut bob_events).await;
    assert_eq!(
        (r.first_date.as_str(), r.last_date.as_str()),
        ("2027-01-04", "2027-01-10")
    );
    assert_eq!((r.taps_sent, r.taps_received), (1, 1));
    no_recap_before_a_tap(&bob, &mut alice_events).await;
    // Choosing the same time again at that very instant: next week, nothing more now.
    let b = set_schedule(&bob, true, 7, "19:00").await.expect("set");
    assert_eq!(instant(&b.next_at), Some(at(2027, 1, 18, 0, 0)));
    assert_eq!(server.tick().await.recaps, 0);

    // Alice turns hers off: nothing at her old time.
    let off = set_schedule(&alice, false, 7, "19:00").await.expect("off");
    assert!(!off.enabled && off.next_at.is_none(), "{off:?}");
    assert_eq!(
        (off.weekday, off.local_time.as_str()),
        (7, "19:00"),
        "the last choice stays, to turn it on again"
    );
    assert_eq!(get_schedule(&alice).await, off);
    server.clock.set(at(2027, 1, 17, 18, 0));
    assert_eq!(server.tick().await.recaps, 0, "Alice's is off");
    server.clock.set(at(2027, 1, 17, 23, 59));
    assert_eq!(server.tick().await.recaps, 0);
    server.clock.set(at(2027, 1, 18, 0, 0));
    assert_eq!(
        server.tick().await.recaps,
        1,
        "Bob's, seven days after his last"
    );
    let r = next_recap(&mut bob_events).await;
    assert_eq!(r.last_date, "2027-01-17");
    no_recap_before_a_tap(&bob, &mut alice_events).await;
    server.finish().await;
}

async fn a_recap_in_quiet_hours_waits_for_their_end(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, _bob) = couple_at(&server, at(2027, 1, 6, 12, 0)).await;
    // 18:00-08:00 in Paris covers Sunday 19:00.
    set_quiet_hours(&alice, (18, 0), (8, 0)).await;
    set_schedule(&alice, true, 7, "19:00").await.expect("set");
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    server.clock.set(at(2027, 1, 10, 18, 0));
    assert_eq!(server.tick().await.recaps, 0, "in quiet hours");
    server.clock.set(at(2027, 1, 11, 6, 59));
    assert_eq!(server.tick().await.recaps, 0, "still quiet");
    // Monday 08:00 in Paris.
    server.clock.set(at(2027, 1, 11, 7, 0));
    assert_eq!(server.tick().await.recaps, 1);
    assert_eq!(server.tick().await.recaps, 0, "once");
    let r = next_recap(&mut alice_events).await;
    assert_eq!(
        r.last_date, "2027-01-10",
        "the week ending on the Sunday it was due, though it came on Monday"
    );
    server.finish().await;
}

async fn move_to(d: &Device, zone: &str) {
    d.accounts()
        .update_profile(pb::UpdateProfileRequest {
            display_name: None,
            time_zone: Some(zone.into()),
        })
        .await
        .expect("move");
}

async fn a_move_or_new_quiet_hours_replan_the_recap(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    // Wednesday 2027-01-06; Alice in Paris wants hers on Sundays at 19:00 (18:00 UTC).
    let (alice, _bob) = couple_at(&server, at(2027, 1, 6, 12, 0)).await;
    let set = set_schedule(&alice, true, 7, "19:00").await.expect("set");
    assert_eq!(instant(&set.next_at), Some(at(2027, 1, 10, 18, 0)));

    // She flies to New York: Sunday 19:00 there is Monday 00:00 UTC.
    move_to(&alice, "America/New_York").await;
    let moved = get_schedule(&alice).await;
    assert_eq!(instant(&moved.next_at), Some(at(2027, 1, 11, 0, 0)));
    assert_eq!((moved.weekday, moved.local_time.as_str()), (7, "19:00"));

    // Quiet from 18:00 to 08:00 in New York: it comes Monday 08:00 there (13:00 UTC).
    set_quiet_hours(&alice, (18, 0), (8, 0)).await;
    assert_eq!(
        instant(&get_schedule(&alice).await.next_at),
        Some(at(2027, 1, 11, 13, 0))
    );
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    server.clock.set(at(2027, 1, 11, 0, 0));
    assert_eq!(server.tick().await.recaps, 0, "not at the old time");
    server.clock.set(at(2027, 1, 11, 13, 0));
    assert_eq!(server.tick().await.recaps, 1);
    let r = next_recap(&mut alice_events).await;
    assert_eq!(
        r.last_date, "2027-01-10",
        "Sunday's week, on her New York calendar"
    );

    // Off, a move does not turn it back on.
    set_schedule(&alice, false, 0, "").await.expect("off");
    move_to(&alice, "Europe/Paris").await;
    let off = get_schedule(&alice).await;
    assert!(!off.enabled && off.next_at.is_none(), "{off:?}");
    server.clock.set(at(2027, 1, 17, 18, 0));
    assert_eq!(server.tick().await.recaps, 0);
    server.finish().await;
}
