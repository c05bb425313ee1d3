//! Retention: the pruner forgets acked inbox rows (never an un-acked one), used and expired
//! codes and tap history past its limit; a cursor older than the last ack gets a `reset`.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_proto::v1::event::Payload;
use tapline_server::Settings;
use tapline_server::retention::{self, PruneReport};
use tonic::Code;

on_both_databases!(
    pruning_forgets_acked_rows_only_and_a_stale_cursor_is_reset,
    pruning_forgets_old_codes_and_tap_history_but_no_undelivered_event,
);

fn settings(tap_history_days: u32) -> Settings {
    Settings {
        taps_per_minute: 10_000,
        jobs_every: None,
        prune_every: None,
        tap_history_days,
        ..Settings::default()
    }
}

async fn prune(server: &TestServer) -> PruneReport {
    retention::prune(&server.state, server.state.clock.now())
        .await
        .expect("prune")
}

async fn inbox_rows(server: &TestServer, device: &Device) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE device_id = $1")
        .bind(&device.id)
        .fetch_one(server.state.db.pool())
        .await
        .unwrap()
}

async fn ack(device: &Device, seq: u64) {
    device
        .events()
        .ack_events(pb::AckEventsRequest { seq })
        .await
        .expect("ack");
}

fn tap_ids(events: &[pb::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(tap_of)
        .map(|t| t.tap_id.clone())
        .collect()
}

/// An ack of more rows than one batch leaves them to the pruner, which deletes them in
/// several batches; the watch that never acked keeps
/// every event; Bob's phone coming back with an old cursor (an app restored from a phone
/// backup) is reset to its last ack on Subscribe and FetchEvents, and later taps still arrive.
async fn pruning_forgets_acked_rows_only_and_a_stale_cursor_is_reset(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, settings(0)).await else {
        return;
    };
    let c = server.couple().await;
    let n = retention::BATCH as usize + 20;
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        let tap = c.alice.tap(pb::TapKind::Tap, &i.to_string()).await.unwrap();
        sent.push(tap.tap.unwrap().tap_id);
    }
    let (_, backlog) = c.bob.subscribe_caught_up(0).await;
    assert_eq!(tap_ids(&backlog), sent);
    let acked = backlog.last().unwrap().seq;
    ack(&c.bob, acked).await;
    assert_eq!(
        inbox_rows(&server, &c.bob).await,
        acked as i64,
        "an ack of more than a batch only moves the cursor"
    );

    let report = prune(&server).await;
    assert_eq!(report.inbox_rows, acked, "only Bob's phone acked");
    assert!(report.batches >= 3, "in bounded batches: {report:?}");
    assert_eq!(inbox_rows(&server, &c.bob).await, 0);

    // The watch never acked: nothing of its inbox is gone.
    let (_, watch_backlog) = c.bob_watch.subscribe_caught_up(0).await;
    assert_eq!(tap_ids(&watch_backlog), sent);

    // Bob's phone with a cursor from before the pruned rows.
    let mut events = c.bob.subscribe(3).await;
    match events.next().await.payload {
        Some(Payload::Reset(r)) => {
            assert_eq!(r.reason, pb::ResetReason::CursorForgotten as i32);
            assert_eq!((r.acked_seq, r.newest_seq), (acked, acked));
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    assert!(
        events.until_caught_up().await.is_empty(),
        "nothing forgotten is replayed"
    );
    c.alice.tap(pb::TapKind::Hug, "after").await.unwrap();
    let (e, live) = events.next_tap().await;
    assert_eq!(live.tap.unwrap().note, "after");
    assert_eq!(e.seq, acked + 1);

    let fetched = c
        .bob
        .events()
        .fetch_events(pb::FetchEventsRequest {
            after_seq: 1,
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        matches!(&fetched[0].payload, Some(Payload::Reset(r)) if r.reason == pb::ResetReason::CursorForgotten as i32 && r.acked_seq == acked),
        "{fetched:?}"
    );
    assert_eq!(
        fetched[1..].iter().map(|e| e.seq).collect::<Vec<_>>(),
        [acked + 1]
    );

    // Un-acked rows stay through any number of passes.
    assert_eq!(prune(&server).await.inbox_rows, 0);
    let (_, again) = c.bob.subscribe_caught_up(acked).await;
    assert_eq!(again.len(), 1, "the un-acked tap is still there");
    // A short ack forgets its rows at once.
    ack(&c.bob, acked + 1).await;
    assert_eq!(inbox_rows(&server, &c.bob).await, 0);
    server.finish().await;
}

/// Codes go a day after they were used or expired (until then a late attempt hears why);
/// taps older than --tap-history-days go with their receipts, but an event a device has not
/// acked keeps its copy of the tap.
async fn pruning_forgets_old_codes_and_tap_history_but_no_undelivered_event(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, settings(30)).await else {
        return;
    };
    // Two link codes and an invite, all used.
    let c = server.couple().await;
    let unused = c
        .alice
        .accounts()
        .create_link_code(pb::CreateLinkCodeRequest {})
        .await
        .unwrap()
        .into_inner()
        .code;
    let old = c.alice.tap(pb::TapKind::Tap, "old").await.unwrap();
    let old_id = old.tap.unwrap().tap_id;
    let (_, backlog) = c.bob.subscribe_caught_up(0).await;
    // Bob's phone stored it: DELIVERED is recorded.
    ack(&c.bob, backlog.last().unwrap().seq).await;

    assert_eq!(
        prune(&server).await.codes,
        0,
        "fresh codes, used or not, stay"
    );
    server.clock.advance(chrono::Duration::days(31));
    let new = c.alice.tap(pb::TapKind::Kiss, "new").await.unwrap();
    let new_id = new.tap.unwrap().tap_id;
    let report = prune(&server).await;
    assert_eq!(report.codes, 4, "{report:?}");
    assert_eq!((report.taps, report.receipts), (1, 1), "{report:?}");
    let err = AccountServiceClient::new(server.channel().await)
        .redeem_link_code(pb::RedeemLinkCodeRequest {
            code: unused,
            device: Some(device_info(
                pb::DeviceKind::Watch,
                pb::Platform::Watchos,
                "w",
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "a pruned code is still refused");

    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM taps ORDER BY id")
        .fetch_all(server.state.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, std::slice::from_ref(&new_id));
    // The watch never acked: both taps reach it whole.
    let (_, watch_backlog) = c.bob_watch.subscribe_caught_up(0).await;
    let notes: Vec<(String, String)> = watch_backlog
        .iter()
        .filter_map(tap_of)
        .map(|t| (t.tap_id.clone(), t.note.clone()))
        .collect();
    assert_eq!(notes, [(old_id, "old".into()), (new_id, "new".into())]);
    // Nothing left: a pass with nothing to do writes one (empty) batch per kind it looks at
    // with a statement, none for the inbox (found by a read).
    assert_eq!(
        prune(&server).await,
        PruneReport {
            batches: 2,
            ..Default::default()
        }
    );
    server.finish().await;
}
