//! The mobile core against the real server: two partners' cores exchanging taps, the offline
//! outbox across client and server restarts, catching up after hours offline, the no-network
//! glance, listener errors, `sync now`, the gRPC-Web host transport, errors read from their
//! details, and a cursor reset back from ahead of the server.

mod backup;
mod leaving;
mod outcomes;
mod push;
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use tapline_core::*;
use tapline_e2e::{Backend, TestServer};
use tapline_server::Settings;

tapline_e2e::on_both_databases!(
    taps_flow_between_two_cores,
    the_outbox_survives_client_and_server_restarts,
    a_core_offline_for_hours_catches_up_in_order,
);

async fn taps_flow_between_two_cores(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let bob_watch = core(&server, DeviceKind::Watch);
    let code = bob.create_link_code().await.unwrap();
    bob_watch.redeem_link_code(code.code).await.unwrap();

    let alice_events = Collector::subscribe(&alice);
    let bob_events = Collector::subscribe(&bob);
    let watch_events = Collector::subscribe(&bob_watch);
    bob_events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp))
        .await;
    watch_events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp))
        .await;
    alice_events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp))
        .await;

    let queued = alice
        .send_tap(TapKind::Heartbeat, Some("miss you".into()), None)
        .unwrap();
    assert_eq!(
        queued.state,
        TapState::Queued,
        "send_tap returns at once with the local state"
    );

    for events in [&bob_events, &watch_events] {
        let tap = events.next_tap().await;
        assert_eq!(tap.kind, TapKind::Heartbeat);
        assert_eq!(tap.note.as_deref(), Some("miss you"));
        assert!(!tap.silent && !tap.from_self);
    }
    // Alice sees it move: sent, then delivered (Bob's cores report that on their own).
    let sent = alice_events
        .wait_for_tap_state(&queued.client_tap_id, TapState::Sent)
        .await;
    let tap_id = sent.tap_id.clone().expect("a sent tap has the server's id");
    alice_events
        .wait_for_tap_state(&queued.client_tap_id, TapState::Delivered)
        .await;

    bob.report_tap(tap_id.clone(), ReceiptKind::Felt).unwrap();
    alice_events
        .wait_for_tap_state(&queued.client_tap_id, TapState::Felt)
        .await;
    let local = alice.local_taps(10).unwrap();
    assert_eq!(local[0].state, TapState::Felt);

    // A custom rhythm arrives intact on the watch.
    let rhythm = haptics::rhythm_from_taps(vec![0, 250, 400, 900]);
    alice
        .send_tap(TapKind::Custom, None, Some(rhythm.clone()))
        .unwrap();
    let tap = watch_events.next_tap().await;
    assert_eq!(tap.rhythm, Some(rhythm.clone()));
    assert_eq!(
        bob_events.next_tap().await.rhythm,
        Some(rhythm),
        "Bob's phone stored it too"
    );

    // Bob's glance knows Alice and her last tap.
    let g = bob.glance();
    assert_eq!(g.partner_name.as_deref(), Some("Alice"));
    assert_eq!(g.partner_time_zone.as_deref(), Some("Europe/Paris"));
    assert_eq!(
        g.last_tap.map(|t| t.kind),
        Some(TapKind::Custom),
        "the newest tap"
    );

    // Bad input is refused before it reaches the outbox.
    let err = alice
        .send_tap(TapKind::Tap, Some("x".repeat(81)), None)
        .unwrap_err();
    assert!(
        matches!(err, TaplineError::InvalidInput { ref reason } if reason.starts_with("note:")),
        "{err:?}"
    );
    let err = alice.send_tap(TapKind::Custom, None, None).unwrap_err();
    assert!(matches!(err, TaplineError::InvalidInput { .. }));
    server.finish().await;
}

async fn the_outbox_survives_client_and_server_restarts(backend: Backend) {
    let Some(mut server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let alice_dir = alice.dir.clone();
    let bob_events = Collector::subscribe(&bob);
    bob_events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp))
        .await;

    server.stop().await;
    let notes = ["one", "two", "three"];
    for n in notes {
        let t = alice.send_tap(TapKind::Tap, Some(n.into()), None).unwrap();
        assert_eq!(t.state, TapState::Queued);
    }
    assert_eq!(alice.glance().unsent_count, 3);
    // The app is killed while offline.
    drop(alice);

    server.restart().await;
    // The app starts again: what was left is sent, once each, in order.
    let alice = reopen(&server, &alice_dir, DeviceKind::Phone);
    alice.network_available();
    let got: Vec<String> = [
        bob_events.next_tap().await,
        bob_events.next_tap().await,
        bob_events.next_tap().await,
    ]
    .into_iter()
    .map(|t| t.note.unwrap_or_default())
    .collect();
    assert_eq!(got, notes);
    let marker = alice
        .send_tap(TapKind::Tap, Some("marker".into()), None)
        .unwrap();
    assert_eq!(
        bob_events.next_tap().await.note.as_deref(),
        Some("marker"),
        "no duplicates before the marker"
    );
    let _ = marker;
    assert_eq!(alice.flush_outbox().await.unwrap().unsent, 0);
    server.finish().await;
}

async fn a_core_offline_for_hours_catches_up_in_order(backend: Backend) {
    let settings = Settings {
        taps_per_minute: 10_000,
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let bob_dir = bob.dir.clone();
    drop(bob);
    // Bob is away for six hours while Alice keeps tapping.
    for i in 0..120 {
        server.clock.advance(chrono::Duration::minutes(3));
        alice
            .send_tap(TapKind::Tap, Some(i.to_string()), None)
            .unwrap();
    }
    assert_eq!(alice.flush_outbox().await.unwrap().unsent, 0);

    let bob = reopen(&server, &bob_dir, DeviceKind::Phone);
    let events = Collector::subscribe(&bob);
    let mut notes = Vec::new();
    loop {
        match events.next().await {
            ClientEvent::TapReceived { tap } => notes.push(tap.note.unwrap_or_default()),
            ClientEvent::CaughtUp => break,
            _ => {}
        }
    }
    assert_eq!(notes, (0..120).map(|i| i.to_string()).collect::<Vec<_>>());
    drop(events);

    // The cursor was stored and acked: a fresh start replays nothing.
    drop(bob);
    let bob = reopen(&server, &bob_dir, DeviceKind::Phone);
    let events = Collector::subscribe(&bob);
    assert!(
        matches!(events.next().await, ClientEvent::CaughtUp),
        "nothing before caught-up"
    );
    assert_eq!(bob.received_taps(500).unwrap().len(), 120);
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_glance_works_with_the_server_down() {
    let Some(mut server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let bob_events = Collector::subscribe(&bob);
    alice.send_tap(TapKind::Kiss, None, None).unwrap();
    bob_events.next_tap().await;
    server.stop().await;

    let g = bob.glance();
    assert!(g.signed_in && g.paired);
    assert_eq!(g.partner_name.as_deref(), Some("Alice"));
    assert_eq!(
        g.partner_local_time.as_ref().map(String::len),
        Some(5),
        "HH:MM"
    );
    assert_eq!(g.last_tap.map(|t| t.kind), Some(TapKind::Kiss));
    bob.send_tap(TapKind::Hug, None, None).unwrap();
    assert_eq!(bob.glance().unsent_count, 1);
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_errors_never_kill_the_subscription() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let (listener, mut rx) = FailingListener::new();
    let _sub = bob.subscribe(Arc::new(listener));
    for n in ["a", "b", "c"] {
        alice.send_tap(TapKind::Tap, Some(n.into()), None).unwrap();
    }
    let mut notes = Vec::new();
    while notes.len() < 3 {
        let e = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("events keep coming")
            .unwrap();
        if let ClientEvent::TapReceived { tap } = e {
            notes.push(tap.note.unwrap());
        }
    }
    assert_eq!(
        notes,
        ["a", "b", "c"],
        "every event arrived although the listener failed on each"
    );
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_pulls_for_a_push_woken_watch() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let watch = core(&server, DeviceKind::Watch);
    watch
        .redeem_link_code(bob.create_link_code().await.unwrap().code)
        .await
        .unwrap();
    alice.send_tap(TapKind::Squeeze, None, None).unwrap();
    assert_eq!(alice.flush_outbox().await.unwrap().unsent, 0);

    let events = watch.sync_now().await.unwrap();
    let taps: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, ClientEvent::TapReceived { .. }))
        .collect();
    assert_eq!(taps.len(), 1);
    assert!(
        watch.sync_now().await.unwrap().is_empty(),
        "already stored and acked"
    );
    assert_eq!(
        watch.glance().last_tap.map(|t| t.kind),
        Some(TapKind::Squeeze)
    );
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_transport_speaks_grpc_web() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let alice = core(&server, DeviceKind::Phone);
    alice
        .create_account("Alice".into(), "Europe/Paris".into())
        .await
        .unwrap();
    let dir = temp_dir();
    let watch = TaplineClient::with_http_transport(
        config(&server, &dir, DeviceKind::Watch),
        Arc::new(Http1Transport),
    )
    .unwrap();
    let bob = watch
        .create_account("Bob".into(), "Pacific/Kiritimati".into())
        .await
        .unwrap();
    assert_eq!(bob.time_zone, "Pacific/Kiritimati");
    let code = watch.create_invite().await.unwrap();
    alice.accept_invite(code.code).await.unwrap();

    // The watch sends over gRPC-Web and receives by polling.
    let events = Collector::subscribe(&watch);
    events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp | ClientEvent::Paired { .. }))
        .await;
    watch
        .send_tap(TapKind::Hug, Some("from the watch".into()), None)
        .unwrap();
    assert_eq!(watch.flush_outbox().await.unwrap().unsent, 0);
    alice.send_tap(TapKind::Kiss, None, None).unwrap();
    let tap = events.next_tap().await;
    assert_eq!(tap.kind, TapKind::Kiss);
    let received = alice.sync_now().await.unwrap();
    assert!(received.iter().any(|e| matches!(e, ClientEvent::TapReceived { tap } if tap.note.as_deref() == Some("from the watch"))));

    // Errors come back typed through the host transport too, with their details.
    let err = watch.accept_invite("ZZZZZZZZ".into()).await.unwrap_err();
    assert!(matches!(err, TaplineError::NotFound { .. }), "{err:?}");
    let err = watch.create_invite().await.unwrap_err();
    assert!(
        matches!(
            err,
            TaplineError::Refused {
                code: RefusalCode::AlreadyPaired,
                ..
            }
        ),
        "{err:?}"
    );
    let _ = Duration::ZERO;
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_reason_an_app_acts_on() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let alice = core(&server, DeviceKind::Phone);
    let err = alice
        .create_account("Alice".into(), "Mars/Olympus".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TaplineError::InvalidInput { ref reason } if reason.starts_with("time_zone: ")),
        "BadRequest names the field: {err:?}"
    );
    alice
        .create_account("Alice".into(), "Europe/Paris".into())
        .await
        .unwrap();
    assert!(
        alice.couple().await.unwrap().is_none(),
        "NOT_PAIRED is no couple"
    );
    let err = alice
        .create_account("Alice".into(), "Europe/Paris".into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TaplineError::Refused {
                code: RefusalCode::AlreadySignedIn,
                ..
            }
        ),
        "{err:?}"
    );

    let invite = alice.create_invite().await.unwrap();
    let err = alice.accept_invite(invite.code.clone()).await.unwrap_err();
    assert!(
        matches!(
            err,
            TaplineError::Refused {
                code: RefusalCode::OwnInvite,
                ..
            }
        ),
        "{err:?}"
    );
    let bob = core(&server, DeviceKind::Phone);
    bob.create_account("Bob".into(), "UTC".into())
        .await
        .unwrap();
    bob.accept_invite(invite.code).await.unwrap();
    let err = alice.create_invite().await.unwrap_err();
    assert!(
        matches!(
            err,
            TaplineError::Refused {
                code: RefusalCode::AlreadyPaired,
                ..
            }
        ),
        "{err:?}"
    );

    // Link codes: used once, then refused; an old one has expired.
    let code = alice.create_link_code().await.unwrap().code;
    core(&server, DeviceKind::Watch)
        .redeem_link_code(code.clone())
        .await
        .unwrap();
    let err = core(&server, DeviceKind::Watch)
        .redeem_link_code(code)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TaplineError::Refused {
                code: RefusalCode::CodeUsed,
                ..
            }
        ),
        "{err:?}"
    );
    let code = alice.create_link_code().await.unwrap().code;
    server.clock.advance(chrono::Duration::minutes(11));
    let err = core(&server, DeviceKind::Watch)
        .redeem_link_code(code)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TaplineError::Refused {
                code: RefusalCode::CodeExpired,
                ..
            }
        ),
        "{err:?}"
    );

    // Guessing codes is limited; the delay comes from RetryInfo.
    let carol = core(&server, DeviceKind::Phone);
    carol
        .create_account("Carol".into(), "UTC".into())
        .await
        .unwrap();
    let mut limited = None;
    for _ in 0..20 {
        match carol.accept_invite("ZZZZZZZZ".into()).await.unwrap_err() {
            TaplineError::NotFound { .. } => {}
            TaplineError::RateLimited { retry_after_ms } => {
                limited = Some(retry_after_ms);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let retry_after_ms = limited.expect("guesses are limited");
    assert!(retry_after_ms > 1000, "{retry_after_ms} ms");
    server.finish().await;
}

/// Moves the stored cursor of the core in `dir` (closed), as a server restored from an older
/// backup would find it: ahead of everything it has.
async fn move_cursor(dir: &str, seq: i64) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(std::path::Path::new(dir).join("tapline-core.db"))
        .connect()
        .await
        .unwrap();
    let moved = sqlx::query("UPDATE kv SET value = ?1 WHERE key = 'cursor'")
        .bind(seq)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_ahead_of_the_server_is_reset_and_new_events_arrive() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let watch = core(&server, DeviceKind::Watch);
    watch
        .redeem_link_code(bob.create_link_code().await.unwrap().code)
        .await
        .unwrap();
    alice
        .send_tap(TapKind::Tap, Some("before".into()), None)
        .unwrap();
    assert_eq!(alice.flush_outbox().await.unwrap().unsent, 0);
    let before = |events: &[ClientEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::TapReceived { tap } if tap.note.as_deref() == Some("before")))
            .count()
    };
    assert_eq!(before(&bob.sync_now().await.unwrap()), 1);
    assert_eq!(before(&watch.sync_now().await.unwrap()), 1);

    // A stream: the reset moves the cursor back, and what comes next is delivered.
    let bob_dir = bob.dir.clone();
    drop(bob);
    move_cursor(&bob_dir, 1_000_000).await;
    let bob = reopen(&server, &bob_dir, DeviceKind::Phone);
    let events = Collector::subscribe(&bob);
    events.wait_for(|e| matches!(e, ClientEvent::Reset)).await;
    events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp))
        .await;
    alice
        .send_tap(TapKind::Kiss, Some("after".into()), None)
        .unwrap();
    assert_eq!(events.next_tap().await.note.as_deref(), Some("after"));
    drop(events);
    drop(bob);
    // The cursor stored is the server's again: a fresh start is told nothing new.
    let bob = reopen(&server, &bob_dir, DeviceKind::Phone);
    let events = Collector::subscribe(&bob);
    assert!(
        matches!(events.next().await, ClientEvent::CaughtUp),
        "no second reset, no replay"
    );
    drop(events);

    // Fetches (a push-woken watch): the same.
    let watch_dir = watch.dir.clone();
    drop(watch);
    move_cursor(&watch_dir, 1_000_000).await;
    let watch = reopen(&server, &watch_dir, DeviceKind::Watch);
    let got = watch.sync_now().await.unwrap();
    assert!(
        got.iter().any(|e| matches!(e, ClientEvent::Reset)),
        "{got:?}"
    );
    assert_eq!(before(&got), 0, "known events are dropped by id");
    assert!(
        got.iter().any(|e| matches!(e, ClientEvent::TapReceived { tap } if tap.note.as_deref() == Some("after"))),
        "{got:?}"
    );
    alice
        .send_tap(TapKind::Hug, Some("later".into()), None)
        .unwrap();
    assert_eq!(alice.flush_outbox().await.unwrap().unsent, 0);
    let got = watch.sync_now().await.unwrap();
    assert!(
        !got.iter().any(|e| matches!(e, ClientEvent::Reset)),
        "{got:?}"
    );
    assert!(
        got.iter().any(|e| matches!(e, ClientEvent::TapReceived { tap } if tap.note.as_deref() == Some("later"))),
        "{got:?}"
    );
    server.finish().await;
}

/// The native transport over TLS: it verifies the server with the platform's roots plus the
/// CA the app gives, and refuses a server it cannot verify. (TLS does not depend on the
/// database: SQLite only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_verifies_a_tls_server_with_an_extra_ca() {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let ca = tapline_e2e::tls::Ca::new();
    let (cert, key, _) = ca.server();
    let (cert_path, key_path) =
        tapline_e2e::tls::write_pair(std::path::Path::new(&dir), &cert, &key);
    let settings = Settings {
        jobs_every: None,
        tls: Some(tapline_server::tls::Certificates::load(&cert_path, &key_path).unwrap()),
        ..Settings::default()
    };
    let server = TestServer::start_with(Backend::Sqlite, settings)
        .await
        .unwrap();
    let https = |ca_cert_pem: Option<String>| ClientConfig {
        server_url: format!("https://localhost:{}", server.addr.port()),
        ca_cert_pem,
        ..config(&server, &temp_dir(), DeviceKind::Phone)
    };

    let trusted = TaplineClient::new(https(Some(ca.pem()))).unwrap();
    let me = trusted
        .create_account("Sam".into(), "Europe/Paris".into())
        .await
        .expect("an account over TLS");
    assert_eq!(me.display_name, "Sam");
    assert_eq!(trusted.account().unwrap().account_id, me.account_id);

    let unknown_ca = TaplineClient::new(https(None)).unwrap();
    let refused = unknown_ca
        .create_account("Eve".into(), "UTC".into())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, TaplineError::Network { .. }),
        "a server no root vouches for is not talked to: {refused:?}"
    );

    let bad = TaplineClient::new(https(Some("not a certificate".into()))).err();
    assert!(
        matches!(bad, Some(TaplineError::InvalidInput { .. })),
        "{bad:?}"
    );
    server.finish().await;
}
