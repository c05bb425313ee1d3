//! The inbox: backlogs, restarts, cut streams, acks, pulls, one stream per device.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_server::Settings;
use tonic::Code;

on_both_databases!(
    an_offline_device_gets_its_backlog_in_order,
    a_restart_mid_conversation_loses_nothing,
    a_cut_stream_resumes_from_the_last_ack,
    a_new_stream_displaces_the_old_one,
    fetch_pages_through_the_same_events,
    a_burst_from_many_senders_arrives_once_in_order,
);

fn generous() -> Settings {
    Settings {
        taps_per_minute: 10_000,
        ..Settings::default()
    }
}

/// Sends `n` taps from `from`, with notes "0".."n-1".
async fn send_numbered(from: &Device, n: usize) -> Vec<pb::Tap> {
    let mut taps = Vec::with_capacity(n);
    for i in 0..n {
        taps.push(
            from.tap(pb::TapKind::Tap, &i.to_string())
                .await
                .unwrap()
                .tap
                .unwrap(),
        );
    }
    taps
}

async fn an_offline_device_gets_its_backlog_in_order(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, generous()).await else {
        return;
    };
    let c = server.couple().await;
    let sent = send_numbered(&c.alice, 150).await;

    let (_, backlog) = c.bob_watch.subscribe_caught_up(0).await;
    // The watch was linked before pairing: its first event is `paired`.
    assert!(matches!(backlog[0].payload, Some(Payload::Paired(_))));
    let taps: Vec<&pb::Tap> = backlog[1..]
        .iter()
        .map(|e| tap_of(e).expect("only taps follow"))
        .collect();
    assert_eq!(taps.len(), 150);
    for (got, want) in taps.iter().zip(&sent) {
        assert_eq!(&got.tap_id, &want.tap_id);
    }
    let seqs: Vec<u64> = backlog.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=151).collect::<Vec<u64>>(),
        "gap-free, in commit order"
    );
    server.finish().await;
}

async fn a_restart_mid_conversation_loses_nothing(backend: Backend) {
    let Some(mut server) = TestServer::start_with(backend, generous()).await else {
        return;
    };
    let mut c = server.couple().await;
    let (mut bob_events, _) = c.bob.subscribe_caught_up(0).await;
    let retried = tap_request(pb::TapKind::Tap, "before");
    c.alice.send(retried.clone()).await.unwrap();
    let (_, got) = bob_events.next_tap().await;
    assert_eq!(got.tap.unwrap().note, "before");
    let before_offline = send_numbered(&c.alice, 5).await;

    server.restart().await;
    // Bob's live stream ended with the old server.
    assert_eq!(bob_events.end_status().await.code(), Code::Unavailable);

    for d in [&mut c.alice, &mut c.bob] {
        d.reconnect(&server).await;
    }
    // The client did not hear the answer and retries: stored once.
    assert!(c.alice.send(retried).await.unwrap().duplicate);
    let after = send_numbered(&c.alice, 3).await;

    // Bob resumes after the last event he handled: the 5 + 3 new taps, once each.
    let (_, backlog) = c.bob.subscribe_caught_up(2).await;
    let ids: Vec<String> = backlog
        .iter()
        .map(|e| tap_of(e).unwrap().tap_id.clone())
        .collect();
    let want: Vec<String> = before_offline
        .iter()
        .chain(&after)
        .map(|t| t.tap_id.clone())
        .collect();
    assert_eq!(ids, want);
    server.finish().await;
}

async fn a_cut_stream_resumes_from_the_last_ack(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, generous()).await else {
        return;
    };
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "America/New_York").await;
    server.pair(&alice, &bob).await;
    let sent = send_numbered(&alice, 30).await;

    // Bob reads 15 events, acks the 12th, and loses the connection.
    let mut events = bob.subscribe(0).await;
    let mut read = Vec::new();
    for _ in 0..15 {
        read.push(events.next_significant().await);
    }
    let acked = read[11].seq;
    bob.events()
        .ack_events(pb::AckEventsRequest { seq: acked })
        .await
        .unwrap();
    drop(events);

    // He resumes from his ack: everything after it, unacked ones again, nothing before.
    let (_, backlog) = bob.subscribe_caught_up(acked).await;
    assert_eq!(backlog.first().unwrap().seq, acked + 1);
    assert_eq!(
        backlog.first().unwrap().event_id,
        read[12].event_id,
        "unacked events come again, same id"
    );
    let notes: Vec<String> = backlog
        .iter()
        .map(|e| tap_of(e).unwrap().note.clone())
        .collect();
    let want: Vec<String> = sent[11..].iter().map(|t| t.note.clone()).collect();
    assert_eq!(notes, want);

    // A cursor older than the ack gets `reset`, then the retained events.
    let mut old = bob.subscribe(3).await;
    match old.next().await.payload {
        Some(Payload::Reset(r)) => assert_eq!(r.acked_seq, acked),
        other => panic!("expected reset, got {other:?}"),
    }
    assert_eq!(old.next().await.seq, acked + 1);

    // Acks are checked.
    assert_status(
        bob.events()
            .ack_events(pb::AckEventsRequest { seq: 1000 })
            .await,
        Code::InvalidArgument,
        "seq: must not be beyond the newest event (31)",
    );
    bob.events()
        .ack_events(pb::AckEventsRequest { seq: 1 })
        .await
        .expect("an old ack is a no-op");
    server.finish().await;
}

async fn a_new_stream_displaces_the_old_one(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut first, _) = c.bob.subscribe_caught_up(0).await;
    let (mut second, _) = c.bob.subscribe_caught_up(0).await;
    let status = first.end_status().await;
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let sent = c
        .alice
        .tap(pb::TapKind::Tap, "")
        .await
        .unwrap()
        .tap
        .unwrap();
    let (_, got) = second.next_tap().await;
    assert_eq!(got.tap.unwrap().tap_id, sent.tap_id);
    assert_eq!(server.state.doorbell.live_streams(), 1);
    server.finish().await;
}

async fn fetch_pages_through_the_same_events(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, generous()).await else {
        return;
    };
    let c = server.couple().await;
    let sent = send_numbered(&c.alice, 7).await;
    let fetch = |after_seq: u64, limit: u32| {
        let watch = c.bob_watch.clone();
        async move {
            watch
                .events()
                .fetch_events(pb::FetchEventsRequest { after_seq, limit })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let page1 = fetch(0, 5).await.unwrap();
    assert!(page1.has_more);
    assert_eq!(page1.events.len(), 5);
    let last = page1.events.last().unwrap().seq;
    let page2 = fetch(last, 5).await.unwrap();
    assert!(!page2.has_more);
    assert_eq!(page2.events.len(), 3);
    let notes: Vec<String> = page1
        .events
        .iter()
        .chain(&page2.events)
        .filter_map(tap_of)
        .map(|t| t.note.clone())
        .collect();
    assert_eq!(
        notes,
        sent.iter().map(|t| t.note.clone()).collect::<Vec<_>>()
    );

    // The stream gives the very same events.
    let (_, streamed) = c.bob_watch.subscribe_caught_up(0).await;
    let ids = |v: &[pb::Event]| {
        v.iter()
            .map(|e| (e.seq, e.event_id.clone()))
            .collect::<Vec<_>>()
    };
    let fetched: Vec<pb::Event> = page1.events.into_iter().chain(page2.events).collect();
    assert_eq!(ids(&streamed), ids(&fetched));

    assert_status(
        fetch(0, 501).await,
        Code::InvalidArgument,
        "limit: must be 0-500",
    );
    server.finish().await;
}

/// Two server processes on one PostgreSQL: partners connected to different instances get each
/// other's taps at once (the heartbeat is 25 s, longer than the test waits, so only the
/// cross-instance doorbell can deliver them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_on_two_instances_get_each_others_taps() {
    let Some(server) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    let (_second, stop, task, second_addr) = server.second_instance().await;
    let c = server.couple().await;
    let (alice, mut bob, mut bob_watch, mut alice_watch) =
        (c.alice, c.bob, c.bob_watch, c.alice_watch);
    alice_watch.connect_to(second_addr).await;
    bob.connect_to(second_addr).await;
    bob_watch.connect_to(second_addr).await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;
    let (mut bob_events, _) = bob.subscribe_caught_up(0).await;
    let (mut watch_events, _) = bob_watch.subscribe_caught_up(0).await;

    let sent = alice
        .tap(pb::TapKind::Heartbeat, "across")
        .await
        .unwrap()
        .tap
        .unwrap();
    for events in [&mut bob_events, &mut watch_events] {
        let (_, got) = events.next_tap().await;
        assert_eq!(got.tap.unwrap().tap_id, sent.tap_id);
    }
    let back = bob
        .tap(pb::TapKind::Kiss, "and back")
        .await
        .unwrap()
        .tap
        .unwrap();
    let (_, got) = alice_events.next_tap().await;
    assert_eq!(got.tap.unwrap().tap_id, back.tap_id);
    let (_, own) = watch_events.next_tap().await;
    assert!(
        own.from_self,
        "Bob's watch shows what his phone sent, on the same instance"
    );
    // Signed out on the first instance: the second ends the device's stream and refuses its
    // token at once, though it had just accepted it.
    let (mut alice_watch_events, _) = alice_watch.subscribe_caught_up(0).await;
    alice
        .accounts()
        .revoke_device(pb::RevokeDeviceRequest {
            device_id: alice_watch.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        alice_watch_events.end_status().await.code(),
        Code::Unauthenticated
    );
    assert_eq!(
        alice_watch
            .tap(pb::TapKind::Tap, "")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    drop((bob_events, watch_events));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    server.finish().await;
}

/// Many taps at once from several devices of two couples share group commits: each arrives
/// exactly once on each recipient stream, numbered without gaps, each couple's taps only to
/// that couple, and every one counts for the streak.
async fn a_burst_from_many_senders_arrives_once_in_order(backend: Backend) {
    let Some(server) = TestServer::start_with(
        backend,
        Settings {
            jobs_every: None,
            ..generous()
        },
    )
    .await
    else {
        return;
    };
    let one = server.couple().await;
    let two = server.couple().await;
    let (mut bob_one, _) = one.bob.subscribe_caught_up(0).await;
    let (mut bob_two, _) = two.bob.subscribe_caught_up(0).await;
    let mut sends = Vec::new();
    for (device, prefix, n) in [
        (&one.alice, "one-phone", 15),
        (&one.alice_watch, "one-watch", 5),
        (&two.alice, "two-phone", 20),
    ] {
        for i in 0..n {
            let device = device.clone();
            // Quotes, a backslash and emoji travel inside the batch's JSON parameter.
            let note = format!("{prefix}-{i} \"ok\" \\ 💛");
            sends.push(tokio::spawn(async move {
                device.tap(pb::TapKind::Tap, &note).await.unwrap()
            }));
        }
    }
    for s in sends {
        assert!(!s.await.unwrap().duplicate);
    }
    for (events, prefix) in [(&mut bob_one, "one-"), (&mut bob_two, "two-")] {
        let mut notes = std::collections::BTreeSet::new();
        let mut last_seq = None;
        for _ in 0..20 {
            let (event, got) = events.next_tap().await;
            let note = got.tap.unwrap().note;
            assert!(note.starts_with(prefix), "{note} reached the wrong couple");
            assert!(notes.insert(note.clone()), "{note} arrived twice");
            if let Some(last) = last_seq {
                assert_eq!(event.seq, last + 1, "seqs have no gaps");
            }
            last_seq = Some(event.seq);
        }
        assert_eq!(notes.len(), 20);
        assert!(
            notes.iter().all(|n| n.ends_with(" \"ok\" \\ 💛")),
            "{notes:?}"
        );
    }
    let streak = tapline_proto::v1::streak_service_client::StreakServiceClient::new(
        one.bob.authed_channel(),
    )
    .get_streak(pb::GetStreakRequest {})
    .await
    .unwrap()
    .into_inner()
    .streak
    .unwrap();
    assert_eq!(
        streak.partner_today.unwrap().actions,
        20,
        "every tap counts for the streak"
    );
    // Nothing more: a marker from the other side arrives next.
    one.alice.tap(pb::TapKind::Hug, "marker").await.unwrap();
    assert_eq!(bob_one.next_tap().await.1.tap.unwrap().note, "marker");
    server.finish().await;
}
