//! Leaving with one's data: `ExportMyData` holds what the person sent and may see, and
//! `DeleteAccount` removes the person and their content while the partner is told and keeps
//! their own.

use serde_json::Value;
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::event::Payload;
use tapline_proto::v1::moment_service_client::MomentServiceClient;
use tapline_proto::v1::routine_service_client::RoutineServiceClient;
use tapline_server::Settings;
use tapline_server::leaving::TAP_PAGE;
use tonic::Code;

on_both_databases!(
    the_export_holds_what_was_sent_and_what_may_be_seen,
    deleting_an_account_removes_it_and_tells_the_partner,
    the_export_holds_spaces_together_time_meetings_and_questions,
);

fn settings() -> Settings {
    Settings {
        taps_per_minute: 100_000,
        jobs_every: None,
        prune_every: None,
        ..Settings::default()
    }
}

fn checkins(d: &Device) -> CheckinServiceClient<Authed> {
    CheckinServiceClient::new(d.authed_channel())
}

fn scale(v: u32) -> pb::Answer {
    pb::Answer {
        value: Some(pb::answer::Value::Scale(v)),
    }
}

async fn ask(d: &Device, prompt: &str) -> String {
    checkins(d)
        .ask_partner(pb::AskPartnerRequest {
            client_checkin_id: uuid::Uuid::now_v7().to_string(),
            category: 0,
            prompt_id: prompt.into(),
        })
        .await
        .expect("ask")
        .into_inner()
        .checkin
        .unwrap()
        .checkin_id
}

async fn answer(d: &Device, id: &str, v: u32) {
    checkins(d)
        .answer_checkin(pb::AnswerCheckinRequest {
            checkin_id: id.into(),
            answer: Some(scale(v)),
        })
        .await
        .expect("answer");
}

async fn routine(d: &Device, name: &str) -> String {
    RoutineServiceClient::new(d.authed_channel())
        .create_routine(pb::CreateRoutineRequest {
            spec: Some(pb::RoutineSpec {
                name: name.into(),
                kind: pb::RoutineKind::Reminder as i32,
                checkin_category: 0,
                reminder_text: "Call tonight".into(),
                days: vec![pb::Weekday::Friday as i32],
                time: Some(pb::LocalTimeOfDay {
                    hour: 19,
                    minute: 30,
                }),
                paused: false,
            }),
        })
        .await
        .expect("create routine")
        .into_inner()
        .routine
        .unwrap()
        .routine_id
}

async fn felt(d: &Device, tap_id: &str) {
    d.taps()
        .report_tap(pb::ReportTapRequest {
            tap_id: tap_id.into(),
            kind: pb::ReceiptKind::Felt as i32,
        })
        .await
        .expect("felt");
}

/// The export as pieces, and the document they make.
async fn keep_tap(d: &Device, tap_id: &str) -> pb::Moment {
    MomentServiceClient::new(d.authed_channel())
        .keep_moment(pb::KeepMomentRequest {
            source: Some(pb::keep_moment_request::Source::TapId(tap_id.into())),
        })
        .await
        .expect("keep")
        .into_inner()
        .moment
        .expect("moment")
}

async fn export(d: &Device) -> Result<(usize, Value), tonic::Status> {
    let mut stream = d
        .accounts()
        .export_my_data(pb::ExportMyDataRequest {})
        .await?
        .into_inner();
    let (mut pieces, mut doc) = (0, String::new());
    while let Some(piece) = stream.message().await? {
        pieces += 1;
        doc.push_str(&piece.json);
    }
    let doc = serde_json::from_str(&doc).expect("the pieces make one JSON document");
    Ok((pieces, doc))
}

fn taps_of<'a>(doc: &'a Value, direction: &str) -> Vec<&'a Value> {
    doc["taps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["direction"] == direction)
        .collect()
}

fn checkin<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["couples"][0]["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checkin_id"] == id)
        .unwrap_or_else(|| panic!("check-in {id} in the export"))
}

async fn count(server: &TestServer, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(bind.to_owned())
        .fetch_one(server.state.db.pool())
        .await
        .unwrap()
}

/// Alice's export: her account and settings, her two devices, the couple with Bob by name,
/// every tap both ways in order (more than one page of them) with Bob's receipt, a revealed
/// check-in with both answers, one Bob answered that stays hidden, and her routine.
async fn the_export_holds_what_was_sent_and_what_may_be_seen(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, settings()).await else {
        return;
    };
    let c = server.couple().await;
    set_quiet_hours(&c.alice, (22, 0), (7, 0)).await;

    let n = TAP_PAGE as usize + 3;
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        let kind = if i == 0 {
            pb::TapKind::Heartbeat
        } else {
            pb::TapKind::Tap
        };
        let tap = c.alice.tap(kind, &format!("note {i}")).await.unwrap();
        sent.push(tap.tap.unwrap().tap_id);
    }
    let from_bob = c.bob.tap(pb::TapKind::Hug, "miss you").await.unwrap();
    let from_bob = from_bob.tap.unwrap().tap_id;
    felt(&c.bob, &sent[0]).await;
    let kept = keep_tap(&c.bob, &sent[1]).await;

    let revealed = ask(&c.alice, "energy-01").await;
    answer(&c.alice, &revealed, 4).await;
    answer(&c.bob, &revealed, 2).await;
    let hidden = ask(&c.bob, "energy-01").await;
    answer(&c.bob, &hidden, 5).await;
    let mine = routine(&c.alice, "Friday call").await;

    let (pieces, doc) = export(&c.alice).await.expect("export");
    assert!(pieces >= 3, "head, two pages of taps, end: {pieces} pieces");
    let moment = &doc["couples"][0]["moments"][0];
    assert_eq!(moment["moment_id"], kept.moment_id.as_str());
    assert_eq!(
        (&moment["kind"], &moment["kept_by"], &moment["text"]),
        (
            &Value::from("note"),
            &Value::from("partner"),
            &Value::from("note 1")
        )
    );
    assert_eq!(doc["format"], "tapline.export.v1");
    assert_eq!(doc["account"]["account_id"], c.alice.account_id.as_str());
    assert_eq!(doc["account"]["display_name"], "Alice");
    assert_eq!(doc["account"]["time_zone"], "Europe/Paris");
    assert_eq!(doc["settings"]["quiet_hours"]["start"], "22:00");
    assert_eq!(doc["settings"]["quiet_hours"]["end"], "07:00");
    assert_eq!(doc["settings"]["receipts_enabled"], true);
    let kinds: Vec<&str> = doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["phone", "watch"]);

    let couple = &doc["couples"][0];
    assert_eq!(doc["couples"].as_array().unwrap().len(), 1);
    assert_eq!(couple["current"], true);
    assert_eq!(couple["partner"]["display_name"], "Bob");

    let out = taps_of(&doc, "sent");
    let ids: Vec<&str> = out.iter().map(|t| t["tap_id"].as_str().unwrap()).collect();
    assert_eq!(ids, sent, "every tap Alice sent, in order, once");
    assert_eq!(out[0]["kind"], "heartbeat");
    assert_eq!(out[0]["note"], "note 0");
    assert_eq!(out[0]["from_device_id"], c.alice.id.as_str());
    let receipts: Vec<(&str, &str)> = out[0]["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["by"].as_str().unwrap()))
        .collect();
    assert_eq!(receipts, [("felt", "partner")]);
    let got = taps_of(&doc, "received");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tap_id"], from_bob.as_str());
    assert_eq!(got[0]["kind"], "hug");
    assert_eq!(got[0]["note"], "miss you");

    let r = checkin(&doc, &revealed);
    assert_eq!(r["status"], "revealed");
    assert_eq!(r["opened_by"], "me");
    assert_eq!(r["my_answer"]["scale"], 4);
    assert_eq!(r["partner_answer"]["scale"], 2);
    let h = checkin(&doc, &hidden);
    assert_eq!(h["status"], "open");
    assert_eq!(h["opened_by"], "partner");
    assert_eq!(h["my_answer"], Value::Null);
    assert_eq!(h["partner_answered"], true);
    assert_eq!(
        h["partner_answer"],
        Value::Null,
        "Bob's answer stays hidden until Alice answers"
    );
    let routines = couple["routines"].as_array().unwrap();
    assert_eq!(routines.len(), 1);
    assert_eq!(routines[0]["routine_id"], mine.as_str());
    assert_eq!(routines[0]["created_by"], "me");
    assert_eq!(routines[0]["time"], "19:30");
    assert_eq!(routines[0]["days"][0], "friday");

    // Bob's export is his own: the same taps, seen from his side.
    let (_, bobs) = export(&c.bob).await.expect("Bob's export");
    assert_eq!(bobs["account"]["display_name"], "Bob");
    assert_eq!(taps_of(&bobs, "received").len(), n);
    assert_eq!(taps_of(&bobs, "sent").len(), 1);
    assert_eq!(checkin(&bobs, &hidden)["my_answer"]["scale"], 5);

    assert_status(
        AccountServiceClient::new(server.channel().await)
            .export_my_data(pb::ExportMyDataRequest {})
            .await,
        Code::Unauthenticated,
        "",
    );
    server.finish().await;
}

/// Alice deletes her account: a wrong confirmation changes nothing; then her tokens are
/// refused and her open stream ends, Bob's devices get `Unpaired` with `account_deleted`, her
/// taps (also the copy Bob's watch has not fetched yet), receipts, answers, routines and
/// devices are gone, and Bob keeps his tap, his answer and his routine, and can pair again.
async fn deleting_an_account_removes_it_and_tells_the_partner(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, settings()).await else {
        return;
    };
    let c = server.couple().await;
    let (mut bob_live, _) = c.bob.subscribe_caught_up(0).await;
    let (mut alice_live, _) = c.alice.subscribe_caught_up(0).await;
    let hers = c.alice.tap(pb::TapKind::Kiss, "for you").await.unwrap();
    let hers = hers.tap.unwrap().tap_id;
    bob_live.next_tap().await;
    let his = c.bob.tap(pb::TapKind::Hug, "and you").await.unwrap();
    let his = his.tap.unwrap().tap_id;
    felt(&c.alice, &his).await;
    felt(&c.bob, &hers).await;
    let both = ask(&c.bob, "energy-01").await;
    answer(&c.alice, &both, 1).await;
    answer(&c.bob, &both, 3).await;
    keep_tap(&c.bob, &hers).await;
    keep_tap(&c.alice, &his).await;
    MomentServiceClient::new(c.alice.authed_channel())
        .set_recap_schedule(pb::SetRecapScheduleRequest {
            enabled: true,
            weekday: 7,
            local_time: "19:00".into(),
        })
        .await
        .expect("recap schedule");
    routine(&c.alice, "Her routine").await;
    let bobs_routine = routine(&c.bob, "His routine").await;
    let watch_copies = "SELECT COUNT(*) FROM inbox WHERE device_id = $1 AND tap_id IS NOT NULL";
    assert_eq!(count(&server, watch_copies, &c.bob_watch.id).await, 1);

    assert_status(
        c.alice
            .accounts()
            .delete_account(pb::DeleteAccountRequest {
                confirm: "yes".into(),
            })
            .await,
        Code::InvalidArgument,
        "delete my account",
    );
    c.alice
        .accounts()
        .get_account(pb::GetAccountRequest {})
        .await
        .expect("a refused deletion changes nothing");

    c.alice
        .accounts()
        .delete_account(pb::DeleteAccountRequest {
            confirm: " Delete my account".into(),
        })
        .await
        .expect("delete");

    for device in [&c.alice, &c.alice_watch] {
        assert_status(
            device
                .accounts()
                .get_account(pb::GetAccountRequest {})
                .await,
            Code::Unauthenticated,
            "",
        );
    }
    assert_eq!(alice_live.end_status().await.code(), Code::Unauthenticated);
    let told = bob_live
        .wait_for(|p| matches!(p, Payload::Unpaired(_)))
        .await;
    let Some(Payload::Unpaired(u)) = told.payload else {
        unreachable!()
    };
    assert!(u.account_deleted);
    assert_eq!(u.by_account_id, c.alice.account_id);
    let (_, watch_backlog) = c.bob_watch.subscribe_caught_up(0).await;
    assert!(
        watch_backlog
            .iter()
            .filter_map(tap_of)
            .all(|t| t.tap_id != hers),
        "the watch never gets Alice's tap after she is deleted"
    );
    assert!(
        watch_backlog
            .iter()
            .any(|e| matches!(&e.payload, Some(Payload::Unpaired(u)) if u.account_deleted)),
        "the watch is told too"
    );

    let me = &c.alice.account_id;
    for sql in [
        "SELECT COUNT(*) FROM devices WHERE account_id = $1",
        "SELECT COUNT(*) FROM taps WHERE sender_account_id = $1",
        "SELECT COUNT(*) FROM tap_receipts WHERE account_id = $1",
        "SELECT COUNT(*) FROM zone_history WHERE account_id = $1",
        "SELECT COUNT(*) FROM codes WHERE account_id = $1",
        "SELECT COUNT(*) FROM routines WHERE created_by = $1",
        "SELECT COUNT(*) FROM routine_schedules WHERE account_id = $1",
        "SELECT COUNT(*) FROM moments WHERE kept_by = $1 OR author = $1",
        "SELECT COUNT(*) FROM recap_schedules WHERE account_id = $1",
        "SELECT COUNT(*) FROM accounts WHERE id = $1 AND (display_name <> '' OR deleted_at_us IS NULL)",
    ] {
        assert_eq!(count(&server, sql, me).await, 0, "{sql}");
    }
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM tap_receipts WHERE tap_id = $1",
            &his
        )
        .await,
        0,
        "Alice's receipt on Bob's tap is gone"
    );

    assert_status(
        c.bob.pairing().get_couple(pb::GetCoupleRequest {}).await,
        Code::FailedPrecondition,
        "",
    );
    let (_, doc) = export(&c.bob).await.expect("Bob's export");
    assert_eq!(taps_of(&doc, "received").len(), 0, "Alice's tap is gone");
    let kept = taps_of(&doc, "sent");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["tap_id"], his.as_str());
    assert_eq!(kept[0]["receipts"].as_array().unwrap().len(), 0);
    let couple = &doc["couples"][0];
    assert_eq!(couple["current"], false);
    assert_eq!(couple["ended_by"], "partner");
    let answered = checkin(&doc, &both);
    assert_eq!(answered["my_answer"]["scale"], 3, "Bob keeps his answer");
    assert_eq!(answered["partner_answer"], Value::Null, "hers is gone");
    let routines: Vec<&str> = couple["routines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["routine_id"].as_str().unwrap())
        .collect();
    assert_eq!(routines, [bobs_routine.as_str()]);

    // Bob carries on.
    let carol = server.account("Carol", "Europe/Rome").await;
    server.pair(&c.bob, &carol).await;
    carol
        .tap(pb::TapKind::Tap, "hi")
        .await
        .expect("a new couple works");
    server.finish().await;
}

/// Bob's export holds Alice's space, their together time, the next meeting and the deeper
/// questions: both answers of a revealed one, and only his own for the current one.
async fn the_export_holds_spaces_together_time_meetings_and_questions(backend: Backend) {
    use tapline_proto::v1::question_service_client::QuestionServiceClient;
    use tapline_proto::v1::space_service_client::SpaceServiceClient;
    use tapline_proto::v1::together_service_client::TogetherServiceClient;
    let Some(server) = TestServer::start_with(backend, settings()).await else {
        return;
    };
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "Asia/Tokyo").await;
    server.pair(&alice, &bob).await;
    let space = |d: &Device| SpaceServiceClient::new(d.authed_channel());
    space(&alice)
        .ask_for_space(pb::AskForSpaceRequest {
            client_id: uuid::Uuid::now_v7().to_string(),
            reason: pb::SpaceReason::Overwhelmed as i32,
            until: None,
        })
        .await
        .expect("ask");
    space(&alice)
        .end_space(pb::EndSpaceRequest {})
        .await
        .expect("end");
    let together = |d: &Device| TogetherServiceClient::new(d.authed_channel());
    let t = together(&bob)
        .start_together(pb::StartTogetherRequest {
            client_id: uuid::Uuid::now_v7().to_string(),
            minutes: 60,
        })
        .await
        .expect("start")
        .into_inner()
        .together
        .unwrap();
    together(&alice)
        .confirm_together(pb::ConfirmTogetherRequest {
            together_id: t.together_id,
        })
        .await
        .expect("confirm");
    together(&alice)
        .end_together(pb::EndTogetherRequest {})
        .await
        .expect("end");
    together(&alice)
        .set_meeting(pb::SetMeetingRequest {
            local_date: "2026-04-01".into(),
            local_time: "18:00".into(),
            time_zone: "Asia/Tokyo".into(),
            together_minutes: 0,
        })
        .await
        .expect("meeting");
    let q = |d: &Device| QuestionServiceClient::new(d.authed_channel());
    for (d, n, text) in [
        (&alice, 1, "tea"),
        (&bob, 1, "coffee"),
        (&alice, 2, "hidden"),
    ] {
        q(d).answer_question(pb::AnswerQuestionRequest {
            number: n,
            answer: text.into(),
        })
        .await
        .expect("answer");
    }
    let (_, doc) = export(&bob).await.expect("export");
    let c = &doc["couples"][0];
    assert_eq!(c["spaces"][0]["asked_by"], "partner");
    assert_eq!(c["spaces"][0]["reason"], "overwhelmed");
    assert_eq!(c["together"][0]["started_by"], "me");
    assert_eq!(c["together"][0]["end"], "by_hand");
    assert_eq!(c["together"][0]["ended_by"], "partner");
    assert_eq!(c["meeting"]["time_zone"], "Asia/Tokyo");
    assert_eq!(c["meeting"]["set_by"], "partner");
    let revealed = &c["questions"]["revealed"][0];
    assert_eq!(
        (&revealed["my_answer"], &revealed["partner_answer"]),
        (&Value::from("coffee"), &Value::from("tea"))
    );
    assert!(revealed["question"].as_str().unwrap().ends_with('?'));
    assert_eq!(c["questions"]["current"]["number"], 2);
    assert!(c["questions"]["current"]["my_answer"].is_null());
    assert!(
        !doc.to_string().contains("hidden"),
        "Alice's unrevealed answer is not Bob's"
    );
    server.finish().await;
}
